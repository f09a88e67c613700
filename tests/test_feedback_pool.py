"""The completion pool: policy specs, principles, resumable generation with real (tiny) models."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.backends import TransformersBackend
from zephyr_tutorial.data import DataError, ResumableJsonlWriter, read_jsonl
from zephyr_tutorial.feedback.pool import (
    PRINCIPLES,
    PolicySpec,
    build_conversation,
    check_pool,
    default_pool,
    load_pool_config,
    principle_for,
    run_pool,
    truncate_words,
)


def test_default_pool_has_five_policies_and_takes_the_sft_model_when_its_adapter_exists(tmp_path):
    pool = default_pool(sft_adapter_dir=tmp_path)
    assert [spec.kind for spec in pool] == ["embedded", "embedded", "embedded", "embedded", "truncated"]
    assert pool[1].demonstrations == "formats" and pool[-1].truncate_fraction == 0.5
    (tmp_path / "adapter_config.json").write_text("{}")
    with_sft = default_pool(sft_adapter_dir=tmp_path, weak="tiny_random")
    assert [spec.kind for spec in with_sft] == ["embedded", "embedded", "embedded", "sft", "tiny_random"]
    with pytest.raises(ValueError, match="weak must be"):
        default_pool(weak="none")


def test_pool_config_errors_name_the_entry(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text(json.dumps([{"name": "a", "kind": "embedded"}, {"name": "b", "kind": "gpt"}]))
    with pytest.raises(DataError, match=r"field '\[1\]'.*kind must be one of"):
        load_pool_config(path)
    path.write_text(json.dumps([{"name": "a", "kind": "embedded", "temprature": 0.7}]))
    with pytest.raises(DataError, match=r"field '\[0\]\.temprature': unknown field"):
        load_pool_config(path)
    path.write_text(
        json.dumps([{"name": "cut", "kind": "truncated", "source": "a"}, {"name": "a", "kind": "embedded"}])
    )
    with pytest.raises(ValueError, match="must be an earlier policy"):
        load_pool_config(path)
    path.write_text(
        json.dumps(
            [
                {"name": "a", "kind": "embedded", "principle": "sample", "temperature": 0.7},
                {"name": "cut", "kind": "truncated", "source": "a", "principle": None},
            ]
        )
    )
    assert [spec.name for spec in load_pool_config(path)] == ["a", "cut"]
    with pytest.raises(ValueError, match="appears twice"):
        check_pool([PolicySpec("a", "embedded"), PolicySpec("a", "embedded")])


def test_principles_are_drawn_reproducibly_per_prompt():
    spec = PolicySpec("s", "embedded", principle="sample")
    drawn = [principle_for(spec, f"p{i}", seed=1) for i in range(40)]
    assert drawn == [principle_for(spec, f"p{i}", seed=1) for i in range(40)]
    assert set(drawn) == set(PRINCIPLES), "40 draws should cover all four principles"
    assert principle_for(PolicySpec("h", "embedded", principle="honesty"), "p0") == "honesty"
    assert build_conversation("Hi?", "honesty")[0] == {"role": "system", "content": PRINCIPLES["honesty"]}
    assert build_conversation("Hi?", None) == [{"role": "user", "content": "Hi?"}]


def test_truncate_words():
    assert truncate_words("The capital of France is Paris.", 3) == "The capital of"
    assert truncate_words("Short.", 6) == "Short."
    assert truncate_words("one two three four five", fraction=0.5) == "one two"
    assert truncate_words("Paris.", fraction=0.5) == "Paris."  # at least one word


def test_demonstrations_come_before_the_prompt_and_are_not_verifiable_prompts():
    from zephyr_tutorial.feedback.pool import DEMONSTRATIONS, build_conversation
    from zephyr_tutorial.feedback.verifiable_prompts import build_verifiable_prompts

    conversation = build_conversation("What is 2 plus 2? Reply with the number only.", "helpfulness", "formats")
    assert conversation[0]["role"] == "system" and conversation[-1]["content"].startswith("What is 2 plus 2")
    assert [m["role"] for m in conversation[1:-1]] == ["user", "assistant"] * len(DEMONSTRATIONS["formats"])
    prompts = {row["prompt"] for row in build_verifiable_prompts()}
    assert not prompts & {question for question, _ in DEMONSTRATIONS["formats"]}
    with pytest.raises(ValueError, match="demonstrations must be one of"):
        PolicySpec("x", "embedded", demonstrations="none")


def test_run_pool_with_real_tiny_models_resumes_without_duplicates(tmp_path, tiny_model, embedded_tokenizer):
    from zephyr_tutorial.models import build_tiny_model

    other = build_tiny_model(embedded_tokenizer, seed=1)
    models = {"tiny-a": tiny_model, "tiny-b": other}
    built = []

    def backend_for(spec):
        built.append(spec.name)
        return TransformersBackend(models[spec.name], embedded_tokenizer, batch_size=4, name=spec.name, progress=False)

    pool = [
        PolicySpec("tiny-a", "embedded", principle="helpfulness"),
        PolicySpec("tiny-b", "embedded", principle="sample", temperature=1.0),
        PolicySpec("cut", "truncated", principle=None, source="tiny-a", truncate_words=2),
    ]
    prompts = [{"id": f"p{i}", "prompt": f"Question number {i}?"} for i in range(5)]
    path = tmp_path / "completions.jsonl"
    with ResumableJsonlWriter(path) as writer:
        first = run_pool(prompts[:2], pool, backend_for, writer, max_new_tokens=6, chunk_size=2)
    assert first == {"tiny-a": 2, "tiny-b": 2, "cut": 2}
    with ResumableJsonlWriter(path) as writer:
        second = run_pool(prompts, pool, backend_for, writer, max_new_tokens=6, chunk_size=2)
    assert second == {"tiny-a": 3, "tiny-b": 3, "cut": 3}
    rows = read_jsonl(path)
    assert len(rows) == 15 and len({row["id"] for row in rows}) == 15
    by_id = {row["id"]: row for row in rows}
    for prompt in prompts:
        source = by_id[f"{prompt['id']}::tiny-a"]["text"]
        assert by_id[f"{prompt['id']}::cut"]["text"] == truncate_words(source, 2)
        assert by_id[f"{prompt['id']}::tiny-a"]["principle"] == "helpfulness"
        assert by_id[f"{prompt['id']}::tiny-b"]["principle"] in PRINCIPLES
        assert by_id[f"{prompt['id']}::tiny-a"]["completion_tokens"] <= 6
    assert built.count("tiny-a") == 2, "one backend per policy per run"


def test_truncated_policy_reads_its_source_from_an_earlier_run(tmp_path):
    pool = [PolicySpec("a", "embedded"), PolicySpec("cut", "truncated", source="a")]
    with (
        ResumableJsonlWriter(tmp_path / "empty.jsonl") as writer,
        pytest.raises(ValueError, match="must be an earlier policy"),
    ):
        run_pool([{"id": "p0", "prompt": "Q"}], pool[1:], lambda spec: None, writer)
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"id": "p0::a", "prompt_id": "p0", "prompt": "Q", "policy": "a", "text": "x y z"}) + "\n"
    )
    with ResumableJsonlWriter(path) as writer:
        counts = run_pool([{"id": "p0", "prompt": "Q"}], pool, lambda spec: None, writer)
    assert counts == {"a": 0, "cut": 1}
    assert read_jsonl(path)[1]["text"] == "x y z"


def _save_lora_adapter(tokenizer, folder, *, trained: bool):
    """A LoRA adapter for the tiny model: ``trained=False`` is PEFT's initialisation (B = 0, the identity),
    ``trained=True`` random A and B, standing in for notebook 03's trained weights."""
    from peft import LoraConfig, get_peft_model

    from zephyr_tutorial.models import build_tiny_model

    config = LoraConfig(
        r=4,
        lora_alpha=16,
        target_modules=["q_proj", "v_proj", "down_proj"],
        task_type="CAUSAL_LM",
        init_lora_weights=not trained,
    )
    get_peft_model(build_tiny_model(tokenizer), config).save_pretrained(folder)
    return folder


