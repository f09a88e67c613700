"""``zephyr-tutorial feedback``: pool -> judge -> binarized preference pairs, resumable, printing counts per stage."""

from __future__ import annotations

from pathlib import Path

from . import add_timeout_option, bad_input, report_failed_requests

JUDGE_OPTIONS = {"local": {"max_new_tokens": 160}, "openai": {"max_new_tokens": 512}}
"""Judge options of this command beyond the common ones: room for a JSON reply of four aspect ratings."""


OUTPUT_FILES = ("completions.jsonl", "ratings.jsonl", "train_prefs.jsonl", "test_prefs.jsonl")
"""What the command writes in its --out folder; --in may be none of them."""


def feedback_command(args) -> int:
    from dataclasses import replace

    from ..data import DataError, ResumableJsonlWriter
    from ..evaluation.judges import make_judge
    from ..feedback.pipeline import rate_completions, read_prompts, write_preferences
    from ..feedback.pool import PolicyBackends, default_pool, load_pool_config, run_pool
    from ..sft import default_sft_adapter_dir

    out = Path(args.out)
    for name in OUTPUT_FILES:
        if (out / name).resolve() == Path(args.input).resolve():
            raise DataError(args.input, None, None, f"--in is the {name} this command writes in --out: choose another")
    prompts = read_prompts(args.input)
    try:
        pool = load_pool_config(args.pool) if args.pool else default_pool(sft_adapter_dir=default_sft_adapter_dir())
    except ValueError as error:
        return bad_input(error)
    # the pool's endpoint policies get the command's deadline unless their own spec sets one
    pool = [replace(s, extra={"timeout": args.timeout, **s.extra}) if s.kind == "openai" else s for s in pool]
    if args.judge == "openai" and not args.judge_model:
        return bad_input("--judge openai needs --judge-model (e.g. gpt-4o)")
    if args.limit:
        prompts = prompts[: args.limit]
    print(f"prompts: {len(prompts)} from {args.input}")
    print("pool: " + ", ".join(f"{spec.name} ({spec.kind})" for spec in pool))
    backends = PolicyBackends(batch_size=args.batch_size)
    # The completions file stays locked to this run until its ratings are written too: a second run on the
    # same --out fails at once instead of judging alongside.
    with ResumableJsonlWriter(out / "completions.jsonl") as writer:
        already = len(writer.done_ids)
        counts = run_pool(prompts, pool, backends, writer, max_new_tokens=args.max_new_tokens, seed=args.seed)
        print(f"completions: {already} already there, new per policy {counts}")
        model, tokenizer = backends.embedded() if args.judge != "openai" else (None, None)
        judge = make_judge(
            args.judge,
            model=model,
            tokenizer=tokenizer,
            model_name=args.judge_model if args.judge == "openai" else "SmolLM2-135M-Instruct",
            base_url=args.judge_base_url,
            cache_path=out / "judge_cache.sqlite",
            batch_size=8,
            timeout=args.timeout,
            **JUDGE_OPTIONS.get(args.judge, {}),
        )
        with ResumableJsonlWriter(out / "ratings.jsonl") as rating_writer:
            already = len(rating_writer.done_ids)
            rated = rate_completions(out / "completions.jsonl", rating_writer, judge)
    print(f"ratings ({judge.name}): {already} already there, new {dict(rated)}, retried replies {judge.retries}")
    report = write_preferences(
        out / "ratings.jsonl",
        out,
        strategy=args.strategy,
        margin=args.margin,
        seed=args.seed,
        test_fraction=args.test_fraction,
        pool_order=[spec.name for spec in pool],
    )
    print(f"pairs ({args.strategy}): {report}")
    print(f"wrote {out / 'train_prefs.jsonl'} and {out / 'test_prefs.jsonl'}")
    failed = dict(counts.failed)
    if rated.get("failed"):
        failed["ratings"] = f"{rated['failed']} completions whose judge request failed"
    return report_failed_requests(failed, "requests", total=len(counts.failed) + rated.get("failed", 0))


def register(subparsers) -> None:
    from ..evaluation.judges import JUDGES

    parser = subparsers.add_parser(
        "feedback", help="AI feedback: completion pool, judge ratings on 4 aspects, binarized preference pairs"
    )
    parser.add_argument(
        "--in", dest="input", required=True, metavar="FILE", help="prompts: JSONL with rows {id, prompt}"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (completions, ratings, train/test prefs)"
    )
    parser.add_argument("--pool", default=None, help="JSON list of policies (default: the 4-policy CPU pool)")
    parser.add_argument(
        "--judge",
        choices=sorted(JUDGES),
        default="logprob",
        help="logprob: the embedded model's digit probabilities; local: the embedded model writes "
        "JSON (it mostly cannot); openai: an OpenAI-compatible endpoint (GPT-4 class)",
    )
    parser.add_argument("--judge-model", default=None, help="model id for --judge openai, e.g. gpt-4o")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible endpoint (default: OpenAI)")
    parser.add_argument("--strategy", choices=("random", "worst", "margin"), default="random")
    parser.add_argument("--margin", type=float, default=1.0, help="minimum chosen-rejected gap for --strategy margin")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    add_timeout_option(parser)
    parser.set_defaults(handler=feedback_command)
