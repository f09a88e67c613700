"""One evaluation suite for every arm of the Zephyr ablation (notebook 06): the paper's Table 3, at our scale.

An :class:`Arm` is a trained adapter (or the base model) with a name; :func:`run_suite` loads the base
model **once** and every arm's adapter onto it by name, then measures each arm on the same held-out prompts:

- the answers' **stop rate** with the Zephyr template (did the model learn to end its turn?) and their
  **length** (DPO's length bias);
- the **rule-based judge**'s mean score (:mod:`zephyr_tutorial.evaluation.rule_judge`) and each arm's
  **win rate against the baseline arm**, judged in both orders;
- the same win rate from a **small LLM judge** (the 135M log-probability judge of notebook 01) and its
  agreement (Cohen's κ) with the rules: how far a weak judge is from a checkable one;
- **implicit-reward accuracy** on the held-out pairs for arms trained with DPO (against the reference they
  trained with), and on the training pairs for the arms whose overfitting the paper discusses;
- **multiple-choice accuracy** with notebook 01's next-token scorer (the Open LLM Leaderboard's method).

Every number is an :class:`~zephyr_tutorial.stats.Interval` (Wilson for shares, bootstrap for means and
win rates). :meth:`SuiteResult.table` lays them out like the paper's Table 3; :func:`paper_claims` reads
the paper's findings against them. A reader adds an arm with one line: ``Arm("my arm", "path/to/adapter")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..backends import Completion
from ..dpo.evaluation import active_adapter, answer_prompts, evaluate_implicit_rewards
from ..evaluation.items import PairwiseItem
from ..models import adapter_key
from ..stats import Interval, bootstrap, kappa_interval, paired_difference, proportion

PAPER_TABLE_3 = {
    "dDPO only": {"mt_bench": 4.76, "alpaca_eval": 30.76},
    "dSFT": {"mt_bench": 6.64, "alpaca_eval": 85.65},
    "dSFT-2": {"mt_bench": 6.19, "alpaca_eval": 78.54},
    "dSFT + dDPO": {"mt_bench": 7.00, "alpaca_eval": 86.07},
}
"""Tunstall et al. (2023), Table 3: Mistral-7B aligned four ways; MT-Bench score (1-10) and AlpacaEval win
rate (%) against text-davinci-003. Zephyr-7B-beta itself (dSFT + dDPO for 3 epochs) scores 7.34 and 90.60."""
PAPER_ZEPHYR_BETA = {"mt_bench": 7.34, "alpaca_eval": 90.60}


@dataclass(frozen=True)
class Arm:
    """One way of aligning the model: an adapter folder, or ``None`` for the untrained base model.

    ``reference`` is the adapter DPO trained against (``None``: the base model); it is only read for arms
    with ``dpo=True``, whose implicit rewards are measured. ``steps`` is the optimizer steps the arm cost in
    total (for the table), ``train_pairs`` the preference rows it trained on (to measure overfitting).
    """

    name: str
    adapter: str | Path | None
    description: str = ""
    steps: int | None = None
    dpo: bool = False
    reference: str | Path | None = None
    beta: float = 0.1
    train_pairs: Sequence[dict] = ()


@dataclass
class ArmResult:
    arm: Arm
    answers: list[Completion]
    stop_rate: Interval
    length: Interval
    rule_scores: list[float]
    rule_score: Interval
    rule_win_rate: Interval | None = None
    llm_win_rate: Interval | None = None
    llm_rule_kappa: Interval | None = None
    heldout_reward_accuracy: Interval | None = None
    train_reward_accuracy: Interval | None = None
    mc_accuracy: Interval | None = None


@dataclass
class SuiteResult:
    results: dict[str, ArmResult]
    baseline: str
    prompts: list[dict]
    extra: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> ArmResult:
        return self.results[name]

    def arms(self) -> list[str]:
        return list(self.results)

    def table(self) -> list[dict]:
        """One row per arm: our measurements (estimate and interval as text) beside the paper's Table 3."""
        rows = []
        for name, result in self.results.items():
            paper = PAPER_TABLE_3.get(name, {})

            def cell(interval: Interval | None, digits: int = 2) -> str:
                if interval is None:
                    return "—"
                return f"{interval.estimate:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"

            rows.append(
                {
                    "arm": name,
                    "steps": result.arm.steps if result.arm.steps is not None else 0,
                    "paper MT-Bench": paper.get("mt_bench", "—"),
                    "paper AlpacaEval %": paper.get("alpaca_eval", "—"),
                    "rules score (1-5)": cell(result.rule_score),
                    f"rules win vs {self.baseline}": cell(result.rule_win_rate),
                    f"135M judge win vs {self.baseline}": cell(result.llm_win_rate),
                    "stop rate": cell(result.stop_rate),
                    "length (tokens)": cell(result.length, 0),
                    "held-out reward acc": cell(result.heldout_reward_accuracy),
                    "train reward acc": cell(result.train_reward_accuracy),
                    "MC acc": cell(result.mc_accuracy),
                }
            )
        return rows


