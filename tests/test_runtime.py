import random

import torch

from zephyr_tutorial import runtime


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


def test_data_dir_is_the_checkout_data_folder():
    assert (runtime.data_dir().parent / "pyproject.toml").is_file()


def test_seed_everything_repeats_random_streams():
    runtime.seed_everything(3)
    first = (random.random(), torch.rand(2).tolist())
    runtime.seed_everything(3)
    assert (random.random(), torch.rand(2).tolist()) == first


def test_measure_sees_memory_and_time():
    with runtime.measure() as measured:
        block = bytearray(64 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    assert measured.seconds > 0
    assert measured.rss_added_mb > 32
    assert runtime.peak_rss_mb() >= measured.rss_after_mb - 1


def test_environment_report_names_the_versions():
    report = runtime.describe_environment()
    rows = dict(report.as_rows())
    assert rows["torch"] == torch.__version__
    assert rows["device"].startswith("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.in_colab() is False
