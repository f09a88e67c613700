"""Batched vs one-prompt-at-a-time generation with the embedded model, measured side by side.

    OMP_NUM_THREADS=1 python benchmarks/batched_generation.py [--prompts 16] [--max-new-tokens 32] [--repeats 2]

Both runs answer the same seed prompts greedily with the same ``max_new_tokens``
through :class:`~zephyr_tutorial.backends.TransformersBackend`; only
``batch_size`` differs. Prints seconds, generated tokens/s and the speed-up
ratio. Greedy decoding with the same budget makes the two runs do the same
work, so the ratio measures batching alone (the target on 2 CPU cores is
several times faster at batch 16; we measured about 8x on an idle machine).

On a shared machine the load changes while the benchmark runs, and a slow
phase would land entirely on one side. ``--repeats`` alternates the order
(one at a time then batched, batched then one at a time, ...) and prints the
ratio of each pair and their median; the torch thread count and the load
average before and after are printed with the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def timed_generation(backend, conversations, config):
    start = time.perf_counter()
    completions = backend.chat(conversations, config)
    seconds = time.perf_counter() - start
    return seconds, sum(c.completion_tokens for c in completions), completions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs, alternating which side goes first")
    args = parser.parse_args()

    from zephyr_tutorial.backends import SamplingConfig, TransformersBackend
    from zephyr_tutorial.generation import load_seed_prompts
    from zephyr_tutorial.models import load_embedded_model
    from zephyr_tutorial.runtime import data_dir

    model, tokenizer = load_embedded_model()
    seeds = load_seed_prompts(data_dir() / "seed_prompts.jsonl")[: args.prompts]
    conversations = [[{"role": "user", "content": s["prompt"]}] for s in seeds]
    config = SamplingConfig(max_new_tokens=args.max_new_tokens)
    TransformersBackend(model, tokenizer, batch_size=2, progress=False).chat(conversations[:2], config)  # warm-up

    import torch

    print(f"torch threads: {torch.get_num_threads()}, load average before: {os.getloadavg()[0]:.2f}, "
          f"{len(conversations)} prompts, max_new_tokens {args.max_new_tokens}")
    modes = (("one at a time", 1), (f"batch {args.batch_size}", args.batch_size))
    ratios, identical = [], []
    for repeat in range(args.repeats):
        results = {}
        for side in ((0, 1) if repeat % 2 == 0 else (1, 0)):  # alternate which side runs first
            label, batch_size = modes[side]
            backend = TransformersBackend(model, tokenizer, batch_size=batch_size, progress=False)
            seconds, tokens, completions = timed_generation(backend, conversations, config)
            results[side] = (seconds, tokens, completions)
            print(f"[{repeat + 1}] {label:>14}: {seconds:7.1f} s  {tokens:5d} tokens  {tokens / seconds:7.1f} tokens/s")
        (single_s, single_tokens, single), (batch_s, batch_tokens, batched) = results[0], results[1]
        ratios.append((batch_tokens / batch_s) / (single_tokens / single_s))
        identical.append(sum(a.text == b.text for a, b in zip(single, batched)))
        print(f"[{repeat + 1}] speed-up (tokens/s, batched / one at a time): {ratios[-1]:.1f}x")
    print(f"speed-up, median of {len(ratios)}: {statistics.median(ratios):.1f}x "
          f"(each: {', '.join(f'{r:.1f}x' for r in ratios)}); load average after: {os.getloadavg()[0]:.2f}")
    print(f"identical greedy answers: {min(identical)}/{len(conversations)} (padding can flip near-ties in float32)")


if __name__ == "__main__":
    main()
