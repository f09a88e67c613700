"""Evaluation throughput, side by side in one run (notebook 01's package code).

1. Multiple choice: our batched scorer vs lm-evaluation-harness (HFLM) on the same items and model, items/s.
2. Judging: one batched backend call vs one request at a time, pairs/s.

    ZEPHYR_TUTORIAL_CACHE=/tmp/zcache python benchmarks/evaluation_throughput.py [--items 40] [--pairs 8]

Prints the measurements and the ratios. Timings vary with machine load: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def time_ours(model, tokenizer, items, batch_size: int) -> float:
    from zephyr_tutorial.evaluation import evaluate_multiple_choice

    start = time.perf_counter()
    evaluate_multiple_choice(model, tokenizer, items, batch_size=batch_size, progress=False)
    return time.perf_counter() - start


def time_lm_eval(model, tokenizer, items, batch_size: int) -> float:
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "items.jsonl"
        data.write_text("".join(json.dumps({"question": i.question, "choices": list(i.choices), "answer": i.answer})
                                + "\n" for i in items))
        (Path(folder) / "task.yaml").write_text(
            "task: zt_bench\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
            f"    test: {data}\ntest_split: test\noutput_type: multiple_choice\n"
            'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: "{{choices}}"\n'
            "doc_to_target: answer\nmetric_list:\n  - metric: acc\n"
        )
        manager = TaskManager(include_path=folder)
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        start = time.perf_counter()  # task loading is excluded: only the scoring is compared
        lm_eval.simple_evaluate(model=lm, tasks=["zt_bench"], task_manager=manager)
        return time.perf_counter() - start


def time_judging(model, tokenizer, pairs, max_new_tokens: int) -> tuple[float, float]:
    from zephyr_tutorial.backends import TransformersBackend
    from zephyr_tutorial.evaluation import LLMJudge

    batched = LLMJudge(TransformersBackend(model, tokenizer, batch_size=len(pairs) * 2, progress=False),
                       max_new_tokens=max_new_tokens)
    single = LLMJudge(TransformersBackend(model, tokenizer, batch_size=1, progress=False), max_new_tokens=max_new_tokens)
    start = time.perf_counter()
    batched.compare(pairs, swap=True)
    batched_seconds = time.perf_counter() - start
    start = time.perf_counter()
    single.compare(pairs, swap=True)
    return batched_seconds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    from zephyr_tutorial.evaluation import load_mc_items, load_pairwise_items
    from zephyr_tutorial.models import load_embedded_model
    from zephyr_tutorial.runtime import data_dir

    model, tokenizer = load_embedded_model()
    items = load_mc_items(data_dir() / "mc_questions.jsonl")[: args.items]
    pairs = load_pairwise_items(data_dir() / "pairwise_eval.jsonl")[: args.pairs]

    ours = time_ours(model, tokenizer, items, args.batch_size)
    theirs = time_lm_eval(model, tokenizer, items, args.batch_size)
    print(f"multiple choice, {len(items)} items: ours {len(items) / ours:.1f} items/s, "
          f"lm-eval {len(items) / theirs:.1f} items/s, ratio ours/lm-eval {theirs / ours:.2f}x")
    batched, single = time_judging(model, tokenizer, pairs, args.max_new_tokens)
    print(f"judging, {len(pairs)} pairs x 2 orders: batched {len(pairs) / batched:.2f} pairs/s, "
          f"one at a time {len(pairs) / single:.2f} pairs/s, speed-up {single / batched:.2f}x")


if __name__ == "__main__":
    main()
