"""Direct Preference Optimization (notebook 05): the loss from scratch, checked against TRL, and trained.

- :mod:`.losses`: DPO, IPO, hinge, conservative and robust DPO as functions of the log-ratio margin, in one
  registry (:data:`PREFERENCE_LOSSES`);
- :mod:`.logprobs`: completion log-probabilities and the reference model without a second copy;
- :mod:`.training`: :func:`train_dpo` over TRL's ``DPOTrainer`` (the sibling of ``train_sft``), the policy;
- :mod:`.parity`: :func:`compare_with_trl`, our loss next to ``DPOTrainer.compute_loss`` on one batch;
- :mod:`.evaluation`: held-out implicit-reward accuracy and judged win rate against the SFT model.

Preference rows and their TRL form are :mod:`zephyr_tutorial.schemas`'s; the command is ``zephyr-tutorial dpo``.
"""

from .evaluation import ImplicitRewardReport, answer_prompts, evaluate_implicit_rewards, evaluate_run, judged_win_rate
from .logprobs import (
    collate_preferences,
    completion_lengths,
    pair_logprobs,
    policy_and_reference_logprobs,
    reference_model,
    sequence_logprobs,
    token_logprobs,
    tokenize_preference,
)
from .losses import (
    LOSS_TYPES,
    PREFERENCE_LOSSES,
    DPOLossOutput,
    PreferenceLoss,
    bradley_terry_probability,
    conservative_dpo_loss,
    conservative_optimal_margin,
    dpo_gradient_weight,
    dpo_loss,
    hinge_loss,
    ipo_loss,
    loss_gradient_on_margin,
    preference_loss,
    robust_dpo_loss,
    sigmoid_dpo_loss,
)
from .parity import compare_with_trl
from .training import dpo_config, load_adapter_state, load_policy, train_dpo

__all__ = [name for name in dir() if not name.startswith("_")]
