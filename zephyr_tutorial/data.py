"""JSONL in and out: validated reading, resumable appending, and the hub-schema loaders.

Every dataset of this project is JSON Lines. Reading validates each row and a
bad one raises :class:`DataError` naming the file, the line and the field, so
nothing is silently dropped. Writing appends one row at a time with a stable
``id`` field, so a generation run that is killed resumes where it stopped
without duplicates (:class:`ResumableJsonlWriter`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

FieldSpec = Mapping[str, type | tuple[type, ...]]


class DataError(ValueError):
    """A row that does not have the expected shape; the message says where and what."""

    def __init__(self, path: str | os.PathLike, line: int | None, field: str | None, problem: str):
        self.path, self.line, self.field = str(path), line, field
        where = self.path if line is None else f"{self.path}, line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


def check_fields(row: Any, fields: FieldSpec, path: str | os.PathLike, line: int | None) -> dict:
    """Check that ``row`` is an object whose ``fields`` exist with the given types; return it."""
    if not isinstance(row, dict):
        raise DataError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    for name, expected in fields.items():
        if name not in row:
            raise DataError(path, line, name, "missing")
        value = row[name]
        # bool is an int in Python; a true/false where a number is wanted is almost always a mistake
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in _as_tuple(expected)):
            raise DataError(path, line, name, f"expected {_type_names(expected)}, got {type(value).__name__}")
    return row


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def iter_jsonl(
    path: str | os.PathLike,
    fields: FieldSpec | None = None,
    validate: Callable[[dict, str, int], None] | None = None,
) -> Iterator[dict]:
    """Yield the rows of a JSONL file, checked against ``fields`` and an optional ``validate(row, path, line)``.

    Blank lines are allowed; anything else that is not a JSON object raises :class:`DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(
                    path, line_number, None, f"not valid JSON ({error.msg} at column {error.colno})"
                ) from None
            if fields is not None:
                check_fields(row, fields, path, line_number)
            elif not isinstance(row, dict):
                raise DataError(path, line_number, None, f"expected a JSON object, got {type(row).__name__}")
            if validate is not None:
                validate(row, str(path), line_number)
            yield row


def read_jsonl(path, fields: FieldSpec | None = None, validate=None) -> list[dict]:
    """All rows of a JSONL file, validated (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path, fields, validate))


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping]) -> int:
    """Write ``rows`` to ``path`` (replacing it atomically); return how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    with open(partial, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    partial.replace(path)
    return count


def check_messages(messages: Any, path, line, field: str = "messages") -> None:
    """Validate a chat: a non-empty list of ``{"role": str, "content": str}``."""
    if not isinstance(messages, list) or not messages:
        raise DataError(path, line, field, "expected a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise DataError(path, line, f"{field}[{i}]", "expected an object with role and content")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise DataError(path, line, f"{field}[{i}].{key}", "missing or not a string")


class ResumableJsonlWriter:
    """Append rows with a unique ``id`` field to a JSONL file, skipping ids already written.

    A killed run leaves at most one partial last line; it is detected and cut
    off on the next open, so restarting loses nothing that was completely
    written and writes nothing twice::

        writer = ResumableJsonlWriter(path)
        todo = [item for item in items if item_id(item) not in writer.done_ids]
        for item in todo:
            writer.append(make_row(item))      # flushed and fsync'ed per row
    """

    def __init__(self, path: str | os.PathLike, id_field: str = "id"):
        self.path = Path(path)
        self.id_field = id_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done_ids: set[str] = set()
        self.repaired_partial_line = False
        if self.path.exists():
            self._load_existing()
        self._handle = open(self.path, "a", encoding="utf-8")

    def _load_existing(self) -> None:
        raw = self.path.read_bytes()
        complete, _, tail = raw.rpartition(b"\n")
        if tail.strip():  # a row cut mid-write by a kill: drop it, it will be redone
            self.path.write_bytes(complete + b"\n" if complete else b"")
            self.repaired_partial_line = True
        for row in iter_jsonl(self.path):
            if self.id_field not in row:
                raise DataError(self.path, None, self.id_field, "a row has no id; cannot resume safely")
            self.done_ids.add(str(row[self.id_field]))

    def append(self, row: Mapping) -> bool:
        """Write ``row`` unless its id is already there; return whether it was written."""
        row_id = str(row[self.id_field])
        if row_id in self.done_ids:
            return False
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done_ids.add(row_id)
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ResumableJsonlWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
