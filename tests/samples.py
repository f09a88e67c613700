"""Small data the tests of several modules share: conversations, SFT rows, preference pairs, recipe helpers."""

from __future__ import annotations

import json
import time

from zephyr_tutorial.backends import Completion, SamplingConfig
from zephyr_tutorial.evaluation.rating import ASPECTS
from zephyr_tutorial.recipes import shipped_recipes
from zephyr_tutorial.runtime import data_dir
from zephyr_tutorial.schemas import prompt_id_for

CONVERSATIONS = [
    [
        {"role": "user", "content": "Name a primary colour."},
        {"role": "assistant", "content": "Red is a primary colour."},
    ],
    [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
        {"role": "assistant", "content": "The capital of Italy is Rome."},
    ],
    [{"role": "user", "content": "Count to three."}, {"role": "assistant", "content": "One, two, three."}],
    [{"role": "user", "content": "Say hello in Spanish."}, {"role": "assistant", "content": "Hola."}],
]


def ultrachat_rows(n: int):
    """``n`` SFT rows cycling through :data:`CONVERSATIONS` (ids ``id0``, ``id1``...)."""
    return [
        {"prompt": c[-2]["content"], "prompt_id": f"id{i}", "messages": c}
        for i, c in enumerate(CONVERSATIONS * (n // len(CONVERSATIONS) + 1))
    ][:n]


def sft_rows(n: int) -> list[dict]:
    """``n`` single-turn SFT rows with distinct prompts whose ``prompt_id`` is their hash."""
    rows = []
    for i in range(n):
        prompt = f"Question {i}?"
        rows.append(
            {
                "prompt": prompt,
                "prompt_id": prompt_id_for(prompt),
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": f"The answer is {i}."},
                ],
            }
        )
    return rows


def messages_dataset(n: int):
    """A ``datasets.Dataset`` of the ``messages`` of :func:`ultrachat_rows`."""
    from datasets import Dataset

    return Dataset.from_list([{"messages": row["messages"]} for row in ultrachat_rows(n)])


def real_example():
    """A row of our SFT data when it exists (notebook 02 / data/sft), else a multi-turn fixture conversation."""
    path = data_dir() / "sft" / "train_sft.jsonl"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8").splitlines()[0])["messages"]
    return CONVERSATIONS[1]


def pair(question, good, bad, i=0):
    """One preference row of the ultrafeedback_binarized schema."""
    user = {"role": "user", "content": question}
    return {
        "prompt": question,
        "prompt_id": f"p{i}",
        "chosen": [user, {"role": "assistant", "content": good}],
        "rejected": [user, {"role": "assistant", "content": bad}],
        "score_chosen": 8.0,
        "score_rejected": 3.0,
    }


ROWS = [
    pair("What is the capital of France?", "Paris is the capital of France.", "I don't know.", 0),
    pair("Name a prime number.", "7 is prime: only 1 and 7 divide it.", "Nine.", 1),
    pair("Say hi", "Hello! How can I help you today?", "no", 2),
    pair("What is 2+2?", "4", "The answer is 5, obviously, as everyone knows.", 3),
]


def preference_row(**overrides):
    row = {
        "prompt": "Hi?",
        "prompt_id": "x",
        "chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Go away."}],
        "score_chosen": 8.0,
        "score_rejected": 2.5,
    }
    row.update(overrides)
    return row


RECIPES = {path.stem: path for path in shipped_recipes()}
TINY_RUN = [
    "--quantization",
    "null",
    "--max-steps",
    "2",
    "--max_train_samples",
    "4",
    "--per-device-batch-size",
    "2",
    "--warmup_steps",
    "0",
]
"""Two real optimizer steps (no warm-up, so both move the weights) on the tiny model in 16/32-bit, no bitsandbytes.
Keys spelled both ways on purpose: the overrides accept hyphens and underscores."""


def sft_command(model_dir, out) -> list[str]:
    """`zephyr-tutorial sft` on the shipped cpu recipe, pointed at ``model_dir`` (TRL loads it), for two steps."""
    return ["sft", "--config", str(RECIPES["sft_cpu"]), "--model_name_or_path", str(model_dir),
            "--sft_max_length", "64", "--fit_to_length", "false", "--out", str(out), *TINY_RUN]  # fmt: skip


def dpo_command(model_dir, sft_adapter, out) -> list[str]:
    """`zephyr-tutorial dpo` on the shipped cpu recipe, continuing ``sft_adapter`` on ``model_dir``, two steps."""
    return ["dpo", "--config", str(RECIPES["dpo_cpu"]), "--out", str(out), "--model_name_or_path", str(model_dir),
            "--sft_adapter", str(sft_adapter), "--dpo_max_length", "64", "--max_eval_samples", "2",
            *TINY_RUN]  # fmt: skip


def lora_weights(adapter_dir) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def load_adapter(model_dir, adapter_dir):
    """The base model with a saved adapter, as a user would load it; raises if the files do not fit the model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(adapter_dir))


def assert_adapter_loads_and_answers(model_dir, adapter_dir):
    import torch

    model = load_adapter(model_dir, adapter_dir)
    assert set(model.peft_config) == {"default"}
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()


TINY_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0}
TINY_SFT_RECIPE = {"stage": "sft", "lora": TINY_LORA, "trainer": {"learning_rate": 1e-2}, "profile_overrides": {}}
"""A recipe for the tiny models: a small adapter and a learning rate that moves a random model in a few steps."""


def tiny_profile(model_dir, **overrides):
    """The cpu profile pointed at a saved tiny model, 4-bit, short runs."""
    from zephyr_tutorial.profiles import get_profile

    settings = dict(id=str(model_dir), load_in_4bit=True, max_steps=10, per_device_batch_size=2, sft_max_length=128)
    settings.update(overrides)
    return get_profile("cpu").with_overrides(**settings)


def ratings_json(*score_lists):
    return json.dumps(
        {
            "ratings": [
                dict({"text": i}, **dict(zip(ASPECTS, scores)), rationale=f"text {i}")
                for i, scores in enumerate(score_lists, start=1)
            ]
        }
    )


class ScriptedBackend:
    """Answers from the last message (deterministic), remembering every request it saw."""

    def __init__(self, name: str, reply=None, delay: float = 0.0):
        self.name = name
        self.reply = reply or (lambda conversation: f"{name} reply to: {conversation[-1]['content'][:40]}.")
        self.delay = delay
        self.requests: list[list[dict]] = []

    def chat(self, conversations, config=SamplingConfig()):
        time.sleep(self.delay)
        self.requests.extend(list(c) for c in conversations)
        return [Completion(text=self.reply(c), completion_tokens=7) for c in conversations]
