"""The shared row schemas: validation, the one prompt_id split, the loaders of both datasets."""

from __future__ import annotations

import json

import pytest

from zephyr_tutorial.data import DataError, write_jsonl
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.schemas import (
    load_ultrachat_200k,
    load_ultrafeedback_binarized,
    preference_splits,
    read_preferences,
    sft_splits,
    split_by_prompt_id,
    to_trl_preference,
)

from samples import CONVERSATIONS, ROWS, preference_row, sft_rows, ultrachat_rows


def test_split_is_deterministic_grouped_and_near_the_fraction():
    rows = sft_rows(400)
    rows += [dict(r) for r in rows[:50]]  # a second dialogue for 50 prompts
    train, test = split_by_prompt_id(rows, test_fraction=0.2, seed=3)
    assert (train, test) == split_by_prompt_id(rows, test_fraction=0.2, seed=3)
    assert len(train) + len(test) == len(rows)
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    assert 0.14 < len(test) / len(rows) < 0.26
    # adding rows never moves an existing row to the other side
    train_more, _ = split_by_prompt_id(rows + sft_rows(420)[400:], test_fraction=0.2, seed=3)
    assert all(r in train_more for r in train)


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_ultrachat_loader_reads_a_local_copy_of_the_schema(tmp_path, streaming, file_format):
    from datasets import Dataset

    rows = sft_rows(30)
    if file_format == "jsonl":
        write_jsonl(tmp_path / "train_sft.jsonl", rows)
    else:
        Dataset.from_list(rows).to_parquet(str(tmp_path / "train_sft.parquet"))
    loaded = load_ultrachat_200k(tmp_path, split="train_sft", limit=12, streaming=streaming)
    assert loaded == rows[:12]


def test_ultrachat_loader_rejects_bad_rows(tmp_path):
    rows = sft_rows(3)
    rows[1]["messages"] = [{"role": "user", "content": 5}]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"line 2, field 'messages\[0\].content'"):
        load_ultrachat_200k(path, streaming=False)


