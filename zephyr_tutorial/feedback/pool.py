"""The completion pool: several policies answer every prompt, one completion each.

UltraFeedback (Cui et al. 2023) sampled four models out of seventeen for each
instruction and gave each a system prompt drawn from a set of *principles*
(helpfulness, truthfulness, honesty, verbalized calibration), so the answers
differ in both ability and style. On a CPU we cannot host seventeen models, so
the default pool is made of genuinely different *policies* built from what we
have:

- the embedded model, greedy, told to be helpful;
- the embedded model sampling at temperature 0.7 under a principle drawn per prompt;
- the SFT model of notebook 03 when its adapter exists, else the embedded
  model at temperature 1.0 under a drawn principle;
- a deliberately weak policy (the greedy answer truncated to its first few
  words, or a tiny randomly initialised model), so that the judge sees clear
  failures and the ratings spread.

A pool is a list of :class:`PolicySpec`; :func:`load_pool_config` reads one from JSON.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..data import DataError

PRINCIPLES: dict[str, str] = {
    "helpfulness": (
        "You are a helpful assistant. Follow the user's instructions exactly, including any format or length "
        "they ask for."
    ),
    "truthfulness": (
        "You are a truthful assistant. Only state facts you are sure of, do not invent details, "
        "and correct false assumptions in the question."
    ),
    "honesty": (
        "You are an honest assistant. If you do not know the answer or the question cannot be answered, "
        "say so plainly instead of guessing."
    ),
    "verbalized_calibration": (
        "You are a careful assistant. Answer the question, then state how confident you are in your answer "
        "as a percentage, e.g. 'Confidence: 80%'."
    ),
}
"""System prompts in the spirit of UltraFeedback's principles (our own wording; helpfulness is worded for the
verifiable prompts of the ``cpu`` profile, whose quality is mostly a matter of following their instructions)."""

DEMONSTRATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "formats": (
        ("What is the capital of Iceland? Answer with the city name only.", "Reykjavik"),
        ("What is 100 plus 250? Reply with the number only.", "350"),
        (
            'List 3 kinds of shoes as a bulleted list, one per line, each line starting with "- ". Write nothing else.',
            "- boots\n- sandals\n- sneakers",
        ),
        (
            "Using only lowercase letters, describe what a cloud is in one or two sentences.",
            "a cloud is a mass of tiny water droplets floating in the sky.",
        ),
        ("Answer with Yes or No only. Is fire hot?", "Yes"),
        (
            'Begin your answer with the word "Well". How do I boil an egg? Answer in at most three sentences.',
            "Well, put the egg in boiling water for about eight minutes. Then cool it in cold water.",
        ),
    ),
}
"""Few-shot demonstrations a policy can be shown before the prompt (``PolicySpec.demonstrations``): earlier turns of
the conversation in which the assistant followed a format exactly. They make the small model a stronger member of
the pool, the way UltraFeedback's pool mixed weak and strong models; the preference pairs keep only the prompt and
the answer, so DPO never sees the demonstrations. None of them is one of the verifiable prompts (tested)."""

POLICY_KINDS = ("embedded", "sft", "tiny_random", "truncated", "openai", "hub")


@dataclass(frozen=True)
class PolicySpec:
    """One member of the pool.

    ``principle`` is a key of :data:`PRINCIPLES`, ``"sample"`` (one drawn per
    prompt, seeded by the prompt id, as UltraFeedback does) or ``None`` (no
    system prompt). ``demonstrations`` names a set of :data:`DEMONSTRATIONS` shown as earlier turns.
    ``kind="truncated"`` needs no model: it cuts the answer of policy ``source`` to its first
    ``truncate_words`` words, or to the first ``truncate_fraction`` of them. ``model`` is the
    model id of an ``"openai"`` policy and the LoRA adapter folder of an ``"sft"``
    policy (default: the one :class:`PolicyBackends` was given, else notebook 03's). A ``"hub"`` policy is a
    transformers model by hub id or folder (``model``), loaded with ``extra`` as
    :func:`~zephyr_tutorial.models.load_causal_lm` arguments (``{"load_in_4bit": True, "dtype": "float16"}``).
    """

    name: str
    kind: str
    principle: str | None = "helpfulness"
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    source: str | None = None
    truncate_words: int = 6
    truncate_fraction: float | None = None
    demonstrations: str | None = None
    model: str | None = None
    base_url: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in POLICY_KINDS:
            raise ValueError(f"policy {self.name!r}: kind must be one of {', '.join(POLICY_KINDS)}, got {self.kind!r}")
        if self.principle not in (None, "sample", *PRINCIPLES):
            raise ValueError(
                f"policy {self.name!r}: principle must be None, 'sample' or one of {', '.join(PRINCIPLES)}"
            )
        if self.demonstrations is not None and self.demonstrations not in DEMONSTRATIONS:
            raise ValueError(f"policy {self.name!r}: demonstrations must be one of {', '.join(DEMONSTRATIONS)}")
        if self.truncate_fraction is not None and not 0 < self.truncate_fraction < 1:
            raise ValueError(f"policy {self.name!r}: truncate_fraction must be between 0 and 1")
        if self.kind == "truncated" and not self.source:
            raise ValueError(f"policy {self.name!r}: a truncated policy needs source=<name of another policy>")
        if self.kind in ("openai", "hub") and not self.model:
            raise ValueError(f"policy {self.name!r}: a policy of kind {self.kind!r} needs model=<model id>")


def default_pool(*, sft_adapter_dir: str | Path | None = None, weak: str = "truncated") -> list[PolicySpec]:
    """The CPU pool for the verifiable prompts: five policies of different strength, from one small model.

    ``smol-greedy`` (the embedded model told to follow instructions), ``smol-fewshot`` (the same, shown
    :data:`DEMONSTRATIONS` first: the strongest member), ``smol-t0.7`` (sampled, principle drawn per prompt),
    the SFT model of notebook 03 when ``sft_adapter_dir`` holds an adapter (else the embedded model at
    temperature 1.0), and a deliberately weak policy: the first half of ``smol-greedy``'s answer (``truncated``)
    or a tiny random model (``tiny_random``). The judge must rank the weak one low; notebook 04 shows it.
    """
    has_sft = sft_adapter_dir is not None and (Path(sft_adapter_dir) / "adapter_config.json").is_file()
    # The spec names its adapter, so the pool loads the adapter that was checked here and not another default.
    fourth = (
        PolicySpec("sft-t0.7", "sft", principle="sample", temperature=0.7, top_p=0.95, model=str(sft_adapter_dir))
        if has_sft
        else PolicySpec("smol-t1.0", "embedded", principle="sample", temperature=1.0, top_p=0.95)
    )
    if weak == "truncated":
        weak_policy = PolicySpec("truncated", "truncated", principle=None, source="smol-greedy", truncate_fraction=0.5)
    elif weak == "tiny_random":
        weak_policy = PolicySpec("tiny-random", "tiny_random", principle=None, temperature=1.0, max_new_tokens=24)
    else:
        raise ValueError(f"weak must be 'truncated' or 'tiny_random', got {weak!r}")
    return [
        PolicySpec("smol-greedy", "embedded", principle="helpfulness", temperature=0.0),
        PolicySpec("smol-fewshot", "embedded", principle="helpfulness", demonstrations="formats"),
        PolicySpec("smol-t0.7", "embedded", principle="sample", temperature=0.7, top_p=0.95),
        fourth,
        weak_policy,
    ]


def load_pool_config(path: str | Path) -> list[PolicySpec]:
    """Read a pool from a JSON list of :class:`PolicySpec` fields; errors name the file and entry."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, None, None, "file not found") from None
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, None, f"not valid JSON ({error.msg})") from None
    if not isinstance(entries, list) or not entries:
        raise DataError(path, None, None, "expected a non-empty JSON list of policies")
    known = {f.name for f in fields(PolicySpec)}
    pool = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DataError(path, None, f"[{i}]", "expected an object")
        unknown = set(entry) - known
        if unknown:
            raise DataError(
                path, None, f"[{i}].{sorted(unknown)[0]}", f"unknown field; known: {', '.join(sorted(known))}"
            )
        try:
            pool.append(PolicySpec(**entry))
        except (TypeError, ValueError) as error:
            raise DataError(path, None, f"[{i}]", str(error)) from None
    check_pool(pool)
    return pool


