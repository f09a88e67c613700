"""A real multi-process run: `accelerate launch` with the shipped cpu_ddp.yaml starts two CPU processes
that train with DDP over gloo.

accelerate's own CPU launch path (`--cpu`, or a MULTI_CPU config) starts several processes only through
MPI (`mpirun`); without MPI it starts one. cpu_ddp.yaml therefore uses the multi-GPU launcher (torchrun
underneath), and each process selects the CPU and the gloo backend itself, because our training arguments
set `use_cpu` when no CUDA device is visible. The test reads the distributed mode and world size that
each rank's trainer reports, so it fails if the processes ran without DDP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from samples import assert_adapter_loads_and_answers, dpo_command, lora_weights, sft_command

CPU_DDP_CONFIG = Path(__file__).resolve().parents[1] / "zephyr_tutorial" / "recipes" / "accelerate" / "cpu_ddp.yaml"
LAUNCH_OPTIONS = ["--config_file", str(CPU_DDP_CONFIG), "-m", "zephyr_tutorial.cli"]


def _free_port() -> int:
    """A port nobody listens on, so parallel test runs on one machine do not share torchrun's default 29500."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accelerate_launch(arguments: list[str], timeout: float = 300) -> str:
    accelerate = Path(sys.executable).with_name("accelerate")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [str(accelerate), "launch", "--main_process_port", str(_free_port()), *LAUNCH_OPTIONS, *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's rendezvous is not supported on Windows")
def test_two_process_ddp_runs_sft_then_dpo_and_saves_a_loadable_adapter(tiny_model_dir, tmp_path):
    sft_dir, dpo_dir = tmp_path / "sft", tmp_path / "dpo"
    out = accelerate_launch(sft_command(tiny_model_dir, sft_dir))
    for rank in (0, 1):
        assert f"[sft] rank {rank}/2 (MULTI_CPU): trained 2 steps" in out, out
    assert_adapter_loads_and_answers(tiny_model_dir, sft_dir / "final")

    out = accelerate_launch(dpo_command(tiny_model_dir, sft_dir / "final", dpo_dir))
    for rank in (0, 1):
        assert f"[dpo] rank {rank}/2 (MULTI_CPU): trained 2 steps" in out, out
    assert out.count("adapter saved to") == 1  # only the main process writes the files
    assert_adapter_loads_and_answers(tiny_model_dir, dpo_dir / "final")
    sft_weights, dpo_weights = lora_weights(sft_dir / "final"), lora_weights(dpo_dir / "final")
    assert any(not (dpo_weights[name] == sft_weights[name]).all() for name in sft_weights)
