"""The built wheel carries the data and the recipes: installed outside a checkout, run from elsewhere, it loads them.

This is how Colab gets the package (``pip install "zephyr-tutorial @ git+..."``, then any notebook from any working
directory). The wheel is built from a copy of the sources (the checkout stays untouched), installed with
``--target`` into a temporary folder, and imported from there by a fresh interpreter whose working directory is
outside any checkout; the dependencies come from this virtual environment. Besides the loaders, the cells of
notebooks 01-05 themselves run with that install on the cpu profile, each notebook up to its first long step
(:data:`FIRST_LONG_STEP`: the first training, generation or evaluation loop).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from zephyr_tutorial.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "zephyr_tutorial", "data")

# Run by the installed package, outside the checkout. argv: the install folder, the checkout's data folder and the
# data files (relative paths) that the checkout holds right now.
NOTEBOOK_DATA_PATHS = r"""
import json, sys
from pathlib import Path

site, checkout_data, expected = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
import zephyr_tutorial
from zephyr_tutorial.runtime import data_dir

assert Path(zephyr_tutorial.__file__).is_relative_to(site), zephyr_tutorial.__file__
data = data_dir()
assert data == site / "zephyr_tutorial" / "_data", data
shipped = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
assert shipped == sorted(expected), sorted(set(expected) ^ set(shipped))
for name in expected:  # the same bytes as the checkout's data/: one canonical copy, copied at build time
    assert (data / name).read_bytes() == (checkout_data / name).read_bytes(), name

from zephyr_tutorial.data import read_jsonl
counts = {name: len(read_jsonl(data / name)) for name in expected if name.endswith(".jsonl")}  # every file parses

# what the notebooks read, with their own loaders
from zephyr_tutorial.evaluation import load_human_labels, load_mc_items, load_pairwise_items
from zephyr_tutorial.generation.datasets import load_seed_prompts
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.schemas import find_preference_files, preference_splits, read_preferences, read_sft_rows
from zephyr_tutorial.schemas import sft_splits

pairs = load_pairwise_items(data / "pairwise_eval.jsonl")
loaded = {
    "mc_questions.jsonl": len(load_mc_items(data / "mc_questions.jsonl")),
    "pairwise_eval.jsonl": len(pairs),
    "human_labels.jsonl": len(load_human_labels(data / "human_labels.jsonl", known_ids=[p.id for p in pairs])),
    "seed_prompts.jsonl": len(load_seed_prompts(data / "seed_prompts.jsonl")),
    "preference_prompts.jsonl": len(read_jsonl(data / "preference_prompts.jsonl", {"id": str, "prompt": str})),
    "sft/train_sft.jsonl": len(read_sft_rows(data / "sft" / "train_sft.jsonl")),
    "sft/test_sft.jsonl": len(read_sft_rows(data / "sft" / "test_sft.jsonl")),
}
train, test = find_preference_files()  # no notebook 04 output here: the shipped pairs
assert train == data / "preferences" / "train_prefs.jsonl", train
loaded["preferences/train_prefs.jsonl"] = len(read_preferences(train))
loaded["preferences/test_prefs.jsonl"] = len(read_preferences(test))
if "verifiable_prompts.jsonl" in expected:
    from zephyr_tutorial.evaluation import default_catalog
    loaded["verifiable_prompts.jsonl"] = len(default_catalog())
cpu = get_profile("cpu")
splits = {
    "sft": {k: len(v) for k, v in sft_splits(cpu).items()},
    "dpo": {k: len(v) for k, v in preference_splits(cpu).items()},
}

