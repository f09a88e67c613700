"""``zephyr-tutorial generate`` (resumable) and ``zephyr-tutorial filter`` (per-filter counts, every removal listed).

Example (``data/sft/README.md`` records the exact commands of the shipped dataset)::

    zephyr-tutorial generate --in data/seed_prompts.jsonl --out raw.jsonl --turns 2 --dialogues-per-seed 3
    zephyr-tutorial filter --in raw.jsonl --out filtered.jsonl --rejects removed.jsonl --splits data/sft --seed 42

``--continue-from`` grows an earlier run's dialogues (e.g. single-turn ones) by
more turns instead of regenerating their first replies.
"""

from __future__ import annotations

import json

from . import add_timeout_option, bad_input, report_failed_requests


def build_backend(args, role: str = "assistant"):
    """The backend named by ``--backend`` (``local``: transformers in this process)."""
    from .. import backends
    from ..profiles import EMBEDDED_MODEL, active_profile

    profile = active_profile()
    model_id = args.model or profile.model.id
    if args.backend == "openai":
        if model_id == EMBEDDED_MODEL:
            raise ValueError("--backend openai needs --model (the endpoint's model name)")
        return backends.OpenAIBackend(
            model_id,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            concurrency=args.concurrency,
            timeout=args.timeout,
        )
    if args.backend == "vllm":
        if model_id == EMBEDDED_MODEL:
            raise ValueError("--backend vllm needs --model (a hub id or local path)")
        return backends.VLLMBackend(
            model_id, tensor_parallel_size=profile.generation.tensor_parallel_size, dtype=profile.model.dtype
        )
    from ..models import load_base_model

    model, tokenizer = load_base_model(
        profile.with_overrides(id=model_id),
        zephyr_template=False,
        load_in_4bit=False if model_id == EMBEDDED_MODEL else None,
        device_map="auto" if profile.model.device == "cuda" else None,
    )
    name = "SmolLM2-135M-Instruct" if model_id == EMBEDDED_MODEL else model_id
    return backends.TransformersBackend(
        model, tokenizer, batch_size=args.batch_size or profile.generation.batch_size, name=name
    )


def _generate_command(args) -> int:
    from dataclasses import replace

    from ..backends import SamplingConfig
    from ..data import read_jsonl
    from ..generation.datasets import load_seed_prompts
    from ..generation.self_instruct import SelfInstructConfig, bootstrap_instructions
    from ..generation.ultrachat import UltraChatConfig, generate_ultrachat

    seeds = load_seed_prompts(args.input, sectors=None)
    earlier = read_jsonl(args.continue_from) if args.continue_from else None
    try:
        backend = build_backend(args)
    except ValueError as error:
        return bad_input(error)
    if args.strategy == "self-instruct":
        config = SelfInstructConfig()
        config = replace(config, sampling=replace(config.sampling, seed=args.seed))
        result = bootstrap_instructions(
            [s["prompt"] for s in seeds], backend, args.limit or 100, args.out, config, seed=args.seed
        )
        print(
            f"kept {len(result.kept)} instructions from {result.candidates} candidates in {result.seconds:.0f} s; "
            f"rejected: {dict(result.rejected)}"
        )
        return report_failed_requests(result.failed, "requests")
    config = UltraChatConfig(
        turns=args.turns,
        assistant_sampling=SamplingConfig(args.max_new_tokens, args.temperature, 0.95, args.seed),
        user_sampling=SamplingConfig(48, max(args.temperature, 0.9), 0.95, args.seed + 1),
    )
    stats = generate_ultrachat(
        seeds,
        args.out,
        backend,
        config=config,
        dialogues_per_seed=args.dialogues_per_seed,
        limit=args.limit,
        chunk_size=args.chunk_size,
        continue_from=earlier,
    )
    continued = f", {stats.continued} continued from {args.continue_from}" if args.continue_from else ""
    print(
        f"{stats.written} dialogues written ({stats.already_done} were already there{continued}) to {args.out} in "
        f"{stats.seconds:.0f} s, {stats.tokens_per_second:.1f} generated tokens/s, {stats.ended_early} ended early"
    )
    return report_failed_requests(stats.failed, "dialogues")


