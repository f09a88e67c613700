"""``zephyr-tutorial run-notebooks``: execute the notebook series in order (the main job)."""

from __future__ import annotations

import sys
from pathlib import Path


def _run_command(args) -> int:
    from nbclient.exceptions import CellExecutionError

    from ..runner import run_series

    try:
        timings = run_series(
            Path(args.notebooks), Path(args.out), only=args.only, in_place=args.in_place, solutions=args.solutions
        )
    except CellExecutionError as error:
        print(
            f"error: a notebook cell failed; the executed notebook is under {args.out}/notebooks\n{error}",
            file=sys.stderr,
        )
        return 1
    total = sum(timings.values())
    print(f"[run-notebooks] {len(timings)} notebooks in {total / 60:.1f} min; outputs in {Path(args.out).resolve()}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("run-notebooks", help="execute the notebook series in order (the main job)")
    parser.add_argument("--notebooks", default="notebooks", help="folder with the NN_*.ipynb notebooks")
    parser.add_argument("--out", default="outputs", help="folder for executed notebooks and artifacts")
    parser.add_argument("--only", nargs="*", default=None, help="run only notebooks whose names start with these")
    parser.add_argument(
        "--solutions",
        action="store_true",
        help="also run the exercises' solutions (notebooks/solutions/NN_*_solutions.ipynb) after the series",
    )
    parser.add_argument(
        "--in-place", action="store_true", help="write outputs back into the source notebooks (for committing them)"
    )
    parser.set_defaults(handler=_run_command)
