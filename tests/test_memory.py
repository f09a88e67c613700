"""The fine-tuning memory estimator: parameter counts, published figures, and a measured CPU peak."""

from __future__ import annotations

import pytest

from zephyr_tutorial import memory
from zephyr_tutorial.memory import GIB, LLAMA2_7B, LLAMA_65B, MISTRAL_7B, SMOLLM2_135M, estimate_training_memory


def test_shape_of_the_embedded_model_counts_its_real_parameters(embedded_model_and_tokenizer):
    model, _ = embedded_model_and_tokenizer
    shape = memory.ModelShape.from_config(model.config, "SmolLM2-135M")
    assert shape == memory.ModelShape(**{**SMOLLM2_135M.__dict__, "name": "SmolLM2-135M"})
    assert shape.parameters == sum(p.numel() for p in model.parameters())


def test_lora_count_matches_peft(tiny_model):
    from peft import LoraConfig, get_peft_model

    shape = memory.ModelShape.from_config(tiny_model.config)
    peft_model = get_peft_model(tiny_model, LoraConfig(r=4, target_modules=list(memory.LORA_TARGETS)))
    assert memory.lora_parameters(shape, 4) == peft_model.get_nb_trainable_parameters()[0]


def test_published_parameter_counts():
    # Mistral-7B "7.24B" (Jiang et al. 2023); LLaMA-65B "65.2B" (Touvron et al. 2023); Llama-2-7B 6.74B.
    assert round(MISTRAL_7B.parameters / 1e9, 2) == 7.24
    assert round(LLAMA_65B.parameters / 1e9, 1) == 65.3
    assert round(LLAMA2_7B.parameters / 1e9, 2) == 6.74


def test_full_mixed_precision_adam_needs_16_bytes_per_parameter():
    # ZeRO (Rajbhandari et al. 2020): 2 (fp16 weights) + 2 (grads) + 12 (fp32 master + Adam moments) bytes.
    e = estimate_training_memory(MISTRAL_7B, "full", seq_len=1, batch_size=1, compute_bytes=2)
    assert (e.weights + e.gradients + e.optimizer) / MISTRAL_7B.parameters == 16


def test_qlora_paper_65b_fits_one_48gb_gpu_while_16bit_full_needs_over_780gb():
    # Dettmers et al. 2023 (arXiv:2305.14314), abstract and introduction.
    qlora = estimate_training_memory(LLAMA_65B, "qlora", seq_len=512, batch_size=1, compute_bytes=2)
    full = estimate_training_memory(LLAMA_65B, "full", seq_len=512, batch_size=1, compute_bytes=2)
    assert 30 * GIB < qlora.total < 48e9 and full.total > 780e9


def test_torchtune_llama2_7b_qlora_runs_under_10_gb():
    # https://pytorch.org/torchtune/stable/tutorials/qlora_finetune.html ("in <10 GB of memory")
    e = estimate_training_memory(LLAMA2_7B, "qlora", seq_len=512, batch_size=2, lora_r=8, compute_bytes=2)
    assert 3.5 * GIB < e.total < 10e9


def test_double_quantization_saves_about_0_37_bits_per_weight():
    saved = memory.quantized_bits_per_weight(False) - memory.quantized_bits_per_weight(True)
    assert saved == pytest.approx(0.373, abs=0.001)  # QLoRA paper: 0.5 -> 0.127 bits per parameter


def test_table_orders_methods_by_memory_and_marks_what_fits():
    rows = {(r["method"], r["seq_len"]): r for r in memory.memory_table(MISTRAL_7B, seq_lens=(512, 2048))}
    assert rows[("qlora", 512)]["total_gib"] < rows[("lora", 512)]["total_gib"] < rows[("full", 512)]["total_gib"]
    assert rows[("qlora", 512)]["T4 16 GB"] and not rows[("full", 512)]["A100 80 GB"]
    assert rows[("qlora", 2048)]["total_gib"] > rows[("qlora", 512)]["total_gib"]
    assert "T4 16 GB" in memory.format_table(list(rows.values())).splitlines()[0]


