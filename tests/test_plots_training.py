"""The tracked-curves figure shows what the TensorBoard event files of a run hold."""

from __future__ import annotations

import pytest


def write_log(log_dir, scalars: dict[str, dict[int, float]]):
    """TensorBoard event files as TRL's callback writes them (torch's SummaryWriter), one scalar per tag and step."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    for tag, points in scalars.items():
        for step, value in points.items():
            writer.add_scalar(tag, value, step)
    writer.close()


def test_one_panel_per_logged_tag_with_eval_loss_drawn_over_the_training_loss(tmp_path):
    from zephyr_tutorial.plots import plot_tracked_scalars

    write_log(
        tmp_path / "runs" / "20260101-000000-000000",
        {
            "train/loss": {1: 2.0, 2: 1.5, 3: 1.25},
            "eval/loss": {3: 1.75},
            "train/learning_rate": {1: 1e-3, 2: 5e-4, 3: 0.0},
            "train/grad_norm": {1: 1.0, 2: 1.0, 3: 1.0},  # logged, but not among the default tags
        },
    )
    figure = plot_tracked_scalars(tmp_path)
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in visible] == ["train/loss", "train/learning_rate"]
    train, evaluation = visible[0].lines
    assert list(train.get_xdata()) == [1, 2, 3] and list(train.get_ydata()) == [2.0, 1.5, 1.25]
    assert (evaluation.get_label(), list(evaluation.get_xdata()), list(evaluation.get_ydata())) == (
        "eval/loss",
        [3],
        [1.75],
    )
    assert list(visible[1].lines[0].get_ydata()) == pytest.approx([1e-3, 5e-4, 0.0])

    chosen = plot_tracked_scalars(tmp_path / "runs" / "20260101-000000-000000", ["train/grad_norm"], title="norms")
    assert [axis.get_title() for axis in chosen.axes] == ["train/grad_norm"] and chosen._suptitle.get_text() == "norms"


def test_a_run_without_the_default_tags_or_a_missing_tag_is_an_error_that_lists_what_was_logged(tmp_path):
    from zephyr_tutorial.plots import plot_tracked_scalars

    write_log(tmp_path / "runs" / "a", {"train/grad_norm": {1: 1.0}})
    with pytest.raises(ValueError, match="pass tags="):
        plot_tracked_scalars(tmp_path)
    with pytest.raises(KeyError, match=r"logged: \['train/grad_norm'\]"):
        plot_tracked_scalars(tmp_path, ["train/loss"])
