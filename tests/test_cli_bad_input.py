"""Hostile and careless input through the whole command line (issue 15): every malformed file ends with exit
code 2 and one line naming the file, the line and the field; nothing is lost, doubled or silently dropped;
a failed request is a counted missing row; no key reaches the output."""

from __future__ import annotations

import gzip
import json

import pytest

from zephyr_tutorial.cli import main
from zephyr_tutorial.data import ResumableJsonlWriter, read_jsonl
from zephyr_tutorial.evaluation.rating import ASPECTS, JUDGE_SYSTEM_PROMPT

from samples import RECIPES

GOOD_ROW = {
    **{"id": "1", "sector": "x", "prompt": "Say hi.", "prompt_id": "x", "instruction": "Say hi.", "output": "Hi!"},
    **{"output_a": "Hi!", "output_b": "Hello.", "question": "2 + 2?", "choices": ["3", "4"], "answer": 1},
    "messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}],
}
"""A row every reading command accepts, so that each malformed line below is the only problem of its file."""
GOOD = json.dumps(GOOD_ROW).encode()
MALFORMED = {
    "not UTF-8": (GOOD + b"\n" + GOOD.replace(b'"Hi!"', b'"caf\xe9"') + b"\n", 2, "output", "not UTF-8"),
    "UTF-16": (json.dumps(GOOD_ROW).encode("utf-16") + b"\n", 1, None, "UTF-16"),
    "gzip": (gzip.compress(GOOD + b"\n"), 1, None, "gzip-compressed"),
    "100k-deep": (GOOD + b"\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n", 2, None, "nested too deeply"),
    "5000 digits": (
        GOOD + b"\n" + GOOD.replace(b'"answer": 1', b'"answer": ' + b"1" * 5000) + b"\n",
        2,
        None,
        "5000 digits",
    ),  # fmt: skip
    "lone surrogate": (GOOD.replace(b'"Hi!"', b'"Hi\\ud800"') + b"\n", 1, "output", "lone surrogate"),
    "duplicate key": (GOOD.replace(b'"id": "1"', b'"id": "1", "id": "2"') + b"\n", 1, "id", "appears twice"),
}
COMMANDS = {
    "eval-mc": ["eval-mc", "--in", "{data}"],
    "judge": ["judge", "--in", "{data}", "--mode", "single"],
    "feedback": ["feedback", "--in", "{data}", "--out", "{out}"],
    "filter": ["filter", "--in", "{data}", "--out", "{out}/filtered.jsonl"],
    "generate": ["generate", "--in", "{data}", "--out", "{out}/raw.jsonl", "--backend", "openai", "--model", "m"],
}


def _run(command, tmp_path, data, capsys):
    argv = [a.format(data=data, out=tmp_path / "out") for a in COMMANDS[command]]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def _one_error_line(err: str) -> str:
    """The one ``error:`` line that ends stderr (a progress bar may stand before it), with no traceback."""
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err
    assert sum("error" in line.lower() for line in lines) == 1, err
    return lines[-1]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_malformed_file_is_exit_code_2_and_one_line_with_file_line_and_field(command, case, tmp_path, capsys):
    content, line, field, problem = MALFORMED[case]
    data = tmp_path / "input.jsonl"
    data.write_bytes(content)
    code, err = _run(command, tmp_path, data, capsys)
    assert code == 2
    where = f"error: {data}, line {line}" + (f", field {field!r}" if field else ":")
    assert _one_error_line(err).startswith(where) and problem in err
    assert not list(tmp_path.rglob("*.partial"))  # filter once left one behind on a lone surrogate


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_empty_input_file_is_refused(command, tmp_path, capsys):
    """Before: eval-mc raised ZeroDivisionError, judge printed NaN, the others succeeded with nothing."""
    data = tmp_path / "input.jsonl"
    data.write_text("\n\n")
    code, err = _run(command, tmp_path, data, capsys)
    assert code == 2 and _one_error_line(err) == f"error: {data}: empty file: no rows to read"


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--in", "{seeds}", "--out", "{seeds}", "--backend", "openai", "--model", "m"],
        ["filter", "--in", "{seeds}", "--out", "{seeds}"],
        ["judge", "--in", "{seeds}", "--out", "{seeds}"],
        ["feedback", "--in", "{out}/completions.jsonl", "--out", "{out}"],
    ],
)
def test_an_output_that_is_an_input_is_refused_and_the_input_is_untouched(argv, tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    (tmp_path / "out").mkdir()
    text = "".join(json.dumps(dict(GOOD_ROW, id=str(i))) + "\n" for i in range(3))
    for path in (seeds, tmp_path / "out" / "completions.jsonl"):
        path.write_text(text)
    code = main([a.format(seeds=seeds, out=tmp_path / "out") for a in argv])
    err = capsys.readouterr().err.strip()
    message = _one_error_line(err)
    assert code == 2 and ("is the same file as --in" in message or "--in is the completions.jsonl" in message)
    assert seeds.read_text() == text and (tmp_path / "out" / "completions.jsonl").read_text() == text


def test_a_corrupt_line_inside_an_output_file_names_it(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "s1", "sector": "x", "prompt": "Say hi."}) + "\n")
    out = tmp_path / "raw.jsonl"
    out.write_text('{"id": "s1#0"}\n{"id": "broken" "x"}\n{"id": "s1#1"}\n')
    assert main(["generate", "--in", str(seeds), "--out", str(out), "--backend", "openai", "--model", "m"]) == 2
    assert _one_error_line(capsys.readouterr().err.strip()).startswith(f"error: {out}, line 2: not valid JSON")


