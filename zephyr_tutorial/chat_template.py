"""The Zephyr chat template and helpers to put it on a tokenizer.

Zephyr-7B-beta renders a conversation as::

    <|system|>
    You are a friendly chatbot.</s>
    <|user|>
    Hello!</s>
    <|assistant|>
    Hi, how can I help?</s>

The role markers are plain text, not special tokens: the base model has never
seen them, which is why DPO without a prior SFT stage cannot learn the format
(the paper's ablation). SFT is where the model learns that an answer starts
after ``<|assistant|>\\n`` and ends with the EOS token.

Our version wraps every assistant reply (content + EOS) in ``{% generation %}``
markers. ``tokenizer.apply_chat_template(..., return_assistant_tokens_mask=True)``
uses them to build the mask behind TRL's ``assistant_only_loss``: the loss is
computed on what the assistant says, including the EOS that teaches it to stop,
and not on the prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ZEPHYR_ROLES = ("system", "user", "assistant")
END_OF_TURN_TOKEN: str | None = "<|endoftext|>"
"""The token that ends every turn of the Zephyr template, and that generation stops on.

Zephyr ends turns with Mistral's EOS ``</s>``, a token the base model knows only as the end of a pretraining
document: it has never emitted it after an answer, so SFT must teach it where an answer ends. Our stand-in,
SmolLM2-135M-*Instruct*, already ends its (ChatML) turns with its EOS ``<|im_end|>``; with that token the template
would be half-known before any training. ``<|endoftext|>``, SmolLM2's pretraining document separator, plays the
part of Mistral's ``</s>``: known to the model, never emitted after an answer (notebooks 00 and 03 measure it).
:func:`apply_zephyr_template` makes it the tokenizer's EOS wherever the vocabulary has it (a Mistral tokenizer
has no ``<|endoftext|>`` and keeps ``</s>``); the template writes ``eos_token`` and
:class:`~zephyr_tutorial.backends.TransformersBackend` stops on ``tokenizer.eos_token_id``, so this is the one
place that decides it. ``None`` keeps every tokenizer's own EOS."""
ZEPHYR_GENERATION_PROMPT = "<|assistant|>\n"

ZEPHYR_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ '<|system|>\n' + message['content'] + eos_token + '\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '<|user|>\n' + message['content'] + eos_token + '\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\n' }}"
    "{%- generation -%}"
    "{{ message['content'] + eos_token }}"
    "{%- endgeneration -%}"
    "{{ '\n' }}"
    "{%- else -%}"
    "{{ raise_exception('Unknown role ' + message['role'] + ': Zephyr knows system, user and assistant') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|assistant|>\n' }}"
    "{%- endif -%}"
)


def render_zephyr(messages: Sequence[Mapping[str, str]], eos_token: str, add_generation_prompt: bool = False) -> str:
    """Render ``messages`` exactly as :data:`ZEPHYR_CHAT_TEMPLATE` does, in plain Python.

    Kept as a readable reference: tests check that the Jinja template and this
    function agree, so either can be read as the specification.
    """
    parts = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ZEPHYR_ROLES:
            raise ValueError(f"message {i}: unknown role {role!r}; Zephyr knows {', '.join(ZEPHYR_ROLES)}")
        parts.append(f"<|{role}|>\n{message['content']}{eos_token}\n")
    if add_generation_prompt:
        parts.append(ZEPHYR_GENERATION_PROMPT)
    return "".join(parts)


def apply_zephyr_template(tokenizer, *, pad_with_eos_if_missing: bool = True):
    """Set the Zephyr chat template on ``tokenizer`` (in place) and return it.

    The end-of-turn token is :data:`END_OF_TURN_TOKEN` when it is set and in the vocabulary, else the
    tokenizer's EOS. A tokenizer without a pad token gets its EOS token as pad token, the usual
    choice for causal LMs: padded positions are masked out of the loss anyway.
    """
    if END_OF_TURN_TOKEN is not None and END_OF_TURN_TOKEN in tokenizer.get_vocab():
        tokenizer.eos_token = END_OF_TURN_TOKEN
    if tokenizer.eos_token is None:
        raise ValueError("the tokenizer has no EOS token; the Zephyr template ends every turn with it")
    tokenizer.chat_template = ZEPHYR_CHAT_TEMPLATE
    if tokenizer.pad_token is None and pad_with_eos_if_missing:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def has_generation_markers(tokenizer) -> bool:
    """True when the tokenizer's chat template can produce an assistant-token mask."""
    template = tokenizer.chat_template or ""
    return "generation" in template and "endgeneration" in template
