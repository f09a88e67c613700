"""Training recipes: one YAML format for the notebooks' CPU runs and the full-scale zephyr-7b-beta runs.

A recipe file (every section but ``stage`` is optional)::

    description: one line shown by `zephyr-tutorial recipes`
    stage: sft                      # or dpo
    profile: gpu24                  # cpu | t4 | gpu24 | full: defaults for everything the file does not state
    model:                          # from_pretrained arguments (MODEL_KEYS)
      model_name_or_path: mistralai/Mistral-7B-v0.1
      dtype: bfloat16
    quantization: {...}             # transformers.BitsAndBytesConfig fields, or null for 16-bit weights
    lora: {...}                     # peft.LoraConfig fields, or null for full fine-tuning
    dataset: {name: HuggingFaceH4/ultrachat_200k, train_split: train_sft, eval_split: test_sft}
    profile_overrides: {...}        # zephyr_tutorial.profiles.Profile fields (data caps, steps, ...)
    trainer: {...}                  # trl.SFTConfig / trl.DPOConfig fields, TRL 1.x names (learning_rate, beta...)
    # sft only: packing, fit_to_length, init_adapter; dpo only: sft_adapter; both: data_folder

The hyperparameters live here (learning rate, beta, the LoRA shape), hardware and scale in the profile.
``quantization`` left out falls back to the profile's 4-bit setting; ``null`` switches it off; ``lora: null``
(or no ``lora``) trains every weight. An SFT recipe's ``init_adapter`` (a LoRA folder) trains that adapter further
instead of a fresh ``lora`` one (notebook 06's dSFT-2 continues dSFT). In a DPO recipe ``lora`` is the fresh
adapter of a run without an SFT adapter (``sft_adapter: null``). Without a ``model`` section the profile's model
is loaded by our own loaders (the embedded model and its cached 4-bit copy: the notebooks' path); with one, TRL
loads the model itself from ``model_name_or_path`` after the training arguments exist, which
is what DeepSpeed ZeRO-3 and FSDP need to shard weights while loading.

This package is the schema only: reading, checking, overriding (:func:`parse_overrides`, typed by the class
that receives each key) and the facts of each stage (:data:`STAGES`). Running a recipe is
:func:`zephyr_tutorial.pipelines.run_recipe`.

Every key is checked against the class that will receive it, so a misspelled key
fails at load time with the file and the key in the message, not after the model
download (``from_pretrained`` rejects it only once the weights are read) or never
(``BitsAndBytesConfig`` mentions unknown keyword arguments only at INFO log level).
"""

from __future__ import annotations

import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

RECIPE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Stage:
    """The facts of a training stage that a recipe needs, without importing the stage."""

    name: str
    config_class: str
    """The ``trl`` class its ``trainer`` section fills."""
    splits: tuple[str, str]
    """Train and eval split names of its hub dataset."""
    data: str
    """``"sft"`` (ultrachat_200k rows) or ``"preferences"`` (ultrafeedback_binarized rows)."""
    keys: frozenset[str]
    """Top-level keys only this stage's recipes have."""


STAGES = {
    "sft": Stage(
        "sft", "SFTConfig", ("train_sft", "test_sft"), "sft", frozenset({"packing", "fit_to_length", "init_adapter"})
    ),
    "dpo": Stage("dpo", "DPOConfig", ("train_prefs", "test_prefs"), "preferences", frozenset({"sft_adapter"})),
}
COMMON_KEYS = {
    "description",
    "stage",
    "profile",
    "model",
    "quantization",
    "lora",
    "dataset",
    "profile_overrides",
    "trainer",
    "data_folder",
}
MODEL_KEYS = {"model_name_or_path", "revision", "dtype", "attn_implementation", "trust_remote_code"}
"""The ``from_pretrained`` arguments a recipe may set. A closed list because ``from_pretrained`` rejects a
misspelled keyword only after it has read the whole checkpoint (14 GB for Mistral-7B), and silently applies
any keyword that happens to name a model-config field."""
DATASET_KEYS = {"name", "train_split", "eval_split"}
TOP_LEVEL_TYPES = {
    "packing": bool,
    "fit_to_length": bool,
    "sft_adapter": str | None,
    "init_adapter": str | None,
    "data_folder": str | None,
    "profile": str,
    "quantization": type(None),
    "lora": type(None),
    "model": type(None),
    "dataset": type(None),
    "description": str,
}
"""Types of the top-level keys a ``--key value`` may set (a section can only be switched off: ``--lora null``)."""


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file (or the command line) and the key."""


def _closest(key: str, known) -> str:
    match = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _stage(stage: str) -> Stage:
    if stage not in STAGES:
        raise RecipeError(f"unknown stage {stage!r}; one of {sorted(STAGES)}")
    return STAGES[stage]


def trainer_config_class(stage: str):
    import trl

    return getattr(trl, _stage(stage).config_class)


def _field_types(cls) -> dict[str, Any]:
    """``{field: type}`` of a dataclass, string annotations resolved (what TRL's ``HfArgumentParser`` reads too)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved here: fall back to the raw ones
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in fields(cls)}


