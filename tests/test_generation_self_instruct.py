"""Self-instruct: novelty filter, rules, blacklist, few-shot requests."""

from __future__ import annotations

import pytest

from zephyr_tutorial.data import read_jsonl
from zephyr_tutorial.generation import (
    SelfInstructConfig,
    bootstrap_instructions,
    clean_instruction,
    rejection_reason,
)
from zephyr_tutorial.generation.self_instruct import blacklist_hit, few_shot_request
from zephyr_tutorial.generation.similarity import words

from samples import ScriptedBackend


def test_self_instruct_keeps_novel_instructions_and_counts_rejections(tmp_path):
    human = ["Explain how rainbows form.", "Write a poem about the sea.", "Give tips for saving money."]
    candidates = iter(
        [
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
        ]
    )
    backend = ScriptedBackend("si", reply=lambda c: next(candidates))
    config = SelfInstructConfig(requests_per_round=3, num_human_examples=2, num_generated_examples=1)
    result = bootstrap_instructions(human, backend, 3, tmp_path / "si.jsonl", config, progress=False)
    assert [r["prompt"] for r in result.kept] == [
        "Describe the life cycle of a butterfly.",
        "Suggest three names for a bakery.",
        "Invent a riddle about the moon.",
    ]
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
    request = few_shot_request(
        [f"human {i}" for i in range(10)], ["machine a", "machine b", "machine c"], config, random.Random(0)
    )
    text = request[0]["content"]
    assert text.count("human") == 3 and text.count("machine") == 2 and "Write task 6" in text


def test_novelty_filter_decides_the_same_with_the_rapidfuzz_index():
    import random

    from zephyr_tutorial.generation.similarity import RougeLIndex

    rng = random.Random(2)
    vocabulary = "write a short poem story about the ocean".split()  # few words: many candidates resemble kept ones
    texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 9))).capitalize() for _ in range(300)]
    config = SelfInstructConfig()
    kept_lists, index = [], RougeLIndex()
    decisions = []
    for text in texts:
        reference, fast = rejection_reason(text, kept_lists, config), rejection_reason(text, index, config)
        decisions.append(reference)
        assert reference == fast, text
        if reference is None:
            kept_lists.append(words(text))
            index.add(words(text))
    assert 10 < decisions.count(None) and decisions.count("too similar") > 10  # both outcomes exercised


def test_a_failed_request_is_counted_as_failed_not_as_a_rejected_candidate(tmp_path):
    """Before: a failed request's empty text was judged as a candidate instruction and counted as rejected."""
    from zephyr_tutorial.backends import Completion, failed_completion

    replies = iter(
        [
            failed_completion("BadRequestError: HTTP 400: blocked"),
            Completion("Describe the life cycle of a butterfly."),
            Completion("Invent a riddle about the moon."),
        ]
    )

    class Endpoint:
        name = "endpoint"

        def chat(self, conversations, config=None):
            return [next(replies) for _ in conversations]

    config = SelfInstructConfig(requests_per_round=3, num_human_examples=2, num_generated_examples=1)
    human = ["Explain how rainbows form.", "Write a poem."]
    result = bootstrap_instructions(human, Endpoint(), 2, tmp_path / "si.jsonl", config, progress=False)
    assert [r["prompt"] for r in result.kept] == [
        "Describe the life cycle of a butterfly.",
        "Invent a riddle about the moon.",
    ]
    assert result.rejected == {} and result.candidates == 2
    assert list(result.failed.values()) == ["BadRequestError: HTTP 400: blocked"]
