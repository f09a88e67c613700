"""``zephyr-tutorial eval-mc`` and ``zephyr-tutorial judge``: the evaluations of notebook 01 from the shell."""

from __future__ import annotations

import json
import math

from . import add_timeout_option, bad_input, report_failed_requests


def _load_model(path: str | None):
    from ..models import load_causal_lm, load_embedded_model

    if path is None:
        return load_embedded_model()
    return load_causal_lm(path)


def _valid_json(value):
    """``value`` with every NaN or infinity as ``null``: JSON has no NaN (a mean over no ratings has no value)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _valid_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_valid_json(item) for item in value]
    return value


def _write_result(result: dict, out: str | None) -> None:
    text = json.dumps(_valid_json(result), indent=2, allow_nan=False)
    if out:
        from ..data import write_text_atomically

        write_text_atomically(out, text + "\n")
    print(text)


def _eval_mc_command(args) -> int:
    from ..evaluation.multiple_choice import DEFAULT_PROMPT, evaluate_multiple_choice, load_mc_items

    items = load_mc_items(args.input)
    model, tokenizer = _load_model(args.model)
    report = evaluate_multiple_choice(
        model, tokenizer, items, fmt=args.format, prompt=args.prompt or DEFAULT_PROMPT, batch_size=args.batch_size
    )
    _write_result({"data": str(args.input), "format": args.format, **report.to_dict()}, args.out)
    return 0


def _judge_command(args) -> int:
    from ..evaluation.items import load_pairwise_items, load_single_items
    from ..evaluation.judges import REQUEST_FAILED, make_judge
    from ..evaluation.metrics import mean_score

    items = load_pairwise_items(args.input) if args.mode == "pairwise" else load_single_items(args.input)
    if args.limit:
        items = items[: args.limit]
    if args.judge == "openai" and not args.judge_model:
        return bad_input("--judge openai needs --judge-model (the model name the endpoint serves)")
    model = tokenizer = None
    if args.judge != "openai":
        model, tokenizer = _load_model(args.judge_model)
    judge = make_judge(
        args.judge,
        model=model,
        tokenizer=tokenizer,
        model_name=args.judge_model if args.judge == "openai" else None,
        base_url=args.judge_base_url,
        cache_path=args.cache,
        concurrency=args.concurrency,
        timeout=args.timeout,
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
    )
    if args.mode == "pairwise":
        report = judge.compare(items, swap=args.swap)
        result = report.to_dict()
        errors = {j.id: e for j in report.judgments for e in j.errors if e.startswith(REQUEST_FAILED)}
    else:
        judgments = judge.grade(items)
        result = {"judge": judge.name, "n": len(judgments), "parse_failures": sum(j.rating is None for j in judgments)}
        groups = {"": judgments}
        if any(j.id.endswith((":a", ":b")) for j in judgments):
            groups = {side: [j for j in judgments if j.id.endswith(":" + side)] for side in ("a", "b")}
        for side, group in groups.items():
            score = mean_score([j.rating for j in group if j.rating is not None])
            suffix = f"_{side}" if side else ""
            result[f"mean_score{suffix}"], result[f"mean_score{suffix}_stderr"] = score.value, score.stderr
        result["ratings"] = {j.id: j.rating for j in judgments}
        errors = {j.id: j.error for j in judgments if j.error and j.error.startswith(REQUEST_FAILED)}
    result["request_failures"] = len(errors)
    _write_result(result, args.out)
    return report_failed_requests(errors, "judge requests")


def register(subparsers) -> None:
    from ..evaluation.judges import JUDGES
    from ..evaluation.prompts import PAIRWISE_PROMPTS

    mc = subparsers.add_parser("eval-mc", help="next-token multiple-choice evaluation (acc, acc_norm) of a JSONL file")
    mc.add_argument(
        "--in", dest="input", required=True, metavar="FILE", help='JSONL rows {"question", "choices", "answer"}'
    )
    mc.add_argument("--out", default=None, metavar="FILE", help="also write the JSON result to this file")
    mc.add_argument("--model", help="model directory or hub id (default: the embedded model)")
    mc.add_argument("--format", choices=("continuation", "letters"), default="continuation")
    mc.add_argument("--prompt", help='prompt template with {question} (default "Question: {question}\\nAnswer:")')
    mc.add_argument("--batch-size", type=int, default=16)
    mc.set_defaults(handler=_eval_mc_command)

    judge = subparsers.add_parser("judge", help="LLM-as-judge: pairwise win rates or single-answer scores as JSON")
    judge.add_argument(
        "--in",
        dest="input",
        required=True,
        metavar="FILE",
        help="pairwise JSONL (id, instruction, output_a, output_b), or single (id, instruction, output)",
    )
    judge.add_argument("--out", default=None, metavar="FILE", help="also write the JSON result to this file")
    judge.add_argument("--mode", choices=("pairwise", "single"), default="pairwise")
    judge.add_argument(
        "--judge",
        choices=sorted(JUDGES),
        default="local",
        help="local: a model in this process writes its verdict; logprob: its verdict is read from "
        "next-token probabilities; openai: any OpenAI-compatible endpoint",
    )
    judge.add_argument(
        "--judge-model", help="local/logprob: model directory (default embedded); openai: the model name"
    )
    judge.add_argument("--judge-base-url", help="OpenAI-compatible endpoint (key from $OPENAI_API_KEY)")
    judge.add_argument("--prompt", choices=sorted(PAIRWISE_PROMPTS), default="mt_bench", help="pairwise prompt")
    judge.add_argument("--swap", action="store_true", help="judge each pair in both orders")
    judge.add_argument("--limit", type=int, help="judge only the first N items")
    judge.add_argument("--max-new-tokens", type=int, default=256)
    judge.add_argument("--batch-size", type=int, default=16, help="local judges: items per forward pass")
    judge.add_argument("--concurrency", type=int, default=4, help="parallel requests to an endpoint")
    judge.add_argument("--cache", help="SQLite file caching judgments (several runs may share one)")
    add_timeout_option(judge)
    judge.set_defaults(handler=_judge_command)
