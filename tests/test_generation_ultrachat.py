"""The UltraChat loop: roles, batching, continuation, resuming after a kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zephyr_tutorial.backends import SamplingConfig, TransformersBackend, failed_completion
from zephyr_tutorial.data import read_jsonl
from zephyr_tutorial.generation import (
    GenerationStats,
    UltraChatConfig,
    clean_user_message,
    generate_ultrachat,
    grow_dialogues,
    load_seed_prompts,
)
from zephyr_tutorial.generation.filtering import filter_dialogues, structure_problem
from zephyr_tutorial.runtime import data_dir
from zephyr_tutorial.schemas import prompt_id_for

from samples import ScriptedBackend

REPO = Path(__file__).resolve().parents[1]


def test_loop_alternates_roles_and_keeps_the_two_roles_apart():
    # the simulated user's message depends on how far the dialogue is, so it never restates an earlier one
    assistant = ScriptedBackend("assistant")
    user = ScriptedBackend(
        "user",
        reply=lambda c: (
            f"user reply to: {c[-1]['content'][:40]} ({c[-1]['content'].count('Assistant:')} replies so far)?"
        ),
    )
    config = UltraChatConfig(turns=3, assistant_system_prompt="ASSISTANT-SYS", user_system_prompt="USER-SYS")
    dialogues = grow_dialogues(["First question?", "Second question?"], assistant, user, config)
    for dialogue in dialogues:
        assert [m["role"] for m in dialogue["messages"]] == ["user", "assistant"] * 3
        assert structure_problem(dialogue["messages"]) is None
        assert dialogue["finish_reasons"] == ["stop"] * 3
    # the assistant sees the real chat under its own system prompt; the simulator sees a transcript under another
    assert len(assistant.requests) == 6 and len(user.requests) == 4
    assert all(r[0] == {"role": "system", "content": "ASSISTANT-SYS"} for r in assistant.requests)
    assert all(r[0]["content"] == "USER-SYS" and len(r) == 2 for r in user.requests)
    assert "User: First question?" in user.requests[0][1]["content"]
    assert "Assistant: assistant reply to: First question?." in user.requests[0][1]["content"]
    assert dialogues[0]["messages"][2]["content"].startswith("user reply to: Here is a conversation")


def test_loop_ends_a_dialogue_whose_simulated_user_only_repeats_the_question():
    echo_user = ScriptedBackend(
        "user",
        reply=lambda c: (
            "  what is the ANSWER? " if "What is the answer?" in c[-1]["content"] else "And why is that so?"
        ),
    )
    assistant = ScriptedBackend("assistant", reply=lambda c: "Because of physics.")
    stats = GenerationStats()
    dialogues = grow_dialogues(
        ["What is the answer?", "Where is Lima?"], assistant, echo_user, UltraChatConfig(turns=2), stats
    )
    assert [len(d["messages"]) for d in dialogues] == [2, 4]
    assert dialogues[1]["messages"][2]["content"] == "And why is that so?" and stats.ended_early == 1


def test_loop_continues_given_prefixes_in_the_same_batched_calls():
    assistant, user = ScriptedBackend("assistant"), ScriptedBackend("user", reply=lambda c: "Tell me more?")
    prefix = {
        "messages": [{"role": "user", "content": "Old question?"}, {"role": "assistant", "content": "Old answer."}],
        "finish_reasons": ["stop"],
    }
    dialogues = grow_dialogues(
        ["Old question?", "New question?"], assistant, user, UltraChatConfig(turns=2), prefixes=[prefix, None]
    )
    old, new = dialogues
    assert old["messages"][:2] == prefix["messages"] and old["finish_reasons"] == ["stop", "stop"]
    assert [m["role"] for m in old["messages"]] == [m["role"] for m in new["messages"]] == ["user", "assistant"] * 2
    # the old dialogue is not answered again: 3 assistant requests (new x2, old x1) in 2 calls, 2 simulator requests
    assert len(assistant.requests) == 3 and len(user.requests) == 2
    assert "Old answer." in user.requests[0][1]["content"] and prefix["messages"][1:] == [
        {"role": "assistant", "content": "Old answer."}
    ], "the caller's prefix is not modified"
    with pytest.raises(ValueError, match="does not start with its prompt"):
        grow_dialogues(["Other question?"], assistant, user, UltraChatConfig(turns=2), prefixes=[prefix])


def test_generation_continues_complete_rows_of_an_earlier_run(tmp_path):
    seeds = [{"id": f"s{i}", "sector": "world", "prompt": f"Question {i}?"} for i in range(4)]

    def earlier_row(i, reasons, model="scripted"):
        return {
            "id": f"s{i}#0",
            "prompt": f"Question {i}?",
            "model": model,
            "finish_reasons": reasons,
            "messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Old {i}."}],
        }

    # s0: complete, continued; s1: cut at the token limit, s2: another model, s3: absent -> all three start afresh
    earlier = [earlier_row(0, ["stop"]), earlier_row(1, ["length"]), earlier_row(2, ["stop"], model="other")]
    assistant = ScriptedBackend("scripted")
    stats = generate_ultrachat(
        seeds,
        tmp_path / "out.jsonl",
        assistant,
        ScriptedBackend("user", reply=lambda c: "Why?"),
        UltraChatConfig(turns=2),
        dialogues_per_seed=2,
        continue_from=earlier,
        progress=False,
    )
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert stats.continued == 1 and stats.written == len(rows) == 8
    assert rows["s0#0"]["messages"][1]["content"] == "Old 0." and rows["s0#0"]["prefix_turns"] == 1
    assert all(
        rows[i]["prefix_turns"] == 0 and rows[i]["messages"][1]["content"].startswith("scripted reply")
        for i in rows
        if i != "s0#0"
    )
    assert all(len(r["messages"]) == 4 and len(r["finish_reasons"]) == 2 for r in rows.values())
    assert len(assistant.requests) == 2 * 8 - 1


def test_loop_stops_a_dialogue_when_the_simulated_user_says_nothing():
    silent_user = ScriptedBackend("user", reply=lambda c: '  User: "" ' if "Second" in c[-1]["content"] else "More?")
    dialogues = grow_dialogues(["First?", "Second?"], ScriptedBackend("a"), silent_user, UltraChatConfig(turns=2))
    assert len(dialogues[0]["messages"]) == 4 and len(dialogues[1]["messages"]) == 2
    assert dialogues[1]["messages"][-1]["role"] == "assistant"


@pytest.mark.parametrize(
    "raw, clean",
    [
        ('User: "Can you make it shorter?"', "Can you make it shorter?"),
        ("**Follow-up question:** Why is that?", "Why is that?"),
        ("What about winter?\n\nAssistant: In winter...", "What about winter?"),
        ("  ", ""),
        # small simulators talk about the message, or go on to write the next turns themselves
        (
            "Here's a possible extension to the user's last response:\n\nUser: I see. So why do trees care?",
            "I see. So why do trees care?",
        ),
        ("Here is a continuation of the conversation.", ""),
        ("Here is my follow-up question: why now?", "why now?"),
        ("What causes the seasons?\nUser: That's an excellent question! The answer", "What causes the seasons?"),
        # ...but a message that merely mentions a user or starts with "Here is" is kept whole
        ("Here is the thing about maps: why are they flat?", "Here is the thing about maps: why are they flat?"),
        (
            "Could the user: interface be simpler? Another user: said so.",
            "Could the user: interface be simpler? Another user: said so.",
        ),
    ],
)
def test_clean_user_message(raw, clean):
    assert clean_user_message(raw) == clean


def test_generation_with_a_real_model_writes_ultrachat_rows(tiny_model, embedded_tokenizer, tmp_path):
    backend = TransformersBackend(tiny_model, embedded_tokenizer, batch_size=4, progress=False)
    seeds = [{"id": f"s{i}", "sector": "world", "prompt": f"Question number {i}?"} for i in range(3)]
    config = UltraChatConfig(
        turns=2, assistant_sampling=SamplingConfig(max_new_tokens=6), user_sampling=SamplingConfig(max_new_tokens=5)
    )
    stats = generate_ultrachat(
        seeds, tmp_path / "out.jsonl", backend, config=config, dialogues_per_seed=2, progress=False
    )
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert stats.written == len(rows) == 6 and stats.generated_tokens > 0
    assert [r["id"] for r in rows] == [f"s{i}#{k}" for k in range(2) for i in range(3)]
    for row in rows:
        assert row["prompt_id"] == prompt_id_for(row["prompt"]) and row["messages"][0]["content"] == row["prompt"]
        assert len(row["finish_reasons"]) == sum(m["role"] == "assistant" for m in row["messages"])
        # a random model never stops on its own within 6 tokens: the truncation filter must see that
        assert set(row["finish_reasons"]) == {"length"}
    _, report = filter_dialogues(rows)
    assert dict((n, r) for n, r, _ in report.as_rows())["truncated"] + report.output_rows <= 6


def test_samples_of_one_seed_differ_even_in_identical_chunks(tiny_model, embedded_tokenizer, tmp_path):
    # chunk_size = number of seeds: the chunk of sample 0 and the chunk of sample 1 hold the same prompts in the
    # same order; with one seed for every chunk, batched sampling would draw the same dialogues twice
    backend = TransformersBackend(tiny_model, embedded_tokenizer, batch_size=4, progress=False)
    seeds = [{"id": f"s{i}", "sector": "world", "prompt": f"Question number {i}?"} for i in range(3)]
    config = UltraChatConfig(turns=1, assistant_sampling=SamplingConfig(max_new_tokens=8, temperature=1.0, seed=0))
    generate_ultrachat(
        seeds, tmp_path / "out.jsonl", backend, config=config, dialogues_per_seed=2, chunk_size=3, progress=False
    )
    rows = {r["id"]: r["messages"][1]["content"] for r in read_jsonl(tmp_path / "out.jsonl")}
    assert all(rows[f"s{i}#0"] != rows[f"s{i}#1"] for i in range(3))
    # ...and a chunk is reproducible: the same run again gives the same dialogues
    generate_ultrachat(
        seeds, tmp_path / "again.jsonl", backend, config=config, dialogues_per_seed=2, chunk_size=3, progress=False
    )
    assert {r["id"]: r["messages"][1]["content"] for r in read_jsonl(tmp_path / "again.jsonl")} == rows


KILLABLE_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from samples import ScriptedBackend
from zephyr_tutorial.generation import UltraChatConfig, generate_ultrachat, load_seed_prompts
seeds = load_seed_prompts({seeds!r})[:{n}]
generate_ultrachat(seeds, {out!r}, ScriptedBackend("slow", delay={delay}), config=UltraChatConfig(turns=2),
                   dialogues_per_seed=2, chunk_size=3, progress=False)
"""


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_killed_run_resumes_without_duplicates_or_losses(tmp_path):
    seeds, n = str(data_dir() / "seed_prompts.jsonl"), 10
    out = tmp_path / "killed.jsonl"
    script = KILLABLE_RUN.format(tests=str(Path(__file__).parent), seeds=seeds, n=n, out=str(out), delay=0.15)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.time() + 60
    while _count_lines(out) < 4 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written_before_kill = _count_lines(out)
    assert 4 <= written_before_kill < 2 * n, "the kill must land mid-run"
    # simulate a kill in the middle of writing a row: a partial last line
    with open(out, "a", encoding="utf-8") as handle:
        handle.write('{"id": "partial-row", "prom')

    resumed = subprocess.run([sys.executable, "-c", script.replace("delay=0.15", "delay=0.0")], cwd=REPO, timeout=120)
    assert resumed.returncode == 0
    reference = tmp_path / "reference.jsonl"
    generate_ultrachat(
        load_seed_prompts(seeds)[:n],
        reference,
        ScriptedBackend("slow"),
        config=UltraChatConfig(turns=2),
        dialogues_per_seed=2,
        chunk_size=3,
        progress=False,
    )
    rows, expected = read_jsonl(out), read_jsonl(reference)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 2 * n
    assert sorted(ids) == sorted(r["id"] for r in expected)
    assert sorted(rows, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])


