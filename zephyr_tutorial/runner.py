"""Run the whole notebook series end to end (the project's main job).

``zephyr-tutorial run-notebooks`` executes every ``notebooks/NN_*.ipynb`` in
order with nbclient, in one shared output folder, and writes each executed
notebook next to the artifacts it produced::

    outputs/
      notebooks/00_setup.ipynb ...   executed copies, with their outputs
      ...                            datasets, adapters, figures of each stage

Notebooks that come later read what earlier ones wrote (the SFT adapter of 03
is the starting point of 05), so the order is the numbering. The solutions of each
notebook's exercises (``notebooks/solutions/NN_*_solutions.ipynb``) run after the
series, in the same output folder, so they can reuse what the series trained.

Before an executed notebook is saved, :func:`tidy_notebook` makes it read well on
GitHub: progress bars keep only their final state (a widget bar gets a ``text/plain``
final line read from the saved widget state), trainer tables keep a few columns and
rows, and absolute paths of the executing machine are replaced by placeholders.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
import time
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")
SOLUTIONS_FOLDER = "solutions"


def series_notebooks(folder: Path) -> list[Path]:
    """The numbered notebooks of ``folder``, in reading order."""
    return sorted(p for p in Path(folder).iterdir() if NOTEBOOK_PATTERN.match(p.name))


def solution_notebooks(folder: Path) -> list[Path]:
    """The numbered solution notebooks of ``folder/solutions`` (``NN_<name>_solutions.ipynb``), in order."""
    solutions = Path(folder) / SOLUTIONS_FOLDER
    return series_notebooks(solutions) if solutions.is_dir() else []


# --- GitHub rendering: final progress only, compact trainer tables, no machine paths -------------------------

PROGRESS_LINE = re.compile(r"^[^\n]*\d+%\|[^\n]*\|[^\n]*$", re.MULTILINE)
"""A tqdm bar as text: ``desc: 42%|████      | 5/12 [00:01<00:02, 3.1it/s]``."""
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
TRAINER_COLUMNS = ("Step", "Epoch", "Training Loss", "Validation Loss", "Rewards/accuracies", "Rewards/margins")
"""The columns a compacted trainer table keeps, in this order, when the trainer logged them."""
TRAINER_MAX_COLUMNS = 5
TRAINER_MAX_ROWS = 8


def _widget_models(notebook) -> dict:
    return notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


def final_progress_text(models: dict, model_id: str) -> str | None:
    """The last line a tqdm notebook bar showed (``desc: 100%|██████████| 272/272 [00:01<00:00]``), read from the
    widget state nbclient saved; ``None`` when ``model_id`` is not a tqdm bar, its state was not saved or the bar
    was hidden at the end (``leave=False``)."""
    box = models.get(model_id, {}).get("state", {})
    layout = models.get(str(box.get("layout", "")).removeprefix("IPY_MODEL_"), {}).get("state", {})
    if layout.get("visibility") == "hidden":
        return None
    children = [str(c).removeprefix("IPY_MODEL_") for c in box.get("children", [])]
    if len(children) != 3 or not all(c in models for c in children):
        return None
    left, bar, right = (models[c].get("state", {}) for c in children)
    if "Progress" not in models[children[1]].get("model_name", "") or not bar.get("max"):
        return None

    def text(value) -> str:
        return html.unescape(str(value or "")).replace("\u2007", " ")

    filled = max(0, min(10, int(10 * float(bar.get("value") or 0) / float(bar["max"]))))
    return f"{text(left.get('value'))}|{'█' * filled}{' ' * (10 - filled)}|{text(right.get('value'))}".strip()


def final_stream_text(text: str) -> str:
    """``text`` as a terminal shows it at the end: on every line only what follows its last carriage return."""
    return "\n".join(
        line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r") for line in text.split("\n")
    )


class _TableParser(HTMLParser):
    """The cells of the first ``<table>`` of an HTML fragment, row by row."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._tables = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._tables += 1
        elif tag == "tr" and self._tables == 1:
            self.rows.append([])
        elif tag in ("td", "th") and self._tables == 1:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _short_number(cell: str) -> str:
    try:
        value = float(cell)
    except ValueError:
        return cell
    return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"


def compact_trainer_table(fragment: str) -> tuple[str, str] | None:
    """``(html, text)`` of a transformers ``NotebookProgressCallback`` output with its log table cut to the columns
    of :data:`TRAINER_COLUMNS` (at most :data:`TRAINER_MAX_COLUMNS`) and :data:`TRAINER_MAX_ROWS` evenly spaced
    rows (the last always kept), numbers to 4 significant digits; ``None`` when ``fragment`` is not one."""
    if "<progress" not in fragment or "<table" not in fragment:
        return None
    parser = _TableParser()
    parser.feed(fragment)
    if len(parser.rows) < 2:
        return None
    header, body = parser.rows[0], [row for row in parser.rows[1:] if len(row) == len(parser.rows[0])]
    keep = [header.index(c) for c in TRAINER_COLUMNS if c in header][:TRAINER_MAX_COLUMNS] or list(
        range(min(len(header), TRAINER_MAX_COLUMNS))
    )
    if len(body) > TRAINER_MAX_ROWS:
        step = (len(body) - 1) / (TRAINER_MAX_ROWS - 1)
        body = [body[round(i * step)] for i in range(TRAINER_MAX_ROWS)]
    rows = [[header[i] for i in keep]] + [[_short_number(row[i]) for i in keep] for row in body]
    total_rows = len(parser.rows) - 1
    note = (
        f"{len(keep)} of {len(header)} columns, {len(body)} of {total_rows} logged rows "
        "(every value: the run's log_history.json)"
    )
    progress = fragment[: fragment.index("<table")]
    table = "".join(
        "<tr>"
        + "".join(f"<{'th' if r == 0 else 'td'}>{html.escape(c)}</{'th' if r == 0 else 'td'}>" for c in row)
        + "</tr>"
        for r, row in enumerate(rows)
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(keep))]
    text = "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows)
    summary = re.sub(r"<[^>]+>", " ", progress)
    summary = " ".join(html.unescape(summary).split())
    return (
        f'{progress}<table border="1" class="dataframe">{table}</table><p><small>{note}</small></p>',
        f"{summary}\n{text}\n({note})",
    )


