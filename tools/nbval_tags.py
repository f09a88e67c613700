"""Move nbval's comment markers into cell tags: ``# NBVAL_CHECK_OUTPUT`` becomes the tag ``nbval-check-output``.

nbval reads a marker from a comment line anywhere in a cell or from the cell's tags (``nbval-check-output``,
``nbval-ignore-output``, ``nbval-skip``, ``nbval-raises-exception``: nbval/plugin.py, ``metadata_tags``). A tag
keeps the marker out of the code the reader sees and copies. This tool removes every marker comment line from
the code cells of the given notebooks and adds the tag instead (in place; outputs are untouched)::

    python tools/nbval_tags.py notebooks/00_setup.ipynb notebooks/01_evaluation.ipynb
    python tools/nbval_tags.py --check notebooks/*.ipynb   # exit 1 if a notebook still has a marker comment

It prints one line per changed notebook.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MARKERS = {
    "NBVAL_CHECK_OUTPUT": "nbval-check-output",
    "NBVAL_IGNORE_OUTPUT": "nbval-ignore-output",
    "NBVAL_SKIP": "nbval-skip",
    "NBVAL_RAISES_EXCEPTION": "nbval-raises-exception",
    "PYTEST_VALIDATE_IGNORE_OUTPUT": "nbval-ignore-output",
}
MARKER_LINE = re.compile(r"^\s*#\s*(" + "|".join(MARKERS) + r")\s*$")


def migrate_cell(cell) -> list[str]:
    """Move the markers of one code cell into its tags (in place); return the tags added."""
    if cell.get("cell_type") != "code":
        return []
    lines = cell["source"].splitlines(keepends=True)
    found = [MARKER_LINE.match(line).group(1) for line in lines if MARKER_LINE.match(line)]
    if not found:
        return []
    cell["source"] = "".join(line for line in lines if not MARKER_LINE.match(line))
    tags = list(cell.get("metadata", {}).get("tags", []))
    added = [MARKERS[m] for m in found if MARKERS[m] not in tags]
    cell.setdefault("metadata", {})["tags"] = tags + sorted(set(added), key=added.index)
    return added


def migrate(path: Path, *, write: bool = True) -> int:
    """Migrate every code cell of the notebook at ``path``; return how many cells had a marker comment."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    changed = sum(bool(migrate_cell(cell)) for cell in notebook.cells)
    if changed and write:
        nbformat.write(notebook, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a marker comment is left")
    args = parser.parse_args(argv)
    left = 0
    for path in args.notebooks:
        changed = migrate(path, write=not args.check)
        if changed:
            left += changed
            verb = "has" if args.check else "migrated"
            print(f"{path}: {verb} {changed} cell(s) with an nbval marker comment")
    return 1 if args.check and left else 0


if __name__ == "__main__":
    sys.exit(main())
