"""environment.yml and pyproject.toml must ask for the same packages."""

from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_environment_yml_pip_section_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = (
        project["dependencies"] + project["optional-dependencies"]["dev"] + project["optional-dependencies"]["serving"]
    )
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = [r for r in pip_section if not r.startswith("-")]  # less options: -e ., -c lock, index URLs
    assert sorted(map(_normalise, listed)) == sorted(map(_normalise, wanted))
    assert "python=3.11" in environment["dependencies"]


def test_python_floor_and_gpu_extras_are_optional():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    core = " ".join(project["dependencies"])
    for gpu_only in ("vllm", "deepspeed", "flash-attn"):
        assert gpu_only not in core
        assert any(r.startswith(gpu_only) for r in project["optional-dependencies"]["gpu"])
