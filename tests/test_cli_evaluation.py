"""The `eval-mc` and `judge` commands print JSON results and report bad input with its line and field."""

from __future__ import annotations

import json

from zephyr_tutorial.cli import main
from zephyr_tutorial.runtime import data_dir


def test_eval_mc_prints_and_writes_json(tmp_path, capsys, embedded_model_dir):
    data = tmp_path / "mc.jsonl"
    rows = [
        {"question": "What is the capital of France?", "choices": ["Berlin", "Paris", "Rome"], "answer": 1},
        {"question": "What is 2 + 3?", "choices": ["4", "5"], "answer": 1},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    output = tmp_path / "out" / "result.json"
    code = main(
        ["eval-mc", "--in", str(data), "--model", str(embedded_model_dir), "--format", "letters", "--out", str(output)]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(output.read_text())
    assert printed["n"] == 2 and 0 <= printed["acc"] <= 1 and "acc_norm" in printed
    assert [len(item["loglikelihoods"]) for item in printed["items"]] == [3, 2]


def test_eval_mc_reports_bad_rows(tmp_path, capsys):
    data = tmp_path / "mc.jsonl"
    data.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 5}) + "\n")
    assert main(["eval-mc", "--in", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data}, line 1, field 'answer'") and len(err.strip().splitlines()) == 1


def test_judge_pairwise_locally_prints_counts(capsys, embedded_model_dir, tmp_path):
    code = main(
        [
            "judge",
            "--in",
            str(data_dir() / "pairwise_eval.jsonl"),
            "--mode",
            "pairwise",
            "--swap",
            "--limit",
            "1",
            "--max-new-tokens",
            "4",
            "--judge-model",
            str(embedded_model_dir),
            "--cache",
            str(tmp_path / "cache.sqlite"),
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 1 and result["swap"] is True
    assert result["parse_failures"] + result["wins_a"] + result["ties"] + result["wins_b"] == 1


def test_judge_reports_bad_rows(tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"id": "1", "instruction": "hi", "output_a": "x"}) + "\n")
    assert main(["judge", "--in", str(data)]) == 2
    assert "line 1, field 'output_b'" in capsys.readouterr().err


def _grader(body):
    """A judge that rates the answer "56" (the right one) 9 and every other 5; it quotes the answer first."""
    answer = body["messages"][-1]["content"].split("[The Start of Assistant's Answer]\n")[1].split("\n")[0]
    return 200, f'The assistant wrote "{answer}". Rating: [[{9 if answer == "56" else 5}]]'


def test_judge_single_grades_both_answers_of_each_pair_through_an_endpoint(tmp_path, capsys, openai_server):
    openai_server.respond = _grader
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"id": "p1", "instruction": "What is 7 x 8?", "output_a": "54", "output_b": "56"},
        {"id": "p2", "instruction": "Say hi.", "output_a": "Hi!", "output_b": "Hello."},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(
        [
            "judge",
            "--in",
            str(data),
            "--mode",
            "single",
            "--judge",
            "openai",
            "--judge-model",
            "grader",
            "--judge-base-url",
            openai_server.base_url,
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ratings"] == {"p1:a": 5.0, "p1:b": 9.0, "p2:a": 5.0, "p2:b": 5.0}
    assert result["n"] == 4 and result["parse_failures"] == 0 and result["request_failures"] == 0
    assert result["mean_score_a"] == 5.0 and result["mean_score_b"] == 7.0
    assert result["judge"] == f"openai:grader@{openai_server.base_url}"


def test_judge_with_the_logprob_judge_writes_the_result_file(tmp_path, capsys, embedded_model_dir):
    out = tmp_path / "result.json"
    assert (
        main(
            [
                "judge",
                "--in",
                str(data_dir() / "pairwise_eval.jsonl"),
                "--judge",
                "logprob",
                "--limit",
                "2",
                "--swap",
                "--judge-model",
                str(embedded_model_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text()) and printed["n"] == 2 and printed["parse_failures"] == 0
    assert printed["judge"].startswith("logprobs:")
    assert main(["judge", "--in", str(data_dir() / "pairwise_eval.jsonl"), "--judge", "openai"]) == 2
    assert "--judge openai needs --judge-model" in capsys.readouterr().err
