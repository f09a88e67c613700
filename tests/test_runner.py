import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from zephyr_tutorial.cli import main
from zephyr_tutorial.runner import run_series, series_notebooks


def _write(path, *sources):
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)


def test_series_runs_in_order_with_a_shared_output_folder(tmp_path):
    notebooks, out = tmp_path / "nbs", tmp_path / "out"
    notebooks.mkdir()
    _write(
        notebooks / "01_write.ipynb",
        "import os, pathlib\n(pathlib.Path(os.environ['ZEPHYR_OUTPUT_DIR']) / 'stage1.txt').write_text('from 01')",
    )
    _write(
        notebooks / "02_read.ipynb",
        "import os, pathlib\nprint((pathlib.Path(os.environ['ZEPHYR_OUTPUT_DIR']) / 'stage1.txt').read_text())",
    )
    (notebooks / "scratch.ipynb").write_text("not a series notebook")
    assert [p.name for p in series_notebooks(notebooks)] == ["01_write.ipynb", "02_read.ipynb"]

    timings = run_series(notebooks, out)
    assert list(timings) == ["01_write.ipynb", "02_read.ipynb"]
    executed = nbformat.read(out / "notebooks" / "02_read.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "from 01\n"
    assert nbformat.read(notebooks / "02_read.ipynb", as_version=4).cells[0].outputs == [], "sources stay untouched"


def test_a_failing_cell_fails_the_command_and_keeps_the_evidence(tmp_path, capsys):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    _write(notebooks / "00_fail.ipynb", "print('before')", "raise ValueError('boom')")
    assert main(["run-notebooks", "--notebooks", str(notebooks), "--out", str(tmp_path / "out")]) == 1
    assert "a notebook cell failed" in capsys.readouterr().err
    executed = nbformat.read(tmp_path / "out" / "notebooks" / "00_fail.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["ename"] == "ValueError"
