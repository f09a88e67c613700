import json

import pytest

from zephyr_tutorial.data import DataError, ResumableJsonlWriter, check_messages, read_jsonl, write_jsonl


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
