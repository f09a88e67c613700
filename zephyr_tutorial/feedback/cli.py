"""``zephyr-tutorial feedback``: pool -> judge -> binarized preference pairs, resumable, printing counts per stage."""

from __future__ import annotations

import sys
from pathlib import Path

JUDGES = ("local", "local-text", "openai")


def make_judge(kind: str, *, model: str | None = None, base_url: str | None = None, cache_path=None,
               embedded=None, batch_size: int = 8):
    """The rating judge: ``local`` reads digit probabilities of the embedded model; ``local-text`` lets it write
    JSON (it mostly cannot); ``openai`` asks an OpenAI-compatible endpoint (GPT-4 class), with an SQLite cache."""
    from ..backends import CachedBackend, OpenAIBackend, TransformersBackend
    from .probability_judge import ProbabilityJudge
    from .rating import TextJudge

    if kind not in JUDGES:
        raise ValueError(f"judge must be one of {', '.join(JUDGES)}, got {kind!r}")
    if kind == "openai":
        if not model:
            raise ValueError("--judge openai needs --judge-model (e.g. gpt-4o)")
        backend = OpenAIBackend(model, base_url=base_url)
        return TextJudge(CachedBackend(backend, cache_path) if cache_path else backend)
    if embedded is None:
        from ..models import load_embedded_model

        embedded = load_embedded_model()
    model_obj, tokenizer = embedded
    if kind == "local":
        return ProbabilityJudge(model_obj, tokenizer, batch_size=batch_size, name="prob:SmolLM2-135M-Instruct")
    backend = TransformersBackend(model_obj, tokenizer, batch_size=batch_size, name="SmolLM2-135M-Instruct")
    return TextJudge(CachedBackend(backend, cache_path) if cache_path else backend, max_new_tokens=160)


def feedback_command(args) -> int:
    from ..data import DataError, ResumableJsonlWriter, read_jsonl
    from ..sft import default_sft_adapter_dir
    from .pipeline import PROMPT_FIELDS, rate_completions, write_preferences
    from .pool import PolicyBackends, default_pool, load_pool_config, run_pool

    out = Path(args.out)
    try:
        prompts = read_jsonl(args.prompts, PROMPT_FIELDS)
        pool = load_pool_config(args.pool) if args.pool else default_pool(sft_adapter_dir=default_sft_adapter_dir())
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.limit:
        prompts = prompts[: args.limit]
    print(f"prompts: {len(prompts)} from {args.prompts}")
    print("pool: " + ", ".join(f"{spec.name} ({spec.kind})" for spec in pool))
    backends = PolicyBackends(batch_size=args.batch_size)
    with ResumableJsonlWriter(out / "completions.jsonl") as writer:
        already = len(writer.done_ids)
        counts = run_pool(prompts, pool, backends, writer, max_new_tokens=args.max_new_tokens, seed=args.seed)
    print(f"completions: {already} already there, new per policy {counts}")
    try:
        judge = make_judge(args.judge, model=args.judge_model, base_url=args.judge_base_url,
                           cache_path=out / "judge_cache.sqlite",
                           embedded=backends.embedded() if args.judge != "openai" else None)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with ResumableJsonlWriter(out / "ratings.jsonl") as writer:
        already = len(writer.done_ids)
        rated = rate_completions(out / "completions.jsonl", writer, judge)
    print(f"ratings ({judge.name}): {already} already there, new {dict(rated)}, retried replies {judge.retries}")
    report = write_preferences(out / "ratings.jsonl", out, strategy=args.strategy, margin=args.margin,
                               seed=args.seed, test_fraction=args.test_fraction,
                               pool_order=[spec.name for spec in pool])
    print(f"pairs ({args.strategy}): {report}")
    print(f"wrote {out / 'train_prefs.jsonl'} and {out / 'test_prefs.jsonl'}")
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "feedback", help="AI feedback: completion pool, judge ratings on 4 aspects, binarized preference pairs"
    )
    parser.add_argument("--prompts", required=True, help="JSONL with rows {id, prompt}")
    parser.add_argument("--out", required=True, help="output folder (completions, ratings, train/test prefs)")
    parser.add_argument("--pool", default=None, help="JSON list of policies (default: the 4-policy CPU pool)")
    parser.add_argument("--judge", choices=JUDGES, default="local")
    parser.add_argument("--judge-model", default=None, help="model id for --judge openai, e.g. gpt-4o")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible endpoint (default: OpenAI)")
    parser.add_argument("--strategy", choices=("random", "worst", "margin"), default="random")
    parser.add_argument("--margin", type=float, default=1.0, help="minimum chosen-rejected gap for --strategy margin")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.set_defaults(handler=feedback_command)