from zephyr_tutorial.recipes import load_recipe, shipped_recipes
recipes = {p.stem: load_recipe(p)["stage"] for p in shipped_recipes()}
assert all(Path(p).is_relative_to(site) for p in shipped_recipes())
print(json.dumps({"counts": counts, "loaded": loaded, "splits": splits, "recipes": recipes}))
"""


def _copy_sources(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "_data")
    target.mkdir(parents=True)
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)
    return target


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-deps", "--no-index", "--quiet", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> tuple[Path, Path]:
    """``(wheel, install folder)``: built without build isolation (this venv's setuptools), installed with --target."""
    work = tmp_path_factory.mktemp("packaging")
    sources = _copy_sources(work / "src")
    _pip("wheel", "--no-build-isolation", "--wheel-dir", str(work / "dist"), f"{sources}{os.sep}")
    (wheel,) = (work / "dist").glob("zephyr_tutorial-*.whl")
    _pip("install", "--target", str(work / "site"), str(wheel))
    return wheel, work / "site"


def _data_files() -> list[str]:
    """Every file under the checkout's data/ now (others add files there: nothing is hard-coded)."""
    data = ROOT / "data"
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_the_wheel_carries_every_package_file_and_the_data_and_no_tests(installed_wheel):
    wheel, _ = installed_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"zephyr_tutorial/_data/{name}" for name in _data_files()} <= names
    package = ROOT / "zephyr_tutorial"  # code, recipes, templates: whatever the package reads from its own folder
    files = {p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    missing = sorted(str(p.relative_to(ROOT)) for p in files if str(p.relative_to(ROOT)) not in names)
    assert not missing, f"not in the wheel (add them to [tool.setuptools.package-data]): {missing}"
    assert not any(name.startswith(("tests/", "notebooks/", "data/")) for name in names)


def test_the_installed_package_loads_every_data_file_and_recipe_from_anywhere(installed_wheel, tmp_path):
    _, site = installed_wheel
    elsewhere = tmp_path / "elsewhere"  # no pyproject.toml, no notebooks/, no data/ anywhere above it
    elsewhere.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "ZEPHYR_OUTPUT_DIR": str(tmp_path / "outputs"),
        "OMP_NUM_THREADS": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    files = _data_files()
    result = subprocess.run(
        [sys.executable, "-c", NOTEBOOK_DATA_PATHS, str(site), str(ROOT / "data"), json.dumps(files)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["counts"]) == {name for name in files if name.endswith(".jsonl")}
    assert all(count > 0 for count in report["counts"].values()), report["counts"]
    seeds = report["loaded"].pop("seed_prompts.jsonl")  # the loader keeps the seeds of the known sectors
    assert 0 < seeds <= report["counts"]["seed_prompts.jsonl"]
    for name, count in report["loaded"].items():  # the notebooks' loaders read every row the file has
        assert count == report["counts"][name], (name, count)
    cap = get_profile("cpu").data.max_train_samples
    assert report["splits"]["dpo"]["train"] == min(cap, report["counts"]["preferences/train_prefs.jsonl"])
    assert report["splits"]["sft"]["train"] > 0 and report["splits"]["sft"]["test"] > 0
    shipped = sorted(p.stem for p in (ROOT / "zephyr_tutorial" / "recipes").glob("*.yaml"))
    assert sorted(report["recipes"]) == shipped


# The first cell of a notebook that trains, generates or evaluates at length: the cells before it are the setup,
# the data loading and the model loading that crashed on Colab when data/ was not package data.
FIRST_LONG_STEP = re.compile(
    r"\b(train_sft|train_dpo|ensure_sft_adapter|compare_with_trl|run_pool|generate_ultrachat|evaluate_multiple_choice)\("
)
NOTEBOOKS = ("01_evaluation", "02_synthetic_data", "03_sft_qlora", "04_ai_feedback", "05_dpo")

# Run by the installed package, outside the checkout, as a reader's kernel runs cells (IPython, so that the Colab
# cell's shell escapes parse). argv: the install folder, then {notebook: [cell sources]} as JSON.
RUN_NOTEBOOK_CELLS = r"""
import json, sys
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

site, notebooks = Path(sys.argv[1]), json.loads(sys.argv[2])
shell = InteractiveShell.instance()
ran = {}
for name, cells in notebooks.items():
    shell.reset(new_session=False)  # each notebook starts from an empty namespace, as a fresh kernel does
    for index, source in enumerate(cells):
        result = shell.run_cell(source, silent=True)
        if not result.success:
            error = result.error_in_exec or result.error_before_exec
            raise SystemExit(f"{name}, code cell {index} failed: {type(error).__name__}: {error}\n{source}")
    import zephyr_tutorial
    from zephyr_tutorial.runtime import data_dir
    assert Path(zephyr_tutorial.__file__).is_relative_to(site), zephyr_tutorial.__file__
    assert data_dir().is_relative_to(site), data_dir()
    profile = shell.user_ns.get("profile")
    ran[name] = {"cells": len(cells), "profile": getattr(profile, "name", None)}
print(json.dumps(ran))
"""


def _cells_before_the_first_long_step(name: str) -> list[str]:
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    stop = next((i for i, source in enumerate(sources) if FIRST_LONG_STEP.search(source)), None)
    assert stop is not None, f"{name}: no cell matches FIRST_LONG_STEP; update it to the notebook's first long step"
    return sources[:stop]


def test_notebooks_01_to_05_run_up_to_their_first_long_step_with_the_installed_wheel(
    installed_wheel, embedded_model_dir, tmp_path
):
    _, site = installed_wheel
    notebooks = {name: _cells_before_the_first_long_step(name) for name in NOTEBOOKS}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "ZEPHYR_PROFILE": "cpu",
        "ZEPHYR_TUTORIAL_MODEL": str(embedded_model_dir),
        "ZEPHYR_OUTPUT_DIR": str(tmp_path / "outputs"),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN_NOTEBOOK_CELLS, str(site), json.dumps(notebooks)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    ran = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(ran) == list(NOTEBOOKS)
    for name, report in ran.items():
        # the Colab cell, the setup cell (profile) and at least one cell that reads the data or loads the model
        assert report["cells"] >= 3 and report["profile"] == "cpu", (name, report)
