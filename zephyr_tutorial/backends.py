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

A request that fails (after its retries, within its deadline) does not raise: its
:class:`Completion` carries ``error`` (one line, secrets redacted) and callers record it
as a missing row that a rerun asks again; every other reply of the batch is kept (and
cached as it arrives). Only errors that doom every request of the run (a rejected key, an
unknown model or endpoint) raise :class:`BackendError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

Message = dict
Conversation = Sequence[Message]


@contextmanager
def evaluating(model):
    """Run ``model`` in eval mode (no dropout), then put it back in the mode it was in.

    A model straight from its trainer is in training mode; every measurement and every decoding step of the package
    goes through here, so none of them depends on where the model came from, and training can go on afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


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
    """``"stop"`` (the model ended its turn), ``"length"`` (cut at ``max_new_tokens``) or ``"error"``."""
    error: str | None = None
    """Why the request failed (one line, secrets redacted); ``None`` for a reply. A failed request is not a
    reply: it is never cached, and callers record it as missing so that a rerun asks again."""
    token_ids: list[int] | None = field(default=None, repr=False, compare=False)
    """The generated tokens, end-of-turn token left out (:class:`TransformersBackend` keeps them; endpoints do
    not): what :func:`within_budget` cuts a greedy answer at."""

    @property
    def ok(self) -> bool:
        return self.error is None


def within_budget(completion: Completion, max_new_tokens: int, tokenizer) -> Completion:
    """The answer greedy decoding gives with the budget ``max_new_tokens``, read off a greedy ``completion``
    that was generated with a larger one.

    Greedy decoding picks each token from the ones before it only, so the first ``k`` tokens of a long greedy
    answer are the answer a ``k``-token budget produces: an answer that ended within ``k`` tokens is returned as
    it is, a longer one cut after ``k`` tokens (``finish_reason="length"``). Notebook 03 answers the held-out
    prompts with a budget sized from its training data, and hands notebooks 05 and 06 the answers at theirs.
    Sampled answers have no such prefix property: pass greedy ones only.
    """
    if completion.token_ids is None:
        raise ValueError("the completion keeps no token ids (only TransformersBackend's do): it cannot be cut")
    if completion.finish_reason == "length" and completion.completion_tokens < max_new_tokens:
        raise ValueError(
            f"the completion was cut at {completion.completion_tokens} tokens: what a {max_new_tokens}-token budget"
            " gives is unknown"
        )
    if completion.completion_tokens <= max_new_tokens:  # ended (end-of-turn token included) within the budget
        return completion
    ids = completion.token_ids[:max_new_tokens]
    return replace(
        completion,
        text=_decode_reply(tokenizer, ids),
        completion_tokens=len(ids),
        finish_reason="length",
        token_ids=ids,
    )


def _decode_reply(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


def failed_completion(reason: str) -> Completion:
    return Completion(text="", finish_reason="error", error=reason)


class BackendError(RuntimeError):
    """An endpoint problem that fails every request of the run (a rejected key, an unknown model, a locked
    cache): raised at once, in one line with secrets redacted, instead of recording each row as missing."""


_SECRET_PATTERNS = (
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"),
)


def redact(text: str, *secrets: str | None) -> str:
    """``text`` on one line, with ``secrets`` and anything shaped like an API key (``sk-...``, a bearer token,
    ``api_key=...``) replaced by ``[redacted]``: what may be printed, logged or stored of an error."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _SECRET_PATTERNS[0].sub("sk-[redacted]", text)
    for pattern in _SECRET_PATTERNS[1:]:
        text = pattern.sub(lambda m: m.group(1) + "[redacted]", text)
    return " ".join(text.split())


_CREDENTIAL_PARAMETER = re.compile(r"(?i)key|token|secret|passw|auth|sig")


def check_base_url(base_url: str | None) -> None:
    """Refuse an endpoint URL that carries credentials (``https://user:key@host``, ``?api_key=...``): the URL
    becomes the backend's ``name``, which is printed in results, progress bars and cache keys. The key
    belongs in the environment variable (``$OPENAI_API_KEY``)."""
    if base_url is None:
        return
    try:
        parts = urlsplit(base_url)
        has_user = parts.username is not None or parts.password is not None
    except ValueError:
        raise BackendError("the endpoint URL cannot be parsed") from None
    if has_user or any(_CREDENTIAL_PARAMETER.search(name) for name, _ in parse_qsl(parts.query)):
        raise BackendError(
            "the endpoint URL carries credentials (user:password@ or a key in the query); it would be printed "
            "and cached with the results: pass the key in the environment variable ($OPENAI_API_KEY) instead"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendError(f"the endpoint URL must be http(s)://host[:port]/..., got scheme {parts.scheme!r}")


class ChatBackend(Protocol):
    name: str
    """Identifies the model (and its settings) in caches and reports."""

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]: ...


def iter_replies(
    backend: ChatBackend, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
) -> Iterator[tuple[int, Completion]]:
    """``(index, completion)`` pairs as the replies arrive: the backend's ``iter_chat`` where it has one (an
    endpoint answers out of order), else its ``chat`` in order. What a caller that must keep each reply the
    moment it exists (a cache, a resumable writer) reads."""
    each = getattr(backend, "iter_chat", None)
    if each is not None:
        yield from each(conversations, config)
    else:
        yield from enumerate(backend.chat(conversations, config))


def validate_conversation(conversation: Conversation, where: str = "conversation") -> None:
    """Raise ``ValueError`` naming the message and field that is malformed."""
    if not conversation:
        raise ValueError(f"{where}: empty conversation")
    for i, message in enumerate(conversation):
        if not isinstance(message, dict):
            raise ValueError(
                f"{where}, message {i}: expected a dict with role and content, got {type(message).__name__}"
            )
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise ValueError(f"{where}, message {i}: field {key!r} must be a string")


GENERATION_BATCH_SIZE = 40
"""Prompts decoded together. On 2 CPU cores a batch of 32-75 turns out 1.5x the tokens per second of a batch of 16
(measured on the 135M model, 160 new tokens); the held-out 75 prompts then take two batches."""


class TransformersBackend:
    """Generate with a transformers model in this process, ``batch_size`` conversations at a time.

    Prompts are left-padded so every row's generation starts right after its own
    prompt; conversations are sorted by length first so batches waste little padding.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        batch_size: int = GENERATION_BATCH_SIZE,
        name: str | None = None,
        progress: bool = True,
    ):
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
        # use_cache: a trainer with gradient checkpointing switches the model's KV cache off; decoding needs it
        with evaluating(self.model), torch.no_grad():
            output = self.model.generate(
                **batch,
                max_new_tokens=config.max_new_tokens,
                eos_token_id=eos,
                pad_token_id=tokenizer.pad_token_id,
                use_cache=True,
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
                    text=_decode_reply(tokenizer, ids),
                    prompt_tokens=int(prompt_mask.sum()),
                    completion_tokens=len(ids) + int(stopped),
                    finish_reason="stop" if stopped else "length",
                    token_ids=ids,
                )
            )
        return completions

    def iter_chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> Iterator[tuple[int, Completion]]:
        """``(index, completion)`` pairs, one batch at a time (shortest conversations first)."""
        from tqdm.auto import tqdm

        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        order = sorted(range(len(conversations)), key=lambda i: sum(len(m["content"]) for m in conversations[i]))
        bar = tqdm(total=len(order), desc=f"generate ({self.name})", disable=not self.progress or len(order) <= 1)
        try:
            for start in range(0, len(order), self.batch_size):
                indices = order[start : start + self.batch_size]
                yield from zip(indices, self._generate_batch([conversations[i] for i in indices], config))
                bar.update(len(indices))
        finally:
            bar.close()

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]:
        return _in_order(self.iter_chat(conversations, config), len(conversations))


def _in_order(replies: Iterator[tuple[int, Completion]], n: int) -> list[Completion]:
    results: list[Completion | None] = [None] * n
    for index, completion in replies:
        results[index] = completion
    return results  # type: ignore[return-value]


_SURROGATES = re.compile("[\ud800-\udfff]")
_RETRIED_STATUS = {408, 409, 429}
"""With every 5xx: the statuses a request is sent again for (timeouts, conflicts, rate limits)."""
_FATAL_STATUS = {401: "the API key was rejected", 403: "the API key may not use this model", 404: "not found"}


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint, with a deadline per request, retries with backoff and a
    concurrency limit.

    ``timeout`` is the most seconds one request may take, **retries included** (a hung endpoint costs
    ``timeout``, not ``timeout`` per attempt); connection errors, timeouts, 408/409/429 and 5xx are retried
    up to ``max_retries`` times within it. A request that still fails becomes a failed :class:`Completion`
    (``error`` set) and the batch goes on; 401, 403 and 404 raise :class:`BackendError`, because every
    other request would fail the same way.

    The API key is read from the environment variable named by ``api_key_env``
    at construction and kept only inside the client: it is never part of
    ``name``, ``repr``, cache keys, errors or logs (:func:`redact`), and a ``base_url``
    carrying credentials is refused (:func:`check_base_url`). Local servers (vLLM, ``transformers
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

        check_base_url(base_url)
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.model = model
        self.base_url = base_url
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.progress = progress
        self.name = f"openai:{model}@{base_url or 'api.openai.com'}"
        self._api_key = os.environ.get(api_key_env) or "EMPTY"
        # Retries are ours (below), so that they stay inside the request's deadline.
        self._client = OpenAI(api_key=self._api_key, base_url=base_url, timeout=self.timeout, max_retries=0)

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _describe(self, error: Exception) -> str:
        status = getattr(error, "status_code", None)
        where = f"HTTP {status}: " if status else ""
        return redact(f"{type(error).__name__}: {where}{error}", self._api_key)[:500]

    def _request(self, conversation: Conversation, config: SamplingConfig, timeout: float):
        return self._client.with_options(timeout=timeout).chat.completions.create(
            model=self.model,
            messages=[{"role": m["role"], "content": m["content"]} for m in conversation],
            max_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed,
        )

    def _one(self, conversation: Conversation, config: SamplingConfig) -> Completion:
        import openai

        deadline = time.monotonic() + self.timeout
        for attempt in range(self.max_retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                response = self._request(conversation, config, remaining)
            except openai.APIStatusError as error:
                if error.status_code in _FATAL_STATUS:
                    reason = _FATAL_STATUS[error.status_code]
                    raise BackendError(f"{self.name}: {reason} ({self._describe(error)})") from None
                if error.status_code not in _RETRIED_STATUS and error.status_code < 500:
                    return failed_completion(self._describe(error))  # this request is refused; others may pass
                last = error
            except openai.APIConnectionError as error:  # includes timeouts
                last = error
            except Exception as error:  # a malformed response: this request fails, the batch goes on
                return failed_completion(self._describe(error))
            else:
                return self._completion(response)
            if attempt == self.max_retries:
                return failed_completion(f"{self._describe(last)} (after {attempt + 1} attempts)")
            time.sleep(min(0.25 * 2**attempt, 8.0, max(0.0, deadline - time.monotonic())))
        return failed_completion(f"no reply within the {self.timeout:g} s deadline")

    def _completion(self, response) -> Completion:
        try:
            choice = response.choices[0]
            usage = response.usage
            text = _SURROGATES.sub("\ufffd", (choice.message.content or "").strip())  # unwritable as UTF-8
            return Completion(
                text=text,
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                finish_reason=str(choice.finish_reason or "stop"),
            )
        except Exception as error:  # a response without choices or of the wrong shape
            return failed_completion(f"malformed response: {self._describe(error)}")

    def iter_chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> Iterator[tuple[int, Completion]]:
        """``(index, completion)`` pairs in the order the replies arrive; failed requests included (``error``)."""
        from tqdm.auto import tqdm

        for i, conversation in enumerate(conversations):
            validate_conversation(conversation, f"conversation {i}")
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        bar = tqdm(total=len(conversations), desc=self.name, disable=not self.progress or len(conversations) <= 1)
        try:
            futures = {pool.submit(self._one, c, config): i for i, c in enumerate(conversations)}
            for future in as_completed(futures):
                bar.update(1)
                yield futures[future], future.result()  # BackendError propagates: every request would fail
        finally:
            bar.close()
            pool.shutdown(wait=True, cancel_futures=True)

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]:
        return _in_order(self.iter_chat(conversations, config), len(conversations))


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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class CachedBackend:
    """Wrap a backend with an SQLite cache: a repeated request is answered from disk.

    Each reply is stored the moment it arrives (a kill after 76 of 80 replies keeps 76), failed requests
    are not stored (a rerun asks again), and the database runs in WAL mode with a busy timeout, so
    several processes can share one cache. Two runs that share a cache do not both pay for a request:
    before sending, a run *claims* the requests it is about to send; another run that needs the same
    request waits for that reply instead of sending it again, and takes the claim over if its owner dies
    (same machine) or holds it longer than ``claim_seconds`` without a reply.

    Only replies are stored (text and token counts), never credentials.
    """

    def __init__(
        self,
        backend: ChatBackend,
        path: str | os.PathLike,
        *,
        busy_timeout: float = 30.0,
        claim_seconds: float = 900.0,
        poll_seconds: float = 0.2,
    ):
        self.backend = backend
        self.name = backend.name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout = busy_timeout
        self.claim_seconds = claim_seconds
        self.poll_seconds = poll_seconds
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._execute("PRAGMA journal_mode=WAL")
            self._execute("PRAGMA synchronous=NORMAL")
            self._execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._execute(
                "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, claimed_at REAL)"
            )
        self.hits = 0
        """Requests answered from the cache (including replies another run was sending)."""
        self.misses = 0
        """Requests this wrapper sent to the backend."""

    def _execute(self, sql: str, parameters=()):
        try:
            return self._db.execute(sql, parameters)
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise BackendError(
                    f"{self.path}: the cache stayed locked by another process for {self.busy_timeout:g} s"
                ) from None
            raise

    def _transaction(self, statements) -> None:
        """Run ``(sql, parameters)`` pairs atomically (one write transaction, taken at once)."""
        self._execute("BEGIN IMMEDIATE")
        try:
            for sql, parameters in statements:
                self._execute(sql, parameters)
        except BaseException:
            self._db.rollback()
            raise
        self._execute("COMMIT")

    def _lookup(self, keys) -> dict[str, Completion]:
        known = {f.name for f in fields(Completion)}
        found = {}
        for key in keys:
            row = self._execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
            if row:
                found[key] = Completion(**{k: v for k, v in json.loads(row[0]).items() if k in known})
        return found

    def _stale(self, owner: str, claimed_at: float) -> bool:
        if owner == self.owner:
            return True
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if host == self.host and pid.isdigit() and not _process_alive(int(pid)):
            return True  # its run was killed: nobody will answer this claim
        return time.time() - claimed_at > self.claim_seconds

    def _claim(self, keys) -> tuple[dict[str, Completion], list[str], list[str]]:
        """In one transaction: the replies now in the cache, the keys claimed for this run, those claimed
        (and being sent) by another live run."""
        with self._lock:
            self._execute("BEGIN IMMEDIATE")
            try:
                found = self._lookup(keys)
                mine, theirs = [], []
                for key in keys:
                    if key in found:
                        continue
                    row = self._execute("SELECT owner, claimed_at FROM claims WHERE key = ?", (key,)).fetchone()
                    if row is not None and not self._stale(row[0], row[1] or 0.0):
                        theirs.append(key)
                        continue
                    self._execute(
                        "INSERT OR REPLACE INTO claims (key, owner, claimed_at) VALUES (?, ?, ?)",
                        (key, self.owner, time.time()),
                    )
                    mine.append(key)
            except BaseException:
                self._db.rollback()
                raise
            self._execute("COMMIT")
        return found, mine, theirs

    def _store(self, key: str, completion: Completion) -> None:
        statements = [("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner))]
        if completion.ok:
            value = json.dumps({k: v for k, v in asdict(completion).items() if k != "error"})
            statements.append(("INSERT OR REPLACE INTO completions (key, value) VALUES (?, ?)", (key, value)))
        statements.append(("UPDATE claims SET claimed_at = ? WHERE owner = ?", (time.time(), self.owner)))
        with self._lock:
            self._transaction(statements)

    def remember(
        self, conversations: Sequence[Conversation], config: SamplingConfig, completions: Sequence[Completion]
    ) -> None:
        """Store ``completions`` as this backend's replies to ``conversations`` under ``config``, without asking
        it: answers that came another way (e.g. :func:`within_budget` of answers generated with a larger budget)
        and that a later request should find. Failed completions are not stored."""
        if len(conversations) != len(completions):
            raise ValueError(f"{len(conversations)} conversations but {len(completions)} completions")
        for conversation, completion in zip(conversations, completions):
            self._store(cache_key(self.name, conversation, config), completion)

    def _release(self, keys) -> None:
        with self._lock:
            self._transaction([("DELETE FROM claims WHERE key = ? AND owner = ?", (k, self.owner)) for k in keys])

    def iter_chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> Iterator[tuple[int, Completion]]:
        """``(index, completion)`` pairs: cached ones first, then each fresh reply as it arrives (and is stored)."""
        keys = [cache_key(self.name, c, config) for c in conversations]
        indices: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            indices.setdefault(key, []).append(i)  # a request repeated in one call is sent once
        pending = list(indices)
        first_round = True
        while pending:
            found, mine, theirs = self._claim(pending)
            if first_round:
                self.hits += sum(len(indices[k]) for k in found) + sum(len(indices[k]) - 1 for k in mine)
                first_round = False
            else:
                self.hits += sum(len(indices[k]) for k in found)
            for key, completion in found.items():
                for i in indices[key]:
                    yield i, completion
            if mine:
                self.misses += len(mine)
                sent = set()
                try:
                    for position, completion in iter_replies(
                        self.backend, [conversations[indices[k][0]] for k in mine], config
                    ):
                        key = mine[position]
                        self._store(key, completion)
                        sent.add(key)
                        for i in indices[key]:
                            yield i, completion
                finally:
                    unanswered = [k for k in mine if k not in sent]
                    if unanswered:  # an error or a stop in the middle: let another run send these
                        self._release(unanswered)
            pending = theirs
            if pending:
                time.sleep(self.poll_seconds)  # another run is sending these: wait for its replies

    def chat(
        self, conversations: Sequence[Conversation], config: SamplingConfig = SamplingConfig()
    ) -> list[Completion]:
        return _in_order(self.iter_chat(conversations, config), len(conversations))

    def close(self) -> None:
        self._db.close()
