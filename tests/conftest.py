"""Shared fixtures: the embedded model (prepared once per session), a tiny random model, a fake OpenAI endpoint."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _artifacts_in_a_temporary_folder(tmp_path_factory):
    """Tests never write into the checkout's outputs/ (where the notebooks keep their artifacts)."""
    previous = os.environ.get("ZEPHYR_OUTPUT_DIR")
    os.environ["ZEPHYR_OUTPUT_DIR"] = str(tmp_path_factory.mktemp("outputs"))
    yield
    if previous is None:
        os.environ.pop("ZEPHYR_OUTPUT_DIR", None)
    else:
        os.environ["ZEPHYR_OUTPUT_DIR"] = previous


@pytest.fixture(scope="session")
def embedded_model_dir():
    from zephyr_tutorial.models import resolve_embedded_model

    return resolve_embedded_model()


@pytest.fixture(scope="session")
def embedded_tokenizer(embedded_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@pytest.fixture(scope="session")
def embedded_model_and_tokenizer(embedded_model_dir):
    from zephyr_tutorial.models import load_embedded_model

    return load_embedded_model(embedded_model_dir)


@pytest.fixture()
def tiny_model(embedded_tokenizer):
    from zephyr_tutorial.models import build_tiny_model

    return build_tiny_model(embedded_tokenizer)


class FakeOpenAIServer:
    """A local HTTP server speaking the chat-completions protocol, for testing OpenAI-compatible clients offline.

    It answers ``"Echo (<model>): <last message>"`` and records what clients must get right: the
    Authorization header of every request (to check that the API key is sent, and sent only there) and
    the most requests it had in flight at once (to check a concurrency limit). Set ``failures_left`` to
    answer that many requests with HTTP 500, to exercise a client's retries, and ``respond`` to a function
    ``respond(body) -> (status, text)`` to answer a request as a test needs (a judge's reply, an HTTP 400,
    an error body, a delay); ``None`` from it falls back to the echo. ``requests`` counts every request.
    """

    seconds_per_request = 0.05
    """Each request is held this long, so that requests of a concurrent client overlap measurably."""

    def __init__(self):
        import threading
        from http.server import ThreadingHTTPServer

        self.authorizations: list[str | None] = []
        self.failures_left = 0
        self.respond = None
        self.requests = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def _handler_class(self):
        import json
        import time
        from http.server import BaseHTTPRequestHandler

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.authorizations.append(self.headers.get("Authorization"))
                    server.requests += 1
                    fail = server.failures_left > 0
                    server.failures_left -= int(fail)
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                time.sleep(server.seconds_per_request)
                with server._lock:
                    server._in_flight -= 1
                if fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                status, text = 200, f"Echo ({body['model']}): {body['messages'][-1]['content']}"
                answer = server.respond(body) if server.respond is not None else None
                if answer is not None:
                    status, text = answer
                if status != 200:
                    error = json.dumps({"error": {"message": text, "type": "test", "code": status}}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                payload = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                    }
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a test of its deadline)
                    pass

            def log_message(self, *args):  # keep pytest's output clean
                pass

        return Handler

    def shutdown(self):
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture()
def openai_server():
    """A fresh :class:`FakeOpenAIServer` on 127.0.0.1 (a free port), stopped after the test."""
    server = FakeOpenAIServer()
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, embedded_tokenizer):
    """The tiny random model saved with its tokenizer: what `--model_name_or_path` points the recipes at."""
    from zephyr_tutorial.models import build_tiny_model

    directory = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(embedded_tokenizer).save_pretrained(directory)
    embedded_tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture()
def zephyr_tokenizer(embedded_tokenizer):
    """A copy of the embedded tokenizer with the Zephyr chat template (tests may change it freely)."""
    import copy

    from zephyr_tutorial.chat_template import apply_zephyr_template

    return apply_zephyr_template(copy.deepcopy(embedded_tokenizer))


@pytest.fixture()
def tiny_nf4_dir(tmp_path, tiny_model, zephyr_tokenizer):
    """A tiny random model saved to disk, so it can be re-loaded in 4-bit like a real checkpoint."""
    path = tmp_path / "tiny-base"
    tiny_model.save_pretrained(path)
    zephyr_tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def sft_like_model(tiny_model):
    """The tiny model with a non-zero LoRA adapter standing in for notebook 03's SFT adapter."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    return get_peft_model(tiny_model, config)
