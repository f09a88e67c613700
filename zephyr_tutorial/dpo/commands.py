"""``zephyr-tutorial dpo --config FILE.yaml [--key value ...]``: DPO from a recipe (the ``cpu`` one ships)."""

from __future__ import annotations

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
    from zephyr_tutorial.recipes.training import report_ranks

    from .training import load_recipe, run_recipe

    try:
        recipe = load_recipe(args.config, parse_overrides(args.overrides))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    run, report = run_recipe(recipe, run_dir=args.run_dir)
    print(report_ranks(run.trainer, "dpo"))
    if not run.trainer.is_world_process_zero():
        return 0
    print(f"trained {run.trainer.state.global_step} steps; adapter saved to {run.adapter_dir}")
    if isinstance(report, dict):  # the trainer's held-out metrics (recipes with a model section)
        print("held-out: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(report.items()) if "rewards" in k))
    else:
        print(f"held-out pairs: {report.n}, implicit-reward accuracy {report.accuracy:.3f}, "
              f"mean margin {report.mean_margin:.4f}")
    return 0


def register_cli(subparsers) -> None:
    from .training import CPU_RECIPE

    parser = subparsers.add_parser("dpo", help="Direct Preference Optimization (QLoRA) from a YAML recipe")
    parser.add_argument("--config", default=str(CPU_RECIPE), help="recipe file (default: the shipped cpu recipe)")
    parser.add_argument("--run-dir", default=None, help="checkpoints and adapter folder (default: outputs/dpo/run)")
    parser.epilog = ("Any further --key value pair overrides the recipe: sft_adapter, data_folder, model_name_or_path, "
                     "quantization, lora, Profile fields (dpo_beta, max_steps...) or DPOConfig fields (beta...).")
    parser.set_defaults(handler=_dpo_command, takes_overrides=True, overrides=[])
