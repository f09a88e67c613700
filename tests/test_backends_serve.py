"""Integration: `transformers serve` on 127.0.0.1 with the embedded model, judged through the OpenAI backend."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from zephyr_tutorial.backends import OpenAIBackend, SamplingConfig
from zephyr_tutorial.evaluation import LLMJudge, load_pairwise_items
from zephyr_tutorial.runtime import data_dir

STARTUP_SECONDS = 240


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_model(embedded_model_dir, tmp_path_factory):
    executable = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
    if not Path(executable).exists():
        pytest.skip("the `transformers` command is not installed (pip install 'transformers[serving]')")
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [
        executable,
        "serve",
        str(embedded_model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "w") as handle:
        server = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.skip(f"`transformers serve` exited with code {server.returncode}: {log.read_text()[-800:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.skip(f"`transformers serve` did not answer within {STARTUP_SECONDS}s: {log.read_text()[-800:]}")
        yield f"http://127.0.0.1:{port}/v1", str(embedded_model_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_pairwise_judging_through_an_openai_compatible_server(served_model):
    base_url, model_name = served_model
    # generous timeout: on a loaded 2-core machine one judge prompt takes minutes; the server handles one at a time
    backend = OpenAIBackend(model_name, base_url=base_url, timeout=600, max_retries=0, concurrency=1, progress=False)
    (reply,) = backend.chat(
        [[{"role": "user", "content": "What is the capital of France?"}]], SamplingConfig(max_new_tokens=12)
    )
    assert "Paris" in reply.text
    pairs = load_pairwise_items(data_dir() / "pairwise_eval.jsonl")[:1]
    report = LLMJudge(backend, prompt="mt_bench", max_new_tokens=16).compare(pairs, swap=True)
    assert len(report.judgments) == 1
    assert all(len(j.replies) == 2 and all(r.strip() for r in j.replies) for j in report.judgments)
    # whatever the small model answers is either a verdict or a counted parse failure
    assert report.parse_failures == sum(j.verdict is None for j in report.judgments)
    assert report.to_dict()["judge"].startswith("openai:")
