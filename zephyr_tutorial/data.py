"""JSONL in and out: validated reading, resumable appending, and the hub-schema loaders.

Every dataset of this project is JSON Lines. Reading validates each row and a
bad one raises :class:`DataError` naming the file, the line and the field, so
nothing is silently dropped. Writing appends one row at a time with a stable
``id`` field, so a generation run that is killed resumes where it stopped
without duplicates (:class:`ResumableJsonlWriter`).

The reader is strict where Python's ``json`` is lenient, because a file that reads
"fine" here and crashes later (at request or write time) is worse than one refused
with its line: it must be UTF-8 (not UTF-16, not compressed), every string valid
Unicode (no lone surrogate such as ``"\\ud800"``), every number finite and of sane
length, no key twice in one object, and no absurd nesting.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
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


class OutputInUseError(DataError):
    """Another writer holds the output file: a second run on the same ``--out`` fails at once, not after it has
    doubled every row."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(
            path,
            None,
            None,
            "another process is writing this file (a second run with the same --out?); "
            "wait for it to finish or choose another output",
        )


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


# --------------------------------------------------------------------------- decoding one line

_NOT_JSON_LINES = {
    b"\x1f\x8b": "gzip-compressed; decompress it first (gunzip)",
    b"PK\x03\x04": "a zip archive; extract the .jsonl first",
    b"BZh": "bzip2-compressed; decompress it first (bunzip2)",
    b"\xfd7zXZ": "xz-compressed; decompress it first (unxz)",
    b"\x28\xb5\x2f\xfd": "zstd-compressed; decompress it first (unzstd)",
    b"\xff\xfe": "encoded as UTF-16; save it as UTF-8",
    b"\xfe\xff": "encoded as UTF-16; save it as UTF-8",
}
"""Leading bytes of files that are not UTF-8 text, with what to do about them."""
_UTF8_BOM = b"\xef\xbb\xbf"
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_INT_DIGITS = 300
"""Longer integers are refused: 10**309 is already too large to become a float."""


class _Refused(ValueError):
    """Raised inside ``json.loads`` hooks; carries the field (when known) and the problem."""

    def __init__(self, field: str | None, problem: str):
        super().__init__(problem)
        self.field, self.problem = field, problem


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    row = dict(pairs)
    if len(row) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(key, "appears twice in one object (which value is meant?)")
            seen.add(key)
    return row


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(None, f"number {text[:20]}{'...' if len(text) > 20 else ''} is too large for a float")
    return value


def _usable_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:  # int() would accept up to 4300 digits, and float() of it overflow later
        raise _Refused(None, f"an integer of {len(text)} digits is not a usable number")
    return int(text)


def _no_constant(name: str):
    raise _Refused(None, f"{name} is not a JSON number")


def _strings_with_surrogates(value: Any) -> str | None:
    """The field path (``messages[1].content``) of the first string or key holding a surrogate, else None.

    Iterative, so a deeply nested row cannot exhaust the stack here either."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where or "(the whole row)"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                name = f"{where}.{key}" if where else str(key)
                if _SURROGATE.search(key):
                    return name
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


def parse_json_line(raw: bytes, path: str | os.PathLike, line: int) -> Any:
    """One line of a JSONL file as a Python value; every way it can be wrong is a :class:`DataError`."""
    if line == 1:
        for magic, problem in _NOT_JSON_LINES.items():
            if raw.startswith(magic):
                raise DataError(path, line, None, f"not a JSON Lines text file: {problem}")
        if raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
    if b"\x00" in raw:
        raise DataError(path, line, None, "contains NUL bytes: UTF-16 or binary data, not UTF-8 JSON")
    bad_byte = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_byte = f"byte 0x{raw[error.start]:02x} at column {error.start + 1}"
        text = raw.decode("utf-8", "surrogateescape")  # parse anyway, to name the field that holds the byte
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_float=_finite_float,
            parse_int=_usable_int,
            parse_constant=_no_constant,
        )
    except _Refused as error:
        raise DataError(path, line, error.field, error.problem) from None
    except json.JSONDecodeError as error:
        problem = f"not valid JSON ({error.msg} at column {error.colno})"
        raise DataError(path, line, None, f"not UTF-8 ({bad_byte})" if bad_byte else problem) from None
    except RecursionError:
        raise DataError(path, line, None, "not usable JSON: nested too deeply") from None
    except ValueError as error:  # int() refuses numbers of more than 4300 digits
        raise DataError(path, line, None, f"not usable JSON: {' '.join(str(error).split())[:120]}") from None
    if bad_byte or _ESCAPED_SURROGATE.search(text):
        field = _strings_with_surrogates(value)
        if bad_byte:
            raise DataError(path, line, field, f"not UTF-8 ({bad_byte})")
        if field is not None:
            raise DataError(path, line, field, "a lone surrogate escape (\\ud800-\\udfff) is not valid Unicode")
    return value


def _numbered_rows(path: Path, lines: Iterable[bytes]) -> Iterator[tuple[int, Any]]:
    for line_number, raw in enumerate(lines, start=1):
        if line_number == 1 and raw.startswith(_UTF8_BOM):  # written by some editors: an encoding mark, not data
            raw = raw[len(_UTF8_BOM) :]
        if not raw.strip():
            continue
        yield line_number, parse_json_line(raw, path, line_number)


def iter_jsonl(
    path: str | os.PathLike,
    fields: FieldSpec | None = None,
    validate: Callable[[dict, str, int], None] | None = None,
) -> Iterator[dict]:
    """Yield the rows of a JSONL file, checked against ``fields`` and an optional ``validate(row, path, line)``.

    Blank lines are allowed; anything else that is not a JSON object raises :class:`DataError`
    (see :func:`parse_json_line` for what a line must be).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    with open(path, "rb") as handle:
        for line_number, row in _numbered_rows(path, handle):
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


