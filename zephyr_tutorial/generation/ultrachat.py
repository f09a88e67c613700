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
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..backends import ChatBackend, SamplingConfig
from ..data import ResumableJsonlWriter
from ..schemas import prompt_id_for
from .filtering import structure_problem

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
    request = [
        {
            "role": "user",
            "content": config.user_template.format(transcript=render_transcript(messages, config.max_transcript_chars)),
        }
    ]
    if config.user_system_prompt:
        request.insert(0, {"role": "system", "content": config.user_system_prompt})
    return request


_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:user|next message|follow[- ]up(?: question)?|question|message)\s*:(?:\*\*)?\s*", re.I
)
_QUOTES = "\"'“”‘’"
# a turn label at the start of a line: where a small model starts writing the next turns of the play itself
_TURN_LABEL = re.compile(r"^\s*(?:\*\*)?(user|assistant)\s*:(?:\*\*)?", re.I | re.M)
# "Here's a possible follow-up:" / "Here is a continuation of the conversation." -- talk about the message
_META = re.compile(
    r"^\s*(?:sure[,!.]?\s*)?here(?:'s| is) (?:a|an|the|my|one)\b[^\n]{0,80}?"
    r"\b(?:message|follow[- ]up|question|continuation|extension|response|reply|request|version)\b[^\n]*$",
    re.I,
)


def clean_user_message(text: str) -> str:
    """The simulated user's message without what small models wrap around it.

    Strips a ``User:`` label and quotes; keeps only the first turn when the
    model goes on to write ``Assistant:``/``User:`` turns itself; drops a
    preamble line about the message ("Here's a possible follow-up:") and
    returns ``""`` (unusable) when that preamble is all there is.
    """
    text = text.strip()
    lines = text.split("\n", 1)
    if _META.match(lines[0]):
        rest = lines[1] if len(lines) > 1 else ""
        if not rest.strip() and ":" in lines[0]:  # "Here is my question: why?" on one line
            rest = lines[0].split(":", 1)[1]
        text = rest.strip()
    text = _LABEL.sub("", text.strip())
    label = _TURN_LABEL.search(text)
    if label:  # cut at the first made-up turn that follows the message
        text = text[: label.start()].strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def repeats_earlier_user_message(text: str, messages: Sequence[dict]) -> bool:
    """Whether ``text`` only restates a user message already in the dialogue (case/space-insensitive)."""
    normalized = " ".join(text.lower().split()).strip(" ?.!")
    return any(
        " ".join(m["content"].lower().split()).strip(" ?.!") == normalized for m in messages if m["role"] == "user"
    )


def _with_system(messages: Sequence[dict], system_prompt: str | None) -> list[dict]:
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + list(messages)


@dataclass
class GenerationStats:
    """What a run did: dialogues written now and before, tokens generated, seconds spent."""

    requested: int = 0
    already_done: int = 0
    written: int = 0
    continued: int = 0
    """Dialogues that started from an earlier run's complete dialogue (``continue_from``) instead of the bare seed."""
    ended_early: int = 0
    """Dialogues that stopped before ``turns`` because the user simulator wrote nothing usable."""
    failed: dict[str, str] = field(default_factory=dict)
    """Dialogue id -> why a request for it failed. Those dialogues are not written (an empty reply is not a
    reply), so running the same command again asks for them, and only them."""
    generated_tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0


def _assistant_turns(messages: Sequence[dict]) -> int:
    return sum(m["role"] == "assistant" for m in messages)


