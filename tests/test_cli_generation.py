"""`zephyr-tutorial generate` and `filter`: counts, resumption, continuation, bad input, the vLLM wiring."""

from __future__ import annotations

import json

from zephyr_tutorial.data import read_jsonl, write_jsonl
from zephyr_tutorial.generation import (
    load_seed_prompts,
)
from zephyr_tutorial.runtime import data_dir

from samples import sft_rows


def run_cli(argv: list[str]) -> int:
    from zephyr_tutorial.cli import main

    return main(argv)


def test_filter_command_prints_counts_and_writes_splits(tmp_path, capsys):
    rows = sft_rows(40)
    rows[3]["messages"][1]["content"] = "As an AI language model, I cannot answer."
    rows.append(dict(rows[0]))
    write_jsonl(tmp_path / "raw.jsonl", rows)
    code = run_cli(
        [
            "filter",
            "--in",
            str(tmp_path / "raw.jsonl"),
            "--out",
            str(tmp_path / "clean.jsonl"),
            "--splits",
            str(tmp_path / "sft"),
            "--report",
            str(tmp_path / "report.json"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "disclaimer" in printed and "exact duplicate" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["removed"]["disclaimer"] == 1 and report["removed"]["exact duplicate"] == 1 and report["kept"] == 39
    train, test = read_jsonl(tmp_path / "sft" / "train_sft.jsonl"), read_jsonl(tmp_path / "sft" / "test_sft.jsonl")
    assert len(train) + len(test) == len(read_jsonl(tmp_path / "clean.jsonl")) == 39


def test_filter_command_writes_every_removed_row_with_its_filter_and_reason(tmp_path, capsys):
    rows = sft_rows(30)
    rows[3]["messages"][1]["content"] = "As an AI language model, I cannot answer."
    rows[5]["finish_reasons"] = ["length"]
    rows[7]["messages"][1]["content"] = (
        "It began long ago, when the first settlers came down the river and the valley was"
    )
    rows.append(dict(rows[0]))
    write_jsonl(tmp_path / "raw.jsonl", rows)
    outputs = {}
    for procs in ("1", "2"):
        out, rejects, flagged = (tmp_path / f"{name}{procs}.jsonl" for name in ("clean", "rejects", "flagged"))
        argv = ["filter", "--in", str(tmp_path / "raw.jsonl"), "--out", str(out), "--rejects", str(rejects)]
        code = run_cli(argv + ["--flagged", str(flagged), "--num-proc", procs])
        printed = capsys.readouterr().out
        assert code == 0 and f"rejects: 3 rows, each with its filter and reason -> {rejects}" in printed
        assert "accounted            31  = 28 kept + 3 removed" in printed
        removed, kept = read_jsonl(rejects), read_jsonl(out)
        assert [(r["position"], r["filter"]) for r in removed] == [
            (4, "disclaimer"),
            (6, "truncated"),
            (31, "exact duplicate"),
        ]
        assert removed[0]["reason"] == "assistant turn 0: 'As an AI language model'"
        assert removed[2]["reason"] == "same as row 1" and removed[2]["row"] == rows[30]
        assert len(kept) + len(removed) == len(rows)
        assert [r["position"] for r in read_jsonl(flagged)] == [8]  # only reported: the row is kept
        outputs[procs] = (out.read_text(), rejects.read_text(), flagged.read_text())
    assert outputs["1"] == outputs["2"]
    code = run_cli(
        ["filter", "--in", str(tmp_path / "raw.jsonl"), "--out", str(tmp_path / "o.jsonl")]
        + ["--truncation-heuristic", "remove", "--report", str(tmp_path / "r.json")]
    )
    assert code == 0 and json.loads((tmp_path / "r.json").read_text())["removed"]["truncated"] == 2


def test_filter_command_reports_a_bad_file(tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "p", "prompt_id": "x", "messages": []}\n')
    assert run_cli(["filter", "--in", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "line 1, field 'messages'" in capsys.readouterr().err
    rows = sft_rows(3)
    rows[2]["messages"][1]["role"] = 7
    write_jsonl(tmp_path / "bad2.jsonl", rows)
    argv = ["filter", "--in", str(tmp_path / "bad2.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--num-proc", "2"]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'bad2.jsonl'}, line 3, field 'messages[1].role': missing or not a string"]


def test_generate_command_with_an_openai_compatible_endpoint_resumes(tmp_path, openai_server, monkeypatch, capsys):
    base_url, seen_keys = openai_server.base_url, openai_server.authorizations
    monkeypatch.setenv("MY_TEST_KEY", "sk-test-secret")
    monkeypatch.setenv("ZEPHYR_PROFILE", "cpu")
    out = tmp_path / "dialogues.jsonl"
    argv = [
        "generate",
        "--in",
        str(data_dir() / "seed_prompts.jsonl"),
        "--out",
        str(out),
        "--backend",
        "openai",
        "--model",
        "teacher",
        "--base-url",
        base_url,
        "--api-key-env",
        "MY_TEST_KEY",
        "--turns",
        "2",
        "--limit",
        "3",
    ]
    assert run_cli(argv) == 0
    rows = read_jsonl(out)
    assert len(rows) == 3 and all(len(r["messages"]) == 4 for r in rows)
    assert rows[0]["messages"][1]["content"].startswith("Echo (teacher)")
    assert set(seen_keys) == {"Bearer sk-test-secret"}
    assert "sk-test-secret" not in out.read_text() and "sk-test-secret" not in capsys.readouterr().out
    # a larger --limit on the same file only adds the missing dialogues
    assert run_cli(argv[:-1] + ["5"]) == 0
    assert [r["id"] for r in read_jsonl(out)] == [
        f"{s['id']}#0" for s in load_seed_prompts(data_dir() / "seed_prompts.jsonl")[:5]
    ]
    assert "2 dialogues written (3 were already there)" in capsys.readouterr().out


def test_generate_command_continues_single_turn_rows(tmp_path, openai_server, monkeypatch, capsys):
    base_url = openai_server.base_url
    monkeypatch.setenv("ZEPHYR_PROFILE", "cpu")
    common = [
        "generate",
        "--in",
        str(data_dir() / "seed_prompts.jsonl"),
        "--backend",
        "openai",
        "--model",
        "teacher",
        "--base-url",
        base_url,
        "--limit",
        "3",
    ]
    single, multi = tmp_path / "single.jsonl", tmp_path / "multi.jsonl"
    assert run_cli(common + ["--out", str(single), "--turns", "1"]) == 0
    rows = read_jsonl(single)
    rows[0]["messages"][1]["content"] = "A first answer written earlier."  # a marker: it must survive unchanged
    rows[1]["finish_reasons"] = ["length"]  # a cut reply is regenerated, not continued
    write_jsonl(single, rows)
    capsys.readouterr()
    assert run_cli(common + ["--out", str(multi), "--turns", "2", "--continue-from", str(single)]) == 0
    assert "3 dialogues written (0 were already there, 2 continued from" in capsys.readouterr().out
    grown = read_jsonl(multi)
    assert [r["id"] for r in grown] == [r["id"] for r in rows] and all(len(r["messages"]) == 4 for r in grown)
    assert grown[0]["messages"][:2] == rows[0]["messages"] and [r["prefix_turns"] for r in grown] == [1, 0, 1]
    assert grown[1]["messages"][1]["content"].startswith("Echo (teacher)")


def test_vllm_backend_takes_tensor_parallel_size_and_dtype_from_the_profile(monkeypatch):
    """The wiring only: vLLM needs a GPU (tests/test_vllm_backend.py runs the engine where there is one)."""
    import argparse

    from zephyr_tutorial import backends
    from zephyr_tutorial.cli.generation import build_backend
    from zephyr_tutorial.profiles import get_profile

    built = {}

    class RecordingVLLMBackend:
        def __init__(self, model, **kwargs):
            built.update(model=model, **kwargs)

    profile = get_profile("cpu").with_overrides(tensor_parallel_size=4, dtype="bfloat16")
    monkeypatch.setattr(backends, "VLLMBackend", RecordingVLLMBackend)
    monkeypatch.setattr("zephyr_tutorial.profiles.active_profile", lambda name=None: profile)
    build_backend(argparse.Namespace(backend="vllm", model="some/model"))
    assert built == {"model": "some/model", "tensor_parallel_size": 4, "dtype": "bfloat16"}


def test_generate_counts_failed_and_hung_requests_and_the_rerun_asks_only_for_them(tmp_path, openai_server, capsys):
    """Before: a failed request was written as an empty reply (its id done, never asked again), and a hung
    endpoint held each request for minutes: ``generate`` had no ``--timeout``."""
    import time

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        "".join(json.dumps({"id": f"s{i}", "sector": "x", "prompt": f"Question {i}?"}) + "\n" for i in range(4))
    )
    blocked, hung = {"Question 1?"}, {"Question 2?"}

    def respond(body):
        content = body["messages"][-1]["content"]
        if any(q in content for q in blocked):
            return 400, "blocked by the content filter"
        if any(q in content for q in hung):
            time.sleep(1.5)  # past the --timeout below, with every retry
        return None

    openai_server.respond = respond
    out = tmp_path / "dialogues.jsonl"
    argv = ["generate", "--in", str(seeds), "--out", str(out), "--backend", "openai", "--model", "teacher",
            "--base-url", openai_server.base_url, "--turns", "1", "--timeout", "0.5"]  # fmt: skip
    assert run_cli(argv) == 1
    captured = capsys.readouterr()
    assert "2 dialogues written (0 were already there)" in captured.out
    assert "2 dialogues failed and were not written" in captured.err
    listed = [line.strip() for line in captured.err.splitlines() if line.startswith("  s")]  # below the count
    failures = dict(line.split(": ", 1) for line in listed)
    assert set(failures) == {"s1#0", "s2#0"} and "HTTP 400" in failures["s1#0"]
    assert "deadline" in failures["s2#0"] or "Timeout" in failures["s2#0"], failures["s2#0"]
    assert sorted(r["id"] for r in read_jsonl(out)) == ["s0#0", "s3#0"]
    blocked.clear()
    hung.clear()
    assert run_cli(argv) == 0
    assert "2 dialogues written (2 were already there)" in capsys.readouterr().out
    rows = read_jsonl(out)
    assert sorted(r["id"] for r in rows) == ["s0#0", "s1#0", "s2#0", "s3#0"]
    assert all(r["messages"][1]["content"].startswith("Echo (teacher)") for r in rows)
