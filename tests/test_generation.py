"""Seeds, the UltraChat loop, self-instruct, resumable output (with a real kill), splits and loaders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zephyr_tutorial.backends import Completion, SamplingConfig, TransformersBackend
from zephyr_tutorial.data import DataError, read_jsonl, write_jsonl
from zephyr_tutorial.filtering import filter_dialogues, structure_problem
from zephyr_tutorial.generation import (
    SECTORS,
    GenerationStats,
    SelfInstructConfig,
    UltraChatConfig,
    bootstrap_instructions,
    clean_instruction,
    clean_user_message,
    generate_ultrachat,
    grow_dialogues,
    load_seed_prompts,
    load_sft_split,
    load_ultrachat_200k,
    prompt_id_for,
    rejection_reason,
    save_sft_splits,
    shipped_sft_path,
    split_train_test,
    to_sft_row,
)
from zephyr_tutorial.generation.self_instruct import blacklist_hit, few_shot_request
from zephyr_tutorial.generation.similarity import words
from zephyr_tutorial.runtime import data_dir

REPO = Path(__file__).resolve().parents[1]


class ScriptedBackend:
    """Answers from the last message (deterministic), remembering every request it saw."""

    def __init__(self, name: str, reply=None, delay: float = 0.0):
        self.name = name
        self.reply = reply or (lambda conversation: f"{name} reply to: {conversation[-1]['content'][:40]}.")
        self.delay = delay
        self.requests: list[list[dict]] = []

    def chat(self, conversations, config=SamplingConfig()):
        time.sleep(self.delay)
        self.requests.extend(list(c) for c in conversations)
        return [Completion(text=self.reply(c), completion_tokens=7) for c in conversations]


# --------------------------------------------------------------------------- seeds


def test_shipped_seed_prompts_cover_the_three_sectors():
    seeds = load_seed_prompts(data_dir() / "seed_prompts.jsonl")
    assert len(seeds) >= 60
    by_sector = {sector: [s for s in seeds if s["sector"] == sector] for sector in SECTORS}
    assert all(len(rows) >= 15 for rows in by_sector.values())
    # assistance prompts carry a passage of their own after the instruction
    assert all(len(s["prompt"].split("\n\n", 1)) == 2 and len(s["prompt"].split("\n\n", 1)[1]) > 40
               for s in by_sector["assistance"])
    assert len({s["prompt"] for s in seeds}) == len(seeds)


def test_seed_loader_names_line_and_field(tmp_path):
    path = tmp_path / "seeds.jsonl"
    write_jsonl(path, [{"id": "a", "sector": "world", "prompt": "Why?"}, {"id": "b", "sector": "poetry", "prompt": "x"}])
    with pytest.raises(DataError, match=r"line 2, field 'sector'"):
        load_seed_prompts(path)
    assert len(load_seed_prompts(path, sectors=None)) == 2
    write_jsonl(path, [{"id": "a", "sector": "world", "prompt": "Why?"}, {"id": "a", "sector": "world", "prompt": "How?"}])
    with pytest.raises(DataError, match=r"line 2, field 'id'.*duplicate"):
        load_seed_prompts(path)


# --------------------------------------------------------------------------- the UltraChat loop


def test_loop_alternates_roles_and_keeps_the_two_roles_apart():
    # the simulated user's message depends on how far the dialogue is, so it never restates an earlier one
    assistant = ScriptedBackend("assistant")
    user = ScriptedBackend("user", reply=lambda c: f"user reply to: {c[-1]['content'][:40]} "
                                                   f"({c[-1]['content'].count('Assistant:')} replies so far)?")
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
    echo_user = ScriptedBackend("user", reply=lambda c: "  what is the ANSWER? " if "What is the answer?" in c[-1]["content"]
                                else "And why is that so?")
    assistant = ScriptedBackend("assistant", reply=lambda c: "Because of physics.")
    stats = GenerationStats()
    dialogues = grow_dialogues(["What is the answer?", "Where is Lima?"], assistant, echo_user, UltraChatConfig(turns=2),
                               stats)
    assert [len(d["messages"]) for d in dialogues] == [2, 4]
    assert dialogues[1]["messages"][2]["content"] == "And why is that so?" and stats.ended_early == 1


def test_loop_continues_given_prefixes_in_the_same_batched_calls():
    assistant, user = ScriptedBackend("assistant"), ScriptedBackend("user", reply=lambda c: "Tell me more?")
    prefix = {"messages": [{"role": "user", "content": "Old question?"}, {"role": "assistant", "content": "Old answer."}],
              "finish_reasons": ["stop"]}
    dialogues = grow_dialogues(["Old question?", "New question?"], assistant, user, UltraChatConfig(turns=2),
                               prefixes=[prefix, None])
    old, new = dialogues
    assert old["messages"][:2] == prefix["messages"] and old["finish_reasons"] == ["stop", "stop"]
    assert [m["role"] for m in old["messages"]] == [m["role"] for m in new["messages"]] == ["user", "assistant"] * 2
    # the old dialogue is not answered again: 3 assistant requests (new x2, old x1) in 2 calls, 2 simulator requests
    assert len(assistant.requests) == 3 and len(user.requests) == 2
    assert "Old answer." in user.requests[0][1]["content"] and prefix["messages"][1:] == [
        {"role": "assistant", "content": "Old answer."}], "the caller's prefix is not modified"
    with pytest.raises(ValueError, match="does not start with its prompt"):
        grow_dialogues(["Other question?"], assistant, user, UltraChatConfig(turns=2), prefixes=[prefix])


def test_generation_continues_complete_rows_of_an_earlier_run(tmp_path):
    seeds = [{"id": f"s{i}", "sector": "world", "prompt": f"Question {i}?"} for i in range(4)]

    def earlier_row(i, reasons, model="scripted"):
        return {"id": f"s{i}#0", "prompt": f"Question {i}?", "model": model, "finish_reasons": reasons,
                "messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Old {i}."}]}

    # s0: complete, continued; s1: cut at the token limit, s2: another model, s3: absent -> all three start afresh
    earlier = [earlier_row(0, ["stop"]), earlier_row(1, ["length"]), earlier_row(2, ["stop"], model="other")]
    assistant = ScriptedBackend("scripted")
    stats = generate_ultrachat(seeds, tmp_path / "out.jsonl", assistant, ScriptedBackend("user", reply=lambda c: "Why?"),
                               UltraChatConfig(turns=2), dialogues_per_seed=2, continue_from=earlier, progress=False)
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert stats.continued == 1 and stats.written == len(rows) == 8
    assert rows["s0#0"]["messages"][1]["content"] == "Old 0." and rows["s0#0"]["prefix_turns"] == 1
    assert all(rows[i]["prefix_turns"] == 0 and rows[i]["messages"][1]["content"].startswith("scripted reply")
               for i in rows if i != "s0#0")
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
        ("Here's a possible extension to the user's last response:\n\nUser: I see. So why do trees care?",
         "I see. So why do trees care?"),
        ("Here is a continuation of the conversation.", ""),
        ("Here is my follow-up question: why now?", "why now?"),
        ("What causes the seasons?\nUser: That's an excellent question! The answer", "What causes the seasons?"),
        # ...but a message that merely mentions a user or starts with "Here is" is kept whole
        ("Here is the thing about maps: why are they flat?", "Here is the thing about maps: why are they flat?"),
        ("Could the user: interface be simpler? Another user: said so.",
         "Could the user: interface be simpler? Another user: said so."),
    ],
)
def test_clean_user_message(raw, clean):
    assert clean_user_message(raw) == clean


def test_generation_with_a_real_model_writes_ultrachat_rows(tiny_model, embedded_tokenizer, tmp_path):
    backend = TransformersBackend(tiny_model, embedded_tokenizer, batch_size=4, progress=False)
    seeds = [{"id": f"s{i}", "sector": "world", "prompt": f"Question number {i}?"} for i in range(3)]
    config = UltraChatConfig(turns=2, assistant_sampling=SamplingConfig(max_new_tokens=6),
                             user_sampling=SamplingConfig(max_new_tokens=5))
    stats = generate_ultrachat(seeds, tmp_path / "out.jsonl", backend, config=config, dialogues_per_seed=2, progress=False)
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
    generate_ultrachat(seeds, tmp_path / "out.jsonl", backend, config=config, dialogues_per_seed=2, chunk_size=3,
                       progress=False)
    rows = {r["id"]: r["messages"][1]["content"] for r in read_jsonl(tmp_path / "out.jsonl")}
    assert all(rows[f"s{i}#0"] != rows[f"s{i}#1"] for i in range(3))
    # ...and a chunk is reproducible: the same run again gives the same dialogues
    generate_ultrachat(seeds, tmp_path / "again.jsonl", backend, config=config, dialogues_per_seed=2, chunk_size=3,
                       progress=False)
    assert {r["id"]: r["messages"][1]["content"] for r in read_jsonl(tmp_path / "again.jsonl")} == rows


KILLABLE_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from test_generation import ScriptedBackend
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
    generate_ultrachat(load_seed_prompts(seeds)[:n], reference, ScriptedBackend("slow"), config=UltraChatConfig(turns=2),
                       dialogues_per_seed=2, chunk_size=3, progress=False)
    rows, expected = read_jsonl(out), read_jsonl(reference)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 2 * n
    assert sorted(ids) == sorted(r["id"] for r in expected)
    assert sorted(rows, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])


# --------------------------------------------------------------------------- self-instruct


def test_self_instruct_keeps_novel_instructions_and_counts_rejections(tmp_path):
    human = ["Explain how rainbows form.", "Write a poem about the sea.", "Give tips for saving money."]
    candidates = iter([
        "Task 4: Explain how rainbows form in the sky.",  # too similar to a seed
        "Draw a picture of a horse.",  # blacklist
        "Hi.",  # too short
        "4. Describe the life cycle of a butterfly.",
        '"Suggest three names for a bakery."',
        "Describe the life cycle of a butterfly.",  # too similar to the one kept just before
        "Invent a riddle about the moon.",
        "Plan a three-day trip to Lisbon on a budget.",
        "Compare the diets of wolves and foxes.",
        "Translate a greeting into Spanish and French.",
        "Outline the rules of chess for a child.",
        "Summarize why sleep matters for memory.",
    ])
    backend = ScriptedBackend("si", reply=lambda c: next(candidates))
    config = SelfInstructConfig(requests_per_round=3, num_human_examples=2, num_generated_examples=1)
    result = bootstrap_instructions(human, backend, 3, tmp_path / "si.jsonl", config, progress=False)
    assert [r["prompt"] for r in result.kept] == ["Describe the life cycle of a butterfly.",
                                                  "Suggest three names for a bakery.", "Invent a riddle about the moon."]
    assert result.rejected == {"too similar": 2, "blacklist": 1, "too short": 1}
    # resuming asks only for the missing ones, and the kept pool is re-read from the file
    more = bootstrap_instructions(human, backend, 5, tmp_path / "si.jsonl", config, progress=False)
    rows = read_jsonl(tmp_path / "si.jsonl")
    assert len(rows) == len(more.kept) == 5 and len({r["id"] for r in rows}) == 5
    assert len({r["prompt"] for r in rows}) == 5


def test_self_instruct_rules():
    config = SelfInstructConfig()
    kept = [words("Write a short poem about the ocean at night.")]
    assert rejection_reason("Write a short poem about the ocean at dawn.", kept, config) == "too similar"
    assert rejection_reason("Compose a limerick about a forgetful wizard.", kept, config) is None
    assert rejection_reason("Create a flowchart of the process.", kept, config) == "blacklist"
    assert rejection_reason("- list three facts about owls", kept, config) == "punctuation start"
    assert rejection_reason(" ".join(["word"] * 151), [], config) == "too long"
    assert clean_instruction("**Task 9:** Plan a picnic.\n\nTask 10: more") == "Plan a picnic."


@pytest.mark.parametrize(
    "instruction, hit",
    [
        # a map or a plot that is a picture: rejected, whichever context reveals it
        ("Create a map of the hiking trails in Yosemite.", "a map"),
        ("Show me maps of Europe in 1914.", "maps of"),
        ("Sketch a treasure map for a pirate story.", "treasure map"),
        ("Label the capitals on this map.", "this map"),
        ("Design a mind map about photosynthesis.", "mind map"),
        ("Plot the 5 data points.", "Plot the 5 data"),
        ("Plot sales versus month for 2023.", "Plot sales versus"),
        ("Plot these points on a grid.", "Plot these points"),
        # plain keywords stay whole-word matches
        ("Describe the photo on the wall.", "photo"),
        ("Go to the store and buy bread.", "go to"),
        # the same words in a text task: kept
        ("Explain how to map a function over a list in Python.", None),
        ("Use the map function to square each number.", None),
        ("Explain Python's map() builtin with an example.", None),
        ("Map each country to its capital city.", None),
        ("Map out a study plan for the final exam.", None),
        ("Explain what a hash map is and when to use one.", None),
        ("Explain the difference between a map and a set in C++.", None),
        ("Describe the roadmap for learning Rust.", None),
        ("Summarize the mapping between codons and amino acids.", None),
        ("Explain the plot of Hamlet in three sentences.", None),
        ("Describe the main plot points of Dune.", None),
        ("Write a plot twist for a mystery novel.", None),
        ("Imagine a profile for a new superhero.", None),  # contains "image"/"file" only inside words
    ],
)
def test_blacklist_matches_words_in_context(instruction, hit):
    config = SelfInstructConfig()
    assert blacklist_hit(instruction, config) == hit
    assert (rejection_reason(instruction, [], config) == "blacklist") == (hit is not None)


def test_few_shot_request_mixes_human_and_generated_examples():
    import random

    config = SelfInstructConfig(num_human_examples=3, num_generated_examples=2)
    request = few_shot_request([f"human {i}" for i in range(10)], ["machine a", "machine b", "machine c"], config,
                               random.Random(0))
    text = request[0]["content"]
    assert text.count("human") == 3 and text.count("machine") == 2 and "Write task 6" in text


# --------------------------------------------------------------------------- splits and loaders


def sft_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        prompt = f"Question {i}?"
        rows.append({"prompt": prompt, "prompt_id": prompt_id_for(prompt), "messages": [
            {"role": "user", "content": prompt}, {"role": "assistant", "content": f"The answer is {i}."}]})
    return rows


def test_split_is_deterministic_grouped_and_near_the_fraction():
    rows = sft_rows(400)
    rows += [dict(r) for r in rows[:50]]  # a second dialogue for 50 prompts
    train, test = split_train_test(rows, test_fraction=0.2, seed=3)
    assert (train, test) == split_train_test(rows, test_fraction=0.2, seed=3)
    assert len(train) + len(test) == len(rows)
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    assert 0.14 < len(test) / len(rows) < 0.26
    # adding rows never moves an existing row to the other side
    train_more, _ = split_train_test(rows + sft_rows(420)[400:], test_fraction=0.2, seed=3)
    assert all(r in train_more for r in train)


def test_saved_splits_load_with_datasets_and_our_loader(tmp_path):
    from datasets import load_dataset

    rows = [dict(r, extra="dropped") for r in sft_rows(20)]
    paths = save_sft_splits(rows[:15], rows[15:], tmp_path)
    dataset = load_dataset("json", data_files={k: str(v) for k, v in paths.items()})
    assert dataset["train_sft"].num_rows == 15 and dataset["test_sft"].num_rows == 5
    assert set(dataset["train_sft"].column_names) == {"prompt", "prompt_id", "messages"}
    assert load_sft_split(paths["test_sft"])[0]["messages"][1]["content"] == "The answer is 15."


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_ultrachat_loader_reads_a_local_copy_of_the_schema(tmp_path, streaming, file_format):
    from datasets import Dataset

    rows = sft_rows(30)
    if file_format == "jsonl":
        write_jsonl(tmp_path / "train_sft.jsonl", rows)
    else:
        Dataset.from_list(rows).to_parquet(str(tmp_path / "train_sft.parquet"))
    loaded = load_ultrachat_200k(tmp_path, split="train_sft", limit=12, streaming=streaming)
    assert loaded == rows[:12]


def test_ultrachat_loader_rejects_bad_rows(tmp_path):
    rows = sft_rows(3)
    rows[1]["messages"] = [{"role": "user", "content": 5}]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"line 2, field 'messages\[0\].content'"):
        load_ultrachat_200k(path, streaming=False)


def test_ultrachat_loader_streams_the_hub_dataset_by_id(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return iter(sft_rows(100))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = load_ultrachat_200k(limit=5)
    assert calls == [("HuggingFaceH4/ultrachat_200k", {"split": "train_sft", "streaming": True})]
    assert len(loaded) == 5


def test_shipped_sft_data_is_clean_and_big_enough():
    train, test = load_sft_split(shipped_sft_path("train_sft")), load_sft_split(shipped_sft_path("test_sft"))
    raw = read_jsonl(data_dir() / "sft" / "raw_generated.jsonl")
    # the cpu profile trains on at most 64 rows (max_train_samples) and evaluates held-out prompts from test_sft
    assert len(train) >= 60 and len(test) >= 5
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in test}
    for row in train + test:
        assert set(row) == {"prompt", "prompt_id", "messages"}
        assert structure_problem(row["messages"]) is None and row["prompt"] == row["messages"][0]["content"]
        assert row["prompt_id"] == prompt_id_for(row["prompt"])
    # multi-turn: the loop ran with --turns 2; only dialogues whose simulated user gave up stay single-turn
    turns = [sum(m["role"] == "assistant" for m in row["messages"]) for row in train + test]
    assert set(turns) <= {1, 2} and turns.count(2) >= 0.8 * len(turns)
    assert sum(sum(m["role"] == "assistant" for m in row["messages"]) == 2 for row in test) >= 1
    for row in raw:  # the raw file records one finish reason per assistant reply
        assert len(row["finish_reasons"]) == sum(m["role"] == "assistant" for m in row["messages"])
    # the splits are exactly what the filter keeps from the raw file, split as data/sft/README.md says
    kept, _ = filter_dialogues(raw)
    expected_train, expected_test = split_train_test([to_sft_row(r) for r in kept], test_fraction=0.1, seed=42)
    assert (train, test) == (expected_train, expected_test)
    # and filtering the shipped rows again removes nothing
    _, report = filter_dialogues(train + test)
    assert report.output_rows == len(train) + len(test)


# --------------------------------------------------------------------------- the command line


def run_cli(argv: list[str]) -> int:
    import argparse

    from zephyr_tutorial.generation import register_cli

    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


def test_filter_command_prints_counts_and_writes_splits(tmp_path, capsys):
    rows = sft_rows(40)
    rows[3]["messages"][1]["content"] = "As an AI language model, I cannot answer."
    rows.append(dict(rows[0]))
    write_jsonl(tmp_path / "raw.jsonl", rows)
    code = run_cli(["filter", "--in", str(tmp_path / "raw.jsonl"), "--out", str(tmp_path / "clean.jsonl"),
                    "--splits", str(tmp_path / "sft"), "--report", str(tmp_path / "report.json")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "disclaimer" in printed and "exact duplicate" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["removed"]["disclaimer"] == 1 and report["removed"]["exact duplicate"] == 1 and report["kept"] == 39
    train, test = read_jsonl(tmp_path / "sft" / "train_sft.jsonl"), read_jsonl(tmp_path / "sft" / "test_sft.jsonl")
    assert len(train) + len(test) == len(read_jsonl(tmp_path / "clean.jsonl")) == 39


def test_filter_command_reports_a_bad_file(tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "p", "prompt_id": "x", "messages": []}\n')
    assert run_cli(["filter", "--in", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 1
    assert "line 1, field 'messages'" in capsys.readouterr().err


def test_generate_command_with_an_openai_compatible_endpoint_resumes(tmp_path, openai_server, monkeypatch, capsys):
    base_url, seen_keys = openai_server.base_url, openai_server.authorizations
    monkeypatch.setenv("MY_TEST_KEY", "sk-test-secret")
    monkeypatch.setenv("ZEPHYR_PROFILE", "cpu")
    out = tmp_path / "dialogues.jsonl"
    argv = ["generate", "--seeds", str(data_dir() / "seed_prompts.jsonl"), "--out", str(out), "--backend", "openai",
            "--model", "teacher", "--base-url", base_url, "--api-key-env", "MY_TEST_KEY", "--turns", "2", "--limit", "3"]
    assert run_cli(argv) == 0
    rows = read_jsonl(out)
    assert len(rows) == 3 and all(len(r["messages"]) == 4 for r in rows)
    assert rows[0]["messages"][1]["content"].startswith("Echo (teacher)")
    assert set(seen_keys) == {"Bearer sk-test-secret"}
    assert "sk-test-secret" not in out.read_text() and "sk-test-secret" not in capsys.readouterr().out
    # a larger --limit on the same file only adds the missing dialogues
    assert run_cli(argv[:-1] + ["5"]) == 0
    assert [r["id"] for r in read_jsonl(out)] == [f"{s['id']}#0" for s in load_seed_prompts(data_dir() / "seed_prompts.jsonl")[:5]]
    assert "2 dialogues written (3 were already there)" in capsys.readouterr().out


def test_generate_command_continues_single_turn_rows(tmp_path, openai_server, monkeypatch, capsys):
    base_url = openai_server.base_url
    monkeypatch.setenv("ZEPHYR_PROFILE", "cpu")
    common = ["generate", "--seeds", str(data_dir() / "seed_prompts.jsonl"), "--backend", "openai", "--model", "teacher",
              "--base-url", base_url, "--limit", "3"]
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
    from zephyr_tutorial.generation.cli import build_backend
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
