"""benchmarks/gpu_check.py: every check the GPU path needs exists, and without CUDA it says so and stops."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
REQUIRED = (
    "nf4_loading",
    "qlora_sft_paged_optimizer",
    "dpo_adapter_disabled_reference",
    "autocast_float16",
    "autocast_bfloat16",
    "memory_estimate",
    "vllm_backend",
)


def _module(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_check_exists_and_runs_in_order(monkeypatch):
    module = _module(monkeypatch)
    names = [check.__name__.removeprefix("check_") for check in module.CHECKS]
    assert names == list(REQUIRED)
    assert all(callable(getattr(module, f"check_{name}")) for name in REQUIRED)
    doc = module.__doc__
    assert "beyond a CUDA build of PyTorch" in doc and "vllm" in doc and "bitsandbytes" in doc
    assert all(f"``{name}``" in doc for name in REQUIRED)


def test_without_cuda_it_exits_with_a_clear_message():
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "gpu_check needs a CUDA GPU and PyTorch sees none" in result.stderr and result.stdout == ""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: the GPU path runs where one is visible")
def test_the_gpu_path_passes_on_this_gpu():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=480)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.split(" ", 1)[0] in ("PASS", "FAIL", "SKIP")]
    assert len(lines) == len(REQUIRED) and not any(line.startswith("FAIL") for line in lines)
