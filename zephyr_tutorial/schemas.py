"""The two row schemas every stage shares, their validators, one ``prompt_id`` split, and the dataset loaders.

**SFT rows** have the schema of ``HuggingFaceH4/ultrachat_200k`` (notebook 02 writes them, 03 trains on them)::

    {"prompt": str, "prompt_id": sha256(prompt), "messages": [{"role", "content"}, ...]}

**Preference rows** have the schema of ``HuggingFaceH4/ultrafeedback_binarized`` (notebook 04 writes them,
05 trains on them)::

    {"prompt": "...", "prompt_id": "...",
     "chosen":   [{"role": "user", ...}, {"role": "assistant", ...}],
     "rejected": [{"role": "user", ...}, {"role": "assistant", ...}],
     "score_chosen": 8.0, "score_rejected": 5.0}

``chosen`` and ``rejected`` are whole conversations that share everything but
the last (assistant) message. TRL wants the shared part as ``prompt`` and only
the final replies as ``chosen`` / ``rejected`` (:func:`to_trl_preference`).

Both kinds of data are split into train and test by :func:`split_by_prompt_id`, so
rows of one prompt never land on both sides.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .data import DataError, check_fields, check_messages, read_jsonl
from .profiles import ULTRACHAT_200K, ULTRAFEEDBACK_BINARIZED

SFT_FIELDS = {"prompt": str, "prompt_id": str, "messages": list}
SFT_SPLITS = ("train_sft", "test_sft")
PREFERENCE_FIELDS = {
    "prompt": str,
    "prompt_id": str,
    "chosen": list,
    "rejected": list,
    "score_chosen": (int, float),
    "score_rejected": (int, float),
}
PREFERENCE_SPLITS = ("train_prefs", "test_prefs")


def prompt_id_for(prompt: str) -> str:
    """SHA-256 hex digest of the prompt, as ultrachat_200k computes ``prompt_id``."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _test_fraction_position(prompt_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_prompt_id(
    rows: Iterable[dict], test_fraction: float = 0.1, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """Split by a hash of ``(seed, prompt_id)``: rows of one prompt stay on one side (no leakage), and a row's
    side does not change when more rows are added."""
    if not 0 <= test_fraction < 1:
        raise ValueError("test_fraction must be in [0, 1)")
    train, test = [], []
    for row in rows:
        (test if _test_fraction_position(row["prompt_id"], seed) < test_fraction else train).append(row)
    return train, test


# --------------------------------------------------------------------------- SFT rows (ultrachat_200k)


def check_sft_row(row, path: str | os.PathLike = "<rows>", line: int | None = None) -> None:
    """Raise :class:`~zephyr_tutorial.data.DataError` unless ``row`` has the ultrachat_200k shape."""
    if not isinstance(row, dict):
        raise DataError(path, line, None, f"expected an object, got {type(row).__name__}")
    for name in ("prompt", "prompt_id"):
        if not isinstance(row.get(name), str):
            raise DataError(path, line, name, "missing or not a string")
    check_messages(row.get("messages"), path, line)


def check_trainable_sft_row(row: dict, path: str, line: int | None) -> None:
    """:func:`check_sft_row` and at least one assistant turn (something to learn from)."""
    check_sft_row(row, path, line)
    if not any(m["role"] == "assistant" for m in row["messages"]):
        raise DataError(path, line, "messages", "no assistant turn: nothing to learn from this row")


