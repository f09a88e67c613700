"""Our from-scratch DPO loss against TRL's ``DPOTrainer.compute_loss`` on the same batch."""

from __future__ import annotations

from collections.abc import Sequence

from ..schemas import preference_dataset
from .logprobs import completion_lengths, policy_and_reference_logprobs
from .losses import dpo_loss


def compare_with_trl(
    policy,
    reference,
    tokenizer,
    rows: Sequence[dict],
    output_dir,
    *,
    beta: float = 0.1,
    loss_types: Sequence[str] = ("sigmoid", "ipo", "hinge"),
    max_length: int = 512,
    label_smoothing: float = 0.0,
) -> list[dict]:
    """For each loss type: TRL's loss and ``rewards/*`` metrics next to ours on one batch of ``rows``.

    ``policy`` and ``reference`` are two models (e.g. two differently seeded
    tiny models, so the rewards are not all zero). ``loss_types`` are keys of
    :data:`~zephyr_tutorial.dpo.losses.PREFERENCE_LOSSES` that TRL also knows by that name; ``label_smoothing``
    is the flip probability of ``robust``. Returns one row per (loss type, metric) with ``ours``, ``trl`` and
    ``abs_diff``.
    """
    from trl import DPOConfig, DPOTrainer

    table = []
    for loss_type in loss_types:
        args = DPOConfig(
            output_dir=str(output_dir),
            per_device_train_batch_size=len(rows),
            beta=beta,
            loss_type=[loss_type],
            bf16=False,
            activation_checkpointing=False,
            report_to=[],
            use_cpu=True,
            max_length=max_length,
            label_smoothing=label_smoothing,
        )
        trainer = DPOTrainer(
            model=policy,
            ref_model=reference,
            args=args,
            train_dataset=preference_dataset(list(rows)),
            processing_class=tokenizer,
        )
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        trl_loss = trainer.compute_loss(trainer.model, batch).item()
        trl_metrics = {name: values[-1] for name, values in trainer._metrics["train"].items()}
        trl_metrics["loss"] = trl_loss
        chosen_lengths, rejected_lengths = completion_lengths(batch)
        ours = dpo_loss(
            **policy_and_reference_logprobs(policy, batch, ref_model=reference),
            beta=beta,
            loss_type=loss_type,
            label_smoothing=label_smoothing,
            chosen_lengths=chosen_lengths,
            rejected_lengths=rejected_lengths,
        )
        for name, value in ours.metrics().items():
            table.append(
                {
                    "loss_type": loss_type,
                    "metric": name,
                    "ours": value,
                    "trl": trl_metrics[name],
                    "abs_diff": abs(value - trl_metrics[name]),
                }
            )
    return table
