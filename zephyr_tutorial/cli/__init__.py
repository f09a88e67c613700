"""The ``zephyr-tutorial`` command line: one module per command group, nothing in the library imports it.

Every module here defines ``register(subparsers)`` and builds its parsers from light modules only, so
``zephyr-tutorial --help`` starts without importing torch; a command's handler imports the heavy code
when it runs. The conventions every command follows:

- its input is ``--in FILE`` and its output ``--out PATH``; flags are kebab-case;
- the training commands take ``--config FILE`` and any ``--key value`` overrides (``--max-steps 10`` or
  ``--max_steps 10``), typed by the class that receives the key (:func:`zephyr_tutorial.recipes.parse_overrides`);
- exit code 0 on success, 2 on bad input with one line ``error: FILE, line N, field F: ...`` (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("model", "notebooks", "evaluation", "generation", "train", "feedback", "recipes")
"""The command groups, in the order ``--help`` lists them: ``zephyr_tutorial.cli.<name>``."""


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
    try:
        return int(args.handler(args) or 0)
    except (DataError, RecipeError, FileNotFoundError) as error:
        return bad_input(error)


def bad_input(error) -> int:
    """Report bad input the one way every command does: one line on stderr, exit code 2."""
    print(f"error: {error}", file=sys.stderr)
    return 2
