import sqlite3
import subprocess
import sys
import time

import pytest

from zephyr_tutorial.backends import (
    BackendError,
    CachedBackend,
    Completion,
    OpenAIBackend,
    SamplingConfig,
    TransformersBackend,
    cache_key,
    failed_completion,
    redact,
    validate_conversation,
    within_budget,
)

QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 2?", "Say hello."]


def _conversations(questions):
    return [[{"role": "user", "content": q}] for q in questions]


def test_batched_generation_equals_one_at_a_time(embedded_model_and_tokenizer):
    model, tokenizer = embedded_model_and_tokenizer
    config = SamplingConfig(max_new_tokens=12)
    batched = TransformersBackend(model, tokenizer, batch_size=4, progress=False).chat(
        _conversations(QUESTIONS), config
    )
    single = TransformersBackend(model, tokenizer, batch_size=1, progress=False).chat(_conversations(QUESTIONS), config)
    assert [c.text for c in batched] == [c.text for c in single]
    assert "Paris" in batched[0].text
    assert all(c.completion_tokens <= 12 for c in batched)
    assert {c.finish_reason for c in batched} <= {"stop", "length"}


def test_outputs_keep_input_order_and_sampling_is_seeded(embedded_model_and_tokenizer):
    model, tokenizer = embedded_model_and_tokenizer
    backend = TransformersBackend(model, tokenizer, batch_size=2, progress=False)
    questions = ["Say hello.", "What is the capital of France?"]
    replies = backend.chat(_conversations(questions), SamplingConfig(max_new_tokens=10))
    assert "Paris" in replies[1].text and "Paris" not in replies[0].text
    sampled = SamplingConfig(max_new_tokens=10, temperature=1.0, seed=7)
    assert [c.text for c in backend.chat(_conversations(questions), sampled)] == [
        c.text for c in backend.chat(_conversations(questions), sampled)
    ]


def test_malformed_conversations_are_named():
    with pytest.raises(ValueError, match="conversation 0, message 1: field 'content' must be a string"):
        validate_conversation([{"role": "user", "content": "hi"}, {"role": "assistant"}], "conversation 0")
    with pytest.raises(ValueError, match="empty conversation"):
        validate_conversation([])


class _FakeBackend:
    name = "fake"

    def __init__(self):
        self.calls = 0

    def chat(self, conversations, config=SamplingConfig()):
        self.calls += len(conversations)
        return [Completion(text=c[-1]["content"].upper(), completion_tokens=1) for c in conversations]


def test_cache_answers_repeats_from_disk(tmp_path):
    inner = _FakeBackend()
    cached = CachedBackend(inner, tmp_path / "judgments.sqlite")
    first = cached.chat(_conversations(["a", "b", "a"]))
    assert [c.text for c in first] == ["A", "B", "A"] and inner.calls == 2
    reopened = CachedBackend(inner, tmp_path / "judgments.sqlite")
    assert [c.text for c in reopened.chat(_conversations(["b", "a"]))] == ["B", "A"]
    assert inner.calls == 2 and reopened.hits == 2 and cached.hits == 1 and cached.misses == 2
    assert cache_key("fake", _conversations(["a"])[0], SamplingConfig()) != cache_key(
        "fake", _conversations(["a"])[0], SamplingConfig(max_new_tokens=1)
    )


def test_remembered_replies_are_served_without_asking_and_failures_are_not_kept(tmp_path):
    inner = _FakeBackend()
    cached = CachedBackend(inner, tmp_path / "answers.sqlite")
    config = SamplingConfig(max_new_tokens=8)
    cached.remember(
        _conversations(["a", "b"]), config, [Completion("given a", completion_tokens=2), failed_completion("down")]
    )
    assert [c.text for c in cached.chat(_conversations(["a", "b"]), config)] == ["given a", "B"]
    assert inner.calls == 1, "only the failed one was asked"
    assert cached.chat(_conversations(["a"]), SamplingConfig(max_new_tokens=9))[0].text == "A"  # another budget
    with pytest.raises(ValueError, match="2 conversations but 1 completions"):
        cached.remember(_conversations(["a", "b"]), config, [Completion("x")])