def format_table(rows: Sequence[dict]) -> str:
    """The rows of :meth:`SuiteResult.table` as aligned plain text."""
    headers = list(rows[0])
    widths = [max(len(str(h)), *(len(str(r[h])) for r in rows)) for h in headers]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(str(r[h]).ljust(w) for h, w in zip(headers, widths)) for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- the dSFT-2 data


def sft2_rows(sft_folder, pairs: Sequence[dict], out_folder) -> dict[str, int]:
    """Write the data dSFT-2 trains on after dSFT: the *chosen* side of every pair, as SFT rows.

    The paper's dSFT-2 fine-tunes on UltraChat and the best UltraFeedback replies. Ours continues the dSFT adapter
    (which has learned the SFT rows) on the same good answers DPO sees as chosen, for as many steps as one DPO
    epoch: the same prompts and the same chosen answers, learned by imitation, with no rejected answer to push away
    from. ``test_sft.jsonl`` of ``sft_folder`` is copied unchanged. Returns the row counts written.
    """
    from ..data import write_jsonl
    from ..schemas import read_sft_rows

    sft_folder, out_folder = Path(sft_folder), Path(out_folder)
    chosen = [{"prompt": pair["prompt"], "prompt_id": pair["prompt_id"], "messages": pair["chosen"]} for pair in pairs]
    write_jsonl(out_folder / "train_sft.jsonl", chosen)
    heldout = read_sft_rows(sft_folder / "test_sft.jsonl")
    write_jsonl(out_folder / "test_sft.jsonl", heldout)
    return {"chosen_rows": len(chosen), "test_rows": len(heldout)}


# ----------------------------------------------------------------------------------------- loading the arms


def load_arms(profile, arms: Sequence[Arm], base=None):
    """``(model, tokenizer, names)``: the profile's base, 4-bit as in training, with every adapter (and DPO
    reference) loaded under its :func:`~zephyr_tutorial.models.adapter_key`.

    Each arm is measured on the base its adapter was trained on, as notebook 05 measured its checkpoints, so the two
    notebooks' answers and rewards are the same computation and 06 reads 05's from the shared caches. (On 2 CPU
    cores bitsandbytes 0.50 decodes a batch of 32 as fast in 4-bit as in float32.) ``base`` is an already loaded
    ``(model, tokenizer)`` to use instead of the profile's (tests pass a tiny one).
    """
    from peft import PeftModel

    from ..chat_template import apply_zephyr_template
    from ..models import load_base_model

    if base is None:
        base, tokenizer = load_base_model(profile)
    else:
        base, tokenizer = base[0], apply_zephyr_template(base[1])
    folders: dict[str, Path] = {}
    for arm in arms:
        for folder in (arm.adapter, arm.reference if arm.dpo else None):
            if folder is not None:
                folders.setdefault(adapter_key(folder), Path(folder))
    if not folders:
        return base, tokenizer, {}
    names = list(folders)
    model = PeftModel.from_pretrained(base, str(folders[names[0]]), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(folders[name]), adapter_name=name)
    model.eval()
    return model, tokenizer, folders


