"""The ablation suite of notebook 06 on the embedded model with small random adapters: every measurement, the
table, the claims, and the dSFT-2 data."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.evaluation import MCItem, make_judge, prompt_catalog, read_verifiable_prompts
from zephyr_tutorial.models import adapter_key
from zephyr_tutorial.pipelines.ablations import (
    PAPER_TABLE_3,
    Arm,
    format_table,
    paper_claims,
    run_suite,
    sft2_rows,
)
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.runtime import data_dir


def _tiny(tokenizer):
    from zephyr_tutorial.models import build_tiny_model

    return build_tiny_model(tokenizer, seed=0)


def _random_adapter(folder, tokenizer, seed: int):
    """A LoRA adapter of the tiny model with random (non-zero) B matrices, so it changes the answers."""
    import torch
    from peft import LoraConfig, get_peft_model

    model = _tiny(tokenizer)  # seeds torch itself: draw the adapter's weights after it
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def base(embedded_tokenizer):
    import copy

    tokenizer = copy.deepcopy(embedded_tokenizer)
    return _tiny(tokenizer), tokenizer


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, base):
    root = tmp_path_factory.mktemp("adapters")
    return _random_adapter(root / "a", base[1], 0), _random_adapter(root / "b", base[1], 1)


@pytest.fixture(scope="module")
def prompts():
    rows = read_verifiable_prompts(data_dir() / "verifiable_prompts.jsonl")
    return [next(r for r in rows if r["family"] == family) for family in ("capital", "yes_no", "one_sentence")]


def _pairs(prompts):
    return [
        {
            "prompt": row["prompt"],
            "prompt_id": row["prompt_id"],
            "chosen": [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": "Yes."}],
            "rejected": [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": "I think"}],
            "score_chosen": 4.5,
            "score_rejected": 2.0,
        }
        for row in prompts
    ]


def test_suite_measures_every_arm_on_the_same_prompts(base, adapters, prompts, tmp_path):
    first, second = adapters
    pairs = _pairs(prompts)
    arms = [
        Arm("base", None, steps=0),
        Arm("dSFT", first, steps=3),
        Arm("dSFT + dDPO", second, steps=5, dpo=True, reference=first, train_pairs=pairs),
    ]
    rules = make_judge("rules", catalog=prompt_catalog(prompts))
    mc = [MCItem("What colour is the sky?", ("blue", "green"), 0), MCItem("Two plus two?", ("five", "four"), 1)]
    suite = run_suite(
        get_profile("cpu"),
        arms,
        prompts,
        judge=rules,
        baseline="dSFT",
        llm_judge=rules,  # a second judge, on one arm only; here the same rules, so it must agree with them
        llm_judge_arms=("dSFT + dDPO",),
        heldout_pairs=pairs,
        mc_items=mc,
        max_new_tokens=12,
        cache_path=tmp_path / "answers.sqlite",
        progress=False,
        base=base,
    )
    assert list(suite.results) == ["base", "dSFT", "dSFT + dDPO"]
    for result in suite.results.values():
        assert result.stop_rate.n == len(prompts) and result.rule_score.n == len(prompts)
        assert len(result.answers) == len(prompts) and result.mc_accuracy.n == len(mc)
        assert 1 <= result.rule_score.estimate <= 5
    assert suite["dSFT"].rule_win_rate is None  # the baseline is not compared with itself
    assert suite["base"].rule_win_rate.n == len(prompts)
    dpo = suite["dSFT + dDPO"]
    assert dpo.heldout_reward_accuracy.n == len(pairs) and dpo.train_reward_accuracy.n == len(pairs)
    assert suite["base"].heldout_reward_accuracy is None  # only DPO arms have a reference to measure against
    assert suite["base"].llm_win_rate is None and suite["base"].llm_rule_kappa is None  # not in llm_judge_arms
    assert dpo.llm_win_rate.estimate == dpo.rule_win_rate.estimate and dpo.llm_rule_kappa.n == len(prompts)
    # the adapters change what the model says: the arms are really different models
    texts = {name: [a.text for a in result.answers] for name, result in suite.results.items()}
    assert texts["base"] != texts["dSFT"] and texts["dSFT"] != texts["dSFT + dDPO"]
    assert (tmp_path / "answers.sqlite").is_file()
    rows = suite.table()
    assert [row["arm"] for row in rows] == list(suite.results)
    assert rows[0]["paper AlpacaEval %"] == "—" and "dSFT" in PAPER_TABLE_3
    assert "rules score" in format_table(rows)
    claims = paper_claims(suite)
    assert [claim.text for claim in claims] == ["dSFT + dDPO answers better than dSFT"]
    assert claims[0].verdict in ("reproduced", "not reproduced", "inconclusive") and "95% CI" in claims[0].evidence


def test_suite_refuses_an_unknown_baseline_and_duplicate_names(prompts):
    with pytest.raises(ValueError, match="baseline"):
        run_suite(get_profile("cpu"), [Arm("base", None)], prompts, judge=make_judge("rules"), baseline="dSFT")
    with pytest.raises(ValueError, match="llm_judge_arms"):
        run_suite(
            get_profile("cpu"),
            [Arm("base", None)],
            prompts,
            judge=make_judge("rules"),
            baseline="base",
            llm_judge=make_judge("rules"),
            llm_judge_arms=("dSFT",),
        )
    with pytest.raises(ValueError, match="unique"):
        run_suite(
            get_profile("cpu"), [Arm("x", None), Arm("x", None)], prompts, judge=make_judge("rules"), baseline="x"
        )


def test_adapter_key_names_the_weights(adapters):
    first, second = adapters
    assert adapter_key(None) == "base"
    assert adapter_key(first) == adapter_key(first) != adapter_key(second)


def test_sft2_rows_are_the_chosen_replies(prompts, tmp_path):
    from zephyr_tutorial.schemas import read_sft_rows

    pairs = _pairs(prompts)
    counts = sft2_rows(data_dir() / "sft", pairs, tmp_path)
    written = read_sft_rows(tmp_path / "train_sft.jsonl")
    heldout = read_sft_rows(data_dir() / "sft" / "test_sft.jsonl")
    assert counts == {"chosen_rows": len(pairs), "test_rows": len(heldout)}
    assert [r["messages"] for r in written] == [p["chosen"] for p in pairs]
    assert [r["prompt_id"] for r in written] == [p["prompt_id"] for p in pairs]
    assert (tmp_path / "test_sft.jsonl").read_text() == "".join(
        json.dumps(row, ensure_ascii=False) + "\n" for row in read_sft_rows(data_dir() / "sft" / "test_sft.jsonl")
    )


def test_rewards_and_answers_are_shared_through_the_caches(base, adapters, prompts, tmp_path):
    """What notebook 05 measures on a checkpoint (adapter slot "default", cache named by the weights) is what
    notebook 06's suite reads back for the arm with that folder, without computing it again."""
    from peft import PeftModel

    from zephyr_tutorial.dpo import answer_prompts, evaluate_implicit_rewards
    from zephyr_tutorial.pipelines.ablations import answer, implicit_reward_accuracy, load_arms, reward_cache_key

    first, second = adapters
    pairs = _pairs(prompts)
    rewards, answers = tmp_path / "rewards.json", tmp_path / "answers.sqlite"
    # notebook 05's way: the checkpoint in slot "default", the SFT adapter in slot "ref"
    model = PeftModel.from_pretrained(_tiny(base[1]), str(second), adapter_name="default")
    model.load_adapter(str(first), adapter_name="ref")
    measured = evaluate_implicit_rewards(
        model, base[1], pairs, 0.1, cache_path=rewards, cache_key=reward_cache_key(second, first)
    )
    said = answer_prompts(
        model,
        base[1],
        [[{"role": "user", "content": row["prompt"]}] for row in prompts],
        adapter="default",
        max_new_tokens=8,
        cache_path=answers,
        cache_name=f"arm:{adapter_key(second)}",
    )
    # notebook 06's way: every adapter under its content key; the caches answer, the model is never asked
    arm = Arm("dSFT + dDPO", second, dpo=True, reference=first, beta=0.1)
    suite_model, tokenizer, _ = load_arms(get_profile("cpu"), [arm], base=(_tiny(base[1]), base[1]))
    accuracy = implicit_reward_accuracy(suite_model, tokenizer, arm, pairs, cache_path=rewards)
    assert accuracy.n == len(pairs) and accuracy.estimate == sum(m > 0 for m in measured.margins) / len(pairs)
    again = evaluate_implicit_rewards(
        None, tokenizer, pairs, 0.1, cache_path=rewards, cache_key=reward_cache_key(second, first)
    )
    assert again.margins == measured.margins  # read back: a model of None would fail at the first forward pass
    with pytest.raises(AttributeError):  # another beta is another measurement: not read from the cache
        evaluate_implicit_rewards(
            None, tokenizer, pairs, 0.2, cache_path=rewards, cache_key=reward_cache_key(second, first)
        )
    import sqlite3

    stored = sqlite3.connect(answers).execute("SELECT COUNT(*) FROM completions").fetchone()[0]
    read = answer(suite_model, tokenizer, arm, [row["prompt"] for row in prompts], max_new_tokens=8, cache_path=answers)
    assert [a.text for a in read] == [a.text for a in said]
    assert sqlite3.connect(answers).execute("SELECT COUNT(*) FROM completions").fetchone()[0] == stored == len(prompts)


