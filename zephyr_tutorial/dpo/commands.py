"""``zephyr-tutorial dpo --config FILE.yaml [--key value ...]``: DPO from a recipe (the ``cpu`` one ships)."""

from __future__ import annotations

import argparse
import sys


def parse_overrides(tokens: list[str]) -> dict:
    """``["--max_steps", "5", "--sft_adapter", "null"]`` -> ``{"max_steps": 5, "sft_adapter": None}`` (YAML-typed)."""
    import yaml

    overrides, tokens = {}, list(tokens)
    while tokens:
        key = tokens.pop(0)
        if not key.startswith("--") or not tokens:
            raise ValueError(f"expected `--key value` pairs after the config, got {key!r}")
        overrides[key[2:].replace("-", "_")] = yaml.safe_load(tokens.pop(0))
    return overrides


def _dpo_command(args) -> int:
    from .training import load_recipe, run_recipe

    try:
        recipe = load_recipe(args.config, parse_overrides(args.overrides))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    run, report = run_recipe(recipe, run_dir=args.run_dir)
    print(f"trained {run.trainer.state.global_step} steps; adapter saved to {run.adapter_dir}")
    print(f"held-out pairs: {report.n}, implicit-reward accuracy {report.accuracy:.3f}, mean margin {report.mean_margin:.4f}")
    return 0


def register_cli(subparsers) -> None:
    from .training import CPU_RECIPE

    parser = subparsers.add_parser("dpo", help="Direct Preference Optimization (QLoRA) from a YAML recipe")
    parser.add_argument("--config", default=str(CPU_RECIPE), help="recipe file (default: the shipped cpu recipe)")
    parser.add_argument("--run-dir", default=None, help="checkpoints and adapter folder (default: outputs/dpo/run)")
    parser.add_argument(
        "overrides", nargs=argparse.REMAINDER,
        help="--key value pairs: sft_adapter, data_folder, Profile fields (dpo_beta, max_steps...) or DPOConfig fields",
    )
    parser.set_defaults(handler=_dpo_command)