HELDOUT_ANSWER_TOKENS = 160
"""The budget of the held-out answers notebooks 05 and 06 judge: notebook 04's pool answered with it, and every
chosen reply of the preference pairs ended within it."""


def arm_cache_name(adapter: str | Path | None) -> str:
    """The name an adapter's answers go under in the shared answer cache: its weights, not its folder or slot."""
    return f"arm:{adapter_key(adapter)}"


def answer(
    model, tokenizer, arm: Arm, prompts: Sequence[str], *, max_new_tokens: int, cache_path=None
) -> list[Completion]:
    """Greedy answers of ``arm`` to single-turn ``prompts`` in the Zephyr template, cached by adapter content."""
    return answer_prompts(
        model,
        tokenizer,
        [[{"role": "user", "content": p}] for p in prompts],
        adapter=adapter_key(arm.adapter) if arm.adapter is not None else None,
        max_new_tokens=max_new_tokens,
        cache_path=cache_path,
        cache_name=arm_cache_name(arm.adapter),
    )


def share_answers(
    model,
    tokenizer,
    prompts: Sequence[str],
    answers: Sequence[Completion],
    *,
    adapter: str | Path | None,
    cache_path,
    max_new_tokens: int = HELDOUT_ANSWER_TOKENS,
) -> int:
    """Put greedy ``answers`` of ``model`` with adapter folder ``adapter`` (``None``: the base) into the shared
    answer cache, as the answers :func:`answer` would generate with ``max_new_tokens``.

    The answers may come from a larger budget: :func:`~zephyr_tutorial.backends.within_budget` reads the smaller
    budget's answer off each. Notebook 03 hands its before/after answers to notebooks 05 and 06 this way, so the
    base model and the SFT adapter are not asked the same prompts again. Returns how many answers ended within
    ``max_new_tokens``.
    """
    from ..backends import CachedBackend, SamplingConfig, TransformersBackend, within_budget

    cut = [within_budget(a, max_new_tokens, tokenizer) for a in answers]
    cache = CachedBackend(TransformersBackend(model, tokenizer, name=arm_cache_name(adapter)), cache_path)
    try:
        cache.remember(
            [[{"role": "user", "content": p}] for p in prompts], SamplingConfig(max_new_tokens=max_new_tokens), cut
        )
    finally:
        cache.close()
    return sum(a.finish_reason == "stop" for a in cut)


def reward_cache_key(policy, reference) -> str:
    """The cache key of the implicit rewards of adapter folder ``policy`` against ``reference`` (``None``: base)."""
    return f"policy={adapter_key(policy)}|reference={adapter_key(reference)}"


def implicit_reward_accuracy(
    model, tokenizer, arm: Arm, rows: Sequence[dict], *, max_length: int | None = None, cache_path=None
) -> Interval:
    """Share of pairs whose implicit reward β log π_arm/π_ref orders chosen above rejected, with its interval."""
    reference = adapter_key(arm.reference) if arm.reference is not None else None
    report = evaluate_implicit_rewards(
        model,
        tokenizer,
        list(rows),
        arm.beta,
        max_length=max_length,
        policy_adapter=adapter_key(arm.adapter),
        reference_adapter=reference,
        cache_path=cache_path,
        cache_key=reward_cache_key(arm.adapter, arm.reference),
    )
    return proportion([m > 0 for m in report.margins])


# ----------------------------------------------------------------------------------------- the suite


