"""`zephyr-tutorial feedback` runs all stages, resumes, and reports bad input with exit code 2."""

from __future__ import annotations

import json


def test_cli_runs_all_stages_and_resumes(tmp_path, capsys):
    from zephyr_tutorial.cli import main
    from zephyr_tutorial.data import read_jsonl

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Say the number {i}."}) + "\n" for i in range(3)))
    pool = tmp_path / "pool.json"
    pool.write_text(
        json.dumps(
            [
                {
                    "name": "random-a",
                    "kind": "tiny_random",
                    "principle": None,
                    "temperature": 1.0,
                    "extra": {"seed": 1},
                },
                {
                    "name": "random-b",
                    "kind": "tiny_random",
                    "principle": "honesty",
                    "temperature": 1.0,
                    "extra": {"seed": 2},
                },
                {"name": "cut", "kind": "truncated", "principle": None, "source": "random-a", "truncate_words": 1},
            ]
        )
    )
    args = [
        "feedback",
        "--in",
        str(prompts),
        "--out",
        str(tmp_path / "out"),
        "--pool",
        str(pool),
        "--max-new-tokens",
        "5",
        "--test-fraction",
        "0.5",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "'random-a': 3, 'random-b': 3, 'cut': 3" in printed and "new {'rated': 9}" in printed
    ratings = read_jsonl(tmp_path / "out" / "ratings.jsonl")
    assert len(ratings) == 9 and all(1 <= r["mean"] <= 5 for r in ratings)
    pairs = read_jsonl(tmp_path / "out" / "train_prefs.jsonl") + read_jsonl(tmp_path / "out" / "test_prefs.jsonl")
    assert len(pairs) <= 3  # one per prompt at most; the random policies, cut at 5 tokens, are rarely choosable
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "completions: 9 already there, new per policy {'random-a': 0, 'random-b': 0, 'cut': 0}" in printed
    assert "9 already there, new {}" in printed
    assert len(read_jsonl(tmp_path / "out" / "ratings.jsonl")) == 9
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p0"}\n')
    assert main(["feedback", "--in", str(bad), "--out", str(tmp_path / "o2")]) == 2
    assert "line 1, field 'prompt': missing" in capsys.readouterr().err
