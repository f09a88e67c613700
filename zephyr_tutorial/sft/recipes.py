"""YAML recipes and the ``zephyr-tutorial sft`` command."""

from __future__ import annotations

import os
from pathlib import Path

from .data import load_sft_splits
from .training import train_sft

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "sft_cpu.yaml"


def load_recipe(path: str | os.PathLike, overrides: dict | None = None) -> dict:
    """A YAML recipe: ``profile``, ``profile_overrides`` (Profile fields) and ``trainer`` (SFTConfig fields)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} not found")
    with open(path, encoding="utf-8") as handle:
        recipe = yaml.safe_load(handle) or {}
    unknown = set(recipe) - {"profile", "profile_overrides", "trainer", "packing", "data_folder"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)}")
    recipe.setdefault("profile_overrides", {})
    recipe.setdefault("trainer", {})
    for key, value in (overrides or {}).items():
        section = "profile_overrides" if key in _profile_fields() else "trainer"
        recipe[section][key] = value
    return recipe


def _profile_fields() -> set[str]:
    from dataclasses import fields

    from ..profiles import Profile

    return {f.name for f in fields(Profile)}


def run_recipe(recipe: dict, profile=None):
    """Train as a recipe says; returns ``(trainer, adapter_path)``."""
    from ..profiles import active_profile

    profile = (profile or active_profile(recipe.get("profile"))).with_overrides(**recipe["profile_overrides"])
    splits = load_sft_splits(profile, recipe.get("data_folder"))
    return train_sft(profile, splits["train"], packing=bool(recipe.get("packing", False)), **recipe["trainer"])


TRAINER_CLI_OPTIONS = ("lr_scheduler_type", "warmup_steps", "save_steps", "logging_steps", "weight_decay",
                       "max_grad_norm", "optim", "packing_strategy", "output_dir")
RECIPE_CLI_OPTIONS = ("packing", "data_folder")


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
    recipe = load_recipe(args.config)
    for key, value in vars(args).items():
        if key in {"config", "handler", "command"} or value is None:
            continue
        if key in RECIPE_CLI_OPTIONS:
            recipe[key] = value
        elif key == "output_dir":
            recipe["trainer"]["run_dir"] = value
        else:
            recipe["profile_overrides" if key in _profile_fields() else "trainer"][key] = value
    trainer, adapter = run_recipe(recipe)
    print(f"trained {trainer.state.global_step} steps; adapter saved to {adapter}")
    return 0


def register_cli(subparsers) -> None:
    """``zephyr-tutorial sft --config FILE.yaml [--key value ...]``: run SFT from a recipe, overriding fields.

    ``--key`` is any Profile field (``--max_steps 10``, ``--lora_r 8``), ``--packing true``,
    ``--data_folder DIR`` or one of a few SFTConfig fields (``TRAINER_CLI_OPTIONS``).
    """
    parser = subparsers.add_parser("sft", help="supervised fine-tuning (QLoRA) from a YAML recipe")
    parser.add_argument("--config", default=str(DEFAULT_RECIPE), help="recipe file (default: the shipped cpu recipe)")
    for name in sorted(_profile_fields() - {"name", "description", "extra"}) + [*RECIPE_CLI_OPTIONS, *TRAINER_CLI_OPTIONS]:
        parser.add_argument(f"--{name}", type=_parse_value, default=None, metavar="VALUE")
    parser.set_defaults(handler=_sft_command)
