"""Chat backends: one interface for every model that writes text in this project.

The judge of notebook 01, the data generator of notebook 02 and the completion
pool of notebook 04 all talk to a model through :class:`ChatBackend`::

    replies = backend.chat(conversations, SamplingConfig(max_new_tokens=128))

where a conversation is a list of ``{"role", "content"}`` messages and each
reply is a :class:`Completion`. Three implementations:

- :class:`TransformersBackend`: a model in this process (the embedded model on
  CPU), batched with left padding;
- :class:`OpenAIBackend`: any OpenAI-compatible chat endpoint (OpenAI's GPT-4
  class models as in the paper, vLLM's server, ``transformers serve``, Ollama);
- :class:`VLLMBackend`: vLLM's offline engine for GPU scale (optional extra).

:class:`CachedBackend` wraps any of them with an on-disk cache, so re-running a
notebook costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

Message = dict
Conversation = Sequence[Message]


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample; ``temperature=0`` means greedy decoding."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    """``"stop"`` (the model ended its turn) or ``"length"`` (cut at ``max_new_tokens``)."""


class ChatBackend(Protocol):
    name: str
    """Identifies the model (and its settings) in caches and reports."""

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]: ...


def validate_conversation(conversation: Conversation, where: str = "conversation") -> None:
    """Raise ``ValueError`` naming the message and field that is malformed."""
    if not conversation:
        raise ValueError(f"{where}: empty conversation")
    for i, message in enumerate(conversation):
        if not isinstance(message, dict):
            raise ValueError(
                f"{where}, message {i}: expected a dict with role and content, got {type(message).__name__}"
            )
        for field in ("role", "content"):
            if not isinstance(message.get(field), str):
                raise ValueError(f"{where}, message {i}: field {field!r} must be a string")


class TransformersBackend:
    """Generate with a transformers model in this process, ``batch_size`` conversations at a time.

    Prompts are left-padded so every row's generation starts right after its own
    prompt; conversations are sorted by length first so batches waste little padding.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 16, name: str | None = None, progress: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.name = name or getattr(model.config, "_name_or_path", None) or model.config.model_type
        self.progress = progress

    def _generate_batch(self, conversations: Sequence[Conversation], config: SamplingConfig) -> list[Completion]:
        import torch

        tokenizer = self.tokenizer
        texts = [
            tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True) for c in conversations
        ]
        previous_side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tokenizer.padding_side = previous_side
        batch = batch.to(self.model.device)
        sampling = {"do_sample": False}
        if config.temperature > 0:
            sampling = {"do_sample": True, "temperature": config.temperature, "top_p": config.top_p}
        if config.seed is not None:
            torch.manual_seed(config.seed)
        # The stop token is the tokenizer's EOS, which the chat template ends every turn with, passed explicitly:
        # the model's own generation_config may name another (SmolLM2's says <|im_end|>, whatever the template).
        eos = tokenizer.eos_token_id
        with torch.no_grad():
            output = self.model.generate(
                **batch,
                max_new_tokens=config.max_new_tokens,
                eos_token_id=eos,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        completions = []
        for row, prompt_mask in zip(new_tokens, batch["attention_mask"]):
            ids = row.tolist()
            stopped = eos in ids
            if stopped:
                ids = ids[: ids.index(eos)]
            while ids and ids[-1] == tokenizer.pad_token_id:
                ids.pop()
            completions.append(
                Completion(
                    text=tokenizer.decode(ids, skip_special_tokens=True).strip(),
                    prompt_tokens=int(prompt_mask.sum()),
                    completion_tokens=len(ids) + int(stopped),
                    finish_reason="stop" if stopped else "length",
                )
            )
        return completions

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]:
        from tqdm.auto import tqdm

        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        order = sorted(range(len(conversations)), key=lambda i: sum(len(m["content"]) for m in conversations[i]))
        results: list[Completion | None] = [None] * len(conversations)
        bar = tqdm(total=len(order), desc=f"generate ({self.name})", disable=not self.progress or len(order) <= 1)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            for index, completion in zip(indices, self._generate_batch([conversations[i] for i in indices], config)):
                results[index] = completion
            bar.update(len(indices))
        bar.close()
        return results  # type: ignore[return-value]


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint, with a timeout, retries with backoff and a concurrency limit.

    The API key is read from the environment variable named by ``api_key_env``
    at construction and kept only inside the client: it is never part of
    ``name``, ``repr``, cache keys or logs. Local servers (vLLM, ``transformers
    serve``, Ollama) accept any key; ``"EMPTY"`` is used when the variable is unset.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 4,
        progress: bool = True,
    ):
        from openai import OpenAI

        self.model = model
        self.base_url = base_url
        self.concurrency = concurrency
        self.progress = progress
        self.name = f"openai:{model}@{base_url or 'api.openai.com'}"
        # The client retries connection errors, 429 and 5xx with exponential backoff.
        self._client = OpenAI(
            api_key=os.environ.get(api_key_env) or "EMPTY", base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _one(self, conversation: Conversation, config: SamplingConfig) -> Completion:
        response = self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": m["role"], "content": m["content"]} for m in conversation],
            max_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed,
        )
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=(choice.message.content or "").strip(),
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            finish_reason=choice.finish_reason or "stop",
        )

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]:
        from tqdm.auto import tqdm

        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._one, c, config) for c in conversations]
            return [f.result() for f in tqdm(futures, desc=self.name, disable=not self.progress or len(futures) <= 1)]