def profile_field_types() -> dict[str, Any]:
    """Types of every key ``profile_overrides`` takes: the fields of the profile's parts, and ``seed``."""
    from ..profiles import PARTS

    types = {"seed": int}
    for part in PARTS.values():
        types.update(_field_types(part))
    return types


def profile_fields() -> set[str]:
    return set(profile_field_types())


def trainer_fields(stage: str) -> set[str]:
    return {f.name for f in fields(trainer_config_class(stage))}


def _lora_class():
    from peft import LoraConfig

    return LoraConfig


def lora_fields() -> set[str]:
    return {f.name for f in fields(_lora_class())}


def _quantization_parameters():
    """Named parameters of ``BitsAndBytesConfig.__init__`` (its ``**kwargs`` swallow anything else)."""
    import inspect

    from transformers import BitsAndBytesConfig

    parameters = inspect.signature(BitsAndBytesConfig.__init__).parameters.values()
    return {p.name: p for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD}


def quantization_fields() -> set[str]:
    return set(_quantization_parameters())


def _quantization_types() -> dict[str, Any]:
    """Types of the ``BitsAndBytesConfig`` arguments: annotated ones as annotated, the rest by their default
    (``load_in_4bit=False`` is a bool); ``None`` where neither says (``bnb_4bit_compute_dtype``)."""
    types = {}
    for name, parameter in _quantization_parameters().items():
        if parameter.annotation is not parameter.empty:
            types[name] = parameter.annotation
        elif isinstance(parameter.default, (bool, int, float, str)):
            types[name] = type(parameter.default)
        else:
            types[name] = None
    return types


_CHECKED_TYPES = {bool, int, float, str, list, tuple, dict, type(None)}


