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

from .adapters import Adherence, generate_answers, merge_adapter, template_adherence
from .comparison import answer_budget, ended_within, eos_probabilities, reply_token_lengths
from .data import LengthFit, assistant_token_mask, fit_to_length, loss_mask_view
from .model import count_parameters, default_sft_adapter_dir, load_model_for_training
from .training import sft_config, train_sft

__all__ = [
    "Adherence",
    "LengthFit",
    "answer_budget",
    "assistant_token_mask",
    "count_parameters",
    "default_sft_adapter_dir",
    "ended_within",
    "eos_probabilities",
    "fit_to_length",
    "generate_answers",
    "load_model_for_training",
    "loss_mask_view",
    "merge_adapter",
    "reply_token_lengths",
    "sft_config",
    "template_adherence",
    "train_sft",
]
