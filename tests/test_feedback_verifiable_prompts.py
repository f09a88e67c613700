"""The verifiable prompts: deterministic, disjoint from the SFT seeds, every check known, and the shipped file."""

from collections import Counter

from zephyr_tutorial.evaluation.rule_judge import CHECKS, PromptSpec, assess, read_verifiable_prompts
from zephyr_tutorial.feedback.verifiable_prompts import build_verifiable_prompts
from zephyr_tutorial.runtime import data_dir
from zephyr_tutorial.schemas import prompt_id_for


def test_build_is_deterministic_and_unique():
    first, second = build_verifiable_prompts(seed=0), build_verifiable_prompts(seed=0)
    assert first == second
    assert len({row["prompt"] for row in first}) == len(first)
    assert all(row["prompt_id"] == prompt_id_for(row["prompt"]) for row in first)
    assert build_verifiable_prompts(seed=1) != first  # the seed draws limits, list lengths and sums


def test_every_family_has_held_out_prompts_and_known_checks():
    rows = build_verifiable_prompts()
    splits = Counter(row["split"] for row in rows)
    assert splits["train"] >= 300 and splits["test"] >= 60
    assert all(set(row["checks"]) <= set(CHECKS) for row in rows)
    for row in rows:  # every spec runs through every rule without error
        assess("An answer.", PromptSpec(row["prompt"], row["family"], row["checks"], row["reference"]))


def test_arithmetic_references_are_right():
    for row in build_verifiable_prompts():
        if row["family"] == "arithmetic":
            words = row["prompt"].split()
            a, operation, b = int(words[2]), words[3], int(words[4].rstrip("?"))
            assert int(row["reference"]) == {"plus": a + b, "minus": a - b, "times": a * b}[operation]


def test_shipped_file_is_what_the_builder_writes():
    shipped = read_verifiable_prompts(data_dir() / "verifiable_prompts.jsonl")
    assert shipped == build_verifiable_prompts()


def test_disjoint_from_the_sft_seeds_and_data():
    prompts = {" ".join(row["prompt"].lower().split()) for row in build_verifiable_prompts()}
    seeds = {" ".join(line.lower().split()) for line in _sft_prompts()}
    assert prompts.isdisjoint(seeds)


def _sft_prompts():
    from zephyr_tutorial.data import read_jsonl

    for row in read_jsonl(data_dir() / "seed_prompts.jsonl"):
        yield row["prompt"]
    for name in ("train_sft.jsonl", "test_sft.jsonl"):
        for row in read_jsonl(data_dir() / "sft" / name):
            yield row["prompt"]
