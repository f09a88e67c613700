"""Probability judge: reusing the request's KV cache for the four aspects vs. four full forward passes.

Run: ``python benchmarks/feedback_probability_judge.py`` (embedded model, CPU). Prints both timings, the ratio,
and the largest rating difference between the two ways (they must agree).
"""

from __future__ import annotations

import time

import torch

from zephyr_tutorial.evaluation.logprob_judge import LogprobJudge, digit_continuations
from zephyr_tutorial.evaluation.rating import ASPECT_TITLES, ASPECTS
from zephyr_tutorial.models import load_embedded_model

ITEMS = [
    ("b1", "What is the boiling point of water at sea level?",
     ["Water boils at 100 degrees Celsius (212 F) at sea level.", "Water boils at 50 degrees.", "I like turtles.",
      "The boiling"]),
    ("b2", "Write a haiku about the sea.",
     ["Waves fold into foam\nsalt wind carries gull voices\nthe tide breathes and sleeps", "The sea is big.",
      "Paris is the capital of France.", "Waves"]),
]


def full_sequence_scores(judge: LogprobJudge, model, tokenizer) -> list[float]:
    """Four independent forward passes per completion (prompt + aspect suffix each time)."""
    scores = []
    for _, instruction, texts in ITEMS:
        for text in texts:
            prompt_ids = tokenizer(judge._prompt_text(instruction, text), add_special_tokens=False)["input_ids"]
            for aspect in ASPECTS:
                suffix, digits = digit_continuations(tokenizer, ASPECT_TITLES[aspect])
                with torch.no_grad():
                    logits = model(torch.tensor([prompt_ids + suffix]), logits_to_keep=1).logits[0, -1]
                probs = logits.softmax(-1)[digits]
                scores.append(float((probs / probs.sum() * torch.arange(1, 6)).sum()))
    return scores


def main() -> None:
    model, tokenizer = load_embedded_model()
    judge = LogprobJudge(model, tokenizer, batch_size=1, progress=False)
    judge.rate(ITEMS[:1])  # warm-up
    start = time.perf_counter()
    cached = [r.scores[a] for ratings in judge.rate(ITEMS) for r in ratings for a in ASPECTS]
    cached_seconds = time.perf_counter() - start
    start = time.perf_counter()
    full = full_sequence_scores(judge, model, tokenizer)
    full_seconds = time.perf_counter() - start
    n = sum(len(texts) for _, _, texts in ITEMS)
    print(f"{n} completions x {len(ASPECTS)} aspects, batch size 1")
    print(f"  shared KV cache : {cached_seconds:6.2f} s")
    print(f"  full sequences  : {full_seconds:6.2f} s")
    print(f"  speed-up        : {full_seconds / cached_seconds:.2f}x")
    print(f"  max |difference|: {max(abs(a - b) for a, b in zip(cached, full)):.4f}")


if __name__ == "__main__":
    main()
