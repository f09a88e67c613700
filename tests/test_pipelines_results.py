"""results.json, the model card and the Hub upload: what a run leaves beside its adapter, and how it leaves.

The upload is tested up to the network boundary: the files of the folder, the card's content and the arguments
of ``HfApi.create_repo``/``upload_folder`` (a recording fake stands in for ``HfApi``; nothing is sent).
"""

from __future__ import annotations

import hashlib

import pytest

from zephyr_tutorial.pipelines.results import (
    UPLOAD_IGNORE,
    HubLoginError,
    data_record,
    dpo_heldout,
    push_to_hub,
    recipe_sha256,
    upload_files,
)
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.stats import bootstrap, wilson
from zephyr_tutorial.training import (
    EMBEDDED_MODEL_HUB_ID,
    add_heldout_result,
    heldout_entry,
    model_card,
    read_results,
    read_tracked_scalars,
    write_results,
)

from samples import RECIPES, dpo_command, sft_command

FAKE_TOKEN = "hf_FakeTokenForTestsOnly0123456789"


class RecordingHfApi:
    """Stands in for ``huggingface_hub.HfApi``: records every call, answers as the Hub would, sends nothing."""

    calls: list[tuple[str, tuple, dict]] = []

    def __init__(self, *args, **kwargs):
        RecordingHfApi.calls.append(("__init__", args, kwargs))

    def create_repo(self, repo_id, **kwargs):
        from huggingface_hub import RepoUrl

        RecordingHfApi.calls.append(("create_repo", (repo_id,), kwargs))
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        from fnmatch import fnmatch
        from pathlib import Path

        folder = Path(kwargs["folder_path"])
        ignored = kwargs.get("ignore_patterns") or []
        sent = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not any(fnmatch(p.name, pattern) for pattern in ignored)
        )
        RecordingHfApi.calls.append(("upload_folder", (), {**kwargs, "sent": sent}))


@pytest.fixture()
def hub(monkeypatch):
    """Logged in (a fake token in $HF_TOKEN, which ``huggingface_hub.get_token`` reads first) and ``HfApi`` replaced
    by the recorder: whatever the code under test uploads reaches no network."""
    import huggingface_hub

    RecordingHfApi.calls = []
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    return RecordingHfApi


def record_of_a_run(**changes) -> dict:
    """A results.json record as the runner writes it for a cpu-profile DPO run, for card and upload tests."""
    record = {
        "schema_version": 1,
        "stage": "dpo",
        "created": "2026-01-01T00:00:00+00:00",
        "base_model": {"name_or_path": "/cache/SmolLM2-135M-Instruct", "hub_id": EMBEDDED_MODEL_HUB_ID},
        "adapter": {
            "type": "lora",
            "trained_adapter": "default",
            "r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.05,
            "target_modules": ["k_proj", "q_proj"],
            "quantization": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"},
        },
        "hyperparameters": {"learning_rate": 5e-05, "beta": 0.1, "loss_type": ["sigmoid"], "max_steps": 30},
        "seed": 42,
        "data_seed": None,
        "versions": {"python": "3.11.7", "trl": "1.16.0"},
        "training": {"steps": 30, "resumed_from": None, "last_step": None},
        "metrics": {"train_loss": 0.61234},
        "rows": {"train": 47, "eval": 9},
        "tracking": {"tracker": "tensorboard", "log_dir": None, "logs_in_adapter_dir": []},
        "recipe": {"description": "notebook 05 at CPU scale", "stage": "dpo", "profile": "cpu"},
        "recipe_sha256": "ab" * 32,
        "data": {
            "train": {"file": "/x/preferences/train_prefs.jsonl", "sha256": "ef" * 32, "rows_used": 47},
            "eval": {"file": "/x/preferences/test_prefs.jsonl", "sha256": "cd" * 32, "rows_used": 9},
        },
        "heldout": dpo_heldout([0.5, 0.25, -0.1, 0.75, 1.0, 0.0, 0.3, 0.2, 0.4]),
    }
    record.update(changes)
    return record


# --------------------------------------------------------------------------- the record