def check_pool(pool: Sequence[PolicySpec]) -> None:
    """Names must be unique and a truncated policy's source must come earlier in the pool."""
    seen: set[str] = set()
    for spec in pool:
        if spec.name in seen:
            raise ValueError(f"policy name {spec.name!r} appears twice in the pool")
        if spec.kind == "truncated" and spec.source not in seen:
            raise ValueError(f"policy {spec.name!r}: source {spec.source!r} must be an earlier policy of the pool")
        seen.add(spec.name)


def principle_for(spec: PolicySpec, prompt_id: str, seed: int = 0) -> str | None:
    """The principle this policy uses for this prompt (drawn reproducibly when ``"sample"``)."""
    if spec.principle != "sample":
        return spec.principle
    return random.Random(f"{seed}:{spec.name}:{prompt_id}").choice(sorted(PRINCIPLES))


def build_conversation(prompt: str, principle: str | None, demonstrations: str | None = None) -> list[dict]:
    """System prompt of the principle (if any), the named demonstrations as earlier turns, then the user's prompt."""
    messages = [{"role": "system", "content": PRINCIPLES[principle]}] if principle else []
    for question, answer in DEMONSTRATIONS[demonstrations] if demonstrations else ():
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": prompt}]


def truncate_words(text: str, n_words: int | None = None, *, fraction: float | None = None) -> str:
    """The first ``n_words`` (or the first ``fraction``, at least one) whitespace-separated words of ``text``:
    a fluent but unfinished answer."""
    words = text.split()
    if fraction is not None:
        n_words = max(1, int(len(words) * fraction))
    return " ".join(words[:n_words])