def run_suite(
    profile,
    arms: Sequence[Arm],
    prompts: Sequence[dict],
    *,
    judge,
    baseline: str,
    llm_judge=None,
    llm_judge_arms: Sequence[str] | None = None,
    heldout_pairs: Sequence[dict] = (),
    mc_items=None,
    max_new_tokens: int = HELDOUT_ANSWER_TOKENS,
    cache_path=None,
    reward_cache_path=None,
    reward_max_length: int | None = None,
    progress: bool = True,
    base=None,
) -> SuiteResult:
    """Measure every arm on ``prompts`` (rows with ``prompt``, ``prompt_id``); see the module docstring.

    ``judge`` is the rule-based judge (any :class:`~zephyr_tutorial.evaluation.judges.Judge` works), ``llm_judge``
    an optional second judge compared with it, on the arms named in ``llm_judge_arms`` (``None``: every arm; an
    LLM judge costs a forward pass per answer and order, the rules nothing); ``baseline`` names the arm every other
    arm is compared with; ``cache_path`` (SQLite) keeps the answers and ``reward_cache_path`` (JSON) the implicit
    rewards, each under the adapters' content keys, so the arms notebook 05 already measured cost nothing (the rewards
    with the ``reward_max_length`` 05 scored with); ``base`` an already loaded ``(model, tokenizer)`` instead of the
    profile's model (see :func:`load_arms`).
    """
    from tqdm.auto import tqdm

    names = [arm.name for arm in arms]
    if baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not one of the arms {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be unique, got {names}")
    unknown = sorted(set(llm_judge_arms or ()) - set(names))
    if unknown:
        raise ValueError(f"llm_judge_arms {unknown} are not among the arms {names}")
    model, tokenizer, _ = load_arms(profile, arms, base=base)
    texts = [row["prompt"] for row in prompts]
    results: dict[str, ArmResult] = {}
    for arm in tqdm(arms, desc="arms", disable=not progress):
        answers = answer(model, tokenizer, arm, texts, max_new_tokens=max_new_tokens, cache_path=cache_path)
        ratings = judge.rate([(row["prompt_id"], row["prompt"], [a.text]) for row, a in zip(prompts, answers)])
        scores = [r[0].mean for r in ratings]
        result = ArmResult(
            arm=arm,
            answers=answers,
            stop_rate=proportion([a.finish_reason == "stop" for a in answers]),
            length=bootstrap([a.completion_tokens for a in answers]),
            rule_scores=scores,
            rule_score=bootstrap(scores),
        )
        if arm.dpo and heldout_pairs:
            result.heldout_reward_accuracy = implicit_reward_accuracy(
                model, tokenizer, arm, heldout_pairs, max_length=reward_max_length, cache_path=reward_cache_path
            )
        if arm.dpo and arm.train_pairs:
            result.train_reward_accuracy = implicit_reward_accuracy(
                model, tokenizer, arm, arm.train_pairs, max_length=reward_max_length, cache_path=reward_cache_path
            )
        if mc_items is not None:
            from ..evaluation.multiple_choice import evaluate_multiple_choice

            key = adapter_key(arm.adapter) if arm.adapter is not None else None
            with active_adapter(model, key):
                report = evaluate_multiple_choice(model, tokenizer, mc_items, progress=False)
            result.mc_accuracy = proportion([item.correct for item in report.items])
        results[arm.name] = result
    base = results[baseline]
    for name, result in results.items():
        if name == baseline:
            continue
        items = [
            PairwiseItem(row["prompt_id"], row["prompt"], a.text or "(empty)", b.text or "(empty)")
            for row, a, b in zip(prompts, result.answers, base.answers)
        ]
        rule_report = judge.compare(items, swap=True)
        result.rule_win_rate = bootstrap(_scores(rule_report, items))
        if llm_judge is not None and (llm_judge_arms is None or name in llm_judge_arms):
            llm_report = llm_judge.compare(items, swap=True)
            result.llm_win_rate = bootstrap(_scores(llm_report, items))
            shared = [i.id for i in items if i.id in llm_report.verdicts and i.id in rule_report.verdicts]
            if shared:
                result.llm_rule_kappa = kappa_interval(
                    [llm_report.verdicts[i] for i in shared], [rule_report.verdicts[i] for i in shared]
                )
    return SuiteResult(results, baseline, list(prompts))


def _scores(report, items) -> list[float]:
    """1 / 0.5 / 0 per item for a win / tie / loss of side ``a`` (unparseable verdicts left out)."""
    value = {"a": 1.0, "tie": 0.5, "b": 0.0}
    return [value[report.verdicts[item.id]] for item in items if item.id in report.verdicts]


def rule_win_rate(judge, prompts: Sequence[dict], answers: Sequence[Completion], baseline: Sequence[Completion]):
    """Win rate of ``answers`` against ``baseline`` (ties count half) under ``judge``, with a bootstrap interval."""
    items = [
        PairwiseItem(row["prompt_id"], row["prompt"], a.text or "(empty)", b.text or "(empty)")
        for row, a, b in zip(prompts, answers, baseline)
    ]
    return bootstrap(_scores(judge.compare(items, swap=True), items))


# ----------------------------------------------------------------------------------------- the paper's claims


@dataclass(frozen=True)
class Claim:
    text: str
    verdict: str
    """``"reproduced"``, ``"not reproduced"`` or ``"inconclusive"``."""
    evidence: str

    def __str__(self) -> str:
        return f"[{self.verdict}] {self.text}: {self.evidence}"


def _score_difference(better: ArmResult, worse: ArmResult) -> tuple[str, Interval]:
    """The verdict of "``better`` answers better than ``worse``" from their paired rule-judge scores."""
    difference = paired_difference(better.rule_scores, worse.rule_scores)
    verdict = {"above": "reproduced", "below": "not reproduced", "covers": "inconclusive"}[difference.relation_to(0.0)]
    return verdict, difference


def _text(interval: Interval | None) -> str:
    return interval.format() if interval is not None else "not measured"


def paper_claims(
    suite: SuiteResult,
    *,
    base: str = "base",
    sft: str = "dSFT",
    sft2: str = "dSFT-2",
    dpo_only: str = "dDPO only",
    dpo: str = "dSFT + dDPO",
    longer: str = "dSFT + dDPO, longer",
) -> list[Claim]:
    """The paper's findings read against our numbers: reproduced, not reproduced, or inconclusive.

    Each verdict comes from intervals: a paired bootstrap difference of rule-judge scores on the same prompts (the
    claim holds when the interval lies above 0, fails when it lies below, is inconclusive when it covers 0), stop
    rates for the chat template, reward accuracies for overfitting. Arms missing from ``suite`` are skipped.
    """
    r = suite.results
    claims: list[Claim] = []
    if dpo in r and sft in r:
        verdict, difference = _score_difference(r[dpo], r[sft])
        claims.append(
            Claim(
                "dSFT + dDPO answers better than dSFT", verdict, f"rule-judge score difference {difference.format(3)}"
            )
        )
    if dpo in r and sft2 in r:
        verdict, difference = _score_difference(r[dpo], r[sft2])
        claims.append(
            Claim(
                "dSFT + dDPO answers better than dSFT-2 (SFT on the chosen replies too)",
                verdict,
                f"rule-judge score difference {difference.format(3)}",
            )
        )
    if dpo_only in r and base in r and sft in r:
        only, base_rate, sft_rate = r[dpo_only].stop_rate, r[base].stop_rate, r[sft].stop_rate
        like_base = abs(only.estimate - base_rate.estimate) <= 0.1 and only.high < sft_rate.low
        learned = only.low > base_rate.high + 0.1
        verdict = "reproduced" if like_base else "not reproduced" if learned else "inconclusive"
        claims.append(
            Claim(
                "dDPO without SFT does not learn the chat template",
                verdict,
                f"stop rate {only.format()}, base {base_rate.format()}, dSFT {sft_rate.format()}",
            )
        )
        verdict, difference = _score_difference(r[sft], r[dpo_only])
        claims.append(
            Claim(
                "dDPO without SFT answers worse than dSFT",
                verdict,
                f"rule-judge score difference dSFT minus dDPO only {difference.format(3)}",
            )
        )
    if longer in r:
        train, heldout = r[longer].train_reward_accuracy, r[longer].heldout_reward_accuracy
        overfits = train is not None and heldout is not None and train.low > heldout.high
        claims.append(
            Claim(
                "Longer dDPO overfits (training reward accuracy far above held-out)",
                "reproduced" if overfits else "inconclusive",
                f"training {_text(train)}, held-out {_text(heldout)}",
            )
        )
        if dpo in r:
            verdict, difference = _score_difference(r[longer], r[dpo])
            claims.append(
                Claim(
                    "...yet the longer run answers better",
                    verdict,
                    f"rule-judge score difference longer minus one epoch {difference.format(3)}",
                )
            )
    return claims
