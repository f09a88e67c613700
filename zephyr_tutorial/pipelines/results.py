"""What the recipe runner adds to a run's record, the held-out metrics with their intervals, and the Hub upload.

:func:`zephyr_tutorial.training.run_trainer` leaves ``final/results.json`` and the model card with what the trainer
knows. The runner knows more, and :func:`record_results` adds it: the recipe and its SHA-256, the data (each local
file with its SHA-256, or the hub dataset id and split) and the held-out metrics, each with a 95% interval:

- **DPO**: the implicit-reward accuracy (the share of held-out pairs whose chosen reply gets the higher implicit
  reward) as a Wilson interval over the per-pair margins, and the mean margin with a bootstrap interval;
- **SFT**: the held-out loss (cross-entropy per trained token, the trainer's loss on unseen dialogues) with a
  bootstrap interval over dialogues, and for an adapter its change from the base model (the same dialogues
  with the adapter switched off: a paired comparison); a stop rate when the caller measured one
  (:func:`zephyr_tutorial.training.add_heldout_result`).

:func:`push_to_hub` uploads an adapter folder with ``HfApi.create_repo`` and ``HfApi.upload_folder`` when the user
asks for it (``zephyr-tutorial sft|dpo --push-to-hub REPO``) and is logged in; the token stays with
``huggingface_hub``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..recipes import STAGES
from ..stats import bootstrap, proportion
from ..training import (
    MODEL_CARD_FILE,
    RESULTS_FILE,
    TrainingRun,
    file_sha256,
    heldout_entry,
    json_safe,
    known_secrets,
    redact_secrets,
    tracking_record,
    update_results,
)

HELDOUT_ROWS = 256
"""At most this many held-out rows are scored one by one for the intervals: on the GPU profiles, whose eval splits
hold thousands of rows, that is minutes instead of an hour, and an interval over 256 items is already about
+-0.06 wide for a proportion."""
UPLOAD_IGNORE = ["training_args.bin", "*.pt", "*.pth", "*.pkl"]
"""Never uploaded: pickles (the trainer's ``training_args.bin`` holds every argument, a ``hub_token`` included,
and loading a pickle runs code)."""


# --------------------------------------------------------------------------- recipe and data


def recipe_sha256(recipe: dict) -> str:
    """SHA-256 of the recipe as run (overrides applied, secrets redacted), keys sorted: equal recipes, equal hashes."""
    canonical = json.dumps(redact_secrets(json_safe(recipe)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _split_file(source: Path, split: str) -> Path | None:
    """The local file the loaders read for ``split`` (``schemas.sft_splits``' rule), ``None`` for a hub id."""
    if source.is_dir():
        for suffix in (".jsonl", ".json", ".parquet"):
            if (source / f"{split}{suffix}").is_file():
                return source / f"{split}{suffix}"
        return None
    return source if source.is_file() else None


def recipe_data_files(recipe: dict, profile) -> dict[str, dict]:
    """``{"train": ..., "eval": ...}``: the local file of each split, or its hub dataset id and split name.

    The same resolution as :func:`zephyr_tutorial.pipelines.recipe_datasets`: a ``dataset`` section names a hub
    dataset; otherwise SFT reads ``data_folder`` (default ``data/sft``) and DPO ``data_folder`` (default notebook 04's
    output, else ``data/preferences``).
    """
    from ..runtime import data_dir
    from ..schemas import find_preference_files

    stage = STAGES[recipe["stage"]]
    section = recipe.get("dataset") or {}
    name = section.get("name", "local")
    splits = (section.get("train_split", stage.splits[0]), section.get("eval_split", stage.splits[1]))
    folder = recipe.get("data_folder")
    files: tuple[Path | None, Path | None]
    if name != "local":
        files = (None, None)
    elif stage.data == "sft":
        source = Path(folder) if folder is not None else data_dir() / "sft"
        files = (_split_file(source, splits[0]), _split_file(source, splits[1]))
    elif folder is None or Path(folder).is_dir():
        files = find_preference_files(folder)
    else:
        files = (None, None)
    hub_id = name if name != "local" else folder
    return {
        part: {"file": str(path)} if path is not None else {"hub_dataset": hub_id, "split": split}
        for part, path, split in zip(("train", "eval"), files, splits)
    }


def _rows_in_file(path: Path) -> int | None:
    if path.suffix not in (".jsonl", ".json"):
        return None
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def data_record(recipe: dict, profile, train=None, evaluation=None) -> dict[str, dict]:
    """The ``data`` section of ``results.json``: per split, the file with its SHA-256 and row counts, or the hub
    dataset id, split and revision, and the rows the run used (after the profile's caps)."""
    record = recipe_data_files(recipe, profile)
    revision = (recipe.get("dataset") or {}).get("revision")
    for part, dataset in (("train", train), ("eval", evaluation)):
        entry = record[part]
        if "file" in entry:
            path = Path(entry["file"])
            entry.update(sha256=file_sha256(path), rows_in_file=_rows_in_file(path))
        else:
            entry["revision"] = revision
        entry["rows_used"] = len(dataset) if dataset is not None else None
    return record


# --------------------------------------------------------------------------- held-out metrics with intervals


def dpo_heldout(margins) -> dict[str, dict]:
    """Implicit-reward accuracy (Wilson, from the per-pair margins) and mean margin (bootstrap) of held-out pairs.

    A pair counts as ranked correctly when its margin ``r(chosen) - r(rejected)`` is above zero, as in TRL's
    ``rewards/accuracies``; chance is 0.5.
    """
    margins = [float(m) for m in margins]
    if not margins:
        return {}
    accuracy = proportion([m > 0 for m in margins])
    margin = bootstrap(margins)
    return {
        "reward_accuracy": heldout_entry(
            accuracy,
            "implicit-reward accuracy (held-out pairs ranked as the feedback ranked them)",
            interpretation=accuracy.interpret(
                "held-out reward accuracy",
                0.5,
                above="the policy prefers the chosen reply of unseen pairs more often than chance",
                below="the policy prefers the rejected reply of unseen pairs more often than chance",
                null_name="chance (0.50)",
            ),
        ),
        "reward_margin": heldout_entry(
            margin,
            "mean implicit-reward margin, r(chosen) - r(rejected)",
            interpretation=margin.interpret(
                "held-out reward margin",
                0.0,
                above="on average the chosen reply gets the higher implicit reward",
                below="on average the rejected reply gets the higher implicit reward",
                null_name="zero",
            ),
        ),
    }


def conversation_losses(model, tokenizer, conversations, *, max_length: int | None, assistant_only: bool = True):
    """``(summed cross-entropy, trained tokens)`` of each conversation, teacher-forced, as the SFT loss counts them.

    The tokens are the Zephyr-template encoding (cut at ``max_length``) and the trained ones the assistant tokens
    (``assistant_only``, the recipes' ``assistant_only_loss``) or all but the first. A conversation of no trained
    token is left out.
    """
    import torch

    from ..backends import evaluating
    from ..sft import assistant_token_mask

    sums, counts = [], []
    with evaluating(model), torch.no_grad():
        for messages in conversations:
            ids, mask = assistant_token_mask(tokenizer, messages)
            ids, mask = ids[:max_length], (mask if assistant_only else [1] * len(ids))[:max_length]
            targets = torch.tensor(ids[1:], device=model.device)
            trained = torch.tensor(mask[1:], device=model.device, dtype=torch.bool)
            if len(ids) < 2 or not trained.any():
                continue
            logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0, :-1].float()
            losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            sums.append(float(losses[trained].sum()))
            counts.append(int(trained.sum()))
    return sums, counts