def completion_id(prompt_id: str, policy: str) -> str:
    return f"{prompt_id}::{policy}"


class PoolCounts(dict):
    """New completions per policy (``{policy: count}``, a plain dict to print), and ``failed``: ``{completion
    id: reason}`` of the requests that failed this run. Those are not written, so a rerun asks again."""

    def __init__(self, policies: Sequence[str]):
        super().__init__({name: 0 for name in policies})
        self.failed: dict[str, str] = {}


def check_unique_prompt_ids(prompts: Sequence[dict]) -> None:
    """A prompt whose id repeats would be skipped as already answered, silently: refuse it instead."""
    first: dict[str, int] = {}
    for position, prompt in enumerate(prompts, start=1):
        if prompt["id"] in first:
            raise ValueError(
                f"prompt id {prompt['id']!r} appears twice (prompts {first[prompt['id']]} and {position}); "
                "the second would never be answered"
            )
        first[prompt["id"]] = position


def run_pool(
    prompts: Sequence[dict],
    pool: Sequence[PolicySpec],
    backend_for: Callable[[PolicySpec], object],
    writer,
    *,
    max_new_tokens: int = 64,
    seed: int = 0,
    chunk_size: int = 16,
) -> dict[str, int]:
    """Let every policy answer every prompt; append one row per completion to ``writer``; return counts per policy.

    ``prompts`` are rows ``{"id", "prompt"}``; ``backend_for(spec)`` returns a
    :class:`~zephyr_tutorial.backends.ChatBackend` (called once per model
    policy). Rows already in the writer are skipped, so a killed run resumes.
    Each row: ``id, prompt_id, prompt, policy, principle, text, finish_reason,
    completion_tokens``. A request that fails is not written: it is counted in the result's ``failed``
    (:class:`PoolCounts`) and asked again by a rerun; so is a truncated policy's row whose source failed.
    Prompt ids must be unique (:func:`check_unique_prompt_ids`).
    """
    from tqdm.auto import tqdm

    from ..backends import SamplingConfig

    check_pool(pool)
    check_unique_prompt_ids(prompts)
    answers: dict[tuple[str, str], str] = {}
    if writer.path.exists():
        from ..data import iter_jsonl

        for row in iter_jsonl(writer.path):
            answers[(row["prompt_id"], row["policy"])] = row["text"]
    counts = PoolCounts([spec.name for spec in pool])
    backends: dict[str, object] = {}
    todo_total = sum(completion_id(p["id"], spec.name) not in writer.done_ids for p in prompts for spec in pool)
    bar = tqdm(total=todo_total, desc="pool")
    # Prompt-major order: each chunk of prompts gets all its completions before the next chunk starts,
    # so the judge can start on complete groups while the pool is still running.
    for start in range(0, len(prompts), chunk_size):
        for spec in pool:
            todo = [
                p
                for p in prompts[start : start + chunk_size]
                if completion_id(p["id"], spec.name) not in writer.done_ids
            ]
            if not todo:
                continue
            if spec.kind == "truncated":
                results = []
                for p in todo:
                    source_id = completion_id(p["id"], spec.source)
                    if source_id in counts.failed:
                        results.append((None, "", "error", 0, f"the request of its source {spec.source!r} failed"))
                        continue
                    if (p["id"], spec.source) not in answers:
                        raise ValueError(f"policy {spec.name!r}: no answer of {spec.source!r} for prompt {p['id']!r}")
                    source_text = answers[(p["id"], spec.source)]
                    text = truncate_words(source_text, spec.truncate_words, fraction=spec.truncate_fraction)
                    results.append((None, text, "truncated", len(text.split()), None))
            else:
                if spec.name not in backends:
                    backends[spec.name] = backend_for(spec)
                config = SamplingConfig(
                    max_new_tokens=spec.max_new_tokens or max_new_tokens,
                    temperature=spec.temperature,
                    top_p=spec.top_p,
                    seed=seed,
                )
                principles = [principle_for(spec, p["id"], seed) for p in todo]
                conversations = [
                    build_conversation(p["prompt"], pr, spec.demonstrations) for p, pr in zip(todo, principles)
                ]
                completions = backends[spec.name].chat(conversations, config)
                results = [
                    (pr, c.text, c.finish_reason, c.completion_tokens, c.error)
                    for pr, c in zip(principles, completions)
                ]
            for p, (principle, text, finish_reason, tokens, error) in zip(todo, results):
                if error is not None:
                    counts.failed[completion_id(p["id"], spec.name)] = error
                    continue
                answers[(p["id"], spec.name)] = text
                writer.append(_row(p, spec, principle, text, finish_reason, tokens))
                counts[spec.name] += 1
            bar.update(len(todo))
    bar.close()
    return counts


