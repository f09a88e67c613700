import gzip
import json
import signal
import subprocess
import sys
import time

import pytest

from zephyr_tutorial.data import (
    DataError,
    OutputInUseError,
    ResumableJsonlWriter,
    check_has_rows,
    check_messages,
    read_jsonl,
    unique_values,
    write_jsonl,
)


def test_read_jsonl_names_file_line_and_field(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"question": "q1", "answer": 1}\n\n{"question": "q2", "answer": "b"}\n')
    with pytest.raises(DataError) as error:
        read_jsonl(path, {"question": str, "answer": int})
    assert str(error.value) == f"{path}, line 3, field 'answer': expected int, got str"


def test_read_jsonl_rejects_invalid_json_and_bools_for_numbers(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"answer": 1}\n{"answer": \n')
    with pytest.raises(DataError, match=r"line 2: not valid JSON"):
        read_jsonl(path, {"answer": int})
    path.write_text('{"answer": true}\n')
    with pytest.raises(DataError, match=r"line 1, field 'answer': expected int, got bool"):
        read_jsonl(path, {"answer": int})


def test_missing_file_and_missing_field(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_jsonl(tmp_path / "nope.jsonl")
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n')
    with pytest.raises(DataError, match=r"line 1, field 'b': missing"):
        read_jsonl(path, {"b": int})


def test_check_messages_points_at_the_bad_message(tmp_path):
    with pytest.raises(DataError, match=r"line 4, field 'messages\[1\].content': missing or not a string"):
        check_messages([{"role": "user", "content": "hi"}, {"role": "assistant"}], "f.jsonl", 4)


def test_write_then_read_round_trip(tmp_path):
    rows = [{"id": str(i), "text": f"é{i}"} for i in range(3)]
    assert write_jsonl(tmp_path / "out" / "rows.jsonl", rows) == 3
    assert read_jsonl(tmp_path / "out" / "rows.jsonl") == rows


def test_resumable_writer_skips_done_ids_and_repairs_a_cut_line(tmp_path):
    path = tmp_path / "gen.jsonl"
    with ResumableJsonlWriter(path) as writer:
        assert writer.append({"id": "a", "v": 1})
        assert writer.append({"id": "b", "v": 2})
        assert not writer.append({"id": "a", "v": 3})
    with open(path, "a") as handle:  # what a kill in the middle of a write leaves behind
        handle.write('{"id": "c", "v"')
    with ResumableJsonlWriter(path) as writer:
        assert writer.repaired_partial_line
        assert writer.done_ids == {"a", "b"}
        assert writer.append({"id": "c", "v": 4})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


# --------------------------------------------------------------------------- hostile files (issue 15)

DEEP = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"


@pytest.mark.parametrize(
    "content, line, field, problem",
    [
        ('{"id": "1"}\n{"id": "2", "text": "caf\xe9"}\n'.encode("latin-1"), 2, "text", "not UTF-8 (byte 0xe9"),
        ('{"id": "1"}\n'.encode("utf-16"), 1, None, "UTF-16"),
        ('{"id": "1"}\n'.encode("utf-16-le"), 1, None, "NUL bytes"),
        (gzip.compress(b'{"id": "1"}\n'), 1, None, "gzip-compressed"),
        (b'{"id": "1"}\n' + DEEP, 2, None, "nested too deeply"),
        (b'{"id": "1", "n": ' + b"7" * 5000 + b"}\n", 1, None, "5000 digits"),
        (b'{"id": "1", "n": 1e400}\n', 1, None, "too large"),
        (b'{"id": "1", "n": NaN}\n', 1, None, "NaN is not a JSON number"),
        (
            b'{"id": "1", "messages": [{"role": "user", "content": "x\\ud800"}]}\n',
            1,
            "messages[0].content",
            "surrogate",
        ),
        (b'{"id": "1", "text": "a", "text": "b"}\n', 1, "text", "appears twice"),
    ],
)
def test_every_decode_problem_is_a_data_error_naming_file_line_and_field(tmp_path, content, line, field, problem):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_jsonl(path)
    assert (error.value.path, error.value.line, error.value.field) == (str(path), line, field)
    assert problem in str(error.value) and str(error.value).startswith(f"{path}, line {line}")


def test_valid_unicode_a_bom_and_crlf_still_read(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "1", "t": "\\ud83d\\ude00 caf\xc3\xa9"}\r\n\r\n{"id": "2"}\r\n')
    assert read_jsonl(path) == [{"id": "1", "t": "😀 café"}, {"id": "2"}]


def test_empty_input_is_refused_and_duplicate_ids_are_named(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(DataError, match="empty file"):
        check_has_rows(path)
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n')
    check_has_rows(path)
    with pytest.raises(DataError, match=r"line 3, field 'id': duplicate id 'a' \(first on line 1\)"):
        read_jsonl(path, validate=unique_values("id"))


def test_a_complete_last_row_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}')  # written by hand, or a kill between the row and its newline
    with ResumableJsonlWriter(path) as writer:
        assert writer.done_ids == {"a", "b"} and writer.completed_last_line and not writer.repaired_partial_line
        assert writer.append({"id": "c"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


def test_a_bad_row_inside_the_output_names_its_line(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", oops}\n{"id": "c"}\n')
    with pytest.raises(DataError, match=r"line 2: not valid JSON"):
        ResumableJsonlWriter(path)
    path.write_text('{"id": "a"}\n{"no_id": 1}\n')
    with pytest.raises(DataError, match=r"line 2, field 'id': missing; cannot resume safely"):
        ResumableJsonlWriter(path)


def test_a_second_writer_on_the_same_file_fails_at_once(tmp_path):
    path = tmp_path / "gen.jsonl"
    code = (
        "import sys, time\nfrom zephyr_tutorial.data import DataError, ResumableJsonlWriter\n"
        f"try:\n    ResumableJsonlWriter({str(path)!r})\nexcept DataError as error:\n    print(error); sys.exit(2)\n"
    )
    with ResumableJsonlWriter(path) as writer:
        writer.append({"id": "a"})
        with pytest.raises(OutputInUseError, match="another process is writing this file"):
            ResumableJsonlWriter(path)  # a second writer in this process
        start = time.perf_counter()
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert other.returncode == 2 and "another process is writing this file" in other.stdout
        assert time.perf_counter() - start < 30  # it did not wait for the lock
    with ResumableJsonlWriter(path) as writer:  # released on close
        assert writer.done_ids == {"a"}
    assert path.read_text() == '{"id": "a"}\n'


KILLED_BY_THE_KERNEL = """
import resource, signal, sys
from zephyr_tutorial.data import ResumableJsonlWriter
# Any write that grows a file past this size kills the process (SIGXFSZ, which Python ignores by default): the
# kill lands inside the first write of the repair or of the next append, whichever comes first.
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
with ResumableJsonlWriter(sys.argv[1]) as writer:
    writer.append({"id": "new", "text": "x" * 100})
"""


@pytest.mark.parametrize("tail", ['{"id": "r60000", "te', '{"id": "r60000", "text": "done"}'])
def test_a_kill_during_the_repair_loses_no_complete_row(tmp_path, tail):
    """60,000 complete rows and a cut (or complete, unterminated) last one; the repairing process is killed by
    the kernel at its first write that grows the file. Every complete row must survive, and the next run
    must finish the job. (The old repair rewrote the whole file: killed there, it left a fraction of it.)"""
    path = tmp_path / "gen.jsonl"
    rows = "".join(json.dumps({"id": f"r{i}", "text": "complete row"}) + "\n" for i in range(60_000))
    path.write_text(rows + tail)
    size = path.stat().st_size
    killed = subprocess.run([sys.executable, "-c", KILLED_BY_THE_KERNEL, str(path), str(size // 2)], timeout=120)
    assert killed.returncode == -signal.SIGXFSZ
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()[:60_000]]
    assert ids == [f"r{i}" for i in range(60_000)]
    with ResumableJsonlWriter(path) as writer:  # the next run repairs and goes on
        assert len(writer.done_ids) == 60_000 + tail.endswith("}")
        writer.append({"id": "new"})
    assert path.read_text().startswith(rows) and path.read_text().endswith('{"id": "new"}\n')


def test_a_row_that_cannot_be_written_names_its_field_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "rows.jsonl"
    with pytest.raises(DataError, match=r"line 2, field 'messages\[0\].content': a lone surrogate"):
        write_jsonl(out, [{"id": "1"}, {"id": "2", "messages": [{"content": "x\ud800"}]}])
    assert list(tmp_path.iterdir()) == []  # neither the output nor a .partial file
    with ResumableJsonlWriter(out) as writer:
        with pytest.raises(DataError, match=r"line 1, field 'text'"):
            writer.append({"id": "1", "text": "\udcff"})
        assert writer.append({"id": "2", "text": "fine"})
    assert read_jsonl(out) == [{"id": "2", "text": "fine"}]