def test_a_greedy_answer_cut_to_a_smaller_budget_is_the_answer_that_budget_gives(tiny_model, zephyr_tokenizer):
    conversations = _conversations(QUESTIONS)
    backend = TransformersBackend(tiny_model, zephyr_tokenizer, batch_size=4, progress=False)
    long = backend.chat(conversations, SamplingConfig(max_new_tokens=12))
    short = backend.chat(conversations, SamplingConfig(max_new_tokens=5))
    assert {a.finish_reason for a in long} == {"length"}  # a random model never ends its turn ...
    cut = [within_budget(a, 5, zephyr_tokenizer) for a in long]
    assert [(c.text, c.completion_tokens, c.finish_reason, c.token_ids) for c in cut] == [
        (s.text, s.completion_tokens, s.finish_reason, s.token_ids) for s in short
    ]

    zephyr_tokenizer.eos_token = zephyr_tokenizer.convert_ids_to_tokens(long[0].token_ids[2])  # ... unless told
    long = backend.chat(conversations, SamplingConfig(max_new_tokens=12))
    short = backend.chat(conversations, SamplingConfig(max_new_tokens=5))
    assert long[0].finish_reason == "stop" and long[0].completion_tokens <= 3
    cut = [within_budget(a, 5, zephyr_tokenizer) for a in long]
    assert [(c.text, c.completion_tokens, c.finish_reason) for c in cut] == [
        (s.text, s.completion_tokens, s.finish_reason) for s in short
    ]

    with pytest.raises(ValueError, match="cut at 5 tokens: what a 12-token budget gives is unknown"):
        within_budget(Completion("cut", completion_tokens=5, finish_reason="length", token_ids=[1] * 5), 12, None)
    with pytest.raises(ValueError, match="keeps no token ids"):
        within_budget(Completion("from an endpoint", completion_tokens=30, finish_reason="length"), 5, None)


def test_openai_backend_retries_limits_concurrency_and_hides_the_key(openai_server, monkeypatch, tmp_path):
    secret = "sk-test-do-not-leak-1234"
    monkeypatch.setenv("ZEPHYR_TEST_KEY", secret)
    openai_server.failures_left = 2  # the first two requests get HTTP 500 and must be retried
    backend = OpenAIBackend(
        "judge-model",
        base_url=openai_server.base_url,
        api_key_env="ZEPHYR_TEST_KEY",
        concurrency=2,
        max_retries=3,
        timeout=10,
        progress=False,
    )
    cached = CachedBackend(backend, tmp_path / "cache.sqlite")
    replies = cached.chat(_conversations(["one", "two", "three", "four", "five"]))
    assert [r.text for r in replies] == [f"Echo (judge-model): {q}" for q in ("one", "two", "three", "four", "five")]
    assert replies[0].prompt_tokens == 3 and replies[0].completion_tokens == 2
    assert openai_server.max_in_flight <= 2
    assert len(openai_server.authorizations) == 5 + 2, "five requests, two of them retried once"
    assert set(openai_server.authorizations) == {f"Bearer {secret}"}
    assert secret not in repr(backend) and secret not in backend.name
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        stored = " ".join(v for (v,) in db.execute("SELECT value FROM completions"))
    assert stored and secret not in stored
    assert secret not in (tmp_path / "cache.sqlite").read_bytes().decode("latin-1")


