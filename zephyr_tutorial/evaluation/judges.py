"""One judge interface for every stage that needs a verdict: evaluation (notebook 01), AI feedback (04), DPO (05).

A :class:`Judge` answers three questions:

- ``compare(items, swap=True)``: which of two answers is better (AlpacaEval, MT-Bench pairwise), each pair
  judged in both orders when ``swap`` (:func:`~zephyr_tutorial.evaluation.items.combine_orders`);
- ``grade(items)``: a 1-10 rating of one answer (MT-Bench single, reference-guided where an item has one);
- ``rate(items)``: UltraFeedback's four 1-5 aspect ratings of every completion of a prompt; ``items`` are
  ``(prompt_id, instruction, completions)``.

Two implementations: :class:`LLMJudge` generates its verdict with any
:class:`~zephyr_tutorial.backends.ChatBackend` (the embedded model in-process, or GPT-4 / vLLM /
``transformers serve`` / Ollama through :class:`~zephyr_tutorial.backends.OpenAIBackend`), and
:class:`~zephyr_tutorial.evaluation.logprob_judge.LogprobJudge` reads it from a local model's next-token
probabilities. :func:`make_judge` builds one by name from :data:`JUDGES`; a new judge is one class and one
:func:`register_judge` line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..backends import CachedBackend, ChatBackend, Completion, SamplingConfig
from .items import PairwiseItem, PairwiseReport, SingleItem, SingleJudgment, combine_orders
from .logprob_judge import LogprobJudge
from .parsing import Parsed
from .prompts import pairwise_prompt, pairwise_spec, single_spec
from .rating import JUDGE_SYSTEM_PROMPT, Rating, RatingParseError, build_rating_prompt, parse_ratings, shuffled_order

RateItem = tuple[str, str, Sequence[str]]

REQUEST_FAILED = "request failed: "
"""How a judgment whose request failed (no reply at all) begins its error: not the judge's verdict, so the
caller records it as missing for a rerun, unlike an unparseable reply."""


def _read(completion: Completion, parse) -> Parsed:
    """The parsed verdict of one reply, or the failure of its request."""
    if not completion.ok:
        return Parsed(error=REQUEST_FAILED + str(completion.error))
    return parse(completion.text)


class Judge(Protocol):
    """What every judge offers. ``name`` identifies it in reports and caches; ``retries`` counts re-asked replies."""

    name: str
    retries: int

    def compare(self, items: Sequence[PairwiseItem], *, swap: bool = True) -> PairwiseReport: ...

    def grade(self, items: Sequence[SingleItem]) -> list[SingleJudgment]: ...

    def rate(self, items: Sequence[RateItem]) -> list[list[Rating]]: ...


class LLMJudge:
    """A judge that writes its verdict, through any chat backend; every request of a call goes in one batch.

    ``prompt`` names the pairwise prompt (:data:`~zephyr_tutorial.evaluation.prompts.PAIRWISE_PROMPTS`) and
    ``single_prompt`` the grading one (:data:`~zephyr_tutorial.evaluation.prompts.SINGLE_PROMPTS`);
    replies are sampled greedily with at most ``max_new_tokens`` tokens and parsed as untrusted text.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        prompt: str = "mt_bench",
        single_prompt: str = "mt_bench",
        max_new_tokens: int = 256,
        seed: int = 0,
    ):
        pairwise_spec(prompt)  # an unknown (or not installed) prompt fails here, not after the first batch
        single_spec(single_prompt)
        self.backend = backend
        self.name = backend.name
        self.prompt = prompt
        self.single_prompt = single_prompt
        self.sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0)
        self.seed = seed
        self.retries = 0
        self.last_replies: list[str] = []
        """The first replies of the last :meth:`rate` call, for inspection."""

    def compare(self, items: Sequence[PairwiseItem], *, swap: bool = True) -> PairwiseReport:
        """Judge every pair (in both orders when ``swap``) with one batched backend call."""
        parse = pairwise_spec(self.prompt).parse
        conversations = [pairwise_prompt(self.prompt, it.instruction, it.output_a, it.output_b) for it in items]
        if swap:
            conversations += [pairwise_prompt(self.prompt, it.instruction, it.output_b, it.output_a) for it in items]
        completions = self.backend.chat(conversations, self.sampling)
        orders = 2 if swap else 1
        judgments = []
        for index, item in enumerate(items):
            mine = [completions[index + k * len(items)] for k in range(orders)]
            judgments.append(combine_orders(item.id, [_read(c, parse) for c in mine], [c.text for c in mine]))
        return PairwiseReport(judgments, self.name, self.prompt, swap)

    def grade(self, items: Sequence[SingleItem]) -> list[SingleJudgment]:
        """MT-Bench single-answer grading (reference-guided where an item has a reference), one batched call."""
        spec = single_spec(self.single_prompt)
        conversations = [spec.build(it.question, it.answer, it.reference) for it in items]
        completions = self.backend.chat(conversations, self.sampling)
        judgments = []
        for item, completion in zip(items, completions):
            parsed = _read(completion, spec.parse)
            judgments.append(
                SingleJudgment(item.id, parsed.value if parsed.ok else None, parsed.error, completion.text)
            )
        return judgments

    def rate(self, items: Sequence[RateItem]) -> list[list[Rating]]:
        """All completions of a prompt in one request, **shuffled** (so a bias for the first text favours no
        policy), asked for JSON; ratings come back in each item's original order. A reply that does not parse
        is retried once with the parse error quoted; then every completion of that prompt is *missing*."""
        orders = [shuffled_order(len(texts), prompt_id, self.seed) for prompt_id, _, texts in items]
        conversations = [
            [
                {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
                {"role": "user", "content": build_rating_prompt(instruction, [texts[j] for j in order])},
            ]
            for (_, instruction, texts), order in zip(items, orders)
        ]
        completions = self.backend.chat(conversations, self.sampling)
        self.last_replies = [c.text for c in completions]
        results: list[list[Rating] | None] = [None] * len(items)
        errors: dict[int, str] = {}
        for i, (completion, (_, _, texts)) in enumerate(zip(completions, items)):
            results[i] = _failed_request(completion, len(texts))
            if results[i] is None:
                try:
                    results[i] = parse_ratings(completion.text, len(texts))
                except RatingParseError as error:
                    errors[i] = str(error)
        if errors:  # one retry, telling the judge what was wrong with its reply
            self.retries += len(errors)
            retry_conversations = [
                list(conversations[i])
                + [
                    {"role": "assistant", "content": completions[i].text},
                    {
                        "role": "user",
                        "content": f"Your reply could not be read ({errors[i]}). Reply again with JSON only.",
                    },
                ]
                for i in errors
            ]
            for i, completion in zip(errors, self.backend.chat(retry_conversations, self.sampling)):
                n_texts = len(items[i][2])
                results[i] = _failed_request(completion, n_texts)
                if results[i] is None:
                    try:
                        results[i] = parse_ratings(completion.text, n_texts)
                    except RatingParseError as error:
                        reason = f"unparseable after one retry: {error}"
                        results[i] = [Rating(missing_reason=reason) for _ in range(n_texts)]
        mapped = []
        for shown, order in zip(results, orders):
            original: list[Rating | None] = [None] * len(order)
            for position, index in enumerate(order):
                original[index] = shown[position]
            mapped.append(original)
        return mapped


def _failed_request(completion: Completion, n_texts: int) -> list[Rating] | None:
    """Ratings marking a failed request (not recorded, asked again on a rerun), or None for a reply."""
    if completion.ok:
        return None
    reason = REQUEST_FAILED + str(completion.error)
    return [Rating(missing_reason=reason, request_failed=True) for _ in range(n_texts)]


@dataclass
class JudgeOptions:
    """Everything :func:`make_judge` may be told; each judge kind reads the options it needs."""

    model: Any = None
    """A loaded transformers model (``local``, ``logprob``; default: the embedded model)."""
    tokenizer: Any = None
    model_name: str | None = None
    """The endpoint's model (``openai``), or the judge's name in reports and caches (``local``, ``logprob``)."""
    base_url: str | None = None
    cache_path: Any = None
    """An SQLite file caching a generating judge's replies, keyed by (judge name, prompt, sampling)."""
    batch_size: int = 16
    concurrency: int = 4
    timeout: float = 120.0
    max_retries: int = 3
    prompt: str = "mt_bench"
    single_prompt: str = "mt_bench"
    max_new_tokens: int = 256
    seed: int = 0
    catalog: Any = None
    """The verifiable prompts a ``rules`` judge checks (``{prompt: PromptSpec}``; default: the shipped file)."""


JUDGES: dict[str, Callable[[JudgeOptions], Judge]] = {}
"""The judge kinds :func:`make_judge` (and the ``--judge`` option of the commands) know, by name."""


def register_judge(kind: str):
    """Decorator: make ``kind`` a judge that ``make_judge(kind, ...)`` builds with the decorated function."""

    def register(build: Callable[[JudgeOptions], Judge]):
        JUDGES[kind] = build
        return build

    return register


def _local_model(options: JudgeOptions):
    if options.model is not None and options.tokenizer is not None:
        return options.model, options.tokenizer
    from ..models import load_embedded_model

    return load_embedded_model()


def _cached(backend: ChatBackend, options: JudgeOptions) -> ChatBackend:
    return CachedBackend(backend, options.cache_path) if options.cache_path is not None else backend


def _llm_judge(backend: ChatBackend, options: JudgeOptions) -> LLMJudge:
    return LLMJudge(
        _cached(backend, options),
        prompt=options.prompt,
        single_prompt=options.single_prompt,
        max_new_tokens=options.max_new_tokens,
        seed=options.seed,
    )


@register_judge("local")
def _local_judge(options: JudgeOptions) -> Judge:
    """A generating judge over a transformers model in this process (default: the embedded model)."""
    from ..backends import TransformersBackend

    model, tokenizer = _local_model(options)
    return _llm_judge(
        TransformersBackend(model, tokenizer, batch_size=options.batch_size, name=options.model_name), options
    )


@register_judge("openai")
def _openai_judge(options: JudgeOptions) -> Judge:
    """A generating judge behind any OpenAI-compatible endpoint; the key comes from ``$OPENAI_API_KEY``."""
    from ..backends import OpenAIBackend

    if not options.model_name:
        raise ValueError("the openai judge needs model_name (e.g. 'gpt-4-0613' or the served model id)")
    backend = OpenAIBackend(
        options.model_name,
        base_url=options.base_url,
        timeout=options.timeout,
        max_retries=options.max_retries,
        concurrency=options.concurrency,
    )
    return _llm_judge(backend, options)


@register_judge("logprob")
def _logprob_judge(options: JudgeOptions) -> Judge:
    """Verdicts read from a local model's next-token probabilities (default: the embedded model)."""
    model, tokenizer = _local_model(options)
    name = f"logprobs:{options.model_name}" if options.model_name else None
    return LogprobJudge(model, tokenizer, batch_size=options.batch_size, name=name)


@register_judge("rules")
def _rule_judge(options: JudgeOptions) -> Judge:
    """Verdicts from code-checkable rules (:mod:`~zephyr_tutorial.evaluation.rule_judge`), the cpu profile's GPT-4."""
    from .rule_judge import RuleJudge, default_catalog

    return RuleJudge(options.catalog if options.catalog is not None else default_catalog())


def make_judge(kind: str = "local", **options) -> Judge:
    """The judge ``kind`` (a key of :data:`JUDGES`: ``local``, ``openai``, ``logprob``) built with ``options``
    (fields of :class:`JudgeOptions`)."""
    if kind not in JUDGES:
        raise ValueError(f"unknown judge {kind!r}; choose one of {', '.join(sorted(JUDGES))}")
    return JUDGES[kind](JudgeOptions(**options))
