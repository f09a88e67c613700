import sqlite3

import pytest

from zephyr_tutorial.backends import (
    CachedBackend,
    Completion,
    OpenAIBackend,
    SamplingConfig,
    TransformersBackend,
    cache_key,
    validate_conversation,
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
