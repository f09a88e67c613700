"""Judge prompts show the outputs in order and ask for the formats the parsers read."""

from __future__ import annotations

from zephyr_tutorial.evaluation import (
    alpaca_eval_ranking_prompt,
    mt_bench_single_prompt,
)


def test_prompts_contain_the_outputs_in_order_and_the_expected_format():
    conversation = alpaca_eval_ranking_prompt("Say hi", "FIRST OUTPUT", "SECOND OUTPUT")
    user = conversation[-1]["content"]
    assert user.index("FIRST OUTPUT") < user.index("SECOND OUTPUT")
    assert "'rank': <model-rank>" in user and '"model": "model_1"' in user
    reference = mt_bench_single_prompt("2+2?", "5", reference="4")[-1]["content"]
    assert "[[rating]]" in reference and "Reference Answer" in reference and "4" in reference
    assert "Reference Answer" not in mt_bench_single_prompt("2+2?", "5")[-1]["content"]