def test_estimate_matches_measured_cpu_peak_of_the_embedded_model():
    """Tolerance: the NF4 weights within 3%; the training peak between 1.0x and 1.8x the estimate.

    The estimate counts the tensors autograd must keep; the measured peak resident memory adds allocator caching,
    gradient temporaries of the backward pass and fp32 copies inside RMSNorm, which we do not model.
    """
    measured = memory.measure_cpu_training_peak(seq_len=128, batch_size=4, steps=1, quantized=True)
    estimate = estimate_training_memory(
        SMOLLM2_135M, "qlora", seq_len=128, batch_size=4, lora_r=16, gradient_checkpointing=False, compute_bytes=4
    )
    assert measured["weights_mib"] == pytest.approx(estimate.weights / 2**20, rel=0.03)
    ratio = measured["peak_mib"] / (estimate.total / 2**20)
    assert 1.0 <= ratio <= 1.8, f"measured {measured['peak_mib']:.0f} MiB vs estimated {estimate.total / 2**20:.0f} MiB"


def test_child_process_peak_is_its_own_not_the_parents():
    """measure_cpu_training_peak runs a fresh process; its peak must not include the parent's (a benchmark
    that has just trained a model), which getrusage's ru_maxrss does on Linux after fork + exec."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the inherited high-water mark is a Linux behaviour; elsewhere the fallback is ru_maxrss")
    ballast = bytearray(600 * 2**20)
    ballast[::4096] = b"\x01" * len(range(0, len(ballast), 4096))  # touch every page so it is resident
    child = "from zephyr_tutorial.memory import own_peak_rss_mb; print(own_peak_rss_mb())"
    peak = float(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout)
    del ballast
    assert 1 < peak < 300  # an interpreter importing the package, far below the parent's 600 MiB of ballast


def test_the_role_models_have_their_published_parameter_counts():
    # model cards: Qwen2.5 3B "3.09B", 7B "7.61B", 14B "14.7B", 72B "72.7B"; SmolLM2-1.7B "1.7B" (q/k/v biases left out)
    counts = {memory.QWEN2_5_3B: 3.09, memory.QWEN2_5_7B: 7.61, memory.QWEN2_5_14B: 14.7, memory.QWEN2_5_72B: 72.7}
    for shape, billions in counts.items():
        assert shape.parameters / 1e9 == pytest.approx(billions, rel=0.01), shape.name
    assert round(memory.SMOLLM2_1_7B.parameters / 1e9, 1) == 1.7


def test_inference_memory_is_weights_plus_kv_cache_and_grows_with_the_batch():
    one = memory.estimate_inference_memory(MISTRAL_7B, seq_len=1024, batch_size=1)
    eight = memory.estimate_inference_memory(MISTRAL_7B, seq_len=1024, batch_size=8)
    training = estimate_training_memory(MISTRAL_7B, "qlora", seq_len=1, batch_size=1, non_quantized_bytes=2)
    assert one.weights == pytest.approx(training.weights)  # the same NF4 storage as QLoRA's frozen base
    assert one.gradients == one.optimizer == one.trainable == 0
    # Mistral's KV cache: 2 (K, V) x 32 layers x 1024 (8 KV heads x 128) values x 2 bytes = 128 KiB per token
    kv_per_token = 2 * 32 * 1024 * 2
    assert eight.activations - one.activations >= 7 * 1024 * kv_per_token
    full = memory.estimate_inference_memory(MISTRAL_7B, seq_len=1024, batch_size=1, load_in_4bit=False)
    assert full.weights / GIB == pytest.approx(13.5, abs=0.1) and one.weights / GIB < 4


def test_the_gpu_cards_say_which_compute_bfloat16():
    cards = memory.GPU_CARDS
    assert cards["T4 16 GB"].compute_capability < (8, 0) <= cards["L4 24 GB"].compute_capability
    assert memory.GPUS_GIB == {name: cards[name].memory_gib for name in memory.GPUS_GIB}
