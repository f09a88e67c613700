"""VLLMBackend on a real vLLM engine: runs where vLLM and a CUDA GPU are present, skips with the reason elsewhere."""

from __future__ import annotations

import importlib.util

import pytest


def _why_vllm_cannot_run() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (pip install 'zephyr-tutorial[gpu]')"
    import torch

    if not torch.cuda.is_available():
        return "vLLM needs a CUDA GPU and none is visible"
    return None


pytestmark = pytest.mark.skipif(_why_vllm_cannot_run() is not None, reason=_why_vllm_cannot_run() or "")


@pytest.fixture(scope="module")
def vllm_backend(embedded_model_dir):
    """The embedded model in vLLM's default bf16 (fp32 is not supported by every vLLM attention backend)."""
    from zephyr_tutorial.backends import VLLMBackend

    # a small share of the GPU: the embedded 135M model needs little, and the GPU may be shared with other tests
    return VLLMBackend(str(embedded_model_dir), gpu_memory_utilization=0.3, max_model_len=1024, seed=0)


def test_vllm_answers_in_order_within_the_token_budget(vllm_backend, embedded_model_dir):
    from zephyr_tutorial.backends import SamplingConfig

    conversations = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Say hello."}],
    ]
    replies = vllm_backend.chat(conversations, SamplingConfig(max_new_tokens=16))
    assert len(replies) == 2 and "Paris" in replies[0].text and "Paris" not in replies[1].text
    assert all(0 < reply.completion_tokens <= 16 and reply.prompt_tokens > 0 for reply in replies)
    assert {reply.finish_reason for reply in replies} <= {"stop", "length"}
    assert vllm_backend.name == f"vllm:{embedded_model_dir}"  # names the model in caches and reports


def test_vllm_greedy_is_deterministic_and_a_tight_budget_stops_at_length(vllm_backend):
    from zephyr_tutorial.backends import SamplingConfig

    conversation = [[{"role": "user", "content": "Write a long story about a dragon."}]]
    first, second = (vllm_backend.chat(conversation, SamplingConfig(max_new_tokens=4))[0] for _ in range(2))
    assert first.text == second.text
    assert first.finish_reason == "length" and first.completion_tokens == 4