def test_a_second_run_on_the_same_output_fails_at_once(tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "p1", "prompt": "Say hi."}) + "\n")
    with ResumableJsonlWriter(tmp_path / "out" / "completions.jsonl"):  # the first run, still writing
        assert main(["feedback", "--in", str(prompts), "--out", str(tmp_path / "out")]) == 2
    err = _one_error_line(capsys.readouterr().err.strip())
    assert "completions.jsonl: another process is writing this file" in err


@pytest.mark.parametrize(
    "rows, where",
    [
        ([{"id": "p1", "prompt": "a"}, {"id": "p2", "prompt": "b"}, {"id": "p1", "prompt": "c"}],
         "line 3, field 'id': duplicate id 'p1' (first on line 1)"),
        ([{"id": "p1", "prompt": "a"}, {"id": "p2", "prompt": "  "}], "line 2, field 'prompt': empty"),
    ],
)  # fmt: skip
def test_feedback_refuses_a_repeated_id_and_an_empty_prompt(rows, where, tmp_path, capsys):
    """Before: the second prompt with a repeated id was skipped as answered while "prompts: 3" was printed."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["feedback", "--in", str(prompts), "--out", str(tmp_path / "out")]) == 2
    assert where in _one_error_line(capsys.readouterr().err.strip())


# --------------------------------------------------------------------------- endpoints


def _pairs(tmp_path, n=2):
    data = tmp_path / "pairs.jsonl"
    rows = [
        {"id": f"p{i}", "instruction": f"Question {i}?", "output_a": f"A{i}", "output_b": f"B{i}"} for i in range(n)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return data


def _judge(server, data, *extra):
    return ["judge", "--in", str(data), "--judge", "openai", "--judge-model", "grader",
            "--judge-base-url", server.base_url, *extra]  # fmt: skip


def _strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_judge_prints_valid_json_when_nothing_parses(openai_server, tmp_path, capsys):
    openai_server.respond = lambda body: (200, "I cannot decide.")
    assert main(_judge(openai_server, _pairs(tmp_path), "--mode", "single")) == 0
    result = _strict_json(capsys.readouterr().out)
    assert result["parse_failures"] == 4 and result["mean_score_a"] is None and result["mean_score_a_stderr"] is None


def test_a_failed_judge_request_is_counted_and_asked_again_by_the_rerun(openai_server, tmp_path, capsys):
    failing = {"Question 1?"}
    openai_server.respond = lambda body: (
        (400, "context length exceeded")
        if any(q in body["messages"][-1]["content"] for q in failing)
        else (200, "Better: [[A]]")
    )
    argv = _judge(openai_server, _pairs(tmp_path), "--cache", str(tmp_path / "cache.sqlite"), "--timeout", "20")
    assert main(argv) == 1
    captured = capsys.readouterr()
    result = _strict_json(captured.out)
    assert (result["n"], result["wins_a"], result["parse_failures"], result["request_failures"]) == (2, 1, 1, 1)
    assert "1 judge requests failed" in captured.err and "context length exceeded" in captured.err
    sent = openai_server.requests
    failing.clear()
    assert main(argv) == 0
    assert _strict_json(capsys.readouterr().out)["wins_a"] == 2 and openai_server.requests == sent + 1


def test_a_rejected_key_is_one_redacted_line_and_a_url_with_credentials_is_refused(
    openai_server, tmp_path, capsys, monkeypatch
):
    secret = "sk-live-0123456789abcdefghij"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    openai_server.respond = lambda body: (401, f"Incorrect API key provided: {secret}. Find your key at ...")
    assert main(_judge(openai_server, _pairs(tmp_path))) == 2
    captured = capsys.readouterr()
    err = _one_error_line(captured.err.strip())
    assert "API key was rejected" in err and secret not in captured.err + captured.out
    url = openai_server.base_url.replace("http://", f"http://user:{secret}@")
    assert main(["judge", "--in", str(_pairs(tmp_path)), "--judge", "openai", "--judge-model", "g",
                 "--judge-base-url", url]) == 2  # fmt: skip
    captured = capsys.readouterr()
    assert "carries credentials" in _one_error_line(captured.err.strip()) and secret not in captured.err


def _feedback_endpoint(failing: set[str]):
    """A policy that answers each prompt, failing those in ``failing`` with HTTP 400, and a judge that rates
    every text it is shown 4-4-4-4 in JSON."""

    def respond(body):
        messages = body["messages"]
        if messages[0]["content"] == JUDGE_SYSTEM_PROMPT:
            shown = messages[-1]["content"].count("</text ")
            entries = [dict({"text": k}, **dict.fromkeys(ASPECTS, 4)) for k in range(1, shown + 1)]
            return 200, json.dumps({"ratings": entries})
        prompt = messages[-1]["content"]
        return (400, "blocked") if prompt in failing else (200, f"An answer to {prompt}")

    return respond


def test_feedback_records_a_failed_request_as_missing_and_the_rerun_completes_it(openai_server, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Prompt {i}."}) + "\n" for i in range(3)))
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps([
        {"name": "api", "kind": "openai", "model": "policy", "base_url": openai_server.base_url, "principle": None},
        {"name": "cut", "kind": "truncated", "source": "api", "principle": None, "truncate_words": 2},
    ]))  # fmt: skip
    failing = {"Prompt 1."}
    openai_server.respond = _feedback_endpoint(failing)
    argv = ["feedback", "--in", str(prompts), "--out", str(tmp_path / "out"), "--pool", str(pool),
            "--judge", "openai", "--judge-model", "judge", "--judge-base-url", openai_server.base_url,
            "--test-fraction", "0.5", "--timeout", "20"]  # fmt: skip
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "'api': 2, 'cut': 2" in captured.out and "2 requests failed and were not written" in captured.err
    assert "p1::api: BadRequestError: HTTP 400" in captured.err and "source 'api' failed" in captured.err
    completions = read_jsonl(tmp_path / "out" / "completions.jsonl")
    assert sorted(r["id"] for r in completions) == ["p0::api", "p0::cut", "p2::api", "p2::cut"]
    failing.clear()
    assert main(argv) == 0
    assert "completions: 4 already there, new per policy {'api': 1, 'cut': 1}" in capsys.readouterr().out
    ids = [r["id"] for r in read_jsonl(tmp_path / "out" / "completions.jsonl")]
    assert sorted(ids) == sorted({f"p{i}::{p}" for i in range(3) for p in ("api", "cut")})  # nothing twice
    ratings = read_jsonl(tmp_path / "out" / "ratings.jsonl")
    assert len(ratings) == 6 and all(r["mean"] == 4 for r in ratings)


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    "recipe, problem",
    [
        (b"stage: sft\ntrainer:\n  learning_rate: abc\n", "key 'learning_rate': expected float, got str 'abc'"),
        (b"stage: sft\nprofile_overrides:\n  max_steps: ten\n", "key 'max_steps': expected int, got str 'ten'"),
        (b"stage: dpo\ntrainer:\n  beta: strong\n", "key 'beta': expected float, got str 'strong'"),
        (b"stage: sft\ntrainer: fast\n", "'trainer' must be a mapping or null, got str"),
        (b"stage: sft\nlora: [r, 8]\n", "'lora' must be a mapping or null, got list"),
        (b"stage: sft\ndescription: caf\xe9\n", "not UTF-8 (byte 0xe9"),
        (b"", "the recipe is empty"),
        (b"stage: sft\nlora:\n  r: 8\n  bias: everything\n", "key 'bias': expected one of 'all', 'lora_only', 'none'"),
    ],
)
def test_recipe_values_are_checked_before_any_model_loads(recipe, problem, tmp_path, capsys, monkeypatch):
    import zephyr_tutorial.pipelines as pipelines

    def no_training(*args, **kwargs):
        raise AssertionError("the run started: the recipe was not checked first")

    monkeypatch.setattr(pipelines, "run_recipe", no_training)
    path = tmp_path / "recipe.yaml"
    path.write_bytes(recipe)
    stage = "dpo" if b"stage: dpo" in recipe else "sft"
    assert main([stage, "--config", str(path)]) == 2
    err = _one_error_line(capsys.readouterr().err.strip())
    assert err.startswith(f"error: {path}") and problem in err
    assert main(["dpo", "--config", str(RECIPES["dpo_cpu"]), "--beta", "strong"]) == 2
    assert "key 'beta': expected float, got str 'strong'" in _one_error_line(capsys.readouterr().err.strip())


def test_the_pool_itself_refuses_a_repeated_prompt_id(tmp_path):
    """The library path (notebook 04) too: a repeated id would be skipped as answered, silently."""
    from zephyr_tutorial.feedback.pool import PolicySpec, run_pool

    prompts = [{"id": "p1", "prompt": "a"}, {"id": "p1", "prompt": "b"}]
    with ResumableJsonlWriter(tmp_path / "completions.jsonl") as writer:
        with pytest.raises(ValueError, match=r"prompt id 'p1' appears twice \(prompts 1 and 2\)"):
            run_pool(prompts, [PolicySpec("x", "embedded")], lambda spec: None, writer)
    assert (tmp_path / "completions.jsonl").read_text() == ""


@pytest.mark.parametrize(
    "rows, where",
    [
        # a blank line before the bad row: the line named must be the file's, not the row's position
        (['{"id": "q1", "instruction": "a", "output": "x"}', "", '{"id": "q2", "instruction": "b"}'],
         "line 3, field 'output': missing (give output, or output_a and output_b)"),
        # empty texts: the judge would rate nothing and the mean would count it (pairwise refused them already)
        (['{"id": "q1", "instruction": " ", "output": "x"}'], "line 1, field 'instruction': empty"),
        (['{"id": "q1", "instruction": "a", "output": ""}'], "line 1, field 'output': empty"),
        (['{"id": "q1", "instruction": "a", "output_a": "x", "output_b": "\\n"}'], "line 1, field 'output_b': empty"),
        (['{"id": "", "instruction": "a", "output": "x"}'], "line 1, field 'id': empty"),
        (['{"id": "q1", "instruction": "a", "output": "x", "reference": 3}'],
         "line 1, field 'reference': must be a string, got int"),
        (['{"id": "q1", "instruction": "a", "output": "x"}', '{"id": "q1", "instruction": "b", "output": "y"}'],
         "line 2, field 'id': duplicate id 'q1' (first on line 1)"),
    ],
)  # fmt: skip
def test_judge_single_names_the_file_line_of_a_bad_row_and_refuses_a_repeated_id(rows, where, tmp_path, capsys):
    """Before: a repeated id was graded twice and one of its ratings silently overwritten in the JSON, and a
    missing output was reported at its row number, which is not its line when the file has blank lines."""
    data = tmp_path / "answers.jsonl"
    data.write_text("\n".join(rows) + "\n")
    assert main(["judge", "--in", str(data), "--mode", "single"]) == 2
    assert _one_error_line(capsys.readouterr().err.strip()) == f"error: {data}, {where}"
