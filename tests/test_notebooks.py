"""Checks on the committed notebooks and on how nbval compares them.

Some checks hold for every notebook of the series; the ones that keep the text true to the outputs (numbers in
prose, machine paths, nbval tags, exercises, source views) run over :data:`CHECKED_NOTEBOOKS`: every notebook of
the series (notebooks/README.md describes the conventions). A new notebook joins the list when it passes them.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
SERIES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLVED = sorted(SOLUTIONS.glob("[0-9][0-9]_*_solutions.ipynb"))

CHECKED_NOTEBOOKS = (
    "00_setup.ipynb",
    "01_evaluation.ipynb",
    "02_synthetic_data.ipynb",
    "03_sft_qlora.ipynb",
    "04_ai_feedback.ipynb",
    "05_dpo.ipynb",
    "06_ablations.ipynb",
)
"""Notebooks held to the text-and-output conventions below: all of the series."""
CHECKED = [NOTEBOOKS / name for name in CHECKED_NOTEBOOKS]

ALLOWED_NUMBERS: dict[str, set[str]] = {
    "03_sft_qlora.ipynb": {"64", "48"},  # NF4's block size (a format constant) and a cited "65B on one 48 GB GPU"
    "04_ai_feedback.ipynb": {"0.01"},  # the alignment handbook's later beta: a cited setting, not a result of ours
}
"""Per notebook, numbers its prose may state although no output or code shows them, each with its reason in a
comment (``{"03_sft_qlora.ipynb": {"24"}}  # GPU memory of the colab profile, a requirement, not a result``).
Every other number the notebooks quote is printed by a cell."""


def _cells(path, kind=None):
    return [c for c in nbformat.read(path, as_version=4).cells if kind is None or c.cell_type == kind]


def _code_cells(path):
    return _cells(path, "code")


def _output_text(output):
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join([output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])])
    return "\n".join(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))


def test_every_notebook_of_the_series_is_held_to_the_text_checks():
    assert [p.name for p in SERIES] == list(CHECKED_NOTEBOOKS), "add the new notebook to CHECKED_NOTEBOOKS"


def test_the_series_is_numbered_from_00_without_gaps():
    numbers = [p.name[:2] for p in SERIES]
    assert numbers[:6] == ["00", "01", "02", "03", "04", "05"]
    assert numbers == [f"{i:02d}" for i in range(len(numbers))]


@pytest.mark.parametrize("path", SERIES + SOLVED, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_order_without_errors(path):
    counts = [c.execution_count for c in _code_cells(path)]
    assert None not in counts, f"{path.name}: some code cells were never executed"
    assert counts == sorted(counts), f"{path.name}: cells were executed out of order"
    errors = [o for c in _code_cells(path) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: committed with an error output: {errors[0].get('ename')}"


@pytest.mark.parametrize("path", SERIES + SOLVED, ids=lambda p: p.name)
def test_committed_outputs_hold_no_secret_and_no_colab_cell_runs_here(path):
    key_pattern = re.compile(r"\b(sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,})")
    for cell in _code_cells(path):
        for output in cell.outputs:
            assert not key_pattern.search(_output_text(output)), f"{path.name}: an output looks like an API key"
        if "google.colab" in cell.source or "!pip" in cell.source:
            assert 'if "google.colab" in sys.modules' in cell.source, f"{path.name}: unguarded Colab-only cell"


# --- numbers in prose come from outputs -------------------------------------------------------------------------

_HIDDEN = [
    re.compile(r"```.*?```", re.S),  # fenced code
    re.compile(r"\$\$.*?\$\$", re.S),  # display LaTeX
    re.compile(r"(?<!\\)\$[^$\n]+\$"),  # inline LaTeX
    re.compile(r"`[^`\n]+`"),  # inline code
    re.compile(r"!?\[[^\]]*\]\([^)]*\)"),  # links and images, text and address
    re.compile(r"<[^>\n]+>"),  # HTML tags
    re.compile(r"https?://\S+"),  # bare addresses
]
_REFERENCE = re.compile(r"\b(?:Table|Figure|Fig\.|Section|Appendix|Eq\.|Equation|Algorithm)\s+\d+(?:\.\d+)*")
_LIST_NUMBER = re.compile(r"^\s*\d+[.)]\s")
_PROSE_NUMBER = re.compile(r"(?<![\w.,\-/:^])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(%?)(?![\w\-]|[.,]\d)")
"""A number as prose writes it; the look-arounds skip names and units glued to digits (``GPT-4``, ``7B``,
``SmolLM2``, ``float32``, ``4-bit``, ``v0.1``, ``arXiv:2404.04475``)."""
_ANY_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def prose_numbers(markdown: str) -> list[str]:
    """The numbers a markdown cell states as results, after the documented exceptions are taken out.

    Not counted: numbers in LaTeX, inline or fenced code, links, HTML and addresses; headings and list numbers;
    references (``Table 3``); years (1900-2100); numbers glued to a letter or joined by a hyphen (model sizes
    such as ``7B``/``135M``, names such as ``GPT-4``, ``4-bit``); two-digit numbers with a leading zero (notebook
    numbers: ``03``).
    """
    for pattern in _HIDDEN:
        markdown = pattern.sub(" ", markdown)
    markdown = _REFERENCE.sub(" ", markdown)
    found = []
    for line in markdown.splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = _LIST_NUMBER.sub(" ", line)
        for match in _PROSE_NUMBER.finditer(line):
            whole, decimals, percent = match.groups()
            if (
                not decimals
                and not percent
                and (re.fullmatch(r"0\d", whole) or 1900 <= int(whole.replace(",", "")) <= 2100)
            ):
                continue
            found.append(match.group(0))
    return found


def _value(token: str) -> tuple[Decimal, int, bool]:
    percent = token.endswith("%")
    digits = token.rstrip("%").replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return Decimal(digits), decimals, percent


def shown_numbers(path) -> list[Decimal]:
    """Every number in the notebook's outputs and code."""
    texts = []
    for cell in _code_cells(path):
        texts.append(cell.source)
        texts.extend(_output_text(output) for output in cell.outputs)
    return [Decimal(n.replace(",", "")) for text in texts for n in _ANY_NUMBER.findall(text)]


def is_shown(token: str, shown: list[Decimal]) -> bool:
    """``token`` is an output's number, possibly rounded to the digits the prose gives (a percentage may also be an
    output's fraction: ``63%`` for ``0.63``)."""
    value, decimals, percent = _value(token)
    half = Decimal(5) * Decimal(10) ** -(decimals + 1)
    for number in shown:
        if abs(number - value) <= half or (percent and abs(100 * number - value) <= half):
            return True
    return False


def unquoted_numbers(path) -> list[tuple[int, str]]:
    """``(markdown cell index, number)`` for every number in the prose that no output or code of ``path`` shows."""
    shown = shown_numbers(path)
    allowed = ALLOWED_NUMBERS.get(Path(path).name, set())
    missing = []
    for index, cell in enumerate(_cells(path)):
        if cell.cell_type != "markdown":
            continue
        missing += [(index, n) for n in prose_numbers(cell.source) if n not in allowed and not is_shown(n, shown)]
    return missing


def test_prose_numbers_skip_the_documented_exceptions():
    text = (
        "# Part 1 of 3\n1. Mistral-7B and SmolLM2-135M in 4-bit (Table 3, 2023)\n"
        "A $\\beta = 0.1$ and `max_steps=30`, see [arXiv 2305.18290](https://arxiv.org/abs/2305.18290); "
        "notebook 03 reached 0.74 (n=42), 90.6% and 49,152 tokens, ±7 points."
    )
    assert prose_numbers(text) == ["0.74", "42", "90.6%", "49,152", "7"]


def test_a_number_matches_an_output_rounded_or_as_a_percentage():
    shown = [Decimal("0.634"), Decimal("42"), Decimal("49152")]
    assert is_shown("0.63", shown) and is_shown("63%", shown) and is_shown("49,152", shown)
    assert is_shown("0.6", shown) and not is_shown("0.64", shown) and not is_shown("41", shown)


def test_a_notebook_whose_prose_drifts_from_its_outputs_is_caught(tmp_path):
    path = tmp_path / "drift.ipynb"
    cells = [
        new_code_cell("print(acc)", outputs=[new_output("stream", name="stdout", text="acc 0.63 (n=60)\n")]),
        new_markdown_cell("The model reaches 0.63 on 60 questions, between 3 and 4.5."),
    ]
    nbformat.write(new_notebook(cells=cells), path)
    assert unquoted_numbers(path) == [(1, "3"), (1, "4.5")]


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.name)
def test_every_number_in_the_prose_is_shown_by_an_output_or_code(path):
    missing = unquoted_numbers(path)
    assert not missing, f"{path.name}: prose quotes numbers no output shows (cell, number): {missing}"