def _ratio_interval(numerators, denominators):
    """Bootstrap interval of ``sum(numerators) / sum(denominators)``, resampling items (dialogues) whole: the
    token-weighted mean the trainer reports, with the dialogue as the unit that was sampled."""
    import numpy as np

    numerators, denominators = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)

    def ratio(rows):
        rows = rows.astype(int)
        return numerators[rows].sum() / denominators[rows].sum()

    return bootstrap(range(len(numerators)), ratio)


def sft_heldout(run: TrainingRun, eval_dataset, *, rows: int = HELDOUT_ROWS) -> dict[str, dict]:
    """Held-out loss of an SFT run (bootstrap interval over dialogues) and, for an adapter, its change from the base.

    The loss is the trainer's: cross-entropy per trained token over the first ``rows`` dialogues of the eval split.
    The change is paired: the same dialogues, the same tokens, with the adapter switched off.
    """
    n = min(rows, len(eval_dataset))
    if n == 0:
        return {}
    conversations = [eval_dataset[i]["messages"] for i in range(n)]
    args = run.trainer.args
    options = dict(max_length=args.max_length, assistant_only=bool(getattr(args, "assistant_only_loss", True)))
    sums, counts = conversation_losses(run.model, run.tokenizer, conversations, **options)
    if not sums:
        return {}
    loss = _ratio_interval(sums, counts)
    result = {
        "eval_loss": heldout_entry(loss, "held-out loss (cross-entropy per trained token, nats)"),
    }
    if getattr(run.model, "peft_config", None):
        with run.model.disable_adapter():
            base_sums, base_counts = conversation_losses(run.model, run.tokenizer, conversations, **options)
        base = _ratio_interval(base_sums, base_counts)
        change = _ratio_interval([a - b for a, b in zip(sums, base_sums)], counts)
        result["base_eval_loss"] = heldout_entry(base, "held-out loss of the base model (adapter off)")
        result["eval_loss_change"] = heldout_entry(
            change,
            "change of the held-out loss from the base model (paired)",
            interpretation=change.interpret(
                "held-out loss change",
                0.0,
                above="the adapter fits unseen dialogues worse than the base model",
                below="the adapter fits unseen dialogues better than the base model",
                null_name="zero",
            ),
        )
    return result