def read_sft_rows(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """An SFT JSONL file (the first ``limit`` rows), every row checked by :func:`check_trainable_sft_row`."""
    rows = read_jsonl(path, fields=SFT_FIELDS, validate=check_trainable_sft_row)
    return rows if limit is None else rows[:limit]


def _local_data_file(source: Path, split: str) -> Path:
    """A local JSONL/parquet file, or the ``<split>.jsonl|.parquet`` inside a folder."""
    if source.is_dir():
        for suffix in (".jsonl", ".json", ".parquet"):
            if (source / f"{split}{suffix}").is_file():
                return source / f"{split}{suffix}"
        raise DataError(source, None, None, f"no {split}.jsonl or {split}.parquet in this folder")
    return source


def load_ultrachat_200k(
    source: str | os.PathLike = ULTRACHAT_200K,
    split: str = "train_sft",
    limit: int | None = None,
    streaming: bool = True,
) -> list[dict]:
    """The first ``limit`` rows of ultrachat_200k (hub id, streamed) or of a local file/folder with its schema.

    Streaming reads only what is needed, so a 2,000-row subset of the 200k dialogues downloads a few MB.
    Every row is validated; a malformed one raises :class:`DataError` with its position. Only the schema's
    fields are kept.
    """
    local = Path(source)
    if local.exists() and _local_data_file(local, split).suffix in (".jsonl", ".json"):
        rows = read_jsonl(_local_data_file(local, split), validate=check_sft_row)
        return [{name: row[name] for name in SFT_FIELDS} for row in rows[:limit]]
    from datasets import load_dataset

    if local.exists():
        data_file = str(_local_data_file(local, split))
        dataset = load_dataset("parquet", data_files={split: data_file}, split=split, streaming=streaming)
        where = data_file
    else:
        dataset = load_dataset(str(source), split=split, streaming=streaming)
        where = f"{source}:{split}"
    rows = []
    for position, row in enumerate(dataset, start=1):
        if limit is not None and len(rows) >= limit:
            break
        row = {name: row.get(name) for name in SFT_FIELDS}
        check_sft_row(row, where, position)
        rows.append(row)
    return rows


def sft_splits(profile, source: str | os.PathLike | None = None, splits: Sequence[str] = SFT_SPLITS):
    """``DatasetDict(train, test)`` of ``messages`` for training, capped by the profile's data caps.

    ``source`` (default ``profile.data.sft_dataset``): ``"local"`` (``data/sft``), a folder or file of our
    JSONL rows (validated row by row, at least one assistant turn each), or a hub id (``splits`` are its split
    names, ``train_sft``/``test_sft`` for ultrachat_200k).
    """
    from datasets import Dataset, DatasetDict

    from .runtime import data_dir

    source = source or profile.data.sft_dataset
    if source == "local":
        source = data_dir() / "sft"
    caps = (profile.data.max_train_samples, profile.data.max_eval_samples)
    result = {}
    for name, split, cap in zip(("train", "test"), splits, caps):
        local = Path(source)
        if local.exists() and _local_data_file(local, split).suffix in (".jsonl", ".json"):
            rows = read_sft_rows(_local_data_file(local, split), cap)
            result[name] = Dataset.from_list([{"messages": row["messages"]} for row in rows])
        else:  # the hub (or parquet): datasets reads it memory-mapped, without a Python list of 200k rows
            from datasets import load_dataset

            dataset = load_dataset(str(source), split=split).select_columns(["messages"])
            result[name] = dataset.select(range(min(cap, len(dataset)))) if cap else dataset
    return DatasetDict(result)


# --------------------------------------------------------------------------- preference rows (ultrafeedback_binarized)


def check_preference_row(row: dict, path: str, line: int | None) -> None:
    """A valid pair: the schema's fields, two conversations ending in an assistant reply, identical before it."""
    check_fields(row, PREFERENCE_FIELDS, path, line)
    for side in ("chosen", "rejected"):
        check_messages(row[side], path, line, side)
        if row[side][-1]["role"] != "assistant":
            raise DataError(path, line, f"{side}[-1].role", "the last message must be the assistant's reply")
    if row["chosen"][:-1] != row["rejected"][:-1]:
        raise DataError(path, line, "rejected", "chosen and rejected must share the same conversation before the reply")


def read_preferences(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Validated preference rows of a JSONL file (the first ``limit`` if given): ours or an ultrafeedback export."""
    rows = read_jsonl(path, validate=check_preference_row)
    return rows if limit is None else rows[:limit]


def to_trl_preference(row: dict) -> dict:
    """``{"prompt": [shared messages], "chosen": [reply], "rejected": [reply]}`` for TRL's DPOTrainer.

    A row already in that form (its ``prompt`` is a list of messages) is returned as it is.
    """
    if isinstance(row["prompt"], list):
        return {key: row[key] for key in ("prompt", "chosen", "rejected")}
    return {"prompt": row["chosen"][:-1], "chosen": row["chosen"][-1:], "rejected": row["rejected"][-1:]}


def preference_dataset(rows: Iterable[dict]):
    """A ``datasets.Dataset`` of :func:`to_trl_preference` rows."""
    from datasets import Dataset

    return Dataset.from_list([to_trl_preference(row) for row in rows])


def find_preference_files(folder: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(train_prefs.jsonl, test_prefs.jsonl)``: notebook 04's output if present, else ``data/preferences``."""
    from .runtime import data_dir, output_dir

    candidates = [Path(folder)] if folder is not None else [output_dir("preferences"), data_dir() / "preferences"]
    for candidate in candidates:
        train, test = candidate / "train_prefs.jsonl", candidate / "test_prefs.jsonl"
        if train.is_file() and test.is_file():
            return train, test
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no train_prefs.jsonl + test_prefs.jsonl in {tried}; run notebook 04 first")


def load_ultrafeedback_binarized(
    source: str = ULTRAFEEDBACK_BINARIZED, split: str = "train_prefs", limit: int | None = None
):
    """The real preference set as a ``datasets.Dataset``: a hub id, or a local JSONL file of the same schema.

    Every row is validated, so a wrong file fails with file, row and field.
    """
    import datasets

    if Path(source).is_file():
        dataset = datasets.load_dataset("json", data_files={split: str(source)}, split=split)
    else:
        dataset = datasets.load_dataset(source, split=split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    for index, row in enumerate(dataset):
        check_preference_row(row, str(source), index + 1)
    return dataset


def preference_splits(profile, source: str | os.PathLike | None = None, splits: Sequence[str] = PREFERENCE_SPLITS):
    """``DatasetDict(train, test)`` in TRL's preference format, capped by the profile's data caps.

    ``source`` (default ``profile.data.preference_dataset``: ``ultrafeedback_binarized`` on the GPU profiles):
    ``"local"`` (notebook 04's output, else ``data/preferences``: :func:`find_preference_files`), a folder with
    ``train_prefs.jsonl``/``test_prefs.jsonl``, or a hub id (``splits`` are its split names).
    """
    from datasets import DatasetDict

    source = source or profile.data.preference_dataset
    caps = (profile.data.max_train_samples, profile.data.max_eval_samples)
    if source in (None, "local") or Path(source).is_dir():
        files = find_preference_files(None if source in (None, "local") else source)
        return DatasetDict(
            {
                name: preference_dataset(read_preferences(path, cap))
                for name, path, cap in zip(("train", "test"), files, caps)
            }
        )
    from datasets import load_dataset

    result = {}
    for name, split, cap in zip(("train", "test"), splits, caps):
        dataset = load_dataset(str(source), split=split)
        dataset = dataset.select(range(min(cap, len(dataset)))) if cap else dataset
        # ultrafeedback_binarized rows hold whole conversations; TRL wants the shared prompt apart
        result[name] = dataset.map(to_trl_preference, remove_columns=dataset.column_names)
    return DatasetDict(result)


def preference_rows(profile, split: str = "train", source: str | os.PathLike | None = None) -> list[dict]:
    """The preference rows (ultrafeedback_binarized schema) of ``split`` (``"train"`` or ``"test"``), capped by the
    profile: the rows themselves, where :func:`preference_splits` gives TRL's form (notebooks 05 and 06 need both).

    ``source`` as in :func:`preference_splits`: local files on the ``cpu`` profile, ``ultrafeedback_binarized``
    (``train_prefs``/``test_prefs``) on the GPU ones.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    source = source or profile.data.preference_dataset
    cap = profile.data.max_train_samples if split == "train" else profile.data.max_eval_samples
    if source in (None, "local") or Path(source).is_dir():
        files = dict(zip(("train", "test"), find_preference_files(None if source in (None, "local") else source)))
        return read_preferences(files[split], cap)
    dataset = load_ultrafeedback_binarized(str(source), PREFERENCE_SPLITS[("train", "test").index(split)], cap)
    return [{key: row[key] for key in PREFERENCE_FIELDS} for row in dataset]
