"""Training recipes: one YAML format for the notebooks' CPU runs and the full-scale zephyr-7b-beta runs.

A recipe file (every section but ``stage`` is optional)::

    description: one line shown by `zephyr-tutorial recipes`
    stage: sft                      # or dpo
    profile: colab                  # cpu | colab | full: defaults for everything the file does not state
    model:                          # from_pretrained arguments (MODEL_KEYS)
      model_name_or_path: mistralai/Mistral-7B-v0.1
      dtype: bfloat16
    quantization: {...}             # transformers.BitsAndBytesConfig fields, or null for 16-bit weights
    lora: {...}                     # peft.LoraConfig fields, or null for full fine-tuning
    dataset: {name: HuggingFaceH4/ultrachat_200k, train_split: train_sft, eval_split: test_sft}
    profile_overrides: {...}        # zephyr_tutorial.profiles.Profile fields (data caps, ...)
    trainer: {...}                  # trl.SFTConfig / trl.DPOConfig fields, TRL 1.x names
    # sft only: packing, data_folder; dpo only: sft_adapter, data_folder

A section left out falls back to the profile; ``null`` switches it off. Without a
``model`` section the profile's model is loaded by our own loaders (the embedded
model and its cached 4-bit copy: the notebooks' path); with one, TRL loads the
model itself from ``model_name_or_path`` after the training arguments exist, which
is what DeepSpeed ZeRO-3 and FSDP need to shard weights while loading.

Every key is checked against the class that will receive it, so a misspelled key
fails at load time with the file and the key in the message, not after the model
download (``from_pretrained`` rejects it only once the weights are read) or never
(``BitsAndBytesConfig`` mentions unknown keyword arguments only at INFO log level).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

RECIPE_DIR = Path(__file__).resolve().parent
STAGES = ("sft", "dpo")
COMMON_KEYS = {"description", "stage", "profile", "model", "quantization", "lora", "dataset",
               "profile_overrides", "trainer", "data_folder"}
STAGE_KEYS = {"sft": {"packing"}, "dpo": {"sft_adapter"}}
MODEL_KEYS = {"model_name_or_path", "revision", "dtype", "attn_implementation", "trust_remote_code"}
"""The ``from_pretrained`` arguments a recipe may set. A closed list because ``from_pretrained`` rejects a
misspelled keyword only after it has read the whole checkpoint (14 GB for Mistral-7B), and silently applies
any keyword that happens to name a model-config field."""
DATASET_KEYS = {"name", "train_split", "eval_split"}


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file (or the command line) and the key."""


def _closest(key: str, known) -> str:
    match = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def profile_fields() -> set[str]:
    from dataclasses import fields

    from ..profiles import Profile

    return {f.name for f in fields(Profile)}


def trainer_fields(stage: str) -> set[str]:
    from dataclasses import fields

    return {f.name for f in fields(trainer_config_class(stage))}


def trainer_config_class(stage: str):
    from trl import DPOConfig, SFTConfig

    return {"sft": SFTConfig, "dpo": DPOConfig}[stage]


def lora_fields() -> set[str]:
    from dataclasses import fields

    from peft import LoraConfig

    return {f.name for f in fields(LoraConfig)}


def quantization_fields() -> set[str]:
    """Named parameters of ``BitsAndBytesConfig.__init__`` (its ``**kwargs`` swallow anything else)."""
    import inspect

    from transformers import BitsAndBytesConfig

    parameters = inspect.signature(BitsAndBytesConfig.__init__).parameters.values()
    return {p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD}


def _check_keys(keys, known: set[str], where: str, what: str) -> None:
    for key in keys:
        if key not in known:
            raise RecipeError(f"{where}: {key!r} is not {what}{_closest(key, known)}")


def validate_recipe(recipe: dict, source: str) -> dict:
    """Check every section of ``recipe`` against the class that receives it; return ``recipe``."""
    stage = recipe.get("stage")
    if stage not in STAGES:
        raise RecipeError(f"{source}: 'stage' must be one of {list(STAGES)}, got {stage!r}")
    allowed = COMMON_KEYS | STAGE_KEYS[stage]
    for key in recipe:
        if key not in allowed:
            raise RecipeError(f"{source}: unknown top-level key {key!r}{_closest(key, allowed)}; "
                              f"a {stage} recipe has {sorted(allowed)}")
    if recipe.get("profile") is not None:
        from ..profiles import PROFILES

        if recipe["profile"] not in PROFILES:
            raise RecipeError(f"{source}: profile {recipe['profile']!r} is not one of {sorted(PROFILES)}")
    checks = {
        "model": (MODEL_KEYS, "a from_pretrained argument this loader passes on"),
        "quantization": (quantization_fields(), "a transformers.BitsAndBytesConfig field"),
        "lora": (lora_fields(), "a peft.LoraConfig field"),
        "dataset": (DATASET_KEYS, "a dataset key"),
        "profile_overrides": (profile_fields(), "a zephyr_tutorial.profiles.Profile field"),
        "trainer": (trainer_fields(stage), f"a trl.{trainer_config_class(stage).__name__} field"),
    }
    for section, (known, what) in checks.items():
        value = recipe.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: {section!r} must be a mapping or null, got {type(value).__name__}")
        _check_keys(value, known, f"{source}: section {section!r}", what)
    if recipe.get("model") is not None and not recipe["model"].get("model_name_or_path"):
        raise RecipeError(f"{source}: section 'model' needs model_name_or_path")
    if recipe.get("dataset") is not None and not recipe["dataset"].get("name"):
        raise RecipeError(f"{source}: section 'dataset' needs a name (a hub id, or 'local' for data/)")
    for section in ("quantization", "lora"):
        if section in recipe and recipe.get("model") is None:
            raise RecipeError(f"{source}: section {section!r} needs a 'model' section (without one the profile's"
                              " model, quantization and LoRA settings apply)")
    if stage == "dpo" and recipe.get("sft_adapter") is not None and recipe.get("lora") is not None:
        raise RecipeError(f"{source}: set either sft_adapter (continue that adapter) or lora (train a fresh one)")
    return recipe