def test_answers_of_a_larger_budget_shared_by_notebook_03_are_what_the_suite_would_generate(
    base, adapters, prompts, tmp_path
):
    """Notebook 03 answers with its own (larger) budget and hands the answers on: the suite then reads, at its
    budget, exactly what it would have generated, and the model is not asked again."""
    from peft import PeftModel

    from zephyr_tutorial.dpo import answer_prompts
    from zephyr_tutorial.pipelines.ablations import answer, share_answers

    first, _ = adapters
    texts = [row["prompt"] for row in prompts]
    slot = adapter_key(first)  # the suite's slot for an adapter: its content key
    model = PeftModel.from_pretrained(_tiny(base[1]), str(first), adapter_name=slot)
    generated = {
        budget: answer_prompts(
            model, base[1], [[{"role": "user", "content": t}] for t in texts], adapter=slot, max_new_tokens=budget
        )
        for budget in (12, 6)
    }
    shared = tmp_path / "answers.sqlite"
    stopped = share_answers(model, base[1], texts, generated[12], adapter=first, cache_path=shared, max_new_tokens=6)
    assert stopped == sum(a.finish_reason == "stop" for a in generated[6])
    arm = Arm("dSFT", first)
    calls = []
    hook = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        read = answer(model, base[1], arm, texts, max_new_tokens=6, cache_path=shared)
    finally:
        hook.remove()
    assert not calls, "every answer came from the cache"
    assert [(a.text, a.completion_tokens, a.finish_reason) for a in read] == [
        (a.text, a.completion_tokens, a.finish_reason) for a in generated[6]
    ]


