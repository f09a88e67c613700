"""The ``zephyr-tutorial`` command line: one module per command group, nothing in the library imports it.

Every module here defines ``register(subparsers)`` and builds its parsers from light modules only, so
``zephyr-tutorial --help`` starts without importing torch; a command's handler imports the heavy code
when it runs. The conventions every command follows:

- its input is ``--in FILE`` and its output ``--out PATH``; flags are kebab-case;
- the training commands take ``--config FILE`` and any ``--key value`` overrides (``--max-steps 10`` or
  ``--max_steps 10``), typed by the class that receives the key (:func:`zephyr_tutorial.recipes.parse_overrides`);
- exit code 0 on success, 2 on bad input with one line ``error: FILE, line N, field F: ...`` (no traceback);
  bad input includes an empty input file, an output that is one of the inputs, an output another run is
  writing, and an endpoint that refuses the key (its message redacted);
- exit code 1 when the command finished but some requests to a model failed: those rows are not written
  (the counts say how many, and why), and running the same command again asks for them only.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

COMMAND_MODULES = ("model", "notebooks", "evaluation", "generation", "train", "feedback", "recipes")
"""The command groups, in the order ``--help`` lists them: ``zephyr_tutorial.cli.<name>``."""
INPUT_OPTIONS = {"input": "--in", "continue_from": "--continue-from"}
"""The options every command names its input files with (JSONL, refused when empty)."""
OUTPUT_OPTIONS = {"out": "--out", "report": "--report", "rejects": "--rejects", "flagged": "--flagged"}
"""The options every command names its output files with (refused when one of them is an input)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zephyr-tutorial",
        description="Teach and reproduce the Zephyr-7B alignment recipe: data, dSFT, AI feedback, DPO.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..data import DataError
    from ..recipes import RecipeError

    parser = build_parser()
    # Commands that take free `--key value` overrides (sft, dpo: any recipe key) set `takes_overrides`; argparse
    # cannot collect unknown options into a positional (REMAINDER rejects a first token starting with --).
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if not getattr(args, "takes_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.overrides = unknown
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from ..backends import BackendError

    try:
        check_inputs_and_outputs(args)
        return int(args.handler(args) or 0)
    except (DataError, RecipeError, BackendError, FileNotFoundError) as error:
        return bad_input(error)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare where they would be
        return a.resolve() == b.resolve()


def check_inputs_and_outputs(args) -> None:
    """Before a command runs: each input file (``--in``, ``--continue-from``) must exist and hold rows, and no
    output may be one of the inputs (``--out`` equal to ``--in`` would append the results into the input)."""
    from ..data import DataError, check_has_rows

    inputs = {option: getattr(args, name) for name, option in INPUT_OPTIONS.items() if getattr(args, name, None)}
    for path in inputs.values():
        check_has_rows(path)
    for name, output_option in OUTPUT_OPTIONS.items():
        output = getattr(args, name, None)
        if not output:
            continue
        for input_option, path in inputs.items():
            if _same_file(Path(output), Path(path)):
                raise DataError(
                    output, None, None, f"{output_option} is the same file as {input_option}: choose another output"
                )


def bad_input(error) -> int:
    """Report bad input the one way every command does: one line on stderr, exit code 2."""
    print("error: " + " ".join(str(error).split()), file=sys.stderr)
    return 2


def add_timeout_option(parser) -> None:
    """``--timeout SECONDS``: the one option every command that calls an endpoint takes."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="the most one request to an endpoint may take, retries included (default 120)",
    )


def report_failed_requests(failed: dict[str, str], what: str, total: int | None = None) -> int:
    """Tell (on stderr, so that a JSON result on stdout stays JSON) how many requests failed and why, at most
    five of them; return the exit code: 1 if any failed."""
    if not failed:
        return 0
    count = len(failed) if total is None else total
    lines = [f"{count} {what} failed and were not written (run the same command again to retry them):"]
    lines += [f"  {item}: {reason}" for item, reason in list(failed.items())[:5]]
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more")
    print("\n".join(lines), file=sys.stderr)
    return 1