class VLLMBackend:
    """vLLM's offline engine (GPU scale; ``pip install zephyr-tutorial[gpu]``)."""

    def __init__(self, model: str, *, tensor_parallel_size: int = 1, dtype: str = "bfloat16", **engine_kwargs):
        from vllm import LLM

        self.name = f"vllm:{model}"
        self.engine = LLM(model=model, tensor_parallel_size=tensor_parallel_size, dtype=dtype, **engine_kwargs)

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p, seed=config.seed
        )
        outputs = self.engine.chat([list(c) for c in conversations], params, use_tqdm=True)
        return [
            Completion(
                text=out.outputs[0].text.strip(),
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(out.outputs[0].token_ids),
                finish_reason=out.outputs[0].finish_reason or "stop",
            )
            for out in outputs
        ]


def cache_key(backend_name: str, conversation: Conversation, config: SamplingConfig) -> str:
    """SHA-256 of (backend, messages, sampling): what makes two requests the same request."""
    payload = json.dumps(
        {"backend": backend_name, "messages": list(conversation), "config": asdict(config)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedBackend:
    """Wrap a backend with an SQLite cache: a repeated request is answered from disk.

    Only replies are stored (text and token counts), never credentials.
    """

    def __init__(self, backend: ChatBackend, path: str | os.PathLike):
        self.backend = backend
        self.name = backend.name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.hits = 0
        self.misses = 0

    def _connect(self):
        return sqlite3.connect(self.path)

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]:
        keys = [cache_key(self.name, c, config) for c in conversations]
        with self._lock, self._connect() as db:
            found = {}
            for key in set(keys):
                row = db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
                if row:
                    found[key] = Completion(**json.loads(row[0]))
        first_index_of_missing = {}
        for i, key in enumerate(keys):
            if key not in found:
                first_index_of_missing.setdefault(key, i)  # a request repeated in one call is sent once
        self.hits += len(keys) - len(first_index_of_missing)
        self.misses += len(first_index_of_missing)
        if first_index_of_missing:
            todo = list(first_index_of_missing.items())
            fresh = self.backend.chat([conversations[i] for _, i in todo], config)
            with self._lock, self._connect() as db:
                for (key, _), completion in zip(todo, fresh):
                    found[key] = completion
                    db.execute(
                        "INSERT OR REPLACE INTO completions (key, value) VALUES (?, ?)",
                        (key, json.dumps(asdict(completion))),
                    )
        return [found[key] for key in keys]
