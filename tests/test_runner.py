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


def test_executed_notebooks_keep_only_final_progress_and_no_machine_path(tmp_path):
    notebooks, out = tmp_path / "nbs", tmp_path / "out"
    notebooks.mkdir()
    _write(
        notebooks / "00_progress.ipynb",
        "from tqdm.auto import tqdm\nfor _ in tqdm(range(5), desc='work'): pass\n"
        "for _ in tqdm(range(3), desc='hidden', leave=False): pass",
        "import sys\nsys.stderr.write('step 1\\rstep 2\\rstep 3\\ndone\\n')",
        "import os, pathlib\nprint(os.environ['ZEPHYR_OUTPUT_DIR'] + '/sft/run')\n"
        "print(pathlib.Path.home() / '.cache')",
    )
    run_series(notebooks, out)
    cells = nbformat.read(out / "notebooks" / "00_progress.ipynb", as_version=4).cells
    (bar,) = cells[0].outputs  # the leave=False bar was closed: nothing is left to show
    assert "application/vnd.jupyter.widget-view+json" in bar.data
    assert bar.data["text/plain"].startswith("work: 100%|██████████| 5/5 [")
    assert cells[1].outputs[0].text == "step 3\ndone\n"
    assert cells[2].outputs[0].text == "$ZEPHYR_OUTPUT_DIR/sft/run\n~/.cache\n"


def test_a_widget_bar_without_saved_state_is_dropped_and_its_final_line_read_from_the_state():
    from zephyr_tutorial.runner import final_progress_text, tidy_notebook

    def model(name, **state):
        return {"model_name": name, "state": state}

    models = {
        "box": model("HBoxModel", children=["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]),
        "l": model("HTMLModel", value="Loading\u2007weights:\u2007100%"),
        "p": model("FloatProgressModel", value=272.0, max=272.0),
        "r": model("HTMLModel", value="\u2007272/272\u2007[00:00&lt;00:00,\u20074741.71it/s]"),
    }
    assert final_progress_text(models, "box") == "Loading weights: 100%|██████████| 272/272 [00:00<00:00, 4741.71it/s]"
    assert final_progress_text(models, "l") is None
    bar = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "x:   0%|          | 0/9 [00:00<?]"}}
    bar["data"]["application/vnd.jupyter.widget-view+json"] = {"model_id": "gone"}
    notebook = new_notebook(cells=[new_code_cell("", outputs=[nbformat.from_dict(bar)])])
    assert tidy_notebook(notebook).cells[0].outputs == []


def _trainer_html(columns, rows):
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in rows)
    return (
        "<div><progress value='30' max='30'></progress> [30/30 14:17, Epoch 1/2]</div>"
        f'<table border="1" class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>'
    )


def test_trainer_tables_keep_the_key_columns_and_a_few_rows():
    from zephyr_tutorial.runner import TRAINER_MAX_ROWS, compact_trainer_table

    columns = ["Step", "Training Loss", "Validation Loss", "Entropy", "Num Tokens", "Logits/chosen"]
    columns += ["Rewards/chosen", "Rewards/accuracies", "Rewards/margins", "Logps/chosen"]
    rows = [[str(step), f"{1 / step:.6f}", f"{2 / step:.6f}"] + ["4087.000000"] * 7 for step in range(1, 31)]
    compact_html, text = compact_trainer_table(_trainer_html(columns, rows))
    lines = text.splitlines()
    assert lines[0] == "[30/30 14:17, Epoch 1/2]"
    header = ["Step", "Training", "Loss", "Validation", "Loss", "Rewards/accuracies", "Rewards/margins"]
    assert lines[1].split() == header
    steps = [line.split()[0] for line in lines[2 : 2 + TRAINER_MAX_ROWS]]
    assert steps[0] == "1" and steps[-1] == "30" and len(steps) == TRAINER_MAX_ROWS
    assert lines[2].split()[1:3] == ["1", "2"] and "0.03333" in lines[2 + TRAINER_MAX_ROWS - 1]
    assert "5 of 10 columns, 8 of 30 logged rows" in lines[-1]
    assert compact_html.count("<tr>") == TRAINER_MAX_ROWS + 1 and "<progress" in compact_html
    assert compact_trainer_table("<table><tr><td>1</td></tr></table>") is None  # not a trainer's output
