"""Distilled supervised fine-tuning (dSFT) with QLoRA: TRL's ``SFTTrainer`` + PEFT + bitsandbytes.

The Zephyr recipe fine-tunes the base model on UltraChat dialogues, which both
distils the teacher's answers and, just as important, teaches the chat
template: after ``<|assistant|>\\n`` comes an answer, then the EOS token.

QLoRA keeps the frozen base weights in 4-bit NormalFloat (NF4) and trains
low-rank adapters on top: a linear layer computes

    y = dequant(W_nf4) x + (alpha / r) * B A x,   A in R^{r x d_in}, B in R^{d_out x r},

with only A and B trainable (B starts at zero, so training starts from the
base model exactly). The loss is the token-level cross-entropy on assistant
tokens only:

    L = - sum_t m_t log p(x_t | x_<t) / sum_t m_t,   m_t = 1 on assistant tokens (and their EOS).
"""

from ..chat_template import apply_zephyr_template
from .adapters import (ensure_sft_adapter, generate_answers, load_sft_model, merge_adapter, template_adherence)
from .comparison import answer_budget, ended_within, eos_probabilities, reply_token_lengths
from .data import SFT_FIELDS, load_sft_splits, loss_mask_view
from .model import (LORA_TARGET_MODULES, count_parameters, default_sft_adapter_dir,
                    load_base_model, load_model_for_training, load_zephyr_tokenizer, lora_config,
                    nf4_quantization_config)
from .recipes import DEFAULT_RECIPE, load_recipe, register_cli, run_recipe
from .training import sft_config, throughput_callback, train_sft, training_curves

__all__ = [
    "DEFAULT_RECIPE", "LORA_TARGET_MODULES", "SFT_FIELDS", "answer_budget", "apply_zephyr_template",
    "count_parameters", "default_sft_adapter_dir", "ended_within", "ensure_sft_adapter", "eos_probabilities",
    "generate_answers", "load_base_model", "load_model_for_training", "load_recipe", "load_sft_model",
    "load_sft_splits", "load_zephyr_tokenizer", "lora_config", "loss_mask_view", "merge_adapter",
    "nf4_quantization_config", "register_cli", "reply_token_lengths", "run_recipe", "sft_config",
    "template_adherence", "throughput_callback", "train_sft", "training_curves",
]