def test_the_recipe_hash_names_the_recipe_as_run_not_its_key_order_or_its_secrets():
    recipe = {"stage": "dpo", "trainer": {"beta": 0.1, "learning_rate": 5e-5}}
    reordered = {"trainer": {"learning_rate": 5e-5, "beta": 0.1}, "stage": "dpo"}
    assert recipe_sha256(recipe) == recipe_sha256(reordered)
    assert recipe_sha256(recipe) != recipe_sha256({**recipe, "trainer": {"beta": 0.2, "learning_rate": 5e-5}})
    with_token = {**recipe, "trainer": {**recipe["trainer"], "hub_token": "hf_one"}}
    other_token = {**with_token, "trainer": {**with_token["trainer"], "hub_token": "hf_two"}}
    assert recipe_sha256(with_token) == recipe_sha256(other_token)


def test_the_data_record_hashes_local_files_and_names_hub_splits(tmp_path):
    folder = tmp_path / "prefs"
    folder.mkdir()
    (folder / "train_prefs.jsonl").write_text('{"a": 1}\n{"a": 2}\n\n')
    (folder / "test_prefs.jsonl").write_text('{"a": 3}\n')
    local = data_record({"stage": "dpo", "data_folder": str(folder)}, get_profile("cpu"), train=[1, 2], evaluation=[3])
    assert local["train"] == {
        "file": str(folder / "train_prefs.jsonl"),
        "sha256": hashlib.sha256(b'{"a": 1}\n{"a": 2}\n\n').hexdigest(),
        "rows_in_file": 2,
        "rows_used": 2,
    }
    assert local["eval"]["rows_used"] == 1 and local["eval"]["file"].endswith("test_prefs.jsonl")

    hub_recipe = {"stage": "sft", "dataset": {"name": "HuggingFaceH4/ultrachat_200k", "revision": "abc123"}}
    hub = {"hub_dataset": "HuggingFaceH4/ultrachat_200k", "revision": "abc123"}
    assert data_record(hub_recipe, get_profile("cpu"), train=range(5)) == {
        "train": {**hub, "split": "train_sft", "rows_used": 5},
        "eval": {**hub, "split": "test_sft", "rows_used": None},
    }


def test_reward_accuracy_is_the_wilson_interval_of_positive_margins():
    margins = [0.5, -0.25, 1.0, 0.0, 2.0]  # a tie (margin 0) ranks nothing: it is not a correct pair, as in TRL
    heldout = dpo_heldout(margins)
    accuracy = {k: heldout["reward_accuracy"][k] for k in ("estimate", "low", "high", "n", "method")}
    assert accuracy == wilson(3, 5).as_dict()
    assert heldout["reward_accuracy"]["interpretation"].endswith(
        "the interval covers chance (0.50): no evidence either way"
    )
    margin = {k: heldout["reward_margin"][k] for k in ("estimate", "low", "high", "n", "method")}
    assert margin == bootstrap(margins).as_dict() and margin["estimate"] == pytest.approx(0.65)
    confident = dpo_heldout([1.0] * 40)["reward_accuracy"]["interpretation"]
    assert "above chance (0.50): the policy prefers the chosen reply of unseen pairs" in confident
    assert dpo_heldout([]) == {}


def test_the_held_out_loss_is_the_trainers_eval_loss(tiny_model, zephyr_tokenizer, tmp_path):
    """Scored one dialogue at a time, the token-weighted loss equals TRL's eval_loss over one batch of them all."""
    from trl import SFTTrainer

    from zephyr_tutorial.pipelines.results import conversation_losses
    from zephyr_tutorial.sft import sft_config

    from samples import messages_dataset

    dataset = messages_dataset(4)
    profile = get_profile("cpu").with_overrides(load_in_4bit=False, sft_max_length=64)
    args = sft_config(profile, {}, tmp_path, per_device_eval_batch_size=4, report_to=[], disable_tqdm=True)
    trainer = SFTTrainer(
        model=tiny_model, args=args, train_dataset=dataset, eval_dataset=dataset, processing_class=zephyr_tokenizer
    )
    trl_loss = trainer.evaluate()["eval_loss"]
    messages = [row["messages"] for row in dataset]
    sums, counts = conversation_losses(tiny_model, zephyr_tokenizer, messages, max_length=64)
    assert len(sums) == 4 and all(count > 0 for count in counts)
    assert sum(sums) / sum(counts) == pytest.approx(trl_loss, rel=1e-4)
    every_token, _ = conversation_losses(tiny_model, zephyr_tokenizer, messages, max_length=64, assistant_only=False)
    assert sum(every_token) > sum(sums)  # the prompt tokens count too


# --------------------------------------------------------------------------- the model card