def test_pool_with_an_sft_adapter_attributes_its_completions_and_applies_the_adapter(
    tmp_path, tiny_model, embedded_tokenizer
):
    from zephyr_tutorial.feedback import PolicyBackends
    from zephyr_tutorial.profiles import active_profile

    # The base under the adapter is the tiny model, saved where a profile's model_id can point (as Mistral-7B's
    # hub id does on a GPU profile); load_adapter_model loads it in 4-bit NF4 as notebook 03 trained on it.
    base_dir = tmp_path / "base"
    tiny_model.save_pretrained(base_dir)
    embedded_tokenizer.save_pretrained(base_dir)
    profile = active_profile("cpu").with_overrides(id=str(base_dir))
    trained = _save_lora_adapter(embedded_tokenizer, tmp_path / "sft-adapter", trained=True)
    identity = _save_lora_adapter(embedded_tokenizer, tmp_path / "identity-adapter", trained=False)

    pool = default_pool(sft_adapter_dir=trained)  # what notebook 04 and `zephyr-tutorial feedback` build
    [sft] = [spec for spec in pool if spec.kind == "sft"]
    prompts = [{"id": f"p{i}", "prompt": f"Give me tip number {i} for learning to cook."} for i in range(3)]
    backends = PolicyBackends(batch_size=4, profile=profile, embedded=(tiny_model, embedded_tokenizer))
    with ResumableJsonlWriter(tmp_path / "completions.jsonl") as writer:
        counts = run_pool(prompts, pool, backends, writer, max_new_tokens=8, seed=3)
    assert counts == {spec.name: 3 for spec in pool}
    rows = {(row["prompt_id"], row["policy"]): row for row in read_jsonl(tmp_path / "completions.jsonl")}
    for prompt in prompts:
        row = rows[(prompt["id"], sft.name)]
        assert row["id"] == f"{prompt['id']}::{sft.name}" and row["principle"] in PRINCIPLES
        assert 0 < row["completion_tokens"] <= 8 and row["text"]

    # Control: the same policy with the identity adapter (same seed, same sampling). Were the adapter's
    # weights not applied, both would write the same text.
    [control] = [spec for spec in default_pool(sft_adapter_dir=identity) if spec.kind == "sft"]
    with ResumableJsonlWriter(tmp_path / "control.jsonl") as writer:
        run_pool(prompts, [control], backends, writer, max_new_tokens=8, seed=3)
    control_texts = [row["text"] for row in read_jsonl(tmp_path / "control.jsonl")]
    sft_texts = [rows[(p["id"], sft.name)]["text"] for p in prompts]
    base_texts = [rows[(p["id"], "smol-greedy")]["text"] for p in prompts]
    assert sft_texts != control_texts, "the adapter's weights must change what the SFT policy writes"
    assert sft_texts != base_texts