def test_implicit_reward_of_the_reference_itself_is_zero(base, adapters, prompts):
    """β log π/π_ref is 0 on every answer when the policy is the reference: the adapter switch really happens."""
    from peft import PeftModel

    from zephyr_tutorial.dpo import evaluate_implicit_rewards

    first, second = adapters
    model = PeftModel.from_pretrained(_tiny(base[1]), str(first), adapter_name="a")
    model.load_adapter(str(second), adapter_name="b")
    pairs = _pairs(prompts)
    same = evaluate_implicit_rewards(model, base[1], pairs, 0.1, policy_adapter="a", reference_adapter="a")
    assert all(abs(r) < 1e-6 for r in same.chosen_rewards + same.rejected_rewards)
    other = evaluate_implicit_rewards(model, base[1], pairs, 0.1, policy_adapter="b", reference_adapter=None)
    assert max(abs(r) for r in other.chosen_rewards) > 1e-4  # adapter b against the base: not the same model
    with pytest.raises(ValueError, match="cache_key"):
        evaluate_implicit_rewards(model, base[1], pairs, 0.1, cache_path="x.json")


def test_active_adapter_on_a_model_without_adapters(base):
    from zephyr_tutorial.dpo.evaluation import active_adapter

    model = _tiny(base[1])  # not the fixture's model: the suite test wrapped that one in adapters
    with active_adapter(model, None) as same:
        assert same is model
    with pytest.raises(ValueError, match="no adapters"), active_adapter(model, "default"):
        pass
