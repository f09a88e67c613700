"""Our loss next to TRL's DPOTrainer.compute_loss on the same batch, for every loss TRL also has."""

from __future__ import annotations

import pytest

from zephyr_tutorial.dpo import (
    completion_lengths,
    dpo_loss,
    policy_and_reference_logprobs,
    tokenize_preference,
)
from zephyr_tutorial.schemas import preference_dataset, to_trl_preference

from samples import ROWS


@pytest.mark.parametrize(
    "loss_type, label_smoothing", [("sigmoid", 0.0), ("ipo", 0.0), ("hinge", 0.0), ("robust", 0.1)]
)
def test_parity_with_trl_dpo_trainer(loss_type, label_smoothing, zephyr_tokenizer, tmp_path):
    from trl import DPOConfig, DPOTrainer

    from zephyr_tutorial.models import build_tiny_model

    policy, ref = build_tiny_model(zephyr_tokenizer, seed=0), build_tiny_model(zephyr_tokenizer, seed=1)
    args = DPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        beta=0.1,
        loss_type=[loss_type],
        bf16=False,
        gradient_checkpointing=False,
        report_to=[],
        use_cpu=True,
        max_length=128,
        label_smoothing=label_smoothing,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=ref,
        args=args,
        train_dataset=preference_dataset(ROWS),
        processing_class=zephyr_tokenizer,
    )
    for example, row in zip(trainer.train_dataset, ROWS):  # same tokenization as ours
        ours = tokenize_preference(zephyr_tokenizer, **to_trl_preference(row))
        assert {k: example[k] for k in ours} == ours
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    trl_loss = trainer.compute_loss(trainer.model, batch).item()
    trl_metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}

    chosen_lengths, rejected_lengths = completion_lengths(batch)
    ours = dpo_loss(
        **policy_and_reference_logprobs(policy, batch, ref_model=ref),
        beta=0.1,
        loss_type=loss_type,
        label_smoothing=label_smoothing,
        chosen_lengths=chosen_lengths,
        rejected_lengths=rejected_lengths,
    )
    assert ours.loss.item() == pytest.approx(trl_loss, abs=1e-5, rel=1e-5)
    for name, value in ours.metrics().items():
        if name != "loss":
            assert value == pytest.approx(trl_metrics[name], abs=1e-5), name
    assert abs(ours.metrics()["rewards/margins"]) > 1e-3  # two different random models: a real comparison


def test_compare_with_trl_reports_the_worked_example_loss_next_to_trl(zephyr_tokenizer, tmp_path):
    """notebook 05's table: the robust loss (one function + one registry line) matches TRL's "robust" within 1e-5."""
    from zephyr_tutorial.dpo import compare_with_trl
    from zephyr_tutorial.models import build_tiny_model

    table = compare_with_trl(
        build_tiny_model(zephyr_tokenizer, seed=0),
        build_tiny_model(zephyr_tokenizer, seed=1),
        zephyr_tokenizer,
        ROWS,
        tmp_path,
        loss_types=("sigmoid", "robust"),
        label_smoothing=0.2,
        max_length=128,
    )
    assert {row["loss_type"] for row in table} == {"sigmoid", "robust"}
    assert max(row["abs_diff"] for row in table) < 1e-5
    losses = {row["loss_type"]: row["ours"] for row in table if row["metric"] == "loss"}
    assert losses["robust"] != pytest.approx(losses["sigmoid"])  # label smoothing changes the robust loss
