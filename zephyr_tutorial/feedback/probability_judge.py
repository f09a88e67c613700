"""A judge for small local models: ratings read from the next-token probabilities of the digits 1-5.

A 135M model asked for JSON ratings answers the question instead (notebook 04
shows it), so :class:`~zephyr_tutorial.feedback.rating.TextJudge` records
almost everything as missing. :class:`ProbabilityJudge` keeps the rubric but
never lets the model write freely: for each completion it encodes the rating
request once, then for each aspect appends ``"<Aspect>: "`` as the start of the
judge's reply and reads the distribution of the next token over ``1..5``:

    r_aspect = sum_k k * p(k | request, "<Aspect>: ") / sum_j p(j | ...)

The request's key/value cache is computed once and reused for the four
aspects (``benchmarks/feedback_probability_judge.py``: 2.1x faster than four
full passes on 2 CPU cores, same ratings to 5e-4).
"""

from __future__ import annotations

import copy
from typing import Sequence

from .rating import ASPECT_TITLES, ASPECTS, JUDGE_SYSTEM_PROMPT, Rating


def single_text_rating_prompt(instruction: str, text: str) -> str:
    """The rating request for one completion: short, because every token costs a forward pass on a CPU."""
    lines = "\n".join(f"{ASPECT_TITLES[a]}: <score>" for a in ASPECTS)
    return (
        "Rate the answer from 5 (excellent) down to 1 (very poor) on each aspect.\n\n"
        f"Instruction:\n{instruction}\n\nAnswer:\n{text}\n\nReply in exactly this form:\n{lines}"
    )


def digit_continuations(tokenizer, title: str) -> tuple[list[int], list[int]]:
    """``(suffix_ids, digit_ids)``: tokens of ``"<title>: "`` as they precede a digit, and the token of each digit 1-5.

    Found by tokenizing ``"<title>: k"`` for each k: the shared part is the
    suffix and the one extra token is the digit, whatever the tokenizer does
    with the space.
    """
    encodings = [tokenizer.encode(f"{title}: {k}", add_special_tokens=False) for k in range(1, 6)]
    shared = encodings[0][:-1]
    for k, ids in enumerate(encodings, start=1):
        if ids[:-1] != shared:
            raise ValueError(f"tokenizer splits '{title}: {k}' differently from '{title}: 1'; cannot read digit probabilities")
    return shared, [ids[-1] for ids in encodings]


class ProbabilityJudge:
    """Rate completions with a local transformers model by reading digit probabilities (no text is generated)."""

    def __init__(self, model, tokenizer, *, batch_size: int = 8, name: str | None = None, progress: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name or f"prob:{getattr(model.config, '_name_or_path', '') or model.config.model_type}"
        self.progress = progress
        self.retries = 0
        self._aspect_tokens = {a: digit_continuations(tokenizer, ASPECT_TITLES[a]) for a in ASPECTS}

    def _prompt_text(self, instruction: str, text: str) -> str:
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": single_text_rating_prompt(instruction, text)},
        ]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _score_batch(self, texts: Sequence[str]) -> list[dict[str, float]]:
        import torch

        tokenizer = self.tokenizer
        previous_side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            batch = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tokenizer.padding_side = previous_side
        mask = batch["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        scores: list[dict[str, float]] = [{} for _ in texts]
        with torch.no_grad():
            prefix = self.model(
                input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
            )
            for aspect, (suffix_ids, digit_ids) in self._aspect_tokens.items():
                suffix = torch.tensor([suffix_ids] * len(texts), dtype=torch.long)
                suffix_positions = positions[:, -1:] + 1 + torch.arange(len(suffix_ids))
                output = self.model(
                    input_ids=suffix,
                    attention_mask=torch.cat([mask, torch.ones_like(suffix)], dim=1),
                    position_ids=suffix_positions,
                    past_key_values=copy.deepcopy(prefix.past_key_values),
                    use_cache=True,
                    logits_to_keep=1,
                )
                digit_probs = output.logits[:, -1].float().softmax(-1)[:, digit_ids]
                digit_probs = digit_probs / digit_probs.sum(-1, keepdim=True)
                expected = (digit_probs * torch.arange(1, 6, dtype=digit_probs.dtype)).sum(-1)
                for row, value in enumerate(expected.tolist()):
                    scores[row][aspect] = round(value, 3)
        return scores

    def rate(self, items: Sequence[tuple[str, str, Sequence[str]]]) -> list[list[Rating]]:
        """Same interface as :meth:`TextJudge.rate`: ``(prompt_id, instruction, completions)`` -> ratings."""
        from tqdm.auto import tqdm

        flat = [(i, j, self._prompt_text(instruction, text)) for i, (_, instruction, texts) in enumerate(items)
                for j, text in enumerate(texts)]
        order = sorted(range(len(flat)), key=lambda k: len(flat[k][2]))
        results: list[list[Rating | None]] = [[None] * len(texts) for _, _, texts in items]
        bar = tqdm(total=len(flat), desc=f"judge ({self.name})", disable=not self.progress or len(flat) <= 1)
        for start in range(0, len(order), self.batch_size):
            chunk = [flat[k] for k in order[start : start + self.batch_size]]
            for (i, j, _), scores in zip(chunk, self._score_batch([text for _, _, text in chunk])):
                results[i][j] = Rating(scores, rationale="expected digit under the judge's next-token distribution")
            bar.update(len(chunk))
        bar.close()
        return results  # type: ignore[return-value]
