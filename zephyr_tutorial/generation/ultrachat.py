r"""The UltraChat loop: two models play a game of Pictionary with words.

UltraChat (Ding et al. 2023), the SFT data of Zephyr, was made by letting one
chat model play the *user* and another the *assistant*:

.. code-block:: text

    seed prompt ──► assistant answers ──► user simulator reads the dialogue and
         ▲                                writes a follow-up or a revision request
         └──────────────── for ``turns`` rounds ◄──────────────────┘

The two roles get separate system prompts (and may be separate backends). All
dialogues of a chunk advance one turn together, so every model call is one
batched :meth:`~zephyr_tutorial.backends.ChatBackend.chat`. Finished dialogues
are appended to a JSONL file under a stable id, so a killed run resumes where
it stopped (:class:`~zephyr_tutorial.data.ResumableJsonlWriter`).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Sequence

from zephyr_tutorial.backends import ChatBackend, SamplingConfig
from zephyr_tutorial.data import ResumableJsonlWriter
from zephyr_tutorial.generation.datasets import prompt_id_for

ASSISTANT_SYSTEM_PROMPT = (
    "You are a helpful, knowledgeable assistant. Answer the user's request directly and accurately, "
    "in a few clear sentences or a short list."
)
USER_SIMULATOR_SYSTEM_PROMPT = (
    "You play a curious human user chatting with an AI assistant. You write only the user's next message."
)
USER_SIMULATOR_TEMPLATE = (
    "Here is a conversation between a user and an assistant.\n\n{transcript}\n\n"
    "Write the user's next message: one short follow-up question, or a request to change or extend the "
    "assistant's last answer. Reply with the message only."
)


@dataclass(frozen=True)
class UltraChatConfig:
    """Roles, prompts and sampling of the loop; ``turns`` counts assistant replies per dialogue."""

    turns: int = 3
    assistant_system_prompt: str | None = ASSISTANT_SYSTEM_PROMPT
    user_system_prompt: str | None = USER_SIMULATOR_SYSTEM_PROMPT
    user_template: str = USER_SIMULATOR_TEMPLATE
    assistant_sampling: SamplingConfig = SamplingConfig(max_new_tokens=192, temperature=0.7, top_p=0.95, seed=0)
    user_sampling: SamplingConfig = SamplingConfig(max_new_tokens=48, temperature=0.9, top_p=0.95, seed=1)
    max_transcript_chars: int = 600
    """Each message is cut to this many characters in the user simulator's view (keeps its prompt short)."""

    def __post_init__(self):
        if self.turns < 1:
            raise ValueError("turns must be at least 1")
        if "{transcript}" not in self.user_template:
            raise ValueError("user_template must contain '{transcript}'")


def dialogue_id(seed_id: str, sample: int) -> str:
    """Stable id of the ``sample``-th dialogue grown from seed ``seed_id``."""
    return f"{seed_id}#{sample}"


def render_transcript(messages: Sequence[dict], max_chars: int) -> str:
    """``User: ...`` / ``Assistant: ...`` lines, each message cut to ``max_chars`` characters."""
    lines = []
    for message in messages:
        text = message["content"].strip()
        if len(text) > max_chars:
            text = text[:max_chars].rstrip() + " …"
        lines.append(f"{message['role'].capitalize()}: {text}")
    return "\n\n".join(lines)


def user_simulator_request(messages: Sequence[dict], config: UltraChatConfig) -> list[dict]:
    """The conversation the user simulator sees: the dialogue so far as a transcript inside one request."""
    request = [{"role": "user", "content": config.user_template.format(
        transcript=render_transcript(messages, config.max_transcript_chars))}]
    if config.user_system_prompt:
        request.insert(0, {"role": "system", "content": config.user_system_prompt})
    return request


_LABEL = re.compile(r"^\s*(?:\*\*)?(?:user|next message|follow[- ]up(?: question)?|question|message)\s*:(?:\*\*)?\s*", re.I)
_QUOTES = "\"'“”‘’"


def clean_user_message(text: str) -> str:
    """Strip what small models wrap around the message: a ``User:`` label, quotes, a made-up assistant reply."""
    text = _LABEL.sub("", text.strip())
    text = re.split(r"\n\s*(?:\*\*)?assistant\s*:", text, maxsplit=1, flags=re.I)[0].strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _with_system(messages: Sequence[dict], system_prompt: str | None) -> list[dict]:
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + list(messages)


