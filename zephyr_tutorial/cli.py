"""The ``zephyr-tutorial`` command line.

Each concept module that offers commands defines ``register_cli(subparsers)``
next to the code the command runs; this file only collects them. Modules are
imported when the CLI starts, so their top-level imports stay light (torch and
transformers are imported inside functions).
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "zephyr_tutorial.models",
    "zephyr_tutorial.runner",
    "zephyr_tutorial.evaluation",
    "zephyr_tutorial.generation",
    "zephyr_tutorial.sft",
    "zephyr_tutorial.feedback",
    "zephyr_tutorial.dpo",
    "zephyr_tutorial.recipes",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zephyr-tutorial",
        description="Teach and reproduce the Zephyr-7B alignment recipe: data, dSFT, AI feedback, DPO.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # a stage that has not landed yet
                continue
            raise
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Commands that take free `--key value` overrides (dpo: any DPOConfig field) set `takes_overrides`; argparse
    # cannot collect unknown options into a positional (REMAINDER rejects a first token starting with --).
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if not getattr(args, "takes_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.overrides = unknown
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
