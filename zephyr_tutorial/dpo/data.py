"""Preference pairs: reading the ultrafeedback_binarized schema and turning rows into TRL's format.

A row (``data/preferences/*.jsonl``, the schema of HuggingFaceH4/ultrafeedback_binarized)::

    {"prompt": "...", "prompt_id": "...",
     "chosen":   [{"role": "user", ...}, {"role": "assistant", ...}],
     "rejected": [{"role": "user", ...}, {"role": "assistant", ...}],
     "score_chosen": 8.0, "score_rejected": 5.0}

``chosen`` and ``rejected`` are whole conversations that share everything but
the last (assistant) message. TRL wants the shared part as ``prompt`` and only
the final replies as ``chosen`` / ``rejected``.
"""

from __future__ import annotations

from pathlib import Path

from zephyr_tutorial.data import DataError, check_messages, read_jsonl

PREFERENCE_FIELDS = {
    "prompt": str,
    "prompt_id": str,
    "chosen": list,
    "rejected": list,
    "score_chosen": (int, float),
    "score_rejected": (int, float),
}


def check_preference_row(row: dict, path: str, line: int) -> None:
    """A valid pair: two conversations ending in an assistant reply, identical before it."""
    for field in ("chosen", "rejected"):
        check_messages(row[field], path, line, field)
        if row[field][-1]["role"] != "assistant":
            raise DataError(path, line, field, "the last message must be the assistant's reply")
    if row["chosen"][:-1] != row["rejected"][:-1]:
        raise DataError(path, line, "rejected", "chosen and rejected must share the same conversation before the reply")


def read_preferences(path: str | Path, limit: int | None = None) -> list[dict]:
    """Validated preference rows of a JSONL file (the first ``limit`` if given)."""
    rows = read_jsonl(path, fields=PREFERENCE_FIELDS, validate=check_preference_row)
    return rows if limit is None else rows[:limit]


def to_trl_preference(row: dict) -> dict:
    """``{"prompt": [shared messages], "chosen": [reply], "rejected": [reply]}`` for TRL's DPOTrainer."""
    return {"prompt": row["chosen"][:-1], "chosen": row["chosen"][-1:], "rejected": row["rejected"][-1:]}


def preference_dataset(rows: list[dict]):
    """A ``datasets.Dataset`` of :func:`to_trl_preference` rows."""
    from datasets import Dataset

    return Dataset.from_list([to_trl_preference(row) for row in rows])


def find_preference_files(folder: str | Path | None = None) -> tuple[Path, Path]:
    """``(train_prefs.jsonl, test_prefs.jsonl)``: notebook 04's output if present, else the shipped ``data/preferences``."""
    from zephyr_tutorial.runtime import data_dir, output_dir

    candidates = [Path(folder)] if folder is not None else [output_dir("preferences"), data_dir() / "preferences"]
    for candidate in candidates:
        train, test = candidate / "train_prefs.jsonl", candidate / "test_prefs.jsonl"
        if train.is_file() and test.is_file():
            return train, test
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no train_prefs.jsonl + test_prefs.jsonl in {tried}; run notebook 04 first")
