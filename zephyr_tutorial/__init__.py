"""Companion package of the zephyr-tutorial notebooks: the Zephyr-7B alignment recipe, runnable on CPU."""

import warnings

__version__ = "0.1.0"

# PEFT and TRL still read transformers' deprecated `is_gradient_checkpointing` alias internally; the
# FutureWarning is not actionable by our users and would make checked notebook outputs depend on paths.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
