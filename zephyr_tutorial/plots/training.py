"""Figures of any training run (notebooks 03 and 05): the curves its tracker logged."""

from __future__ import annotations

import math

DEFAULT_TRACKED_TAGS = (
    "train/loss",
    "eval/loss",
    "train/mean_token_accuracy",
    "train/rewards/margins",
    "train/rewards/accuracies",
    "train/learning_rate",
)
"""Shown when no ``tags`` are given, those that the run logged: SFT logs no ``rewards/*``, a run without
evaluation no ``eval/loss``."""


def plot_tracked_scalars(run_dir, tags=None, *, columns: int = 3, title: str | None = None):
    """One panel per TensorBoard scalar of a run, against the optimizer step, read back from its event files.

    ``run_dir``: a run folder, its ``final/`` or a log folder (``TrainingRun.tracking_dir``); see
    :func:`zephyr_tutorial.training.read_tracked_scalars`. ``tags``: TRL's names (``train/loss``, ``eval/loss``,
    ``train/rewards/margins`` ...), default those of :data:`DEFAULT_TRACKED_TAGS` that were logged. ``eval/loss``
    is drawn into the ``train/loss`` panel when both are shown, so that over- or under-fitting is visible at once.
    """
    import matplotlib.pyplot as plt

    from ..training import read_tracked_scalars

    if tags is None:
        logged = read_tracked_scalars(run_dir)
        scalars = {tag: logged[tag] for tag in DEFAULT_TRACKED_TAGS if tag in logged}
    else:
        scalars = read_tracked_scalars(run_dir, tags)
    if not scalars:
        raise ValueError(f"none of {list(DEFAULT_TRACKED_TAGS)} was logged in {run_dir}; pass tags=")
    overlay_eval = "train/loss" in scalars and "eval/loss" in scalars
    panels = [tag for tag in scalars if not (overlay_eval and tag == "eval/loss")]
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for axis, tag in zip(axes.flat, panels):
        axis.plot(scalars[tag]["step"], scalars[tag]["value"], marker=".", label=tag)
        if overlay_eval and tag == "train/loss":
            axis.plot(scalars["eval/loss"]["step"], scalars["eval/loss"]["value"], marker="o", label="eval/loss")
            axis.legend(fontsize=8)
        axis.set(xlabel="optimizer step", title=tag)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
