"""4-bit NF4 weights + LoRA adapters + an optimizer step, for real on the CPU (bitsandbytes >= 0.49)."""

import pytest
import torch


@pytest.fixture()
def quantized_tiny_model(embedded_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    from zephyr_tutorial.models import build_tiny_model, nf4_config

    build_tiny_model(embedded_tokenizer, hidden_size=128).save_pretrained(tmp_path / "tiny")
    config = nf4_config("float32")  # the one NF4 config of the package, double quantization on
    assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    return AutoModelForCausalLM.from_pretrained(tmp_path / "tiny", quantization_config=config, dtype=torch.float32)


def test_nf4_lora_training_reduces_the_loss(quantized_tiny_model, embedded_tokenizer):
    import bitsandbytes as bnb
    from peft import get_peft_model, prepare_model_for_kbit_training

    from zephyr_tutorial.models import lora_config

    linear_4bit = [m for m in quantized_tiny_model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear_4bit and all(m.weight.quant_type == "nf4" for m in linear_4bit)

    model = prepare_model_for_kbit_training(quantized_tiny_model, use_gradient_checkpointing=False)
    model = get_peft_model(model, lora_config({"r": 8, "lora_alpha": 16, "lora_dropout": 0.0}))
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    # Compare what the frozen layer computes, not its packed storage: on CPUs with AVX-512 bitsandbytes repacks the
    # 4-bit blocks at the first forward pass (shape (8192, 1) -> (128, 64)), so the raw bytes change while the
    # weights they encode do not.
    frozen = linear_4bit[0]
    probe = torch.randn(2, frozen.in_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        frozen_before = frozen(probe).clone()

    batch = embedded_tokenizer(["The capital of France is Paris."] * 2, return_tensors="pt")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses
    with torch.no_grad():
        assert torch.equal(frozen(probe), frozen_before), "4-bit base weights must stay frozen"