def grow_dialogues(
    prompts: Sequence[str],
    assistant: ChatBackend,
    user_simulator: ChatBackend | None = None,
    config: UltraChatConfig = UltraChatConfig(),
    stats: GenerationStats | None = None,
    prefixes: Sequence[dict | None] | None = None,
) -> list[dict]:
    """Run the loop for a batch of opening prompts; return one ``{"messages", "finish_reasons",
    "user_finish_reasons"}`` per prompt.

    Each step makes one batched call per role. A dialogue whose simulated user
    message comes back empty stops early (it still ends with an assistant reply). A dialogue one of whose
    requests failed (a :class:`~zephyr_tutorial.backends.Completion` with ``error``) stops too and carries the
    reason as ``"error"``: the caller must not write it as if an empty reply had been said.
    ``finish_reasons`` has one entry per assistant reply, ``user_finish_reasons`` one per *simulated* user
    message (the seed prompt was written by a person and has none): ``"length"`` there means the follow-up
    question was cut at ``config.user_sampling.max_new_tokens``, and the truncation filter removes the dialogue.

    ``prefixes[i]``, when given, is a dialogue already started for ``prompts[i]``
    (``{"messages", "finish_reasons"}`` ending with an assistant reply, e.g. a
    single-turn row of an earlier run): the loop continues it with the user
    simulator instead of answering the bare prompt again, until it holds
    ``config.turns`` assistant replies. Dialogues at different depths share the
    same batched calls: step ``t`` answers every dialogue that ends with a user
    message, then asks the simulator to continue every dialogue still short of
    ``turns`` replies.
    """
    user_simulator = user_simulator or assistant
    stats = stats or GenerationStats()
    if prefixes is not None and len(prefixes) != len(prompts):
        raise ValueError("prefixes must have one entry (or None) per prompt")
    dialogues = []
    for i, prompt in enumerate(prompts):
        prefix = prefixes[i] if prefixes is not None else None
        if prefix is None:
            dialogues.append(
                {"messages": [{"role": "user", "content": prompt}], "finish_reasons": [], "user_finish_reasons": []}
            )
            continue
        messages = [dict(m) for m in prefix["messages"]]
        if not messages or messages[0]["role"] != "user" or messages[0]["content"] != prompt:
            raise ValueError(f"prefix {i} does not start with its prompt")
        if messages[-1]["role"] != "assistant":
            raise ValueError(f"prefix {i} does not end with an assistant reply")
        dialogues.append(
            {
                "messages": messages,
                "finish_reasons": list(prefix["finish_reasons"]),
                "user_finish_reasons": list(prefix.get("user_finish_reasons") or []),
            }
        )
    active = list(range(len(dialogues)))
    for step in range(config.turns):
        asking = [i for i in active if dialogues[i]["messages"][-1]["role"] == "user"]
        if asking:
            sampling = config.assistant_sampling
            if sampling.seed is not None:
                sampling = SamplingConfig(
                    sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.seed + step
                )
            replies = assistant.chat(
                [_with_system(dialogues[i]["messages"], config.assistant_system_prompt) for i in asking], sampling
            )
            for i, reply in zip(asking, replies):
                if not reply.ok:
                    _fail(dialogues, i, active, reply.error)
                    continue
                dialogues[i]["messages"].append({"role": "assistant", "content": reply.text})
                dialogues[i]["finish_reasons"].append(reply.finish_reason)
                stats.generated_tokens += reply.completion_tokens
        continuing = [i for i in active if _assistant_turns(dialogues[i]["messages"]) < config.turns]
        if not continuing or step == config.turns - 1:
            break
        requests = [user_simulator_request(dialogues[i]["messages"], config) for i in continuing]
        followups = user_simulator.chat(requests, config.user_sampling)
        for i, followup in zip(continuing, followups):
            if not followup.ok:  # the simulator was not heard: not the same as having nothing to ask
                _fail(dialogues, i, active, followup.error)
                continue
            stats.generated_tokens += followup.completion_tokens
            text = clean_user_message(followup.text)
            # a follow-up that restates an earlier question would only make the assistant repeat itself
            if text and not repeats_earlier_user_message(text, dialogues[i]["messages"]):
                dialogues[i]["messages"].append({"role": "user", "content": text})
                dialogues[i]["user_finish_reasons"].append(followup.finish_reason)
            else:
                stats.ended_early += 1
                active.remove(i)
        if not active:
            break
    return dialogues


def _fail(dialogues: list[dict], i: int, active: list[int], reason: str | None) -> None:
    """Dialogue ``i``'s request failed: it stops growing and carries the reason (``"error"``)."""
    dialogues[i]["error"] = reason or "request failed"
    active.remove(i)


def continuable_prefix(row: dict | None, seed: dict, model: str, turns: int) -> dict | None:
    """``row`` (an earlier run's dialogue with the same id) as a prefix to continue, or ``None`` to start afresh.

    Only a dialogue worth extending is reused: same opening prompt, same
    assistant model, roles in order ending with an assistant reply, no reply
    cut at the token limit (the cleaning filter would drop the whole dialogue
    later anyway), and fewer than ``turns`` replies.
    """
    if row is None or row.get("prompt") != seed["prompt"] or row.get("model") not in (None, model):
        return None
    messages, reasons = row.get("messages"), row.get("finish_reasons")
    if not isinstance(messages, list) or not isinstance(reasons, list) or structure_problem(messages) is not None:
        return None
    if messages[0]["content"] != seed["prompt"] or "length" in reasons:
        return None
    if len(reasons) != _assistant_turns(messages) or _assistant_turns(messages) >= turns:
        return None
    user_reasons = row.get("user_finish_reasons") or []
    if not isinstance(user_reasons, list) or "length" in user_reasons:
        return None
    return {"messages": messages, "finish_reasons": reasons, "user_finish_reasons": user_reasons}


