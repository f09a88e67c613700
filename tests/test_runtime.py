import logging
import mmap
import random
import sys
import types
from pathlib import Path

import torch

from zephyr_tutorial import runtime
from zephyr_tutorial.profiles import get_profile


def test_output_dir_follows_the_environment_and_creates_subfolders(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.OUTPUT_ENV_VAR, str(tmp_path / "artifacts"))
    path = runtime.output_dir("sft", "adapter")
    assert path == tmp_path / "artifacts" / "sft" / "adapter" and path.is_dir()


def test_output_dir_defaults_to_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv(runtime.OUTPUT_ENV_VAR, raising=False)
    checkout = tmp_path / "checkout"
    (checkout / "notebooks").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.chdir(checkout / "notebooks")  # where a notebook kernel starts
    assert runtime.output_dir() == checkout / "outputs"
    assert runtime.project_root() == checkout


def test_data_dir_is_the_checkout_data_folder_from_any_working_directory(tmp_path, monkeypatch):
    checkout = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # this package runs from the checkout: its data/, wherever the kernel starts
    assert runtime.data_dir() == checkout / "data"
    # an installed copy (no checkout around it) is tested for real in tests/test_packaging.py


def test_hub_login_does_nothing_on_the_cpu_profile(monkeypatch, capsys):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "login", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_cpu")
    message = runtime.hub_login(get_profile("cpu"))
    assert calls == [] and "no login needed" in message and "hf_fake" not in capsys.readouterr().out


def test_hub_login_hands_the_environment_token_to_huggingface_hub_and_never_shows_it(monkeypatch, capsys, caplog):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "login", lambda *a, **k: calls.append(k))
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_0123456789")
    caplog.set_level(logging.DEBUG)
    message = runtime.hub_login(get_profile("t4"))
    assert calls == [{"token": "hf_fake_token_0123456789", "add_to_git_credential": False, "skip_if_logged_in": False}]
    assert message == "logged in to the Hugging Face Hub with the token from $HF_TOKEN"
    captured = capsys.readouterr()
    assert "hf_fake_token" not in captured.out + captured.err + caplog.text + message


def test_hub_login_reads_the_colab_secret_or_explains_what_to_do(monkeypatch, capsys):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "login", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)  # no token saved by an earlier login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    message = runtime.hub_login(get_profile("gpu24"), interactive=False)
    assert calls == [] and "no Hugging Face token: set $HF_TOKEN" in message and "gated" in message
    # in Colab: the notebook's secret, read through google.colab.userdata
    colab = types.ModuleType("google.colab")
    colab.userdata = types.SimpleNamespace(get=lambda name: {"HF_TOKEN": "hf_colab_secret_42"}[name])
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", colab.userdata)
    message = runtime.hub_login(get_profile("gpu24"))
    assert calls[-1]["token"] == "hf_colab_secret_42" and "the Colab secret HF_TOKEN" in message
    assert "hf_colab" not in capsys.readouterr().out


def test_seed_everything_repeats_random_streams():
    runtime.seed_everything(3)
    first = (random.random(), torch.rand(2).tolist())
    runtime.seed_everything(3)
    assert (random.random(), torch.rand(2).tolist()) == first


def test_measure_sees_memory_and_time():
    with runtime.measure() as measured:
        # A fresh anonymous mapping: its pages cannot be ones the allocator already
        # holds resident from earlier tests, so touching them must grow the RSS.
        block = mmap.mmap(-1, 64 * 1024 * 1024)
        for offset in range(0, len(block), 4096):
            block[offset] = 1
    assert measured.seconds > 0
    assert measured.rss_added_mb > 32
    assert runtime.peak_rss_mb() >= measured.rss_after_mb - 1


def test_environment_report_names_the_versions():
    report = runtime.describe_environment()
    rows = dict(report.as_rows())
    assert rows["torch"] == torch.__version__
    assert rows["device"].startswith("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.in_colab() is False