@dataclass
class GenerationStats:
    """What a run did: dialogues written now and before, tokens generated, seconds spent."""

    requested: int = 0
    already_done: int = 0
    written: int = 0
    ended_early: int = 0
    """Dialogues that stopped before ``turns`` because the user simulator wrote nothing usable."""
    generated_tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0


def grow_dialogues(
    prompts: Sequence[str],
    assistant: ChatBackend,
    user_simulator: ChatBackend | None = None,
    config: UltraChatConfig = UltraChatConfig(),
    stats: GenerationStats | None = None,
) -> list[dict]:
    """Run the loop for a batch of opening prompts; return one ``{"messages", "finish_reasons"}`` per prompt.

    Each turn makes one batched call per role. A dialogue whose simulated user
    message comes back empty stops early (it still ends with an assistant reply).
    """
    user_simulator = user_simulator or assistant
    stats = stats or GenerationStats()
    dialogues = [{"messages": [{"role": "user", "content": p}], "finish_reasons": []} for p in prompts]
    active = list(range(len(dialogues)))
    for turn in range(config.turns):
        sampling = config.assistant_sampling
        if sampling.seed is not None:
            sampling = SamplingConfig(sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.seed + turn)
        replies = assistant.chat([_with_system(dialogues[i]["messages"], config.assistant_system_prompt) for i in active], sampling)
        for i, reply in zip(active, replies):
            dialogues[i]["messages"].append({"role": "assistant", "content": reply.text})
            dialogues[i]["finish_reasons"].append(reply.finish_reason)
            stats.generated_tokens += reply.completion_tokens
        if turn == config.turns - 1:
            break
        requests = [user_simulator_request(dialogues[i]["messages"], config) for i in active]
        followups = user_simulator.chat(requests, config.user_sampling)
        still_active = []
        for i, followup in zip(active, followups):
            stats.generated_tokens += followup.completion_tokens
            text = clean_user_message(followup.text)
            if text:
                dialogues[i]["messages"].append({"role": "user", "content": text})
                still_active.append(i)
            else:
                stats.ended_early += 1
        active = still_active
        if not active:
            break
    return dialogues


def generate_ultrachat(
    seeds: Sequence[dict],
    out_path: str | os.PathLike,
    assistant: ChatBackend,
    user_simulator: ChatBackend | None = None,
    config: UltraChatConfig = UltraChatConfig(),
    *,
    dialogues_per_seed: int = 1,
    limit: int | None = None,
    chunk_size: int = 16,
    progress: bool = True,
) -> GenerationStats:
    """Grow dialogues from ``seeds`` (rows with ``id``, ``prompt``, optional ``sector``) into ``out_path``.

    Resumable: dialogues whose id is already in the file are skipped, and each
    chunk of ``chunk_size`` dialogues is appended as soon as it is finished,
    so a kill loses at most the chunk in flight (it is redone on restart).
    Rows carry the ultrachat_200k fields plus ``id``, ``sector``, ``strategy``,
    ``model`` and ``finish_reasons`` (used by the truncation filter).
    """
    from tqdm.auto import tqdm

    # sample-major order: a partial run already covers every seed once
    jobs = [(seed, k) for k in range(dialogues_per_seed) for seed in seeds]
    if limit is not None:
        jobs = jobs[:limit]
    stats = GenerationStats(requested=len(jobs))
    start = time.perf_counter()
    with ResumableJsonlWriter(out_path, id_field="id") as writer:
        todo = [job for job in jobs if dialogue_id(job[0]["id"], job[1]) not in writer.done_ids]
        stats.already_done = len(jobs) - len(todo)
        bar = tqdm(total=len(jobs), initial=stats.already_done, desc="dialogues", unit="dlg", disable=not progress)
        for chunk_start in range(0, len(todo), chunk_size):
            chunk = todo[chunk_start : chunk_start + chunk_size]
            grown = grow_dialogues([seed["prompt"] for seed, _ in chunk], assistant, user_simulator, config, stats)
            for (seed, sample), dialogue in zip(chunk, grown):
                writer.append({
                    "id": dialogue_id(seed["id"], sample),
                    "prompt": seed["prompt"],
                    "prompt_id": prompt_id_for(seed["prompt"]),
                    "messages": dialogue["messages"],
                    "sector": seed.get("sector"),
                    "strategy": "ultrachat",
                    "model": assistant.name,
                    "finish_reasons": dialogue["finish_reasons"],
                })
                stats.written += 1
            stats.seconds = time.perf_counter() - start
            bar.update(len(chunk))
            bar.set_postfix(tok_s=f"{stats.tokens_per_second:.0f}")
        bar.close()
    stats.seconds = time.perf_counter() - start
    return stats