def apply_overrides(recipe: dict, overrides: dict[str, Any]) -> dict:
    """Route ``--key value`` overrides: whole sections and top-level keys by name, ``from_pretrained``
    arguments to ``model``, a key the ``trainer`` section already states to ``trainer`` (it would win over
    the profile), Profile fields to ``profile_overrides``, anything else to ``trainer``."""
    stage = recipe["stage"]
    top_level = (COMMON_KEYS | STAGE_KEYS[stage]) - {"profile_overrides", "trainer", "stage", "description"}
    for key, value in overrides.items():
        if key in top_level:
            recipe[key] = value
        elif key in MODEL_KEYS:
            recipe["model"] = {**(recipe.get("model") or {}), key: value}
        elif key in profile_fields() and key not in recipe["trainer"]:
            recipe["profile_overrides"][key] = value
        else:
            recipe["trainer"][key] = value
    return recipe


def read_recipe_file(path: str | os.PathLike) -> dict:
    """The raw YAML mapping of a recipe file (no checks)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} not found (`zephyr-tutorial recipes` lists the shipped ones)")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(recipe, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping, got {type(recipe).__name__}")
    return recipe


def load_recipe(path: str | os.PathLike, stage: str | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """Read, check, apply ``overrides`` and check again; ``stage`` (if given) must match the file's.

    A file without ``stage`` (older recipes) takes the one the caller expects.
    """
    recipe = read_recipe_file(path)
    if stage is not None:
        recipe.setdefault("stage", stage)
        if recipe["stage"] != stage:
            raise RecipeError(f"{path}: a {recipe['stage']!r} recipe, but the {stage} command was asked to run it")
    recipe["profile_overrides"] = dict(recipe.get("profile_overrides") or {})
    recipe["trainer"] = dict(recipe.get("trainer") or {})
    validate_recipe(recipe, str(path))
    if overrides:
        validate_recipe(apply_overrides(recipe, overrides), f"{path} with command-line overrides {sorted(overrides)}")
    return recipe


def recipe_profile(recipe: dict, *, require_hardware: bool = True):
    """The recipe's Profile with ``profile_overrides`` applied (``require_hardware=False`` skips the CUDA check)."""
    from ..profiles import active_profile, get_profile

    name = recipe.get("profile")
    base = active_profile(name) if require_hardware else get_profile(name or "cpu")
    return base.with_overrides(**recipe["profile_overrides"])


def resolve_model_name(name: str) -> str:
    """A hub id or folder; the profiles' ``embedded:`` name becomes the local folder of the embedded model."""
    from ..profiles import EMBEDDED_MODEL

    if name == EMBEDDED_MODEL:
        from ..models import resolve_embedded_model

        return str(resolve_embedded_model())
    return str(name)


def model_init_kwargs(recipe: dict, profile) -> dict:
    """``from_pretrained`` arguments of a recipe with a ``model`` section (dtype defaults to the profile's)."""
    kwargs = {k: v for k, v in (recipe.get("model") or {}).items() if k != "model_name_or_path"}
    kwargs.setdefault("dtype", profile.dtype)
    return kwargs


def build_quantization_config(recipe: dict, profile):
    """``BitsAndBytesConfig`` from the ``quantization`` section; absent: the profile's NF4 setting; null: none."""
    from transformers import BitsAndBytesConfig

    if "quantization" not in recipe:
        if not profile.load_in_4bit:
            return None
        from ..sft.model import nf4_quantization_config

        return nf4_quantization_config(profile.dtype)
    section = recipe["quantization"]
    return None if section is None else BitsAndBytesConfig(**section)


def build_lora_config(recipe: dict, profile):
    """``LoraConfig`` from the ``lora`` section; absent: the profile's LoRA (none when ``lora_r`` is 0); null: none."""
    from peft import LoraConfig

    if "lora" not in recipe:
        if not profile.lora_r:
            return None
        from ..sft.model import lora_config

        return lora_config(profile)
    section = recipe["lora"]
    return None if section is None else LoraConfig(**{"task_type": "CAUSAL_LM", **section})


def build_trainer_config(recipe: dict, profile, output_dir: str | os.PathLike):
    """The real ``SFTConfig``/``DPOConfig``: profile defaults, then the ``trainer`` section, then model kwargs."""
    settings = dict(recipe["trainer"])
    if recipe.get("model") is not None:
        settings["model_init_kwargs"] = model_init_kwargs(recipe, profile)
    if recipe["stage"] == "sft":
        from ..sft.training import sft_config

        return sft_config(profile, output_dir, packing=bool(recipe.get("packing", False)), **settings)
    from ..dpo.training import dpo_config

    return dpo_config(profile, output_dir, **settings)


def shipped_recipes() -> list[Path]:
    """The recipe files inside the package (``recipes/accelerate/`` holds launch configs, not recipes)."""
    return sorted(RECIPE_DIR.glob("*.yaml"))


def find_recipe(name_or_path: str | os.PathLike) -> Path:
    """A shipped recipe by name (``sft_zephyr-7b-beta_qlora``) or any recipe file by path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    by_name = {p.stem: p for p in shipped_recipes()}
    if str(name_or_path) in by_name:
        return by_name[str(name_or_path)]
    raise FileNotFoundError(f"no recipe {name_or_path!r}; shipped: {', '.join(sorted(by_name))}")


def register_cli(subparsers) -> None:
    from .catalog import register_cli as register

    register(subparsers)
