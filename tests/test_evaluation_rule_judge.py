"""The rule-based judge: every check in both directions, the rubric, the judge interface, hostile input."""

from __future__ import annotations

import json
import time

import pytest

from zephyr_tutorial.evaluation.items import PairwiseItem, SingleItem
from zephyr_tutorial.evaluation.rule_judge import (
    CHECKS,
    PromptSpec,
    RuleJudge,
    assess,
    check_constraints,
    is_finished,
    loops,
    matches_reference,
    on_topic,
    prompt_catalog,
    read_verifiable_prompts,
    rule_rating,
    sentence_count,
)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Rainbows form when light bends in raindrops.", 1),
        ("It rains. Light bends! Colours appear?", 3),
        ("Bees make honey from nectar, e.g. from clover.", 1),  # an abbreviation is not a sentence end
        ("Pi is about 3.14 and that is enough.", 1),  # nor is a decimal point
        ("No final stop here", 1),
        ("Two sentences. And a tail without a stop", 2),
        ("", 0),
    ],
)
def test_sentence_count(text, count):
    assert sentence_count(text) == count


# name, argument, a text that passes, a text that fails
CHECK_CASES = [
    ("max_sentences", 1, "Ice floats because it is less dense than water.", "Ice floats. It is less dense."),
    ("max_words", 5, "Ice is less dense.", "Ice floats because it is less dense than liquid water."),
    ("lowercase", True, "ice floats because it is light.", "Ice floats because it is light."),
    ("ends_with", "Hope this helps!", "Drink water often. Hope this helps!", "Drink water often. Hope it helps."),
    ("starts_with", "Sure", "Sure, start with ten minutes a day.", "Start with ten minutes a day, sure."),
    ("bullets", 3, "- apple\n- pear\n- plum", "1. apple\n2. pear\n3. plum"),
    ("bullets", 3, "- apple\n- pear\n- plum", "- apple\n- pear"),
    ("bullets", 3, "* apple\n* pear\n* plum", "Here you go:\n- apple\n- pear\n- plum"),
    ("comma_items", 3, "red, green, blue", "red, green"),
    ("comma_items", 3, "red, green and blue.", "red\ngreen\nblue"),
    ("include", ["sand"], "The sand was warm.", "The beach was warm."),
    ("exclude", ["water"], "Rain falls from clouds.", "Rain is water falling from clouds."),
    ("exclude", ["star"], "The night sky is dark.", "Stars shine at night."),  # case and plural
    ("number_only", True, "42", "The answer is 42."),
    ("number_only", True, "-7.", "minus seven"),
]


@pytest.mark.parametrize(("name", "argument", "good", "bad"), CHECK_CASES)
def test_every_check_passes_and_fails(name, argument, good, bad):
    assert CHECKS[name](good, argument) is True
    assert CHECKS[name](bad, argument) is False


def test_every_check_has_a_case_in_both_directions():
    assert {name for name, *_ in CHECK_CASES} == set(CHECKS)


def test_unknown_check_is_an_error_naming_it():
    with pytest.raises(KeyError, match="max_emojis"):
        check_constraints("hi", {"max_emojis": 1})


@pytest.mark.parametrize(
    ("text", "reference", "expected"),
    [
        ("46 minus 12 is 34", "34", True),  # the last number counts, not an operand
        ("46 minus 12 is 21.", "34", False),
        ("1,024", "1024", True),
        ("Yes, it is.", "Yes", True),
        ("No.", "Yes", False),
        ("The capital of Peru is Lima.", "Lima", True),
        ("It is Cusco.", "Lima", False),
        ("anything", None, None),
    ],
)
def test_matches_reference(text, reference, expected):
    assert matches_reference(text, reference) is expected


@pytest.mark.parametrize(
    ("text", "finished"),
    [
        ("The sky is blue because air scatters blue light.", True),
        ('He said "stop."', True),
        ("- apple\n- pear\n- plum", True),
        ("Paris", True),
        ("42", True),
        ("The sky is blue because air scatters blue light more than red light and so the", False),
        ("Owls hunt at night and", False),
        ("Red, green,", False),
        ("", False),
    ],
)
def test_is_finished(text, finished):
    assert is_finished(text) is finished


def test_loops_and_topic():
    assert loops("C++ is a superset of C. " * 4)
    assert loops("Violin\nViolin\nViolin\nViolin")
    assert not loops("Cats purr when they are content, and sometimes when they are stressed or hurt.")
    assert on_topic("Honey is made from nectar.", "Explain how bees make honey in one sentence.")
    assert not on_topic("C++ is a programming language.", "Explain how bees make honey in one sentence.")