def _config_for_chunk(config: UltraChatConfig, ids: Sequence[str]) -> UltraChatConfig:
    """``config`` with sampling seeds offset by a hash of the chunk's dialogue ids.

    A batched call draws all its rows from one seeded random stream, so two
    chunks holding the same prompts in the same order (sample 1 and sample 2
    of the same seeds) would otherwise sample identical dialogues. The ids
    include the sample number, so each chunk gets its own stream, and the same
    chunk gets the same one again.
    """
    from dataclasses import replace

    offset = zlib.crc32("\n".join(ids).encode("utf-8")) % 1_000_003
    shifted = {}
    for name in ("assistant_sampling", "user_sampling"):
        sampling = getattr(config, name)
        if sampling.seed is not None:
            shifted[name] = replace(sampling, seed=sampling.seed + offset)
    return replace(config, **shifted)


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
    continue_from: Sequence[dict] | None = None,
    progress: bool = True,
) -> GenerationStats:
    """Grow dialogues from ``seeds`` (rows with ``id``, ``prompt``, optional ``sector``) into ``out_path``.

    Resumable: dialogues whose id is already in the file are skipped, and each
    chunk of ``chunk_size`` dialogues is appended as soon as it is finished,
    so a kill loses at most the chunk in flight (it is redone on restart). A dialogue whose request failed
    is not written but counted in ``stats.failed`` with the reason, so a rerun asks for it again.
    Rows carry the ultrachat_200k fields plus ``id``, ``sector``, ``strategy``,
    ``model``, ``finish_reasons`` and ``user_finish_reasons`` (one per assistant reply and one per simulated
    user message: the truncation filter's evidence) and ``prefix_turns`` (assistant replies taken over from
    ``continue_from``).

    ``continue_from``: rows of an earlier run (e.g. a single-turn one). A
    dialogue whose id is there and passes :func:`continuable_prefix` is
    continued by the loop rather than regenerated, which saves its first
    replies; any other dialogue starts from its seed.
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
        earlier = {str(row.get("id")): row for row in continue_from or ()}
        prefixes = {
            dialogue_id(seed["id"], k): continuable_prefix(
                earlier.get(dialogue_id(seed["id"], k)), seed, assistant.name, config.turns
            )
            for seed, k in todo
        }
        bar = tqdm(total=len(jobs), initial=stats.already_done, desc="dialogues", unit="dlg", disable=not progress)
        for chunk_start in range(0, len(todo), chunk_size):
            chunk = todo[chunk_start : chunk_start + chunk_size]
            chunk_prefixes = [prefixes[dialogue_id(seed["id"], k)] for seed, k in chunk]
            grown = grow_dialogues(
                [seed["prompt"] for seed, _ in chunk],
                assistant,
                user_simulator,
                _config_for_chunk(config, [dialogue_id(seed["id"], k) for seed, k in chunk]),
                stats,
                prefixes=chunk_prefixes,
            )
            for (seed, sample), dialogue, prefix in zip(chunk, grown, chunk_prefixes):
                if "error" in dialogue:
                    stats.failed[dialogue_id(seed["id"], sample)] = dialogue["error"]
                    continue
                writer.append(
                    {
                        "id": dialogue_id(seed["id"], sample),
                        "prompt": seed["prompt"],
                        "prompt_id": prompt_id_for(seed["prompt"]),
                        "messages": dialogue["messages"],
                        "sector": seed.get("sector"),
                        "strategy": "ultrachat",
                        "model": assistant.name,
                        "finish_reasons": dialogue["finish_reasons"],
                        "user_finish_reasons": dialogue["user_finish_reasons"],
                        "prefix_turns": len(prefix["finish_reasons"]) if prefix else 0,
                    }
                )
                stats.written += 1
                stats.continued += prefix is not None
            stats.seconds = time.perf_counter() - start
            bar.update(len(chunk))
            bar.set_postfix(tok_s=f"{stats.tokens_per_second:.0f}")
        bar.close()
    stats.seconds = time.perf_counter() - start
    return stats
