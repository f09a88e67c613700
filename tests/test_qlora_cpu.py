"""4-bit NF4 weights + LoRA adapters + an optimizer step, for real on the CPU (bitsandbytes >= 0.49)."""

import pytest
import torch


@pytest.fixture()
def quantized_tiny_model(embedded_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from zephyr_tutorial.models import build_tiny_model

    build_tiny_model(embedded_tokenizer, hidden_size=128).save_pretrained(tmp_path / "tiny")
    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32
    )
    return AutoModelForCausalLM.from_pretrained(tmp_path / "tiny", quantization_config=config, dtype=torch.float32)


def test_nf4_lora_training_reduces_the_loss(quantized_tiny_model, embedded_tokenizer):
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    linear_4bit = [m for m in quantized_tiny_model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear_4bit and all(m.weight.quant_type == "nf4" for m in linear_4bit)

    model = prepare_model_for_kbit_training(quantized_tiny_model, use_gradient_checkpointing=False)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM")
    )
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    frozen_before = linear_4bit[0].weight.detach().clone()

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
    assert torch.equal(linear_4bit[0].weight.detach(), frozen_before), "4-bit base weights must stay frozen"
