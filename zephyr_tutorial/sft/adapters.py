"""Merging and using the trained SFT adapter (loading it: :func:`zephyr_tutorial.models.load_adapter_model`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backends import GENERATION_BATCH_SIZE
from ..chat_template import apply_zephyr_template
from ..models import load_adapter_model
from ..runtime import output_dir
from ..stats import Interval, proportion
from .model import default_sft_adapter_dir


def merge_adapter(adapter_dir=None, profile=None, merged_dir=None) -> Path:
    """Fold the adapter into a de-quantized (``profile.model.dtype``) base: W' = W + (alpha/r) B A; save, return the
    folder.

    Merging into 4-bit weights would re-quantize W' and lose the update, so the
    base is loaded un-quantized; the merged model then differs slightly from
    "4-bit base + adapter", the known QLoRA merge caveat.
    """
    from ..profiles import active_profile

    adapter_dir = adapter_dir or default_sft_adapter_dir()
    model, tokenizer = load_adapter_model(adapter_dir, profile or active_profile(), quantized=False)
    merged = model.merge_and_unload()
    merged_dir = Path(merged_dir or output_dir("sft", "merged"))
    merged.save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    return merged_dir


def generate_answers(model, tokenizer, prompts, max_new_tokens: int = 64, batch_size: int = GENERATION_BATCH_SIZE):
    """Greedy answers to single-turn ``prompts`` with the tokenizer's (Zephyr) chat template."""
    from ..backends import SamplingConfig, TransformersBackend

    backend = TransformersBackend(model, apply_zephyr_template(tokenizer), batch_size=batch_size, progress=False)
    conversations = [[{"role": "user", "content": prompt}] for prompt in prompts]
    return backend.chat(conversations, SamplingConfig(max_new_tokens=max_new_tokens))


@dataclass(frozen=True)
class Adherence:
    """How a set of answers keeps to the chat template: each a share with its Wilson interval."""

    stop_rate: Interval
    """Answers that ended with the end-of-turn token within the budget."""
    no_invented_turns: Interval
    """Answers that never write a role marker of their own (``<|user|>``, ``<|assistant|>``, ``User:``)."""

    def as_dict(self) -> dict[str, float]:
        return {"stop_rate": self.stop_rate.estimate, "no_invented_turns": self.no_invented_turns.estimate}


INVENTED_TURN_MARKERS = ("<|user|>", "<|system|>", "<|assistant|>", "<|im_start|>", "\nuser\n", "\nUser:")


def template_adherence(completions) -> Adherence:
    """Share of answers that end with the end-of-turn token within the budget, and that never invent a turn.

    ``stop_rate`` depends on the budget the answers were generated with: size it from the trained replies
    (:func:`~zephyr_tutorial.sft.comparison.answer_budget`), or an SFT model that learned their length is cut
    before it can stop.
    """
    completions = list(completions)
    return Adherence(
        stop_rate=proportion([c.finish_reason == "stop" for c in completions]),
        no_invented_turns=proportion(
            [not any(marker in c.text for marker in INVENTED_TURN_MARKERS) for c in completions]
        ),
    )
