"""Notebook 00's figures: the parameter breakdown and the pipeline picture hold what they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from zephyr_tutorial.plots.setup import ZEPHYR_PIPELINE, PipelineBox, plot_parameter_breakdown, plot_pipeline  # noqa: E402


def test_parameter_breakdown_draws_one_bar_per_nonzero_block():
    figure = plot_parameter_breakdown({"embedding": 2_000_000, "attention": 1_000_000, "bias": 0})
    widths = [bar.get_width() for bar in figure.axes[0].patches]
    assert widths == [2.0, 1.0]


def _texts(figure):
    return [t.get_text() for t in figure.axes[0].texts]


def test_pipeline_names_every_model_data_set_stage_and_notebook():
    figure = plot_pipeline()
    texts = _texts(figure)
    for box in ZEPHYR_PIPELINE:
        assert box.title in texts and box.paper in texts and f"cpu: {box.stand_in}" in texts
        assert box.notebook in texts
    assert "dSFT (03)" in texts and "dDPO (05)" in texts
    assert any("evaluation (01)" in t and "ablations (06)" in t for t in texts)
    boxes = [p for p in figure.axes[0].patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in figure.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(boxes) == len(ZEPHYR_PIPELINE) + 1  # five boxes and the evaluation bar
    assert len(arrows) == 4  # two stages between models, two data sets feeding them
    assert [b.paper for b in ZEPHYR_PIPELINE if b.kind == "model"] == [
        "Mistral-7B-v0.1",
        "zephyr-7b-sft-full",
        "zephyr-7b-beta",
    ]


def test_pipeline_without_stand_ins_and_with_other_boxes():
    boxes = (
        PipelineBox("model", "base", "A", "a", "00"),
        PipelineBox("data", "pairs", "D", "d", "04"),
        PipelineBox("model", "tuned", "B", "b", "05"),
    )
    texts = _texts(plot_pipeline(boxes, stages=(("DPO", "05"),), stand_in=False))
    assert "A" in texts and "B" in texts and "DPO (05)" in texts
    assert not any(t.startswith("cpu:") for t in texts)
    with pytest.raises(ValueError, match="alternates models and data sets"):
        plot_pipeline(boxes[:2], stages=(("DPO", "05"),))
