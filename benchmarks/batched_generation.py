"""Batched vs one-prompt-at-a-time generation with the embedded model, measured side by side.

    ZEPHYR_TUTORIAL_CACHE=/tmp/zcache python benchmarks/batched_generation.py [--prompts 16] [--max-new-tokens 32]

Both runs answer the same seed prompts greedily with the same ``max_new_tokens``
through :class:`~zephyr_tutorial.backends.TransformersBackend`; only
``batch_size`` differs. Prints seconds, generated tokens/s and the speed-up
ratio. Greedy decoding with the same budget makes the two runs do the same
work, so the ratio measures batching alone (the target on 2 CPU cores is
several times faster at batch 16; we measured about 8x on an idle machine).
"""

from __future__ import annotations

import argparse
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

    results = {}
    for label, batch_size in (("one at a time", 1), (f"batch {args.batch_size}", args.batch_size)):
        backend = TransformersBackend(model, tokenizer, batch_size=batch_size, progress=False)
        seconds, tokens, completions = timed_generation(backend, conversations, config)
        results[label] = (seconds, tokens, completions)
        print(f"{label:>14}: {seconds:7.1f} s  {tokens:5d} tokens  {tokens / seconds:7.1f} tokens/s")
    (single_s, single_tokens, single), (batch_s, batch_tokens, batched) = results.values()
    same = sum(a.text == b.text for a, b in zip(single, batched))
    print(f"speed-up (tokens/s, batched / one at a time): {(batch_tokens / batch_s) / (single_tokens / single_s):.1f}x")
    print(f"identical greedy answers: {same}/{len(conversations)} (padding can flip near-ties in float32)")


if __name__ == "__main__":
    main()