def test_the_model_card_shows_the_base_data_hyperparameters_intervals_paper_numbers_and_limitations(tmp_path):
    from huggingface_hub import ModelCard

    record = write_results(tmp_path, record_of_a_run())
    card = ModelCard.load(tmp_path / "README.md")  # the Hub's own parser reads it back
    assert card.data.base_model == EMBEDDED_MODEL_HUB_ID and card.data.library_name == "peft"
    assert card.data.datasets is None and "dpo" in card.data.tags  # local files: no hub dataset to link
    text = card.text
    assert "A QLoRA adapter (4-bit base) for HuggingFaceTB/SmolLM2-135M-Instruct" in text
    assert "| `beta` | 0.1 |" in text and "| `learning_rate` | 5e-05 |" in text and "| train loss | 0.6123 |" in text
    accuracy = record["heldout"]["reward_accuracy"]
    assert accuracy["n"] == 9 and accuracy["estimate"] == pytest.approx(7 / 9)
    row = f"| {accuracy['estimate']:.3f} | {accuracy['low']:.3f} to {accuracy['high']:.3f} | 9 | Wilson |"
    assert row in text and accuracy["interpretation"] in text
    assert "| MT-Bench (GPT-4 as judge, 1-10) | 7.34 | not measured |" in text
    assert "| AlpacaEval (win rate against text-davinci-003) | 90.60% | not measured |" in text
    assert "| eval | `test_prefs.jsonl` | 9 | `cdcdcdcdcdcdcdcd…` |" in text and "abababababababab" in text
    assert "135M-parameter stand-in for Mistral-7B" in text and "rule-based judge" in text

    hub_data = {"hub_dataset": "HuggingFaceH4/ultrafeedback_binarized", "rows_used": 2000}
    mistral = model_card(
        record_of_a_run(
            base_model={"name_or_path": "mistralai/Mistral-7B-v0.1", "hub_id": "mistralai/Mistral-7B-v0.1"},
            data={"train": {**hub_data, "split": "train_prefs"}, "eval": {**hub_data, "split": "test_prefs"}},
        )
    )
    assert mistral.data.base_model == "mistralai/Mistral-7B-v0.1"
    assert mistral.data.datasets == ["HuggingFaceH4/ultrafeedback_binarized"] and "split `train_prefs`" in mistral.text
    assert "stand-in" not in mistral.text and "rule-based judge" not in mistral.text
    local_base = model_card(record_of_a_run(base_model={"name_or_path": "/models/mine", "hub_id": None}))
    assert local_base.data.base_model is None  # the Hub rejects a base_model that is not a hub id


def test_a_metric_measured_later_joins_the_record_and_the_card(tmp_path):
    write_results(tmp_path, record_of_a_run(stage="sft", heldout={}))
    assert "none were\nmeasured" in (tmp_path / "README.md").read_text()
    stop_rate = wilson(7, 10)
    add_heldout_result(tmp_path, "stop_rate", stop_rate, "answers that end with EOS within 96 tokens")
    record = read_results(tmp_path)
    assert record["heldout"]["stop_rate"] == heldout_entry(stop_rate, "answers that end with EOS within 96 tokens")
    assert (
        "| answers that end with EOS within 96 tokens | 0.700 | 0.397 to 0.892 | 10 | Wilson |"
        in (tmp_path / "README.md").read_text()
    )


# --------------------------------------------------------------------------- the Hub, up to the network


def finished_folder(tmp_path):
    folder = tmp_path / "final"
    folder.mkdir()
    write_results(folder, record_of_a_run())
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    (folder / "adapter_config.json").write_text("{}")
    (folder / "training_args.bin").write_bytes(b"a pickle that holds every training argument")
    (folder / "runs" / "20260101-000000-000000").mkdir(parents=True)
    (folder / "runs" / "20260101-000000-000000" / "events.out.tfevents.1.host.1.0").write_bytes(b"events")
    return folder


