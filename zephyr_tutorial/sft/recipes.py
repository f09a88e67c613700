"""YAML recipes and the ``zephyr-tutorial sft`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..runtime import output_dir
from .data import load_sft_splits
from .training import train_sft

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "sft_cpu.yaml"


def load_recipe(path: str | os.PathLike, overrides: dict | None = None) -> dict:
    """An SFT recipe (format: :mod:`zephyr_tutorial.recipes`), every key checked, ``overrides`` applied.

    An override goes to the top level when it names a top-level key (``packing``, ``quantization``...), to
    ``model`` for ``from_pretrained`` arguments, to ``profile_overrides`` for Profile fields, else to ``trainer``.
    """
    from ..recipes import load_recipe as load_any_recipe

    return load_any_recipe(path, "sft", overrides)


def _profile_fields() -> set[str]:
    from dataclasses import fields

    from ..profiles import Profile

    return {f.name for f in fields(Profile)}


def run_recipe(recipe: dict, profile=None):
    """Train as a recipe says; returns ``(trainer, adapter_path)``.

    With a ``model`` section TRL loads the model (:func:`zephyr_tutorial.recipes.training.run_sft`, the final
    weights go to ``<output_dir>/final``); without one, the profile's model is loaded our way, the notebooks' path.
    """
    from ..recipes import recipe_profile

    profile = recipe_profile(recipe) if profile is None else profile.with_overrides(**recipe["profile_overrides"])
    trainer_settings = dict(recipe["trainer"])
    run_dir = trainer_settings.pop("output_dir", None)
    if recipe.get("model") is not None:
        from ..recipes.training import run_sft

        return run_sft(recipe, profile, run_dir or output_dir("sft", "checkpoints"))
    splits = load_sft_splits(profile, recipe.get("data_folder"))
    return train_sft(profile, splits["train"], packing=bool(recipe.get("packing", False)), run_dir=run_dir,
                     **trainer_settings)


TRAINER_CLI_OPTIONS = ("lr_scheduler_type", "warmup_steps", "save_steps", "logging_steps", "weight_decay",
                       "max_grad_norm", "optim", "packing_strategy", "output_dir")
RECIPE_CLI_OPTIONS = ("packing", "data_folder", "profile", "model_name_or_path", "attn_implementation")
SECTION_SWITCHES = ("quantization", "lora")
"""``--quantization null`` / ``--lora null`` switch a section off, so these options have no "unset" value of None."""


def _parse_value(text: str):
    """``3`` -> 3, ``2e-4`` -> 0.0002, ``true`` -> True, anything else stays a string (YAML scalars)."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "2e-4" as a string
        except ValueError:
            return value
    return value


def _sft_command(args) -> int:
    from ..recipes import RecipeError

    overrides = {key: value for key, value in vars(args).items()
                 if key not in {"config", "handler", "command"} and (value is not None or key in SECTION_SWITCHES)}
    try:
        recipe = load_recipe(args.config, overrides)
    except (RecipeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    trainer, adapter = run_recipe(recipe)
    from ..recipes.training import report_ranks

    print(report_ranks(trainer, "sft"))
    if trainer.is_world_process_zero():
        print(f"trained {trainer.state.global_step} steps; adapter saved to {adapter}")
    return 0


def register_cli(subparsers) -> None:
    """``zephyr-tutorial sft --config FILE.yaml [--key value ...]``: run SFT from a recipe, overriding fields.

    ``--key`` is any Profile field (``--max_steps 10``, ``--lora_r 8``), ``--packing true``,
    ``--data_folder DIR``, ``--profile NAME``, ``--model_name_or_path PATH`` (TRL then loads that model),
    ``--quantization null`` / ``--lora null`` or one of a few SFTConfig fields (``TRAINER_CLI_OPTIONS``).
    """
    parser = subparsers.add_parser("sft", help="supervised fine-tuning (QLoRA) from a YAML recipe")
    parser.add_argument("--config", default=str(DEFAULT_RECIPE), help="recipe file (default: the shipped cpu recipe)")
    for name in sorted(_profile_fields() - {"name", "description", "extra"}) + [*RECIPE_CLI_OPTIONS, *TRAINER_CLI_OPTIONS]:
        parser.add_argument(f"--{name}", type=_parse_value, default=None, metavar="VALUE")
    for name in SECTION_SWITCHES:
        parser.add_argument(f"--{name}", type=_parse_value, default=argparse.SUPPRESS, metavar="null")
    parser.set_defaults(handler=_sft_command)
