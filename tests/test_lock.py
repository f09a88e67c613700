"""requirements/lock.txt: the exact versions that pass `make test`, and every install path uses it.

``make lock`` writes the lock, ``make setup`` installs with it as pip constraints, and so do environment.yml and
the Colab install cell of each notebook. These tests check that the virtual environment running them holds the
locked versions, that the lock pins the CPU build of torch and satisfies pyproject.toml's ranges, and that every
install path reads it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
_spec = importlib.util.spec_from_file_location("lock_diff", ROOT / "tools" / "lock_diff.py")
lock_diff = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_diff)
read_pins, version_changes = lock_diff.read_pins, lock_diff.version_changes


@pytest.fixture(scope="module")
def pins() -> dict[str, tuple[str, str]]:
    return read_pins(LOCK)


def test_lock_is_plain_pins_from_a_freeze(pins):
    lines = [line for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == len(pins) > 100  # read_pins rejected anything but name==version (no URL, no -e)
    assert not any(canonicalize_name(name) == "zephyr-tutorial" for name, _ in pins.values()), "the package itself"
    for tool in ("pip", "setuptools", "wheel"):  # the build tools are pinned too (DeepSpeed builds from source)
        assert tool in pins


def test_installed_versions_equal_the_lock(pins):
    """Every locked package that this environment has is at the locked version (`make setup` installs them so)."""
    mismatches, installed = [], 0
    for name, locked in pins.values():
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        installed += 1
        if Version(version) != Version(locked):
            mismatches.append(f"{name}: installed {version}, locked {locked}")
    assert installed > 0.9 * len(pins), f"only {installed} of {len(pins)} locked packages are installed here"
    assert not mismatches, (
        f"{len(mismatches)} package(s) differ from {LOCK.relative_to(ROOT)} "
        "(`make setup` installs the lock; `make lock` rewrites it):\n  " + "\n  ".join(mismatches)
    )


def test_lock_pins_torch_to_the_cpu_build(pins):
    _, locked = pins["torch"]
    assert locked.endswith("+cpu"), f"torch=={locked} is not the CPU build; a CUDA build costs several GB"
    torch_spec = re.search(r"^TORCH_SPEC \?= torch==(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert torch_spec and Version(locked).public == torch_spec[1], "Makefile's TORCH_SPEC and the lock disagree"
    assert not any(name.startswith("nvidia-") or name == "triton" for name in pins), "CUDA runtime wheels locked"


def test_lock_satisfies_the_ranges_of_pyproject(pins):
    """Each direct requirement (core, dev, serving) is locked, at a version its range allows."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    problems = []
    for spec in project["dependencies"] + extras["dev"] + extras["serving"]:
        requirement = Requirement(spec)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        locked = pins.get(canonicalize_name(requirement.name))
        if locked is None:
            problems.append(f"{spec}: not in the lock (run `make lock`)")
        elif not requirement.specifier.contains(locked[1], prereleases=True):
            problems.append(f"{spec}: locked at {locked[1]}")
    assert not problems, "\n".join(problems)


def test_every_install_path_reads_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK ?= requirements/lock.txt" in makefile
    assert "$(call install,$(VENV),-c $(LOCK))" in makefile  # make setup
    install = makefile.split("define install", 1)[1].split("endef", 1)[0]
    assert install.count("pip install --quiet $(2)") == 5  # every pip install of the sequence takes the constraints

    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-c requirements/lock.txt" in pip_section

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        source = "".join(json.loads(path.read_text())["cells"][1]["source"])
        assert source.splitlines()[1].startswith('if "google.colab" in sys.modules:'), path.name
        assert "/main/requirements/lock.txt" in source and '-c /tmp/zephyr-lock.txt "zephyr-tutorial @ git+' in source
        assert 'grep -v "^torch=="' in source, f"{path.name}: Colab must keep its own CUDA torch"


def test_version_changes_lists_changed_added_and_removed():
    locked = {"torch": ("torch", "2.13.0+cpu"), "trl": ("trl", "1.16.0"), "gone": ("gone", "1.0")}
    frozen = {"torch": ("torch", "2.13.0+cpu"), "trl": ("trl", "1.17.0"), "new": ("new", "0.1")}
    assert version_changes(locked, frozen) == {
        "changed": ["trl 1.16.0 -> 1.17.0"],
        "added": ["new 0.1"],
        "removed": ["gone 1.0"],
    }


def test_junit_summary_names_the_broken_tests(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text("""<testsuites><testsuite>
      <testcase classname="tests.test_a" name="test_ok"/>
      <testcase classname="tests.test_a" name="test_bad"><failure message="assert 1 == 2">...</failure></testcase>
      <testcase classname="tests.test_b" name="test_boom"><error message="ImportError: trl">...</error></testcase>
      <testcase classname="tests.test_b" name="test_gpu"><skipped message="no GPU"/></testcase>
    </testsuite></testsuites>""")
    counts, broken = lock_diff.junit_summary(report)
    assert counts == {"passed": 1, "failed": 1, "errors": 1, "skipped": 1}
    assert broken == [
        "tests/test_a.py::test_bad (failure): assert 1 == 2",
        "tests/test_b.py::test_boom (error): ImportError: trl",
    ]


def test_upgrade_check_report_names_the_changed_versions_and_the_broken_tests(tmp_path, capsys):
    """What `make upgrade-check` prints last (tools/lock_diff.py LOCK FREEZE --junit REPORT), and its exit status."""
    lock, freeze, report = tmp_path / "lock.txt", tmp_path / "freeze.txt", tmp_path / "junit.xml"
    lock.write_text("# the lock\ntorch==2.13.0+cpu\ntrl==1.16.0\n")
    freeze.write_text("torch==2.13.0+cpu\ntrl==1.17.0\n")
    report.write_text("""<testsuites><testsuite>
      <testcase classname="tests.test_dpo_training" name="test_x"><failure message="TypeError: beta"/></testcase>
      <testcase classname="tests.test_dpo_training" name="test_y"/>
    </testsuite></testsuites>""")
    assert lock_diff.main([str(lock), str(freeze), "--junit", str(report)]) == 1
    out = capsys.readouterr().out
    assert "1 difference(s)" in out and "changed (1):\n  trl 1.16.0 -> 1.17.0" in out
    assert "1 passed, 1 failed, 0 errors, 0 skipped" in out
    assert "broke with these versions (1):\n  tests/test_dpo_training.py::test_x (failure): TypeError: beta" in out

    report.write_text('<testsuites><testsuite><testcase classname="tests.test_a" name="t"/></testsuite></testsuites>')
    assert lock_diff.main([str(lock), str(freeze), "--junit", str(report)]) == 0
    assert "no test broke: `make lock UPGRADE=1` adopts these versions" in capsys.readouterr().out
    assert lock_diff.main([str(lock), str(freeze), "--junit", str(tmp_path / "missing.xml")]) == 1
    assert "pytest did not run to the end" in capsys.readouterr().out
