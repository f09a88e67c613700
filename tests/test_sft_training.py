"""SFT with QLoRA: 4-bit LoRA training, throughput, checkpoint resume, the config."""

from __future__ import annotations

import json
import math

import pytest
import torch

from zephyr_tutorial import sft
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.training import training_curves

from samples import CONVERSATIONS, TINY_SFT_RECIPE, messages_dataset, tiny_profile


def test_qlora_on_tiny_4bit_model_learns_and_logs_throughput(tmp_path, tiny_nf4_dir):
    import bitsandbytes as bnb

    profile = tiny_profile(tiny_nf4_dir)
    model, tokenizer = sft.load_model_for_training(profile, TINY_SFT_RECIPE)
    assert any(isinstance(module, bnb.nn.Linear4bit) for module in model.modules())
    config = model.base_model.model.config
    per_layer = TINY_SFT_RECIPE["lora"]["r"] * (
        4 * config.hidden_size  # q_proj, o_proj: hidden -> hidden
        + 2 * (config.hidden_size + config.num_key_value_heads * config.head_dim)  # k_proj, v_proj
        + 3 * (config.hidden_size + config.intermediate_size)  # gate, up, down
    )
    assert sft.count_parameters(model)["trainable"] == config.num_hidden_layers * per_layer

    from datasets import Dataset

    one_conversation = Dataset.from_list([{"messages": CONVERSATIONS[0]}] * 2 * profile.train.max_steps)
    args = sft.sft_config(profile, TINY_SFT_RECIPE, tmp_path / "run", lr_scheduler_type="constant")
    run = sft.train_sft(model, tokenizer, one_conversation, args=args)
    curves = training_curves(run)
    assert len(curves["loss"]) == profile.train.max_steps
    assert curves["loss"][-1] < curves["loss"][0] - 0.5  # the random 4-bit model starts at ~ln(49152) = 10.8
    assert all(rate > 0 for rate in curves["tokens_per_second"][1:])
    adapter = run.adapter_dir
    assert adapter == tmp_path / "run" / "final"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "tokenizer_config.json").is_file()
    assert json.loads((adapter / "log_history.json").read_text())[-1]["train_loss"] == run.metrics["train_loss"]


def test_interrupted_run_resumes_from_last_checkpoint(tmp_path, tiny_nf4_dir):
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt("simulated Ctrl-C")

    class CountSteps(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            CountSteps.steps += 1

    profile = tiny_profile(tiny_nf4_dir, max_steps=8)
    args = sft.sft_config(profile, TINY_SFT_RECIPE, tmp_path / "run", save_steps=4)

    def train(callback):
        model, tokenizer = sft.load_model_for_training(profile, TINY_SFT_RECIPE)
        return sft.train_sft(model, tokenizer, messages_dataset(32), args=args, callbacks=[callback])

    with pytest.raises(KeyboardInterrupt):
        train(Interrupt())
    assert (tmp_path / "run" / "checkpoint-4").is_dir() and not (tmp_path / "run" / "final").exists()

    run = train(CountSteps())
    trainer = run.trainer
    assert trainer.state.global_step == 8 and run.resumed_from.name == "checkpoint-4"
    assert CountSteps.steps == 4  # steps 5..8 only: 1..4 came from the checkpoint
    assert [r["step"] for r in trainer.state.log_history if "loss" in r] == list(range(1, 9))


def test_gpu_config_uses_paged_8bit_adam_and_bf16(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("paged optimizers and bf16 compute are CUDA-only; this machine has no GPU")
    config = sft.sft_config(get_profile("colab"), TINY_SFT_RECIPE, tmp_path)
    assert config.optim == "paged_adamw_8bit" and config.bf16 and not math.isnan(config.learning_rate)
