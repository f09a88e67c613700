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

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..backends import CachedBackend, Completion, SamplingConfig, TransformersBackend
from ..dpo.evaluation import active_adapter
from ..evaluation.items import PairwiseItem
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
    """Write the dSFT-2 training data: the SFT rows of ``sft_folder`` plus the *chosen* side of every pair.

    The paper's dSFT-2 fine-tunes on UltraChat and the best UltraFeedback replies: the same good answers DPO sees as
    chosen, but learned by imitation, with no rejected answer to push away from. ``test_sft.jsonl`` is copied
    unchanged. Returns the row counts written.
    """
    from ..data import write_jsonl
    from ..schemas import read_sft_rows

    sft_folder, out_folder = Path(sft_folder), Path(out_folder)
    sft = read_sft_rows(sft_folder / "train_sft.jsonl")
    chosen = [{"prompt": pair["prompt"], "prompt_id": pair["prompt_id"], "messages": pair["chosen"]} for pair in pairs]
    counts = {"sft_rows": len(sft), "chosen_rows": len(chosen)}
    write_jsonl(out_folder / "train_sft.jsonl", [*sft, *chosen])
    write_jsonl(out_folder / "test_sft.jsonl", read_sft_rows(sft_folder / "test_sft.jsonl"))
    return counts


# ----------------------------------------------------------------------------------------- loading the arms


def adapter_key(path: str | Path | None) -> str:
    """A short content hash of an adapter folder (its weights and config): names the arm's answers in caches."""
    import hashlib

    if path is None:
        return "base"
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        file = Path(path) / name
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def load_arms(profile, arms: Sequence[Arm], base=None):
    """``(model, tokenizer, names)``: the un-quantized base with every adapter (and DPO reference) loaded by name.

    Generation runs on the float32 base (bitsandbytes de-quantizes every 4-bit weight at every decoding step,
    slow on a CPU); the adapters were trained on the 4-bit base, which changes answers only slightly. ``base`` is
    an already loaded ``(model, tokenizer)`` to use instead of the profile's (tests pass a tiny one).
    """
    from peft import PeftModel

    from ..chat_template import apply_zephyr_template
    from ..models import load_base_model

    if base is None:
        base, tokenizer = load_base_model(profile, load_in_4bit=False)
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


@contextlib.contextmanager
def using(model, adapter: str | None):
    """Run ``model`` as one of its adapters (``None``: the base model, every adapter disabled)."""
    if not hasattr(model, "peft_config"):
        if adapter is not None:
            raise ValueError(f"no adapters are loaded, cannot use {adapter!r}")
        yield model
        return
    with active_adapter(model, adapter):
        yield model


def answer(
    model, tokenizer, arm: Arm, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 16, cache_path=None
) -> list[Completion]:
    """Greedy answers of ``arm`` to single-turn ``prompts`` in the Zephyr template, cached by adapter content."""
    key = adapter_key(arm.adapter)
    backend = TransformersBackend(model, tokenizer, batch_size=batch_size, name=f"arm:{key}")
    if cache_path is not None:
        backend = CachedBackend(backend, cache_path)
    with using(model, key if arm.adapter is not None else None):
        return backend.chat(
            [[{"role": "user", "content": p}] for p in prompts], SamplingConfig(max_new_tokens=max_new_tokens)
        )


def implicit_reward_accuracy(model, tokenizer, arm: Arm, rows: Sequence[dict], *, batch_size: int = 4) -> Interval:
    """Share of pairs whose implicit reward β log π_arm/π_ref orders chosen above rejected, with its interval."""
    import torch

    from ..dpo.logprobs import collate_preferences, pair_logprobs, tokenize_preference
    from ..schemas import to_trl_preference

    policy = adapter_key(arm.adapter)
    reference = adapter_key(arm.reference) if arm.reference is not None else None
    correct: list[bool] = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            pairs = [to_trl_preference(row) for row in rows[start : start + batch_size]]
            tokens = [tokenize_preference(tokenizer, p["prompt"], p["chosen"], p["rejected"]) for p in pairs]
            batch = collate_preferences(tokens, tokenizer.pad_token_id)
            with using(model, policy):
                chosen, rejected = pair_logprobs(model, batch)
            with using(model, reference):
                ref_chosen, ref_rejected = pair_logprobs(model, batch)
            margins = arm.beta * ((chosen - ref_chosen) - (rejected - ref_rejected))
            correct += [bool(m > 0) for m in margins.tolist()]
    return proportion(correct)


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
    max_new_tokens: int = 160,
    cache_path=None,
    progress: bool = True,
    base=None,
) -> SuiteResult:
    """Measure every arm on ``prompts`` (rows with ``prompt``, ``prompt_id``); see the module docstring.

    ``judge`` is the rule-based judge (any :class:`~zephyr_tutorial.evaluation.judges.Judge` works), ``llm_judge``
    an optional second judge compared with it, on the arms named in ``llm_judge_arms`` (``None``: every arm; an
    LLM judge costs a forward pass per answer and order, the rules nothing); ``baseline`` names the arm every other
    arm is compared with; ``base`` an already loaded ``(model, tokenizer)`` instead of the profile's model (see
    :func:`load_arms`).
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
            result.heldout_reward_accuracy = implicit_reward_accuracy(model, tokenizer, arm, heldout_pairs)
        if arm.dpo and arm.train_pairs:
            result.train_reward_accuracy = implicit_reward_accuracy(model, tokenizer, arm, arm.train_pairs)
        if mc_items is not None:
            from ..evaluation.multiple_choice import evaluate_multiple_choice

            key = adapter_key(arm.adapter) if arm.adapter is not None else None
            with using(model, key):
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