def test_the_loop_records_how_every_simulated_user_turn_ended(tmp_path):
    from zephyr_tutorial.backends import Completion

    class CutUser(ScriptedBackend):
        """A user simulator whose follow-ups to the second prompt hit the token limit."""

        def chat(self, conversations, config=SamplingConfig()):
            replies = super().chat(conversations, config)
            return [
                Completion(
                    r.text, completion_tokens=7, finish_reason="length" if "Second" in c[-1]["content"] else "stop"
                )
                for r, c in zip(replies, conversations)
            ]

    user = CutUser("user", reply=lambda c: f"Why {c[-1]['content'].count('Assistant:')}?")
    seeds = [{"id": "a", "prompt": "First question?"}, {"id": "b", "prompt": "Second question?"}]
    generate_ultrachat(
        seeds, tmp_path / "out.jsonl", ScriptedBackend("assistant"), user, UltraChatConfig(turns=3), progress=False
    )
    first, second = read_jsonl(tmp_path / "out.jsonl")
    assert first["user_finish_reasons"] == ["stop", "stop"] and second["user_finish_reasons"] == ["length", "length"]
    assert len(first["finish_reasons"]) == 3 and len(first["user_finish_reasons"]) == 2  # the seed has none
    kept, report = filter_dialogues([first, second])
    assert [r.reason for r in report.rejects] == ["simulated user turn 1 hit the token limit"]
    assert kept[0]["prompt_id"] == first["prompt_id"] and len(kept) == 1


