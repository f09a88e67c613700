"""Judge prompts: the AlpacaEval ranking prompt and MT-Bench's single-answer and pairwise grading.

The wording is ours; the *output formats* are the ones the public benchmarks
parse, so a judge that was tuned or prompted for them answers in a shape we can read:

- AlpacaEval ranking: outputs given as Python-dict literals, the judge answers
  ``[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]``;
- MT-Bench single-answer grading: a short explanation, then ``[[rating]]`` on 1-10
  (a reference-guided variant shows a reference answer, for math and reasoning);
- MT-Bench pairwise: a short explanation, then ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie).

Every builder returns a conversation (list of ``{"role", "content"}``). The prompts are two registries,
:data:`PAIRWISE_PROMPTS` and :data:`SINGLE_PROMPTS`: a name, the builder of the conversation, the parser of the
reply and what the prompt needs installed; a new prompt is one builder and one :func:`register_pairwise_prompt`
(or :func:`register_single_prompt`) line.

Beside ours, the benchmarks' own prompts, read at run time from their packages (:mod:`.official`; nothing of
their text is in this repository), so that a GPU run's score can sit beside the published ones:
``alpaca_eval_official`` (AlpacaEval 1's GPT-4 ranking prompt, from ``alpaca-eval``) and ``mt_bench_official``
(FastChat's ``pair-v2`` and ``single-v1``/``single-math-v1``). Asking for one that is not installed raises
:class:`~zephyr_tutorial.evaluation.official.BenchmarkFilesMissing` naming what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import official
from .parsing import Parsed, parse_alpaca_ranking, parse_pairwise_verdict, parse_rating

ALPACA_EVAL_SYSTEM = "You are a careful assistant who ranks language models by how good their answers are."

ALPACA_EVAL_TEMPLATE = """We are building a leaderboard of large language models. Below is an instruction that was given to two models, followed by each model's response. Rank the two models by which response most people would prefer.

All inputs and outputs are Python dictionaries.

The instruction:
{{
    "instruction": \"\"\"{instruction}\"\"\",
}}

The responses:
[
    {{
        "model": "model_1",
        "answer": \"\"\"{output_1}\"\"\"
    }},
    {{
        "model": "model_2",
        "answer": \"\"\"{output_2}\"\"\"
    }}
]

Rank the models so that the model with the better response gets rank 1. Reply with the list of model names and ranks and nothing else, in exactly this form:
[
    {{'model': <model-name>, 'rank': <model-rank>}},
    {{'model': <model-name>, 'rank': <model-rank>}}
]
Your reply must be a valid Python literal with nothing before or after it, because we will directly execute it in Python. Give the ranking that most people would give."""

MT_BENCH_SYSTEM = "You are a helpful assistant."

SINGLE_TEMPLATE = """[Instruction]
Act as an impartial judge of the response an AI assistant gave to the user question below. Weigh how helpful, relevant, accurate, deep, creative and detailed it is. Start with a short explanation, as objective as you can make it. After the explanation, rate the response from 1 to 10 in exactly this format: "[[rating]]", for example "Rating: [[5]]".

[Question]
{question}

