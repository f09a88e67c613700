"""Direct Preference Optimization (notebook 05): the loss from scratch, checked against TRL, and trained.

- :mod:`.losses`: DPO, IPO, hinge and conservative DPO as functions of the log-ratio margin;
- :mod:`.logprobs`: completion log-probabilities and the reference model without a second copy;
- :mod:`.data`: preference rows (ultrafeedback_binarized schema) to TRL's format;
- :mod:`.training`: :func:`train_dpo` over TRL's ``DPOTrainer``, YAML recipes, resume;
- :mod:`.parity`: :func:`compare_with_trl`, our loss next to ``DPOTrainer.compute_loss`` on one batch;
- :mod:`.evaluation`: held-out implicit-reward accuracy and judged win rate against the SFT model;
- :mod:`.commands`: ``zephyr-tutorial dpo --config FILE.yaml [--key value ...]``.
"""

from .commands import register_cli
from .data import find_preference_files, preference_dataset, read_preferences, to_trl_preference
from .evaluation import ImplicitRewardReport, answer_prompts, evaluate_implicit_rewards, judged_win_rate
from .parity import compare_with_trl
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
    DPOLossOutput,
    bradley_terry_probability,
    conservative_dpo_loss,
    conservative_optimal_margin,
    dpo_gradient_weight,
    dpo_loss,
    hinge_loss,
    ipo_loss,
    loss_gradient_on_margin,
    preference_loss,
    sigmoid_dpo_loss,
)
from .training import (
    CPU_RECIPE,
    DPORun,
    dpo_config,
    latest_checkpoint,
    load_policy,
    load_tokenizer,
    load_recipe,
    resolve_sft_adapter,
    run_recipe,
    train_dpo,
)

__all__ = [name for name in dir() if not name.startswith("_")]