def check_has_rows(path: str | os.PathLike) -> None:
    """Raise :class:`DataError` unless ``path`` holds something besides whitespace: an empty input is a mistake
    (a wrong path, a failed earlier step), not a dataset of zero rows to report NaN on."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "file not found")
    with open(path, "rb") as handle:
        chunk = handle.read(1 << 16)
        if chunk.startswith(_UTF8_BOM):
            chunk = chunk[len(_UTF8_BOM) :]
        while chunk:
            if chunk.strip():
                return
            chunk = handle.read(1 << 16)
    raise DataError(path, None, None, "empty file: no rows to read")


def unique_values(field: str) -> Callable[[dict, str, int], None]:
    """A ``validate`` for :func:`read_jsonl`: ``field`` must not repeat (a second row with the same id would be
    skipped as done by every resumable stage)."""
    first_line: dict[Any, int] = {}

    def validate(row: dict, path: str, line: int) -> None:
        value = row.get(field)
        if value in first_line:
            raise DataError(path, line, field, f"duplicate {field} {value!r} (first on line {first_line[value]})")
        first_line[value] = line

    return validate


# --------------------------------------------------------------------------- writing


def encode_row(row: Mapping, path: str | os.PathLike, line: int | None) -> bytes:
    """``row`` as one UTF-8 JSON line, or a :class:`DataError` naming the field that cannot be written
    (a lone surrogate, a NaN), before a single byte of it reaches the file."""
    try:
        text = json.dumps(row, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(
            path, line, _strings_with_surrogates(row), "a lone surrogate cannot be written as UTF-8"
        ) from None
    except (TypeError, ValueError) as error:  # not JSON-serialisable, NaN or infinity
        raise DataError(path, line, None, f"row cannot be written as JSON: {error}") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping]) -> int:
    """Write ``rows`` to ``path`` (replacing it atomically); return how many were written.

    The rows go to a temporary file of its own in the same folder, renamed over ``path`` when complete: a
    kill or a bad row leaves ``path`` as it was and no temporary file behind, and two concurrent writers
    cannot interleave (the last to finish wins, whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    count = 0
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for row in rows:
                count += 1
                handle.write(encode_row(row, path, count))
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return count


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) the way :func:`write_jsonl` does: whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


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


def _lock_exclusively(handle, path: Path) -> None:
    """An advisory exclusive lock on the open file, released by the kernel when the process ends (also on a
    kill); :class:`OutputInUseError` at once if another open file holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte (the region need not exist yet)
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            raise OutputInUseError(path) from None
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputInUseError(path) from None


class ResumableJsonlWriter:
    """Append rows with a unique ``id`` field to a JSONL file, skipping ids already written.

    The file is locked while the writer is open, so a second writer on it fails at once
    (:class:`OutputInUseError`). A killed run leaves at most one partial last line; the next open cuts it
    off in place with one ``ftruncate`` (a kill at any moment of that repair loses no complete row), and a
    complete last row that only lacks its newline is kept and terminated. So restarting loses nothing that
    was completely written and writes nothing twice::

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
        """A cut last row was removed on open (it will be written again)."""
        self.completed_last_line = False
        """The last row was complete but lacked its newline; the newline was added."""
        self._handle = open(self.path, "a+b")  # held open, and locked, until close()
        self._lines = 0
        try:
            _lock_exclusively(self._handle, self.path)
            self._load_existing()
        except BaseException:
            self._handle.close()
            raise

    def _load_existing(self) -> None:
        self._handle.seek(0)
        raw = self._handle.read()
        if raw and not raw.endswith(b"\n"):
            cut = raw.rfind(b"\n") + 1
            try:  # a prefix of a JSON object is never itself a JSON object: this is the whole row
                complete_row = isinstance(parse_json_line(raw[cut:], self.path, raw.count(b"\n") + 1), dict)
            except DataError:
                complete_row = False
            if complete_row:
                self._write(b"\n")
                self.completed_last_line = True
                raw += b"\n"
            else:  # a row cut mid-write by a kill (or trailing blanks): cut it off in place, it will be redone
                os.ftruncate(self._handle.fileno(), cut)
                os.fsync(self._handle.fileno())
                self.repaired_partial_line = bool(raw[cut:].strip())
                raw = raw[:cut]
        lines = raw.split(b"\n")
        self._lines = len(lines) - 1
        for line_number, row in _numbered_rows(self.path, lines):
            if not isinstance(row, dict):
                raise DataError(self.path, line_number, None, f"expected a JSON object, got {type(row).__name__}")
            if self.id_field not in row:
                raise DataError(self.path, line_number, self.id_field, "missing; cannot resume safely")
            self.done_ids.add(str(row[self.id_field]))

    def _write(self, data: bytes) -> None:
        self._handle.write(data)
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def append(self, row: Mapping) -> bool:
        """Write ``row`` unless its id is already there; return whether it was written."""
        row_id = str(row[self.id_field])
        if row_id in self.done_ids:
            return False
        self._write(encode_row(row, self.path, self._lines + 1))
        self._lines += 1
        self.done_ids.add(row_id)
        return True

    def close(self) -> None:
        self._handle.close()  # releases the lock

    def __enter__(self) -> ResumableJsonlWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
