import pytest

from zephyr_tutorial.chat_template import (
    ZEPHYR_CHAT_TEMPLATE,
    ZEPHYR_GENERATION_PROMPT,
    apply_zephyr_template,
    has_generation_markers,
    render_zephyr,
)

CONVERSATION = [
    {"role": "system", "content": "You are a friendly chatbot."},
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi, how can I help?"},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
]


@pytest.fixture()
def zephyr_tokenizer(embedded_tokenizer):
    tokenizer = embedded_tokenizer.__class__.from_pretrained(embedded_tokenizer.name_or_path)
    return apply_zephyr_template(tokenizer)


def test_renders_the_published_zephyr_layout(zephyr_tokenizer):
    eos = zephyr_tokenizer.eos_token
    text = zephyr_tokenizer.apply_chat_template(CONVERSATION[:3], tokenize=False)
    assert text == (
        f"<|system|>\nYou are a friendly chatbot.{eos}\n"
        f"<|user|>\nHello!{eos}\n"
        f"<|assistant|>\nHi, how can I help?{eos}\n"
    )


def test_generation_prompt_opens_an_assistant_turn(zephyr_tokenizer):
    text = zephyr_tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert text.endswith(f"Hello!{zephyr_tokenizer.eos_token}\n" + ZEPHYR_GENERATION_PROMPT)


@pytest.mark.parametrize("cut", [1, 2, 3, 5])
@pytest.mark.parametrize("add_generation_prompt", [False, True])
def test_jinja_template_matches_the_python_reference(zephyr_tokenizer, cut, add_generation_prompt):
    messages = CONVERSATION[:cut]
    rendered = zephyr_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert rendered == render_zephyr(messages, zephyr_tokenizer.eos_token, add_generation_prompt)


def test_assistant_mask_covers_replies_and_their_eos_only(zephyr_tokenizer):
    encoded = zephyr_tokenizer.apply_chat_template(CONVERSATION, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    trained = zephyr_tokenizer.decode([t for t, m in zip(ids, mask) if m])
    eos = zephyr_tokenizer.eos_token
    assert trained == f"Hi, how can I help?{eos}Blue.{eos}"
    untrained = zephyr_tokenizer.decode([t for t, m in zip(ids, mask) if not m])
    assert "Hello!" in untrained and "<|assistant|>" in untrained and "Blue" not in untrained


def test_unknown_role_is_rejected(zephyr_tokenizer):
    with pytest.raises(Exception, match="Unknown role tool"):
        zephyr_tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)
    with pytest.raises(ValueError, match="message 0: unknown role 'tool'"):
        render_zephyr([{"role": "tool", "content": "x"}], "</s>")


def test_apply_sets_template_and_pad_token(embedded_tokenizer):
    tokenizer = embedded_tokenizer.__class__.from_pretrained(embedded_tokenizer.name_or_path)
    tokenizer.pad_token = None
    apply_zephyr_template(tokenizer)
    assert tokenizer.chat_template == ZEPHYR_CHAT_TEMPLATE
    assert tokenizer.pad_token == tokenizer.eos_token
    assert has_generation_markers(tokenizer)
