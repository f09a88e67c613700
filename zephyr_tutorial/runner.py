"""Run the whole notebook series end to end (the project's main job).

``zephyr-tutorial run-notebooks`` executes every ``notebooks/NN_*.ipynb`` in
order with nbclient, in one shared output folder, and writes each executed
notebook next to the artifacts it produced::

    outputs/
      notebooks/00_setup.ipynb ...   executed copies, with their outputs
      ...                            datasets, adapters, figures of each stage

Notebooks that come later read what earlier ones wrote (the SFT adapter of 03
is the starting point of 05), so the order is the numbering.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")


def series_notebooks(folder: Path) -> list[Path]:
    """The numbered notebooks of ``folder``, in reading order."""
    return sorted(p for p in Path(folder).iterdir() if NOTEBOOK_PATTERN.match(p.name))


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
    start = time.perf_counter()
    try:
        client.execute(env=dict(env if env is not None else os.environ))
    finally:
        destination.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, destination)
    return time.perf_counter() - start


def run_series(
    notebook_dir: Path, out_dir: Path, *, only: list[str] | None = None, in_place: bool = False
) -> dict[str, float]:
    """Execute the series; the kernels see ``ZEPHYR_OUTPUT_DIR=out_dir``.

    Executed copies go to ``out_dir/notebooks``, or back over the sources with
    ``in_place=True`` (how the committed notebooks get their outputs).
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel_env = {**os.environ, "ZEPHYR_OUTPUT_DIR": str(out_dir)}
    notebooks = series_notebooks(notebook_dir)
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(prefix) for prefix in only)]
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {notebook_dir}")
    timings = {}
    for notebook in notebooks:
        print(f"[run-notebooks] {notebook.name} ...", flush=True)
        destination = notebook if in_place else out_dir / "notebooks" / notebook.name
        seconds = execute_notebook(notebook, destination, env=kernel_env)
        timings[notebook.name] = seconds
        print(f"[run-notebooks] {notebook.name} done in {seconds / 60:.1f} min", flush=True)
    return timings