def _filter_command(args) -> int:
    from ..data import read_jsonl, write_jsonl
    from ..generation.datasets import rows_to_dataset, save_sft_splits, to_sft_row
    from ..generation.filtering import FilterConfig, filter_dataset, filter_dialogues
    from ..schemas import check_sft_row, split_by_prompt_id

    rows = read_jsonl(args.input, validate=check_sft_row)  # a malformed row stops the run with its line
    try:
        config = FilterConfig(
            near_duplicate_threshold=args.near_duplicate_threshold,
            truncation_heuristic=args.truncation_heuristic,
            min_assistant_words=args.min_assistant_words,
        )
    except ValueError as error:
        return bad_input(error)
    if args.num_proc > 1:  # the same checks through datasets.map in several processes
        kept_dataset, report = filter_dataset(rows_to_dataset(rows), config, num_proc=args.num_proc, source=args.input)
        kept = kept_dataset.to_list()
        # removed and flagged rows as they were read (a dataset gives every row every column, None where absent)
        report.fetch = lambda positions: [rows[p - 1] for p in positions]
        for rejection in report.rejects + report.flagged:
            rejection.row = rows[rejection.position - 1]
        if args.rejects:
            report.write_rejects(args.rejects)
    else:
        kept, report = filter_dialogues(rows, config, source=args.input, rejects=args.rejects, progress=True)
    write_jsonl(args.out, (to_sft_row(r) for r in kept))
    print(report)
    if args.rejects:
        print(f"rejects: {report.removed_rows} rows, each with its filter and reason -> {args.rejects}")
    if args.flagged:
        report.write_flagged(args.flagged)
        print(f"flagged: {len(report.flagged)} kept rows the truncation heuristic would remove -> {args.flagged}")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "input": report.input_rows,
                    "kept": report.output_rows,
                    "truecased": report.truecased_rows,
                    "removed": report.removed_by(),
                    "flagged": len(report.flagged),
                },
                handle,
                indent=2,
            )
    if args.splits:
        train, test = split_by_prompt_id(kept, args.test_fraction, seed=args.seed)
        paths = save_sft_splits(train, test, args.splits)
        print(
            f"train_sft: {len(train)} rows -> {paths['train_sft']}\ntest_sft: {len(test)} rows -> {paths['test_sft']}"
        )
    return 0


def register(subparsers) -> None:
    generate = subparsers.add_parser(
        "generate",
        help="grow synthetic dialogues or instructions from seed prompts "
        "(resumable: re-run the same command after an interruption)",
    )
    generate.add_argument(
        "--in", dest="input", required=True, metavar="FILE", help="seed prompts: JSONL of {id, sector, prompt}"
    )
    generate.add_argument("--out", required=True, help="JSONL to append to (rows already there are skipped)")
    generate.add_argument("--strategy", choices=("ultrachat", "self-instruct"), default="ultrachat")
    generate.add_argument("--turns", type=int, default=3, help="assistant replies per dialogue")
    generate.add_argument("--backend", choices=("local", "openai", "vllm"), default="local")
    generate.add_argument("--model", default=None, help="model id (default: the active profile's)")
    generate.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (--backend openai)")
    generate.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the API key")
    generate.add_argument("--concurrency", type=int, default=4, help="parallel requests (--backend openai)")
    generate.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most this many dialogues (ultrachat) / instructions to keep (self-instruct, default 100)",
    )
    generate.add_argument("--dialogues-per-seed", type=int, default=1)
    generate.add_argument("--max-new-tokens", type=int, default=192)
    generate.add_argument("--temperature", type=float, default=0.7)
    generate.add_argument("--batch-size", type=int, default=None, help="local backend batch (default: profile's)")
    generate.add_argument("--chunk-size", type=int, default=16, help="dialogues written together")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--continue-from",
        default=None,
        metavar="FILE",
        help="JSONL of an earlier run (e.g. single-turn): a dialogue with the same id and no "
        "truncated reply is continued by the loop instead of regenerated",
    )
    add_timeout_option(generate)
    generate.set_defaults(handler=_generate_command)

    filt = subparsers.add_parser(
        "filter",
        help="truecase, drop disclaimers/truncated/duplicate dialogues, print how many rows each filter removed "
        "(--rejects FILE lists every one with its reason)",
    )
    filt.add_argument(
        "--in", dest="input", required=True, metavar="FILE", help="generated JSONL (ultrachat_200k fields)"
    )
    filt.add_argument("--out", required=True, help="filtered JSONL (ultrachat_200k fields only)")
    filt.add_argument("--near-duplicate-threshold", type=float, default=0.8)
    filt.add_argument(
        "--truncation-heuristic",
        choices=("off", "report", "remove"),
        default="report",
        help="for replies without a recorded finish reason: guess from the text whether they were cut off; "
        "'report' (default) only lists what it would remove, 'remove' drops them",
    )
    filt.add_argument(
        "--min-assistant-words", type=int, default=1, help="drop dialogues with a shorter reply (default 1: none)"
    )
    filt.add_argument(
        "--rejects",
        default=None,
        metavar="FILE",
        help="write every removed row here (JSONL: position, filter, reason, row)",
    )
    filt.add_argument(
        "--flagged", default=None, metavar="FILE", help="write the kept rows the truncation heuristic flagged here"
    )
    filt.add_argument(
        "--num-proc", type=int, default=1, help="processes (above 1: through datasets.map, same decisions)"
    )
    filt.add_argument("--report", default=None, help="also write the counts as JSON here")
    filt.add_argument("--splits", default=None, help="also write train_sft.jsonl / test_sft.jsonl in this folder")
    filt.add_argument("--test-fraction", type=float, default=0.1)
    filt.add_argument("--seed", type=int, default=0)
    filt.set_defaults(handler=_filter_command)