def test_generation_stops_on_the_tokenizers_eos_not_the_models_generation_config(tiny_model, zephyr_tokenizer):
    """The chat template's end-of-turn token (the tokenizer's EOS) decides where an answer stops, whatever the
    model's generation_config says: SmolLM2's says <|im_end|> even when the template ends turns otherwise."""
    import torch

    from zephyr_tutorial.backends import SamplingConfig, TransformersBackend

    zephyr_tokenizer.chat_template = "{{ messages[0]['content'] }}"  # a prompt that does not contain the EOS
    prompt = zephyr_tokenizer("Hi", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        first = int(tiny_model(**prompt).logits[0, -1].argmax())  # the greedy first answer token
    backend = TransformersBackend(tiny_model, zephyr_tokenizer, batch_size=1, progress=False)
    conversation, budget = [{"role": "user", "content": "Hi"}], SamplingConfig(max_new_tokens=6)

    tiny_model.generation_config.eos_token_id = first  # the model's config would stop at once ...
    (answer,) = backend.chat([conversation], budget)
    assert (answer.finish_reason, answer.completion_tokens) == ("length", 6)  # ... the tokenizer's EOS rules

    zephyr_tokenizer.eos_token = zephyr_tokenizer.convert_ids_to_tokens(first)  # now the end of turn is that token
    tiny_model.generation_config.eos_token_id = 2
    (answer,) = backend.chat([conversation], budget)
    assert (answer.finish_reason, answer.completion_tokens, answer.text) == ("stop", 1, "")


def test_a_model_fresh_from_training_decodes_in_eval_mode_with_its_cache_and_goes_back(tiny_model, zephyr_tokenizer):
    """What a trainer leaves behind (training mode, KV cache off) changes neither the answers nor the model."""
    from zephyr_tutorial.backends import SamplingConfig, TransformersBackend

    backend = TransformersBackend(tiny_model, zephyr_tokenizer, batch_size=2, progress=False)
    conversations = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Name a colour."}]]
    budget = SamplingConfig(max_new_tokens=5)
    tiny_model.eval()
    expected = [answer.text for answer in backend.chat(conversations, budget)]

    tiny_model.config.attention_dropout = 0.9  # dropout that would change every answer if it were on
    for module in tiny_model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.9
    tiny_model.train()
    tiny_model.config.use_cache = False
    modes = []
    hook = tiny_model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    try:
        assert [answer.text for answer in backend.chat(conversations, budget)] == expected
    finally:
        hook.remove()
    assert modes and not any(modes)  # every decoding step ran in eval mode
    assert tiny_model.training  # and the model is back in the mode the trainer left


# --------------------------------------------------------------------------- failures, one at a time (issue 15)


def _endpoint(server, **options):
    return OpenAIBackend(
        "judge-model", base_url=server.base_url, api_key_env="ZEPHYR_TEST_KEY", progress=False, **options
    )


def test_a_failed_request_is_one_missing_reply_and_every_other_is_cached_as_it_arrives(openai_server, tmp_path):
    """One permanent HTTP 400 among the requests: the others are kept and cached, and a rerun pays only for the
    failed one (before, the first failed future raised and none of the paid replies was stored)."""
    openai_server.respond = lambda body: (400, "prompt too long") if "q3" in body["messages"][-1]["content"] else None
    questions = [f"q{i}" for i in range(8)]
    cached = CachedBackend(_endpoint(openai_server, concurrency=3), tmp_path / "cache.sqlite")
    replies = cached.chat(_conversations(questions))
    assert [r.ok for r in replies] == [q != "q3" for q in questions]
    assert "HTTP 400" in replies[3].error and "prompt too long" in replies[3].error and replies[3].text == ""
    assert openai_server.requests == 8
    again = CachedBackend(_endpoint(openai_server), tmp_path / "cache.sqlite").chat(_conversations(questions))
    assert openai_server.requests == 9 and [r.text for r in again] == [r.text for r in replies]


class _StopsAfter:
    """A backend whose run dies after ``n`` replies (a kill, a crash): what was answered until then must stay."""

    name = "stops"

    def __init__(self, n):
        self.n = n

    def iter_chat(self, conversations, config=SamplingConfig()):
        for i, conversation in enumerate(conversations):
            if i == self.n:
                raise KeyboardInterrupt
            yield i, Completion(text=conversation[-1]["content"].upper())


def test_replies_before_a_crash_are_cached_and_the_rest_is_asked_again(tmp_path):
    path = tmp_path / "cache.sqlite"
    with pytest.raises(KeyboardInterrupt):
        CachedBackend(_StopsAfter(3), path).chat(_conversations(["a", "b", "c", "d", "e"]))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM completions").fetchone()[0] == 3
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # released for whoever asks next
    inner = _FakeBackend()
    rerun = CachedBackend(inner, path)
    rerun.name = inner.name = "stops"  # the same backend, so the same cache keys
    assert [c.text for c in rerun.chat(_conversations(["a", "b", "c", "d", "e"]))] == ["A", "B", "C", "D", "E"]
    assert inner.calls == 2 and rerun.hits == 3


def test_the_cache_runs_in_wal_mode_and_a_long_lock_is_a_one_line_error(tmp_path):
    path = tmp_path / "cache.sqlite"
    cached = CachedBackend(_FakeBackend(), path, busy_timeout=0.3)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with pytest.raises(BackendError, match=r"cache.sqlite: the cache stayed locked by another process"):
            cached.chat(_conversations(["x"]))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [c.text for c in cached.chat(_conversations(["x"]))] == ["X"]


def test_two_runs_sharing_a_cache_do_not_both_pay(openai_server, tmp_path):
    """Two judge runs started together on the same requests and the same cache: each request is sent once; the
    run that did not send it waits for the other's reply."""
    import threading

    openai_server.seconds_per_request = 0.2
    questions = [f"q{i}" for i in range(6)]
    results = {}

    def run(name):
        cached = CachedBackend(_endpoint(openai_server, concurrency=2), tmp_path / "shared.sqlite", poll_seconds=0.05)
        results[name] = ([c.text for c in cached.chat(_conversations(questions))], cached.misses)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results["first"][0] == results["second"][0] == [f"Echo (judge-model): {q}" for q in questions]
    assert openai_server.requests == 6 and results["first"][1] + results["second"][1] == 6


def test_a_claim_of_a_killed_run_is_taken_over(tmp_path):
    path = tmp_path / "cache.sqlite"
    cached = CachedBackend(_FakeBackend(), path, poll_seconds=0.01)
    key = cache_key("fake", _conversations(["a"])[0], SamplingConfig())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(path) as db:  # a run on this machine that claimed the request and was killed
        db.execute("INSERT INTO claims VALUES (?, ?, ?)", (key, f"{cached.host}:{dead.stdout.strip()}:x", 0.0))
    assert [c.text for c in cached.chat(_conversations(["a"]))] == ["A"]


def test_errors_are_one_line_and_never_carry_the_key(openai_server, monkeypatch):
    secret = "sk-proj-Zx81lkjQWEasd0912mnbvcxz"
    monkeypatch.setenv("ZEPHYR_TEST_KEY", secret)
    other = "sk-someone-elses-key-0123456789"
    openai_server.respond = lambda body: (400, f"bad request\nyour key {secret} is fine\n  but not {other}")
    (reply,) = _endpoint(openai_server).chat(_conversations(["q"]))
    assert reply.error.endswith("bad request your key [redacted] is fine but not sk-[redacted]")
    assert "HTTP 400" in reply.error and secret not in reply.error and other not in reply.error
    openai_server.respond = lambda body: (401, f"Incorrect API key provided: {secret}")
    with pytest.raises(BackendError) as error:
        _endpoint(openai_server).chat(_conversations(["q"]))
    assert "API key was rejected" in str(error.value) and secret not in str(error.value)
    assert "\n" not in str(error.value)
    assert redact(f"Authorization: Bearer {secret}; api_key={secret}x") == (
        "Authorization: Bearer [redacted]; api_key=[redacted]"
    )


@pytest.mark.parametrize(
    "url", ["http://user:sk-abc123456@127.0.0.1:8000/v1", "https://h.example/v1?api_key=abc", "ftp://h/v1"]
)
def test_endpoint_urls_with_credentials_are_refused(url):
    with pytest.raises(BackendError) as error:
        OpenAIBackend("m", base_url=url)
    assert "abc" not in str(error.value)


def test_the_timeout_is_a_deadline_for_the_request_with_its_retries(openai_server):
    openai_server.respond = lambda body: time.sleep(3)  # a hung endpoint (then the echo, too late)
    start = time.perf_counter()
    (reply,) = _endpoint(openai_server, timeout=1.0, max_retries=5).chat(_conversations(["q"]))
    assert not reply.ok and time.perf_counter() - start < 2.5


def test_a_lone_surrogate_in_a_reply_becomes_a_replacement_character(openai_server):
    openai_server.respond = lambda body: (200, "half an emoji: \ud83d")
    (reply,) = _endpoint(openai_server).chat(_conversations(["q"]))
    assert reply.text == "half an emoji: \ufffd"
