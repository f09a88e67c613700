"""The command line as a whole: every group is registered, --help is light, bad input is one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from zephyr_tutorial.cli import COMMAND_MODULES, build_parser, main


def test_cli_lists_the_model_and_runner_commands(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "model" in help_text and "run-notebooks" in help_text
    assert main([]) == 2
    for command in ("eval-mc", "judge", "generate", "filter", "sft", "dpo", "feedback", "recipes"):
        assert command in help_text


@pytest.mark.parametrize("argv", [["--help"], ["sft", "--help"], ["judge", "--help"], ["feedback", "--help"]])
def test_help_starts_without_importing_torch(argv):
    code = (
        "import sys\nfrom zephyr_tutorial.cli import main\n"
        "try:\n    main(" + repr(argv) + ")\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False False", result.stdout[-2000:]


def test_every_command_group_registers_and_nothing_is_left_unlisted():
    from pathlib import Path

    import zephyr_tutorial.cli as cli

    modules = {p.stem for p in Path(cli.__file__).parent.glob("*.py")} - {"__init__", "__main__"}
    assert modules == set(COMMAND_MODULES)


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["eval-mc", "--in", "{bad}"], "line 1, field 'answer'"),
        (["judge", "--in", "{bad}"], "line 1, field 'id': missing"),
        (["filter", "--in", "{bad}", "--out", "{out}"], "line 1, field 'prompt'"),  # rows are checked as read
        (["generate", "--in", "{bad}", "--out", "{out}", "--backend", "openai", "--model", "m"], "field 'id'"),
        (["feedback", "--in", "{bad}", "--out", "{out}"], "field 'id'"),
        (["sft", "--config", "{bad}"], "not valid YAML"),
        (["dpo", "--max_steps"], "needs a value"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_code_2(argv, bad, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q", "choices": ["a", "b"], "answer": 5}\n: [\n')
    argv = [a.format(bad=path, out=tmp_path / "out") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and bad in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_training_flags_accept_hyphens_and_underscores_and_unknown_flags_elsewhere_are_refused(capsys):
    from zephyr_tutorial.recipes import parse_overrides

    args, unknown = build_parser().parse_known_args(["dpo", "--max-steps", "3", "--max_train_samples", "2"])
    assert args.stage == "dpo" and parse_overrides(unknown, "dpo") == {"max_steps": 3, "max_train_samples": 2}
    with pytest.raises(SystemExit):
        main(["filter", "--in", "x", "--out", "y", "--max-steps", "3"])
    assert "unrecognized arguments: --max-steps 3" in capsys.readouterr().err
