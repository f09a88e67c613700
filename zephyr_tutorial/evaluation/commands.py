"""``zephyr-tutorial eval-mc`` and ``zephyr-tutorial judge``: the evaluations of notebook 01 from the shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data import DataError


def _load_model(path: str | None):
    from ..models import load_causal_lm, load_embedded_model

    if path is None:
        return load_embedded_model()
    return load_causal_lm(path)


def _eval_mc_command(args) -> int:
    from .multiple_choice import DEFAULT_PROMPT, evaluate_multiple_choice, load_mc_items

    try:
        items = load_mc_items(args.data)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    model, tokenizer = _load_model(args.model)
    report = evaluate_multiple_choice(model, tokenizer, items, fmt=args.format, prompt=args.prompt or DEFAULT_PROMPT,
                                      batch_size=args.batch_size)
    result = {"data": str(args.data), "format": args.format, **report.to_dict()}
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def _single_items_from_rows(rows):
    from .judge import PairwiseItem, SingleItem, single_items_from_pairs

    items = []
    for row in rows:
        if "output_a" in row:  # a pairwise file: grade each side on its own, as notebook 01 does
            pair = PairwiseItem(row["id"], row["instruction"], row["output_a"], row["output_b"])
            items += single_items_from_pairs([pair], {row["id"]: row["reference"]} if row.get("reference") else None)
        else:
            items.append(SingleItem(row["id"], row["instruction"], row["output"], row.get("reference")))
    return items


def _judge_command(args) -> int:
    from ..backends import SamplingConfig
    from ..data import read_jsonl
    from .judge import judge_pairwise, judge_single, load_pairwise_items, make_judge
    from .metrics import mean_score

    try:
        if args.mode == "pairwise":
            items = load_pairwise_items(args.data)
        else:
            rows = read_jsonl(args.data, fields={"id": str, "instruction": str})
            for line, row in enumerate(rows, start=1):
                if "output_a" not in row and not isinstance(row.get("output"), str):
                    raise DataError(args.data, line, "output", "missing (or give output_a/output_b)")
            items = _single_items_from_rows(rows)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.limit:
        items = items[: args.limit]
    if args.backend == "openai" and not args.model:
        print("error: --backend openai needs --model (the model name the endpoint serves)", file=sys.stderr)
        return 2
    model = tokenizer = None
    if args.backend == "local":
        model, tokenizer = _load_model(args.model)
    judge = make_judge(args.backend, model=model, tokenizer=tokenizer,
                       model_name=args.model if args.backend == "openai" else None,
                       base_url=args.base_url, cache_path=args.cache, concurrency=args.concurrency)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=0.0)
    if args.mode == "pairwise":
        report = judge_pairwise(items, judge, prompt=args.prompt, swap=args.swap, sampling=sampling)
        result = report.to_dict()
    else:
        judgments = judge_single(items, judge, sampling=sampling)
        result = {"judge": judge.name, "n": len(judgments), "parse_failures": sum(j.rating is None for j in judgments)}
        groups = {"": judgments}
        if any(j.id.endswith((":a", ":b")) for j in judgments):
            groups = {side: [j for j in judgments if j.id.endswith(":" + side)] for side in ("a", "b")}
        for side, group in groups.items():
            score = mean_score([j.rating for j in group if j.rating is not None])
            suffix = f"_{side}" if side else ""
            result[f"mean_score{suffix}"], result[f"mean_score{suffix}_stderr"] = score.value, score.stderr
        result["ratings"] = {j.id: j.rating for j in judgments}
    print(json.dumps(result, indent=2))
    return 0


def register_cli(subparsers) -> None:
    mc = subparsers.add_parser("eval-mc", help="next-token multiple-choice evaluation (acc, acc_norm) of a JSONL file")
    mc.add_argument("--data", required=True, help='JSONL rows {"question", "choices", "answer"}')
    mc.add_argument("--model", help="model directory or hub id (default: the embedded model)")
    mc.add_argument("--format", choices=("continuation", "letters"), default="continuation")
    mc.add_argument("--prompt", help='prompt template with {question} (default "Question: {question}\\nAnswer:")')
    mc.add_argument("--batch-size", type=int, default=16)
    mc.add_argument("--output", help="also write the JSON result to this file")
    mc.set_defaults(handler=_eval_mc_command)

    judge = subparsers.add_parser("judge", help="LLM-as-judge: pairwise win rates or single-answer scores as JSON")
    judge.add_argument("--data", required=True, help="pairwise JSONL (id, instruction, output_a, output_b)")
    judge.add_argument("--mode", choices=("pairwise", "single"), default="pairwise")
    judge.add_argument("--backend", choices=("local", "openai"), default="local")
    judge.add_argument("--model", help="local: model directory (default embedded); openai: the model name")
    judge.add_argument("--base-url", help="OpenAI-compatible endpoint (key from $OPENAI_API_KEY)")
    judge.add_argument("--prompt", choices=("mt_bench", "alpaca_eval"), default="mt_bench", help="pairwise prompt")
    judge.add_argument("--swap", action="store_true", help="judge each pair in both orders")
    judge.add_argument("--limit", type=int, help="judge only the first N items")
    judge.add_argument("--max-new-tokens", type=int, default=256)
    judge.add_argument("--concurrency", type=int, default=4, help="parallel requests to an endpoint")
    judge.add_argument("--cache", help="SQLite file caching judgments")
    judge.set_defaults(handler=_judge_command)