def _row(prompt: dict, spec: PolicySpec, principle, text: str, finish_reason: str, tokens: int) -> dict:
    return {
        "id": completion_id(prompt["id"], spec.name),
        "prompt_id": prompt["id"],
        "prompt": prompt["prompt"],
        "policy": spec.name,
        "principle": principle,
        "text": text,
        "finish_reason": finish_reason,
        "completion_tokens": tokens,
    }


def spec_as_dict(spec: PolicySpec) -> dict:
    return asdict(spec)


class PolicyBackends:
    """Builds (and reuses) the chat backend of each policy: one embedded model load serves every embedded policy.

    ``embedded`` is an already loaded ``(model, tokenizer)`` to use as the embedded
    model; ``profile`` decides the base model under an SFT adapter (default: the active profile).
    """

    def __init__(self, *, batch_size: int = 16, sft_adapter_dir: str | Path | None = None, profile=None, embedded=None):
        self.batch_size = batch_size
        self.sft_adapter_dir = sft_adapter_dir
        self.profile = profile
        self._embedded = embedded

    def embedded(self):
        """``(model, tokenizer)`` of the embedded model, loaded once."""
        if self._embedded is None:
            from ..models import load_embedded_model

            self._embedded = load_embedded_model()
        return self._embedded

    def __call__(self, spec: PolicySpec):
        from ..backends import OpenAIBackend, TransformersBackend

        if spec.kind == "embedded":
            model, tokenizer = self.embedded()
        elif spec.kind == "sft":
            from ..models import load_adapter_model
            from ..profiles import active_profile
            from ..sft import default_sft_adapter_dir

            adapter = spec.model or self.sft_adapter_dir or default_sft_adapter_dir()
            model, tokenizer = load_adapter_model(adapter, self.profile or active_profile())
        elif spec.kind == "tiny_random":
            from ..models import build_tiny_model

            _, tokenizer = self.embedded()
            model = build_tiny_model(tokenizer, seed=int(spec.extra.get("seed", 0)))
            model.eval()
        elif spec.kind == "openai":
            return OpenAIBackend(spec.model, base_url=spec.base_url, **spec.extra)
        elif spec.kind == "hub":
            from ..models import load_causal_lm

            model, tokenizer = load_causal_lm(spec.model, device_map="auto", **spec.extra)
        else:
            raise ValueError(f"policy {spec.name!r} of kind {spec.kind!r} has no model backend")
        return TransformersBackend(model, tokenizer, batch_size=self.batch_size, name=spec.name)