# --------------------------------------------------------------------------- the record


def record_results(run: TrainingRun, recipe: dict, profile, *, train=None, evaluation=None, heldout=None) -> dict:
    """Add the recipe (and its SHA-256), the data record and ``heldout`` metrics to the run's ``results.json`` and
    re-render its model card (main process only); return the record (``{}`` on other processes).

    Notebooks that call ``train_sft``/``train_dpo`` themselves call this with their recipe to get the same record as
    :func:`zephyr_tutorial.pipelines.run_recipe`.
    """
    if not run.trainer.is_world_process_zero():
        return {}
    return update_results(
        run.adapter_dir,
        recipe=redact_secrets(json_safe(recipe)),
        recipe_sha256=recipe_sha256(recipe),
        data=data_record(recipe, profile, train, evaluation),
        metrics=json_safe(run.metrics),
        tracking=tracking_record(run),
        heldout=heldout or {},
    )


# --------------------------------------------------------------------------- the Hub


class HubLoginError(RuntimeError):
    """Pushing was asked for, but ``huggingface_hub`` has no token."""


NOT_LOGGED_IN = (
    "not logged in to the Hugging Face Hub: run `hf auth login` (or set HF_TOKEN) before --push-to-hub; "
    "the token stays with huggingface_hub, this package never reads or writes it"
)


def hub_login_problem() -> str | None:
    """Why a push would fail before any upload (no token), or ``None``: asked before training, not after it."""
    from huggingface_hub import get_token

    return None if get_token() else NOT_LOGGED_IN


def upload_files(adapter_dir: str | os.PathLike) -> list[str]:
    """The files :func:`push_to_hub` uploads from ``adapter_dir`` (relative, sorted): all but :data:`UPLOAD_IGNORE`."""
    from fnmatch import fnmatch

    adapter_dir = Path(adapter_dir)
    files = [p.relative_to(adapter_dir).as_posix() for p in adapter_dir.rglob("*") if p.is_file()]
    return sorted(f for f in files if not any(fnmatch(Path(f).name, pattern) for pattern in UPLOAD_IGNORE))


def _check_no_secret_in(adapter_dir: Path, files: list[str]) -> None:
    secrets = [secret.encode() for secret in known_secrets()]
    for name in files:
        content = (adapter_dir / name).read_bytes()
        if any(secret in content for secret in secrets):
            raise RuntimeError(f"{adapter_dir / name} contains a secret (a token of this environment): not uploaded")


def push_to_hub(
    adapter_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    commit_message: str | None = None,
    api=None,
) -> str:
    """Upload an adapter folder (weights, tokenizer, ``results.json``, model card, TensorBoard logs) to ``repo_id``.

    ``HfApi.create_repo(exist_ok=True)`` then ``HfApi.upload_folder``, with the token ``huggingface_hub`` already
    has (``hf auth login`` or ``$HF_TOKEN``); raises :class:`HubLoginError` without one and ``FileNotFoundError``
    for a folder without ``results.json`` and ``README.md`` (not a finished run). Refuses a folder in which a
    token of this environment appears. ``api``: an ``HfApi`` (tests pass a mock). Returns the repository URL.
    """
    adapter_dir = Path(adapter_dir)
    problem = hub_login_problem()
    if problem:
        raise HubLoginError(problem)
    for required in (RESULTS_FILE, MODEL_CARD_FILE):
        if not (adapter_dir / required).is_file():
            raise FileNotFoundError(f"{adapter_dir}: no {required} (push the final/ folder of a finished run)")
    _check_no_secret_in(adapter_dir, upload_files(adapter_dir))
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    repo_id = getattr(repo_url, "repo_id", None) or repo_id
    stage = json.loads((adapter_dir / RESULTS_FILE).read_text(encoding="utf-8")).get("stage", "model")
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(adapter_dir),
        repo_type="model",
        commit_message=commit_message or f"Upload {stage} adapter trained with zephyr-tutorial",
        ignore_patterns=list(UPLOAD_IGNORE),
    )
    return str(repo_url)