def test_rubric_rewards_the_answer_that_follows_the_instruction():
    spec = PromptSpec(
        "What is the capital of Peru? Answer with the city name only.", "capital", {"max_words": 2}, "Lima"
    )
    best = rule_rating("Lima", spec)
    chatty = rule_rating("The capital of Peru is Lima.", spec)
    wrong = rule_rating("Cusco", spec)
    assert best.scores == {"instruction_following": 5, "honesty": 5, "truthfulness": 5, "helpfulness": 5}
    assert chatty.scores["instruction_following"] == 1 and chatty.scores["truthfulness"] == 5
    assert wrong.scores["truthfulness"] == 1 and wrong.scores["instruction_following"] == 3
    assert best.mean > chatty.mean > wrong.mean


def test_rubric_penalties():
    spec = PromptSpec("In one sentence, explain why we need sleep.", "one_sentence", {"max_sentences": 1})
    clean = rule_rating("We need sleep so the body and brain can rest and repair.", spec)
    disclaimer = rule_rating("As an AI, I don't have personal needs, but people need sleep to rest.", spec)
    invented = rule_rating("Sleep lets the brain rest.\n<|user|>\nThanks!", spec)
    cut = rule_rating("Sleep lets the body repair muscles and the brain store memories from the day so", spec)
    parrot = rule_rating("Here is why we need sleep in one sentence.", spec)
    assert clean.scores == {"instruction_following": 5, "honesty": 5, "truthfulness": 4, "helpfulness": 5}
    assert disclaimer.scores["honesty"] == 2
    assert invented.scores["honesty"] == 1
    assert cut.scores["helpfulness"] == 3 and cut.scores["instruction_following"] == 2
    assert parrot.scores["helpfulness"] == 3
    assert rule_rating("", spec).mean == 1
    assert json.loads(cut.rationale)["finished"] is False


def test_judge_interface_rate_compare_grade():
    catalog = prompt_catalog(
        [
            {
                "prompt": "Answer with Yes or No only. Is the Sun a star?",
                "family": "yes_no",
                "checks": {"max_words": 1},
                "reference": "Yes",
            }
        ]
    )
    judge = RuleJudge(catalog)
    [[good, bad]] = judge.rate([("p1", "Answer with Yes or No only. Is the Sun a star?", ["Yes", "No"])])
    assert good.mean > bad.mean
    items = [
        PairwiseItem("p1", "Answer with Yes or No only. Is the Sun a star?", "No", "Yes"),
        PairwiseItem("p2", "Answer with Yes or No only. Is the Sun a star?", "Yes", "Yes"),
    ]
    report = judge.compare(items, swap=True)
    assert report.verdicts == {"p1": "b", "p2": "tie"}
    assert report.flip_rate == 0
    grades = judge.grade([SingleItem("s1", "Answer with Yes or No only. Is the Sun a star?", "Yes")])
    assert grades[0].rating == 10


def test_rules_judge_is_registered_and_reads_the_shipped_catalogue():
    from zephyr_tutorial.evaluation import make_judge

    judge = make_judge("rules")
    assert isinstance(judge, RuleJudge) and len(judge.catalog) >= 360
    prompt = next(p for p, spec in judge.catalog.items() if spec.family == "capital")
    city = judge.catalog[prompt].reference
    [[right, chatty]] = judge.rate([("c", prompt, [city, f"I think the capital is probably {city}, yes"])])
    assert right.mean > chatty.mean


def test_unknown_prompt_gets_the_generic_rules():
    judge = RuleJudge()
    [[finished, cut]] = judge.rate([("x", "Tell me about owls.", ["Owls hunt at night.", "Owls hunt at night and"])])
    assert finished.mean > cut.mean


@pytest.mark.parametrize(
    "hostile",
    ["{" * 20_000, "a" * 10_000_000, "\u0000\ud800" * 1000, "[[A]]" * 50_000, "As an AI " * 100_000],
)
def test_hostile_answers_are_rated_fast_without_error(hostile):
    spec = PromptSpec("In one sentence, explain owls.", "one_sentence", {"max_sentences": 1, "include": ["owl"]})
    start = time.perf_counter()
    rating = rule_rating(hostile, spec)
    assert time.perf_counter() - start < 1.0
    assert 1 <= rating.mean <= 5


def test_shipped_prompt_file_is_valid_and_its_checks_are_known(tmp_path):
    from zephyr_tutorial.runtime import data_dir

    rows = read_verifiable_prompts(data_dir() / "verifiable_prompts.jsonl")
    assert len({r["prompt_id"] for r in rows}) == len(rows)
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    assert len(train) >= 300 and len(test) >= 60
    for row in rows:
        assess("An answer.", PromptSpec(row["prompt"], row["family"], row["checks"], row.get("reference")))


def test_bad_prompt_file_names_file_line_and_field(tmp_path):
    from zephyr_tutorial.data import DataError

    path = tmp_path / "prompts.jsonl"
    row = {"id": "x", "prompt_id": "p", "prompt": "Hi", "family": "f", "checks": {"max_emojis": 1}}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'checks'"):
        read_verifiable_prompts(path)