def test_push_creates_the_repo_and_uploads_the_folder_without_pickles(tmp_path, hub):
    folder = finished_folder(tmp_path)
    expected = [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "results.json",
        "runs/20260101-000000-000000/events.out.tfevents.1.host.1.0",
    ]
    assert upload_files(folder) == expected
    url = push_to_hub(folder, "someone/smollm2-zephyr-dpo", private=True)
    assert url == "https://huggingface.co/someone/smollm2-zephyr-dpo"
    (_, _, init), (_, repo, created), (_, _, uploaded) = hub.calls
    assert init == {} and repo == ("someone/smollm2-zephyr-dpo",)  # the token is huggingface_hub's, never ours
    assert created == {"repo_type": "model", "private": True, "exist_ok": True}
    assert uploaded["repo_id"] == "someone/smollm2-zephyr-dpo" and uploaded["folder_path"] == str(folder)
    assert uploaded["repo_type"] == "model" and uploaded["ignore_patterns"] == UPLOAD_IGNORE
    assert uploaded["sent"] == expected and "dpo adapter" in uploaded["commit_message"]
    assert "token" not in uploaded and all("token" not in kwargs for _, _, kwargs in hub.calls)


def test_push_refuses_without_a_login_a_finished_run_or_a_clean_folder(tmp_path, hub, monkeypatch):
    import huggingface_hub

    folder = finished_folder(tmp_path)
    (folder / "notes.txt").write_text(f"token={FAKE_TOKEN}")
    with pytest.raises(RuntimeError, match="notes.txt contains a secret"):
        push_to_hub(folder, "someone/x")
    with pytest.raises(FileNotFoundError, match="no results.json"):
        push_to_hub(tmp_path, "someone/x")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubLoginError, match="hf auth login"):
        push_to_hub(folder, "someone/x")
    assert hub.calls == []


# --------------------------------------------------------------------------- the commands


def test_sft_and_dpo_commands_leave_results_a_model_card_and_a_tracker_log_beside_the_adapter(
    tiny_model_dir, tmp_path, capsys, hub
):
    from zephyr_tutorial.cli import main

    sft_dir, dpo_dir = tmp_path / "sft", tmp_path / "dpo"
    sft = [*sft_command(tiny_model_dir, sft_dir), "--sft_max_length", "512", "--push-to-hub", "someone/tiny-sft"]
    assert main(sft) == 0
    out = capsys.readouterr().out
    assert "[sft] TensorBoard log: " + str(sft_dir / "runs") in out
    assert f"pushed {sft_dir / 'final'} to https://huggingface.co/someone/tiny-sft" in out
    record = read_results(sft_dir / "final")
    assert record["stage"] == "sft" and record["recipe_sha256"] and record["recipe"]["profile"] == "cpu"
    assert record["data"]["train"]["file"].endswith("train_sft.jsonl") and len(record["data"]["train"]["sha256"]) == 64
    assert record["heldout"]["eval_loss"]["n"] == record["data"]["eval"]["rows_used"] > 0
    assert read_tracked_scalars(sft_dir / "final", ["train/loss"])["train/loss"]["step"] == [1, 2]
    uploaded = next(kwargs for name, _, kwargs in hub.calls if name == "upload_folder")
    assert uploaded["folder_path"] == str(sft_dir / "final") and "training_args.bin" not in uploaded["sent"]
    assert {"README.md", "results.json", "adapter_model.safetensors"} <= set(uploaded["sent"])
    assert any(name.startswith("runs/") and ".tfevents." in name for name in uploaded["sent"])

    assert main(dpo_command(tiny_model_dir, sft_dir / "final", dpo_dir)) == 0
    assert "[dpo] TensorBoard log: " in capsys.readouterr().out
    record = read_results(dpo_dir / "final")
    accuracy = record["heldout"]["reward_accuracy"]
    assert accuracy["n"] == 2 and accuracy["method"] == "Wilson" and accuracy["low"] <= accuracy["estimate"]
    assert record["metrics"]["eval_rewards/accuracies"] == pytest.approx(accuracy["estimate"])  # TRL agrees
    card = (dpo_dir / "final" / "README.md").read_text()
    assert "implicit-reward accuracy" in card and "7.34" in card
    tracked = read_tracked_scalars(dpo_dir / "final", ["train/loss", "eval/rewards/accuracies"])
    assert tracked["train/loss"]["step"] == [1, 2] and tracked["eval/rewards/accuracies"]["step"] == [2]
    for path in [*(sft_dir / "final").rglob("*"), *(dpo_dir / "final").rglob("*")]:
        if path.is_file() and path.name != "training_args.bin":
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path


def test_push_without_a_login_stops_before_training(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    from zephyr_tutorial.cli import main

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    out = tmp_path / "never"
    assert main(["sft", "--config", str(RECIPES["sft_cpu"]), "--out", str(out), "--push-to-hub", "someone/x"]) == 2
    assert "error: not logged in to the Hugging Face Hub" in capsys.readouterr().err and not out.exists()