class FailingFor(ScriptedBackend):
    """A scripted backend whose request fails (as :class:`~zephyr_tutorial.backends.OpenAIBackend` reports an
    HTTP 400: a failed completion, not an exception) whenever the last message contains one of ``failing``."""

    def __init__(self, name, failing: set[str], reply=None):
        super().__init__(name, reply)
        self.failing = failing

    def chat(self, conversations, config=SamplingConfig()):
        replies = super().chat(conversations, config)
        return [
            failed_completion("BadRequestError: HTTP 400: blocked")
            if any(word in c[-1]["content"] for word in self.failing)
            else reply
            for c, reply in zip(conversations, replies)
        ]


@pytest.mark.parametrize("role", ["assistant", "user simulator"])
def test_a_failed_request_is_a_counted_missing_dialogue_and_the_rerun_completes_it(role, tmp_path):
    """Before: the failed reply was written as an empty assistant message (or ended the dialogue early as if the
    simulated user had nothing to say), and its id counted as done, so no rerun ever asked again."""
    seeds = [{"id": f"s{i}", "sector": "world", "prompt": f"Question {i}?"} for i in range(4)]
    failing = {"Question 2?"}
    assistant = FailingFor("a", failing if role == "assistant" else set())
    user = FailingFor("u", failing if role == "user simulator" else set(), reply=lambda c: "Why?")
    out = tmp_path / "out.jsonl"
    stats = generate_ultrachat(seeds, out, assistant, user, UltraChatConfig(turns=2), progress=False)
    assert stats.written == 3 and stats.ended_early == 0 and list(stats.failed) == ["s2#0"]
    assert "HTTP 400: blocked" in stats.failed["s2#0"]
    rows = read_jsonl(out)
    assert sorted(r["id"] for r in rows) == ["s0#0", "s1#0", "s3#0"]
    assert all(len(r["messages"]) == 4 and m["content"] for r in rows for m in r["messages"])
    failing.clear()
    again = generate_ultrachat(seeds, out, assistant, user, UltraChatConfig(turns=2), progress=False)
    assert (again.already_done, again.written, again.failed) == (3, 1, {})
    assert sorted(r["id"] for r in read_jsonl(out)) == ["s0#0", "s1#0", "s2#0", "s3#0"]