[The Start of Assistant's Answer]
{answer}
[The End of Assistant's Answer]"""

SINGLE_REFERENCE_TEMPLATE = """[Instruction]
Act as an impartial judge of the response an AI assistant gave to the user question below. Correctness and helpfulness matter most. You are given a reference answer and the assistant's answer. Start by comparing the assistant's answer with the reference, then point out and correct any mistakes, as objective as you can make it. After the explanation, rate the response from 1 to 10 in exactly this format: "[[rating]]", for example "Rating: [[5]]".

[Question]
{question}

[The Start of Reference Answer]
{reference}
[The End of Reference Answer]

[The Start of Assistant's Answer]
{answer}
[The End of Assistant's Answer]"""

PAIRWISE_SYSTEM = (
    "Act as an impartial judge of the responses two AI assistants gave to the user question shown below. "
    "Choose the assistant that follows the user's instructions and answers the question better, weighing "
    "helpfulness, relevance, accuracy, depth, creativity and level of detail. Start by comparing the two "
    "responses with a short explanation. Do not let the order in which the responses appear, their length "
    "or the assistants' names sway you, and be as objective as you can. After the explanation, give your "
    'verdict in exactly this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, '
    'and "[[C]]" for a tie.'
)

PAIRWISE_TEMPLATE = """[User Question]
{question}

[The Start of Assistant A's Answer]
{answer_a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{answer_b}
[The End of Assistant B's Answer]"""


def alpaca_eval_ranking_prompt(instruction: str, output_1: str, output_2: str) -> list[dict]:
    """The ranking conversation: ``output_1`` is shown as ``model_1``, ``output_2`` as ``model_2``."""
    user = ALPACA_EVAL_TEMPLATE.format(instruction=instruction, output_1=output_1, output_2=output_2)
    return [{"role": "system", "content": ALPACA_EVAL_SYSTEM}, {"role": "user", "content": user}]


def mt_bench_single_prompt(question: str, answer: str, reference: str | None = None) -> list[dict]:
    """Single-answer grading; with ``reference`` the reference-guided variant (math, reasoning)."""
    if reference is None:
        user = SINGLE_TEMPLATE.format(question=question, answer=answer)
    else:
        user = SINGLE_REFERENCE_TEMPLATE.format(question=question, answer=answer, reference=reference)
    return [{"role": "system", "content": MT_BENCH_SYSTEM}, {"role": "user", "content": user}]


def mt_bench_pairwise_prompt(question: str, answer_a: str, answer_b: str) -> list[dict]:
    """Pairwise comparison: ``answer_a`` is shown as assistant A."""
    user = PAIRWISE_TEMPLATE.format(question=question, answer_a=answer_a, answer_b=answer_b)
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": user}]


def _nothing_needed() -> None:
    """Our own prompts need nothing installed."""


@dataclass(frozen=True)
class PairwisePrompt:
    """A pairwise judging prompt: ``build(instruction, first, second)`` and ``parse(reply)``.

    ``parse`` returns a :class:`~zephyr_tutorial.evaluation.parsing.Parsed` whose value names the position that
    won: ``"A"``/``"model_1"`` (shown first), ``"B"``/``"model_2"`` (shown second), anything else a tie.
    ``requires()`` raises when the prompt's text is not installed (the benchmarks' own prompts).
    """

    build: Callable[[str, str, str], list[dict]]
    parse: Callable[[str], Parsed]
    requires: Callable[[], None] = _nothing_needed


@dataclass(frozen=True)
class SinglePrompt:
    """A single-answer grading prompt: ``build(question, answer, reference=None)`` and ``parse(reply)`` (a
    :class:`~zephyr_tutorial.evaluation.parsing.Parsed` 1-10 rating)."""

    build: Callable[..., list[dict]]
    parse: Callable[[str], Parsed]
    requires: Callable[[], None] = _nothing_needed


PAIRWISE_PROMPTS: dict[str, PairwisePrompt] = {}
SINGLE_PROMPTS: dict[str, SinglePrompt] = {}


def register_pairwise_prompt(name: str, build, parse, requires=_nothing_needed) -> None:
    """Make ``name`` a pairwise prompt every judge (and ``zephyr-tutorial judge --prompt``) can use."""
    PAIRWISE_PROMPTS[name] = PairwisePrompt(build, parse, requires)


def register_single_prompt(name: str, build, parse, requires=_nothing_needed) -> None:
    """Make ``name`` a single-answer grading prompt (``LLMJudge(single_prompt=name)``)."""
    SINGLE_PROMPTS[name] = SinglePrompt(build, parse, requires)


register_pairwise_prompt("alpaca_eval", alpaca_eval_ranking_prompt, parse_alpaca_ranking)
register_pairwise_prompt("mt_bench", mt_bench_pairwise_prompt, parse_pairwise_verdict)
register_pairwise_prompt(
    "alpaca_eval_official", official.alpaca_eval_official_prompt, parse_alpaca_ranking, official.require_alpaca_eval
)
register_pairwise_prompt(
    "mt_bench_official",
    official.mt_bench_official_pairwise_prompt,
    parse_pairwise_verdict,
    official.require_fastchat_data,
)
register_single_prompt("mt_bench", mt_bench_single_prompt, parse_rating)
register_single_prompt(
    "mt_bench_official", official.mt_bench_official_single_prompt, parse_rating, official.require_fastchat_data
)


def _spec(registry: dict, kind: str, what: str):
    if kind not in registry:
        raise ValueError(f"unknown {what} prompt {kind!r}; choose one of {', '.join(sorted(registry))}")
    spec = registry[kind]
    spec.requires()
    return spec


def pairwise_spec(kind: str) -> PairwisePrompt:
    """The registered prompt ``kind``, checked to be usable here; an unknown one names the registered ones."""
    return _spec(PAIRWISE_PROMPTS, kind, "pairwise")


def single_spec(kind: str) -> SinglePrompt:
    """The registered single-answer prompt ``kind``, checked to be usable here."""
    return _spec(SINGLE_PROMPTS, kind, "single-answer")


def pairwise_prompt(kind: str, instruction: str, first: str, second: str) -> list[dict]:
    """The pairwise conversation of ``kind`` (a key of :data:`PAIRWISE_PROMPTS`) with ``first`` shown first."""
    return pairwise_spec(kind).build(instruction, first, second)


def single_prompt(kind: str, question: str, answer: str, reference: str | None = None) -> list[dict]:
    """The single-answer conversation of ``kind`` (a key of :data:`SINGLE_PROMPTS`), reference-guided if given."""
    return single_spec(kind).build(question, answer, reference)
