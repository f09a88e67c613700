r"""Self-instruct bootstrapping (Wang et al. 2023): a model writes new instructions from a few examples.

Each request shows ``num_human_examples`` human seeds and
``num_generated_examples`` instructions the model wrote earlier, and asks for
one more. A candidate is kept only if it

- is between ``min_words`` and ``max_words`` long,
- names no task a text-only model cannot do (the keyword blacklist: images, files, drawing...),
- does not start with punctuation, and
- is novel: :math:`\max_{k \in \text{kept}} \text{ROUGE-L}(c, k) \le 0.7` (every kept instruction at once
  through rapidfuzz's LCS: :class:`~.similarity.RougeLIndex`).

Rejections are counted by reason. Kept instructions are appended to a JSONL
file as they are accepted, so a killed run resumes with its pool intact.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..backends import ChatBackend, SamplingConfig
from ..data import ResumableJsonlWriter, read_jsonl
from .similarity import RougeLIndex, rouge_l, words

# Tasks a text-only model cannot perform (after the self-instruct paper's list), matched as whole words:
# "file" does not hit "profile", nor "image" "imagine".
DEFAULT_BLACKLIST = (
    "image",
    "images",
    "picture",
    "pictures",
    "photo",
    "photos",
    "graph",
    "graphs",
    "file",
    "files",
    "draw",
    "drawing",
    "video",
    "videos",
    "audio",
    "music",
    "song recording",
    "flowchart",
    "diagram",
    "go to",
    "website",
    "url",
    "link",
)

# Words that name a picture only in some contexts get a regular expression for those contexts instead of a plain
# keyword: "a map of Peru", "this map", "a treasure map" ask for an image, but "map a function over a list",
# "map each key to", "map out a plan", "a hash map", "the map function", "roadmap" and "mapping" are text tasks;
# "plot the data" asks for a chart, but "the plot of Hamlet" or "a plot twist" are about stories.
_DETERMINER = r"(?:a|an|the|this|that|these|those|my|your|our|their|his|her|its|one)"
_MAP_KIND = r"(?:world|street|road|city|country|topographic|topographical|political|physical|treasure|weather|mind|site|star|contour|interactive|heat|tourist|subway|metro|hiking|trail)"
DEFAULT_BLACKLIST_PATTERNS = (
    # a map as a picture: after a determiner or a kind of map, or "map(s) of"; not the map function or the data
    # structure ("the map function", "map()", "a map and a set")
    rf"\b(?:{_DETERMINER}|{_MAP_KIND})\s+maps?\b(?!\s*\()(?!\s+(?:function|method|object|type|data structure|class|key)s?\b)"
    r"(?!\s+(?:and|or|vs\.?|versus)\s+(?:an?\s+)?(?:set|list|dict|dictionary|array|vector|filter|reduce)\b)"
    r"|\bmaps?\s+of\b",
    # to plot data or a curve (a chart), not the plot of a story ("plot points", "plot twist")
    r"\bplot(?:s|ted|ting)?\s+(?:\w+\s+){0,2}(?:data|graph|chart|function|curve|values|results|histogram|scatter)\b"
    rf"|\bplot(?:s|ted|ting)?\s+(?:{_DETERMINER}|these|\d+)\s+(?:\w+\s+)?points\b"
    r"|\bplot(?:s|ted|ting)?\s+(?:\w+\s+){1,3}(?:against|versus|vs)\b",
)

FEW_SHOT_TEMPLATE = (
    "Here are some tasks that people ask an AI assistant to do:\n\n{examples}\n\n"
    "Write task {next_number}: one new task on a different topic, in one or two sentences. "
    "Reply with the task only."
)


@dataclass(frozen=True)
class SelfInstructConfig:
    num_human_examples: int = 6
    num_generated_examples: int = 2
    rouge_threshold: float = 0.7
    min_words: int = 3
    max_words: int = 150
    blacklist: Sequence[str] = DEFAULT_BLACKLIST
    """Keywords matched as whole words (case-insensitive)."""
    blacklist_patterns: Sequence[str] = DEFAULT_BLACKLIST_PATTERNS
    """Regular expressions for words that are a blacklisted task only in some contexts (e.g. "map", "plot")."""
    template: str = FEW_SHOT_TEMPLATE
    sampling: SamplingConfig = SamplingConfig(max_new_tokens=64, temperature=1.0, top_p=0.95, seed=0)
    requests_per_round: int = 16
    max_rounds: int = 50


def clean_instruction(text: str) -> str:
    """First paragraph of the reply, without a ``Task 7:`` / ``7.`` prefix or surrounding quotes."""
    text = text.strip().split("\n\n")[0].strip()
    text = re.sub(r"^(?:\*\*)?(?:task|instruction)\s*\d*\s*[:.)]\s*(?:\*\*)?", "", text, flags=re.I).strip()
    text = re.sub(r"^\d+\s*[.)]\s*", "", text).strip()
    if len(text) >= 2 and text[0] in "\"“'" and text[-1] in "\"”'":
        text = text[1:-1].strip()
    return text


def blacklist_hit(candidate: str, config: SelfInstructConfig) -> str | None:
    """The blacklisted words ``candidate`` contains (a keyword or a pattern's context), else ``None``."""
    lowered = " " + " ".join(words(candidate)) + " "
    for term in config.blacklist:
        if f" {' '.join(words(term))} " in lowered:
            return term
    text = " ".join(candidate.split())
    for pattern in config.blacklist_patterns:
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            return found.group(0)
    return None


def rejection_reason(
    candidate: str, kept_tokens: Sequence[Sequence[str]] | RougeLIndex, config: SelfInstructConfig
) -> str | None:
    """Why ``candidate`` is not kept (``"empty"``, ``"too short"``, ``"too long"``, ``"blacklist"``,
    ``"punctuation start"``, ``"too similar"``) or ``None`` if it is.

    ``kept_tokens``: the kept instructions as word lists (each compared with the from-scratch :func:`rouge_l`:
    the readable reference) or a :class:`~.similarity.RougeLIndex` of them (rapidfuzz's LCS, the same scores,
    what :func:`bootstrap_instructions` uses).
    """
    tokens = words(candidate)
    if not tokens:
        return "empty"
    if len(tokens) < config.min_words:
        return "too short"
    if len(tokens) > config.max_words:
        return "too long"
    if blacklist_hit(candidate, config) is not None:
        return "blacklist"
    if not candidate[0].isalnum():
        return "punctuation start"
    if isinstance(kept_tokens, RougeLIndex):
        if kept_tokens.max_score(tokens) > config.rouge_threshold:
            return "too similar"
    elif any(rouge_l(tokens, kept) > config.rouge_threshold for kept in kept_tokens):
        return "too similar"
    return None


def few_shot_request(human: Sequence[str], generated: Sequence[str], config: SelfInstructConfig, rng: random.Random):
    """One request: a shuffled mix of human and machine instructions, numbered, then "write task k+1"."""
    examples = rng.sample(list(human), min(config.num_human_examples, len(human)))
    examples += rng.sample(list(generated), min(config.num_generated_examples, len(generated)))
    rng.shuffle(examples)
    numbered = "\n".join(f"{i}. {' '.join(e.split())}" for i, e in enumerate(examples, start=1))
    return [{"role": "user", "content": config.template.format(examples=numbered, next_number=len(examples) + 1)}]


@dataclass
class SelfInstructResult:
    kept: list[dict]
    """Rows ``{"id", "sector": "self-instruct", "prompt", "round"}`` of every kept instruction (old and new)."""
    rejected: Counter = field(default_factory=Counter)
    rejected_examples: dict = field(default_factory=dict)
    candidates: int = 0
    failed: dict = field(default_factory=dict)
    """``"round R, request J"`` -> why that request failed: no reply, so neither a candidate nor a rejection."""
    generated_tokens: int = 0
    seconds: float = 0.0


def bootstrap_instructions(
    seed_prompts: Sequence[str],
    backend: ChatBackend,
    num_instructions: int,
    out_path: str | os.PathLike,
    config: SelfInstructConfig = SelfInstructConfig(),
    *,
    seed: int = 0,
    progress: bool = True,
) -> SelfInstructResult:
    """Grow the pool until ``out_path`` holds ``num_instructions`` kept instructions (or ``max_rounds`` pass).

    Resumable: instructions already in ``out_path`` count as kept and as examples.
    """
    from tqdm.auto import tqdm

    human = [p for p in seed_prompts if p.strip()]
    if not human:
        raise ValueError("self-instruct needs at least one seed prompt")
    start = time.perf_counter()
    result = SelfInstructResult(kept=[])
    with ResumableJsonlWriter(out_path, id_field="id") as writer:
        if writer.done_ids:
            result.kept = read_jsonl(writer.path, fields={"id": str, "prompt": str})
        kept_tokens = RougeLIndex([words(p) for p in human] + [words(r["prompt"]) for r in result.kept])
        bar = tqdm(
            total=num_instructions,
            initial=min(len(result.kept), num_instructions),
            desc="instructions",
            disable=not progress,
        )
        first_round = max((r.get("round", 0) for r in result.kept), default=-1) + 1
        for round_number in range(first_round, first_round + config.max_rounds):
            if len(result.kept) >= num_instructions:
                break
            rng = random.Random(f"{seed}:{round_number}")
            generated = [r["prompt"] for r in result.kept]
            requests = [few_shot_request(human, generated, config, rng) for _ in range(config.requests_per_round)]
            sampling = config.sampling
            if sampling.seed is not None:
                sampling = SamplingConfig(
                    sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.seed + round_number
                )
            for request_number, reply in enumerate(backend.chat(requests, sampling)):
                if len(result.kept) >= num_instructions:
                    break
                if not reply.ok:
                    result.failed[f"round {round_number}, request {request_number}"] = reply.error
                    continue
                result.candidates += 1
                result.generated_tokens += reply.completion_tokens
                candidate = clean_instruction(reply.text)
                reason = rejection_reason(candidate, kept_tokens, config)
                if reason is None and reply.finish_reason == "length":
                    reason = "truncated"
                if reason is not None:
                    result.rejected[reason] += 1
                    result.rejected_examples.setdefault(reason, candidate)
                    continue
                row = {
                    "id": f"self-instruct-{len(result.kept) + 1:04d}",
                    "sector": "self-instruct",
                    "prompt": candidate,
                    "round": round_number,
                }
                writer.append(row)
                result.kept.append(row)
                kept_tokens.add(words(candidate))
                bar.update(1)
            bar.set_postfix(kept=len(result.kept), tried=result.candidates)
        if bar.n < num_instructions:  # the rounds ran out first: end the bar at what they reached, not at "17%"
            bar.total = bar.n
            bar.set_postfix(kept=len(result.kept), tried=result.candidates, target=num_instructions)
            bar.refresh()
        bar.close()
    result.seconds = time.perf_counter() - start
    return result
