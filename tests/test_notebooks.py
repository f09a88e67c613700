"""Checks on the committed notebooks and on how nbval compares them."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SERIES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def _output_text(output):
    if output.output_type == "stream":
        return output.text
    return "\n".join(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))


def test_the_series_is_numbered_from_00_to_05():
    assert [p.name[:2] for p in SERIES] == ["00", "01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", SERIES, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_order_without_errors(path):
    counts = [c.execution_count for c in _code_cells(path)]
    assert None not in counts, f"{path.name}: some code cells were never executed"
    assert counts == sorted(counts), f"{path.name}: cells were executed out of order"
    errors = [o for c in _code_cells(path) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: committed with an error output: {errors[0].get('ename')}"


@pytest.mark.parametrize("path", SERIES, ids=lambda p: p.name)
def test_committed_outputs_hold_no_secret_and_no_colab_cell_runs_here(path):
    key_pattern = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,})")
    for cell in _code_cells(path):
        for output in cell.outputs:
            assert not key_pattern.search(_output_text(output)), f"{path.name}: an output looks like an API key"
        if "google.colab" in cell.source or "!pip" in cell.source:
            assert 'if "google.colab" in sys.modules' in cell.source, f"{path.name}: unguarded Colab-only cell"


def _run_nbval(folder):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "--rootdir",
            str(folder),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _checked_notebook(path, code, committed_outputs):
    cell = new_code_cell("# NBVAL_CHECK_OUTPUT\n" + code, execution_count=1, outputs=committed_outputs)
    nbformat.write(new_notebook(cells=[cell]), path)


def test_nbval_compares_stdout_but_not_library_warnings_on_stderr(tmp_path):
    shutil.copy(NOTEBOOKS / "conftest.py", tmp_path / "conftest.py")
    code = "import sys\nprint('42')\nprint('/some/venv/site-packages/x.py:1: FutureWarning', file=sys.stderr)"
    _checked_notebook(
        tmp_path / "same_stdout.ipynb",
        code,
        [
            new_output("stream", name="stdout", text="42\n"),
            new_output("stream", name="stderr", text="/other/venv/site-packages/x.py:1: FutureWarning\n"),
        ],
    )
    _checked_notebook(tmp_path / "other_stdout.ipynb", code, [new_output("stream", name="stdout", text="41\n")])
    result = _run_nbval(tmp_path)
    report = result.stdout + result.stderr
    assert "1 failed, 1 passed" in report, report
    assert "other_stdout.ipynb::Cell 0" in report