# --- no machine paths, tags instead of marker comments, exercises with solutions, code views up to date --------

_MACHINE_PATH = re.compile(r"(?<![\w~>$])(/root|/home/[\w.-]+|/Users/[\w.-]+|/tmp|/var/folders|[A-Z]:\\Users)(?=[/\\])")


def _machine_paths_in(path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    texts = [_output_text(o) for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    texts.append(str(notebook.metadata.get("widgets", "")))
    places = {str(ROOT), str(Path.home())} - {"/"}
    found = [m.group(0) for text in texts for m in _MACHINE_PATH.finditer(text)]
    return found + [place for place in places for text in texts if place in text]


@pytest.mark.parametrize("path", CHECKED + SOLVED, ids=lambda p: p.name)
def test_committed_outputs_hold_no_absolute_path_of_the_executing_machine(path):
    assert not _machine_paths_in(path), f"{path.name}: outputs name paths of this machine: {_machine_paths_in(path)}"


@pytest.mark.parametrize("path", CHECKED + SOLVED, ids=lambda p: p.name)
def test_nbval_markers_are_cell_tags_not_comment_lines(path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from nbval_tags import MARKER_LINE
    finally:
        sys.path.pop(0)
    commented = [i for i, c in enumerate(_code_cells(path)) if any(map(MARKER_LINE.match, c.source.splitlines()))]
    assert not commented, f"{path.name}: code cells {commented} carry an nbval comment; run tools/nbval_tags.py"
    tagged = [c for c in _code_cells(path) if "nbval-check-output" in c.metadata.get("tags", [])]
    assert tagged, f"{path.name}: no cell is checked by nbval"


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.name)
def test_notebook_ends_with_exercises_at_three_levels_and_has_checked_solutions(path):
    markdown = [c.source for c in _cells(path, "markdown")]
    exercises = [i for i, text in enumerate(markdown) if text.startswith("## Exercises")]
    assert exercises, f"{path.name}: no '## Exercises' section"
    section = "\n".join(markdown[exercises[-1] :])
    for level in ("Warm-up", "Practice", "Open"):
        assert f"**{level}" in section, f"{path.name}: the exercises have no {level} level"
    assert _cells(path)[-1].cell_type == "markdown" and exercises[-1] >= len(markdown) - 2
    solutions = sorted(SOLUTIONS.glob(f"{path.name[:2]}_*_solutions.ipynb"))
    assert [s.name for s in solutions] == [path.name.replace(".ipynb", "_solutions.ipynb")]
    asserts = [c for c in _code_cells(solutions[0]) if re.search(r"^\s*assert ", c.source, re.M)]
    assert len(asserts) >= 3, f"{solutions[0].name}: every exercise's solution asserts its expected outcome"


_VIEW_HEADER = re.compile(r"^# (zephyr_tutorial[\w.]*)  \((zephyr_tutorial/[\w/]+\.py)(; docstring left out)?\)$")


def _committed_views(path):
    for cell in _code_cells(path):
        for output in cell.outputs:
            text = output.get("data", {}).get("text/plain", "")
            match = _VIEW_HEADER.match(text.split("\n", 1)[0]) if "show_source" in cell.source else None
            if match:
                yield match, text


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.name)
def test_the_code_shown_on_screen_is_the_code_that_runs(path):
    from zephyr_tutorial.notebook import source_view

    views = list(_committed_views(path))
    assert views, f"{path.name}: shows no package code (zephyr_tutorial.notebook.show_source)"
    for match, text in views:
        name, docstring = match.group(1), match.group(3) is None
        module_name, _, qualname = name.rpartition(".")
        while module_name and not _importable(module_name):
            module_name, _, outer = module_name.rpartition(".")
            qualname = f"{outer}.{qualname}"
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        assert repr(source_view(obj, docstring=docstring)) == text, f"{path.name}: {name} changed; re-run it"


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


# --- how nbval compares ---------------------------------------------------------------------------------------


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
    cell = new_code_cell(code, execution_count=1, outputs=committed_outputs)
    cell.metadata["tags"] = ["nbval-check-output"]
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


def test_nbval_ignores_progress_bars_but_not_a_different_stdout(tmp_path):
    """A fresh machine shows an extra ``Writing model shards`` bar: that alone must not fail a checked cell."""
    shutil.copy(NOTEBOOKS / "conftest.py", tmp_path / "conftest.py")
    code = (
        "from tqdm.auto import tqdm\n"
        "for _ in tqdm(range(3), desc='Writing model shards'): pass\n"
        "for _ in tqdm(range(2), desc='Loading weights'): pass\n"
        "print('parameters: 134.5M')"
    )
    committed_bar = new_output(
        "display_data",
        data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "0", "version_major": 2, "version_minor": 0},
            "text/plain": "Loading weights: 100%|██████████| 272/272 [00:00<00:00, 4741.71it/s]",
        },
    )
    stdout = new_output("stream", name="stdout", text="parameters: 134.5M\n")
    _checked_notebook(tmp_path / "only_progress_differs.ipynb", code, [committed_bar, stdout])
    changed = new_output("stream", name="stdout", text="parameters: 134.6M\n")
    _checked_notebook(tmp_path / "stdout_differs.ipynb", code, [committed_bar, changed])
    result = _run_nbval(tmp_path)
    report = result.stdout + result.stderr
    assert "1 failed, 1 passed" in report, report
    assert "stdout_differs.ipynb::Cell 0" in report


def test_progress_outputs_are_recognised_and_stripped_from_streams():
    import importlib.util

    spec = importlib.util.spec_from_file_location("notebooks_conftest", NOTEBOOKS / "conftest.py")
    settings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(settings)
    is_progress_output, without_progress = settings.is_progress_output, settings.without_progress
    bar = nbformat.from_dict(
        {"output_type": "stream", "name": "stdout", "text": "x: 50%|#####     | 1/2 [00:01<00:01]\n"}
    )
    table = nbformat.from_dict(
        {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<progress value='3' max='3'>"}}
    )
    mixed = nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": bar.text + "result 0.5\n"})
    assert is_progress_output(bar) and is_progress_output(table) and not is_progress_output(mixed)
    assert [o.get("text") for o in without_progress([bar, table, mixed])] == ["result 0.5\n"]