def machine_paths(out_dir: Path | None = None) -> list[tuple[str, str]]:
    """``(absolute path, placeholder)`` pairs for the places of the executing machine, longest path first."""
    from .runtime import project_root

    places = []
    if out_dir is not None:
        places.append((str(Path(out_dir).resolve()), "$ZEPHYR_OUTPUT_DIR"))
    checkout = project_root(Path(__file__).parent)
    if checkout is not None:
        places.append((str(checkout), "<checkout>"))
    places.append((str(Path.home()), "~"))
    temp = str(Path(tempfile.gettempdir()).resolve())
    if temp != "/":
        places.append((temp, "<tmp>"))
    unique = {path: placeholder for path, placeholder in places if len(path) > 1}
    return sorted(unique.items(), key=lambda item: -len(item[0]))


def scrub_paths(text: str, places: Iterable[tuple[str, str]]) -> str:
    """``text`` with every path of :func:`machine_paths` replaced by its placeholder."""
    for path, placeholder in places:
        text = re.sub(re.escape(path) + r"(?![\w.-])", lambda _, p=placeholder: p, text)
    return text


def _scrub(value, places):
    if isinstance(value, str):
        return scrub_paths(value, places)
    if isinstance(value, list):
        return [_scrub(v, places) for v in value]
    if isinstance(value, dict):
        return type(value)({k: _scrub(v, places) for k, v in value.items()})
    return value


def tidy_notebook(notebook, *, out_dir: Path | None = None):
    """Make an executed notebook read well on GitHub (in place; returns it).

    - a stream keeps only the final state of every ``\\r``-updated line (tqdm writing to a terminal);
    - a tqdm widget output gets its final line as ``text/plain`` (the widget state holds it), and a bar that was
      hidden at the end (``leave=False``) or whose state was not saved is dropped;
    - a trainer's progress table is compacted (:func:`compact_trainer_table`);
    - absolute paths of this machine become ``$ZEPHYR_OUTPUT_DIR``, ``<checkout>``, ``~`` or ``<tmp>``.
    """
    models = _widget_models(notebook)
    places = machine_paths(out_dir)
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = final_stream_text(output.get("text", ""))
            data = output.get("data", {})
            if WIDGET_VIEW in data and PROGRESS_LINE.search(str(data.get("text/plain", ""))):
                final = final_progress_text(models, data[WIDGET_VIEW].get("model_id", ""))
                if final is None:
                    continue
                data["text/plain"] = final
            if "text/html" in data:
                compact = compact_trainer_table(str(data["text/html"]))
                if compact is not None:
                    data["text/html"], data["text/plain"] = compact
            outputs.append(_scrub(output, places))
        cell["outputs"] = outputs
    if models:
        notebook.metadata["widgets"][WIDGET_STATE]["state"] = _scrub(models, places)
    return notebook


def execute_notebook(
    source: Path, destination: Path, *, env: dict | None = None, timeout: int = 3600, kernel_name: str = "python3"
) -> float:
    """Execute ``source`` with its own folder as working directory, save to ``destination``; return seconds.

    ``env`` is the kernel's environment (default: this process's).
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(source.parent)}},
    )
    kernel_env = dict(env if env is not None else os.environ)
    start = time.perf_counter()
    try:
        client.execute(env=kernel_env)
    finally:
        destination.parent.mkdir(parents=True, exist_ok=True)
        out_dir = kernel_env.get("ZEPHYR_OUTPUT_DIR")
        nbformat.write(tidy_notebook(notebook, out_dir=Path(out_dir) if out_dir else None), destination)
    return time.perf_counter() - start


def run_series(
    notebook_dir: Path,
    out_dir: Path,
    *,
    only: list[str] | None = None,
    in_place: bool = False,
    solutions: bool = False,
) -> dict[str, float]:
    """Execute the series; the kernels see ``ZEPHYR_OUTPUT_DIR=out_dir``.

    Executed copies go to ``out_dir/notebooks`` (solutions to ``out_dir/notebooks/solutions``), or back over
    the sources with ``in_place=True`` (how the committed notebooks get their outputs). ``solutions=True`` runs
    the exercises' solution notebooks after the series; ``only`` filters both by name prefix.
    """
    notebook_dir = Path(notebook_dir)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel_env = {**os.environ, "ZEPHYR_OUTPUT_DIR": str(out_dir)}
    notebooks = series_notebooks(notebook_dir) + (solution_notebooks(notebook_dir) if solutions else [])
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(prefix) for prefix in only)]
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {notebook_dir}")
    timings = {}
    for notebook in notebooks:
        print(f"[run-notebooks] {notebook.name} ...", flush=True)
        relative = notebook.relative_to(notebook_dir)
        destination = notebook if in_place else out_dir / "notebooks" / relative
        seconds = execute_notebook(notebook, destination, env=kernel_env)
        timings[notebook.name] = seconds
        print(f"[run-notebooks] {notebook.name} done in {seconds / 60:.1f} min", flush=True)
    return timings