def test_ultrachat_loader_streams_the_hub_dataset_by_id(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return iter(sft_rows(100))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = load_ultrachat_200k(limit=5)
    assert calls == [("HuggingFaceH4/ultrachat_200k", {"split": "train_sft", "streaming": True})]
    assert len(loaded) == 5


def test_split_is_deterministic_and_stable_when_rows_are_added():
    rows = [{"prompt_id": f"p{i}"} for i in range(200)]
    train, test = split_by_prompt_id(rows, 0.1)
    assert len(train) + len(test) == 200 and 8 <= len(test) <= 35
    more_train, more_test = split_by_prompt_id(rows + [{"prompt_id": f"q{i}"} for i in range(50)], 0.1)
    assert {r["prompt_id"] for r in test} <= {r["prompt_id"] for r in more_test}
    assert not {r["prompt_id"] for r in more_train} & {r["prompt_id"] for r in more_test}


def test_read_preferences_names_the_bad_field(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text(
        json.dumps(preference_row()) + "\n" + json.dumps(preference_row(rejected=[{"role": "user"}])) + "\n"
    )
    with pytest.raises(DataError, match=r"line 2, field 'rejected\[0\]\.content'"):
        read_preferences(path)
    path.write_text(json.dumps(preference_row(chosen=[{"role": "user", "content": "Hi?"}])) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'chosen\[-1\]\.role'"):
        read_preferences(path)


def test_ultrafeedback_loader_reads_a_local_file_of_the_hub_schema(tmp_path):
    path = tmp_path / "train_prefs.jsonl"
    rows = [preference_row(prompt_id=f"id{i}", messages=preference_row()["chosen"]) for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = load_ultrafeedback_binarized(str(path), split="train_prefs", limit=3)
    assert len(dataset) == 3 and dataset[2]["prompt_id"] == "id2"
    assert dataset[0]["chosen"][-1] == {"role": "assistant", "content": "Hello!"}
    path.write_text(json.dumps(preference_row(score_chosen="high")) + "\n")
    with pytest.raises(DataError, match="field 'score_chosen'"):
        load_ultrafeedback_binarized(str(path), split="train_prefs")


def test_preference_rows_are_validated(tmp_path):
    good, bad = ROWS[0], dict(ROWS[1])
    bad["rejected"] = [{"role": "user", "content": "another question"}, {"role": "assistant", "content": "x"}]
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"line 2, field 'rejected'"):
        read_preferences(path)
    bad = dict(ROWS[1], chosen=[{"role": "user", "content": "q"}])
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'chosen\[-1\]\.role'.*assistant"):
        read_preferences(path)
    path.write_text(json.dumps(good) + "\n")
    assert to_trl_preference(read_preferences(path)[0])["chosen"] == [good["chosen"][-1]]


def test_local_splits_are_validated_and_capped(tmp_path):
    write_jsonl(tmp_path / "train_sft.jsonl", ultrachat_rows(10))
    write_jsonl(tmp_path / "test_sft.jsonl", ultrachat_rows(3))
    splits = sft_splits(get_profile("cpu").with_overrides(max_train_samples=6), tmp_path)
    assert (len(splits["train"]), len(splits["test"])) == (6, 3)
    assert splits["train"][1]["messages"] == CONVERSATIONS[1]

    broken = ultrachat_rows(3)
    broken[2]["messages"] = [{"role": "user", "content": "no answer"}]
    write_jsonl(tmp_path / "train_sft.jsonl", broken)
    with pytest.raises(DataError, match=r"train_sft.jsonl.*3.*messages"):
        sft_splits(get_profile("cpu"), tmp_path)


def test_sft_and_preference_rows_of_one_prompt_land_on_the_same_side():
    """One split for both kinds of data: a prompt held out of SFT is held out of DPO too (same seed)."""
    sft = sft_rows(300)
    preferences = [dict(preference_row(), prompt_id=row["prompt_id"]) for row in sft]
    sft_train, sft_test = split_by_prompt_id(sft, 0.2, seed=42)
    pref_train, pref_test = split_by_prompt_id(preferences, 0.2, seed=42)
    assert [r["prompt_id"] for r in sft_test] == [r["prompt_id"] for r in pref_test] and sft_test
    assert {r["prompt_id"] for r in split_by_prompt_id(sft, 0.2, seed=1)[1]} != {r["prompt_id"] for r in sft_test}
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_prompt_id(sft, 1.0)


def test_preference_splits_are_trl_rows_capped_by_the_profile(tmp_path):
    write_jsonl(tmp_path / "train_prefs.jsonl", ROWS)
    write_jsonl(tmp_path / "test_prefs.jsonl", ROWS[:3])
    splits = preference_splits(get_profile("cpu").with_overrides(max_train_samples=2, max_eval_samples=None), tmp_path)
    assert (len(splits["train"]), len(splits["test"])) == (2, 3)
    assert splits["train"][0] == to_trl_preference(ROWS[0])
    assert to_trl_preference(splits["train"][0]) == splits["train"][0]  # already TRL rows: unchanged
    write_jsonl(tmp_path / "test_prefs.jsonl", [dict(ROWS[0], score_chosen="high")])
    with pytest.raises(DataError, match=r"test_prefs.jsonl, line 1, field 'score_chosen'"):
        preference_splits(get_profile("cpu"), tmp_path)


def test_preference_rows_read_a_split_capped_by_the_profile(tmp_path):
    from zephyr_tutorial.schemas import preference_rows

    rows = [preference_row(prompt_id=f"id{i}", messages=preference_row()["chosen"]) for i in range(6)]
    write_jsonl(tmp_path / "train_prefs.jsonl", rows)
    write_jsonl(tmp_path / "test_prefs.jsonl", rows[:2])
    profile = get_profile("cpu").with_overrides(max_train_samples=4, max_eval_samples=None)
    train, test = preference_rows(profile, "train", tmp_path), preference_rows(profile, "test", tmp_path)
    assert [r["prompt_id"] for r in train] == ["id0", "id1", "id2", "id3"] and len(test) == 2
    assert train[0] == read_preferences(tmp_path / "train_prefs.jsonl")[0]  # the rows themselves, not TRL's form
    with pytest.raises(ValueError, match="split must be"):
        preference_rows(profile, "validation", tmp_path)


@pytest.mark.parametrize("name", ["t4", "gpu24"])
def test_gpu_profiles_read_the_recipes_hub_datasets_and_splits_capped_by_the_profile(name, monkeypatch):
    """Notebooks 03, 05 and 06 on a GPU profile: ultrachat_200k's train_sft/test_sft and ultrafeedback_binarized's
    train_prefs/test_prefs, as the Zephyr recipe reads them, up to the network boundary (``datasets.load_dataset``)."""
    import datasets

    from zephyr_tutorial.profiles import ULTRACHAT_200K, ULTRAFEEDBACK_BINARIZED
    from zephyr_tutorial.schemas import PREFERENCE_FIELDS, preference_rows

    profile = get_profile(name)
    pairs = [preference_row(prompt_id=f"id{i}", messages=preference_row()["chosen"]) for i in range(2000)]
    dialogues = sft_rows(2000)
    calls = []

    def fake_load_dataset(path, split=None, **kwargs):
        calls.append((path, split))
        rows = {ULTRAFEEDBACK_BINARIZED: pairs, ULTRACHAT_200K: dialogues}[path]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    caps = profile.data.max_train_samples, profile.data.max_eval_samples
    assert 0 < caps[1] < caps[0] < 2000

    train, test = preference_rows(profile, "train"), preference_rows(profile, "test")
    assert (len(train), len(test)) == caps and train[0] == {key: pairs[0][key] for key in PREFERENCE_FIELDS}
    splits = preference_splits(profile)
    assert (len(splits["train"]), len(splits["test"])) == caps and splits["train"][0] == to_trl_preference(pairs[0])
    sft = sft_splits(profile)
    assert (len(sft["train"]), len(sft["test"])) == caps and sft["train"][0]["messages"] == dialogues[0]["messages"]
    preference_calls = [(ULTRAFEEDBACK_BINARIZED, "train_prefs"), (ULTRAFEEDBACK_BINARIZED, "test_prefs")]
    assert calls == [*preference_calls, *preference_calls, (ULTRACHAT_200K, "train_sft"), (ULTRACHAT_200K, "test_sft")]