def _literal_choices(annotation) -> set | None:
    """The allowed values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation, else None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return set(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if args and all(typing.get_origin(a) is typing.Literal for a in args):
            return set().union(*(typing.get_args(a) for a in args)) | {None}
    return None


def conform_value(value, annotation, where: str):
    """``value`` checked against the type of the field that receives it, before any model loads; returned as
    that type where YAML left it a string (``5e-6`` is a string in YAML 1.1, a float to ``learning_rate``).

    ``learning_rate: abc``, ``max_steps: ten`` or ``beta: strong`` raise :class:`RecipeError` naming ``where``;
    a field whose type this cannot judge (a class, ``Any``) takes the value as it is."""
    allowed = _base_types(annotation)
    if not allowed or allowed - _CHECKED_TYPES:
        return value
    choices = _literal_choices(annotation)

    def refuse(expected: str | None = None):
        names = expected or " or ".join(sorted("null" if t is type(None) else t.__name__ for t in allowed))
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return RecipeError(f"{where}: expected {names}, got {type(value).__name__} {shown}")

    if value is None:
        if type(None) in allowed:
            return None
        raise refuse()
    if choices is not None and value not in choices:
        raise refuse("one of " + ", ".join(sorted(repr(c) for c in choices if c is not None)))
    if isinstance(value, bool):
        if bool in allowed:
            return value
        raise refuse()
    if isinstance(value, int):
        if int in allowed or float in allowed:
            return value
        raise refuse()
    if isinstance(value, float):
        if float in allowed:
            return value
        raise refuse()
    if isinstance(value, str):
        if str in allowed:
            return value
        for number in (float, int):
            if number in allowed:
                try:
                    converted = number(value)
                except ValueError:
                    continue
                if number is float and not math.isfinite(converted):
                    continue
                return converted
        if allowed & {list, tuple}:
            return value  # a single item where a list is declared: the config classes wrap it (loss_type: ipo)
        raise refuse()
    if isinstance(value, list):
        if allowed & {list, tuple}:
            return value
        raise refuse()
    if isinstance(value, dict):
        if dict in allowed:
            return value
        raise refuse()
    raise refuse()


def _section_types(section: str, stage: str) -> dict[str, Any]:
    if section == "model":
        return {key: bool if key == "trust_remote_code" else str for key in MODEL_KEYS}
    if section == "dataset":
        return dict.fromkeys(DATASET_KEYS, str)
    if section == "quantization":
        return _quantization_types()
    if section == "lora":
        return _field_types(_lora_class())
    if section == "profile_overrides":
        return profile_field_types()
    return _field_types(trainer_config_class(stage))


FILE_TOP_LEVEL_TYPES = {**TOP_LEVEL_TYPES, "stage": str, "profile": str | None}
"""Types of the top-level values a recipe file states (sections aside: they are mappings, checked key by key)."""
SECTIONS = ("model", "quantization", "lora", "dataset", "profile_overrides", "trainer")


def _check_keys(keys, known: set[str], where: str, what: str) -> None:
    for key in keys:
        if key not in known:
            raise RecipeError(f"{where}: {key!r} is not {what}{_closest(key, known)}")


def validate_recipe(recipe: dict, source: str) -> dict:
    """Check every section of ``recipe`` against the class that receives it; return ``recipe``."""
    stage = recipe.get("stage")
    if stage not in STAGES:
        raise RecipeError(f"{source}: 'stage' must be one of {list(STAGES)}, got {stage!r}")
    allowed = COMMON_KEYS | STAGES[stage].keys
    for key in recipe:
        if key not in allowed:
            raise RecipeError(
                f"{source}: unknown top-level key {key!r}{_closest(key, allowed)}; "
                f"a {stage} recipe has {sorted(allowed)}"
            )
    if recipe.get("profile") is not None:
        from ..profiles import profile_names

        if recipe["profile"] not in profile_names():
            raise RecipeError(f"{source}: profile {recipe['profile']!r} is not one of {sorted(profile_names())}")
    checks = {
        "model": (MODEL_KEYS, "a from_pretrained argument this loader passes on"),
        "quantization": (quantization_fields(), "a transformers.BitsAndBytesConfig field"),
        "lora": (lora_fields(), "a peft.LoraConfig field"),
        "dataset": (DATASET_KEYS, "a dataset key"),
        "profile_overrides": (profile_fields(), "a zephyr_tutorial.profiles.Profile field"),
        "trainer": (trainer_fields(stage), f"a trl.{STAGES[stage].config_class} field"),
    }
    for key, value in recipe.items():
        if key not in SECTIONS and key in FILE_TOP_LEVEL_TYPES:
            recipe[key] = conform_value(value, FILE_TOP_LEVEL_TYPES[key], f"{source}: top-level key {key!r}")
    for section, (known, what) in checks.items():
        value = recipe.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: {section!r} must be a mapping or null, got {type(value).__name__}")
        _check_keys(value, known, f"{source}: section {section!r}", what)
        types = _section_types(section, stage)
        for key in value:
            value[key] = conform_value(value[key], types.get(key), f"{source}: section {section!r}, key {key!r}")
    if recipe.get("model") is not None and not recipe["model"].get("model_name_or_path"):
        raise RecipeError(f"{source}: section 'model' needs model_name_or_path")
    if recipe.get("dataset") is not None and not recipe["dataset"].get("name"):
        raise RecipeError(f"{source}: section 'dataset' needs a name (a hub id, or 'local' for data/)")
    if "quantization" in recipe and recipe.get("model") is None:
        raise RecipeError(
            f"{source}: section 'quantization' needs a 'model' section (without one the profile's"
            " model and 4-bit setting apply)"
        )
    return recipe


# --------------------------------------------------------------------------- overrides


def _route(key: str, stage: str, recipe: dict | None = None) -> tuple[str | None, str]:
    """Where ``--key`` goes: ``(section, field)``; section ``None`` is the top level.

    ``section.field`` names a section explicitly (``lora.r``, ``quantization.bnb_4bit_quant_type``); otherwise
    top-level keys go to the top level, ``from_pretrained`` arguments to ``model``, a Profile field to
    ``profile_overrides`` unless the ``trainer`` section already states it (it would win over the profile),
    anything else to ``trainer``.
    """
    if "." in key:
        section, name = key.split(".", 1)
        return section, name
    if key in (COMMON_KEYS | STAGES[stage].keys) - {"profile_overrides", "trainer", "stage"}:
        return None, key
    if key in MODEL_KEYS:
        return "model", key
    if key in profile_fields() and key not in ((recipe or {}).get("trainer") or {}):
        return "profile_overrides", key
    return "trainer", key


def _receiving_type(key: str, stage: str):
    """The declared type of the field that receives ``--key`` (``None`` when nothing declares one)."""
    section, name = _route(key, stage)
    if section is None:
        return TOP_LEVEL_TYPES.get(name)
    if section == "model":
        return bool if name == "trust_remote_code" else str
    if section in ("trainer", "profile_overrides"):
        trainer = _field_types(trainer_config_class(stage))
        if name in trainer:  # a key both classes have (max_steps, seed): same meaning, the trainer's type
            return trainer[name]
        return profile_field_types().get(name)
    if section == "lora":
        return _field_types(_lora_class()).get(name)
    if section == "quantization":
        return _quantization_types().get(name)
    return None


def _base_types(annotation) -> set:
    """The plain types an annotation allows: ``float | None`` -> {float, NoneType}; enums and literals -> str."""
    import enum

    if annotation is None:
        return set()
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_base_types(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    if origin is not None:
        return {origin}  # list[str] -> list, dict[...] -> dict
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {str}
    return {annotation} if isinstance(annotation, type) else set()


def typed_value(text: str, annotation):
    """``text`` converted to the type of the field that receives it.

    ``null``/``none`` is ``None``; a float field reads ``5e-6`` as 5e-06 (YAML 1.1 would keep it a string);
    an int field ``10`` as 10; a bool field ``true``/``false``; a str field keeps the text as it is; lists
    and mappings, and keys no class declares, are read as YAML.
    """
    import yaml

    if text.strip().lower() in ("null", "none", "~"):
        return None
    allowed = _base_types(annotation) - {type(None)}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if bool in allowed and isinstance(value, bool):
        return value
    if int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    if float in allowed:
        try:
            return float(text)
        except ValueError:
            pass
    if int in allowed:
        try:
            return int(text)
        except ValueError:
            pass
    if str in allowed and not allowed & {list, dict, tuple}:
        return text
    return value


def parse_overrides(tokens: list[str], stage: str) -> dict[str, Any]:
    """``["--max_steps", "5", "--learning-rate", "5e-6", "--sft_adapter", "null"]`` ->
    ``{"max_steps": 5, "learning_rate": 5e-06, "sft_adapter": None}``.

    Each value is typed by the class that receives the key (:func:`typed_value`): ``SFTConfig``/``DPOConfig``,
    ``LoraConfig`` (``--lora.r 8``), ``BitsAndBytesConfig``, the profile's parts. Keys may be written with
    hyphens or underscores, and as ``--key value`` or ``--key=value``.
    """
    _stage(stage)
    overrides, tokens = {}, list(tokens)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or len(token) == 2:
            raise RecipeError(f"command line: expected `--key value` pairs after the config, got {token!r}")
        key, equals, inline = token[2:].partition("=")
        if not equals:
            if not tokens:
                raise RecipeError(f"command line: {token} needs a value (`--key value`)")
            inline = tokens.pop(0)
        key = key.replace("-", "_")
        overrides[key] = typed_value(inline, _receiving_type(key, stage))
    return overrides


def apply_overrides(recipe: dict, overrides: dict[str, Any]) -> dict:
    """Put each override into the section that owns its key (:func:`_route`); return ``recipe``."""
    stage = recipe["stage"]
    for key, value in overrides.items():
        section, name = _route(key, stage, recipe)
        if section is None:
            recipe[name] = value
        elif section in ("trainer", "profile_overrides"):
            recipe[section][name] = value
        else:
            recipe[section] = {**(recipe.get(section) or {}), name: value}
    return recipe


# --------------------------------------------------------------------------- reading


def read_recipe_file(path: str | os.PathLike) -> dict:
    """The raw YAML mapping of a recipe file (no checks)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} not found (`zephyr-tutorial recipes` lists the shipped ones)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(f"{path}: not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})") from None
    try:
        recipe = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    except RecursionError:
        raise RecipeError(f"{path}: not usable YAML: nested too deeply") from None
    if recipe is None:
        raise RecipeError(f"{path}: the recipe is empty (a recipe states at least its stage, e.g. `stage: sft`)")
    if not isinstance(recipe, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping, got {type(recipe).__name__}")
    return recipe


def load_recipe(path: str | os.PathLike, stage: str | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """Read, check, apply ``overrides`` and check again; ``stage`` (if given) must match the file's.

    A file without ``stage`` (older recipes) takes the one the caller expects. A DPO recipe without
    ``sft_adapter`` continues notebook 03's adapter (``auto``) when it has no ``model`` section.
    """
    recipe = read_recipe_file(find_recipe(path))
    if stage is not None:
        recipe.setdefault("stage", stage)
        if recipe["stage"] != stage:
            raise RecipeError(f"{path}: a {recipe['stage']!r} recipe, but the {stage} command was asked to run it")
    for section in SECTIONS:  # before anything reads them: a section written as a string or a list
        if recipe.get(section) is not None and not isinstance(recipe[section], dict):
            raise RecipeError(f"{path}: {section!r} must be a mapping or null, got {type(recipe[section]).__name__}")
    recipe["profile_overrides"] = dict(recipe.get("profile_overrides") or {})
    recipe["trainer"] = dict(recipe.get("trainer") or {})
    validate_recipe(recipe, str(path))
    if overrides:
        validate_recipe(apply_overrides(recipe, overrides), f"{path} with command-line overrides {sorted(overrides)}")
    if recipe["stage"] == "dpo":
        recipe.setdefault("sft_adapter", "auto" if recipe.get("model") is None else None)
    return recipe


def default_recipe(stage: str, profile, overrides: dict[str, Any] | None = None) -> dict:
    """The shipped recipe a profile trains ``stage`` with (``profile.sft_recipe`` / ``profile.dpo_recipe``)."""
    return load_recipe(getattr(profile, f"{_stage(stage).name}_recipe"), stage, overrides)


def default_run_dir(stage: str) -> Path:
    """``outputs/<stage>/run``: checkpoints of a stage's run, its result in ``final/``."""
    from ..runtime import output_dir

    return output_dir(_stage(stage).name, "run")


def recipe_profile(recipe: dict, *, require_hardware: bool = True):
    """The recipe's Profile with ``profile_overrides`` applied (``require_hardware=False`` skips the CUDA check)."""
    from ..profiles import active_profile, get_profile

    name = recipe.get("profile")
    base = active_profile(name) if require_hardware else get_profile(name or "cpu")
    return base.with_overrides(**recipe["profile_overrides"])


def build_quantization_config(recipe: dict, profile):
    """``BitsAndBytesConfig`` from the ``quantization`` section; absent: the profile's NF4 setting; null: none."""
    from transformers import BitsAndBytesConfig

    from ..models import nf4_config

    if "quantization" not in recipe:
        return nf4_config(profile.model.dtype) if profile.model.load_in_4bit else None
    section = recipe["quantization"]
    return None if section is None else BitsAndBytesConfig(**section)


def build_lora_config(recipe: dict):
    """``LoraConfig`` from the ``lora`` section (:func:`zephyr_tutorial.models.lora_config`); none: no adapter."""
    from ..models import lora_config

    return lora_config(recipe.get("lora"))


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
    if path.suffix in (".yaml", ".yml") or os.sep in str(name_or_path):
        raise FileNotFoundError(f"recipe {path} not found (`zephyr-tutorial recipes` lists the shipped ones)")
    raise FileNotFoundError(f"no recipe {name_or_path!r}; shipped: {', '.join(sorted(by_name))}")
