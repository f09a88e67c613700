"""Truecasing and the ultrachat_200k cleaning filters."""

from __future__ import annotations

import pytest

from zephyr_tutorial.data import DataError
from zephyr_tutorial.generation.filtering import (
    FilterConfig,
    filter_dialogues,
    looks_truncated,
    structure_problem,
    truecase,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hi. how are you?", "Hi. How are you?"),
        ("hello! what's up? not much.", "Hello! What's up? Not much."),
        ('She said "stop." then left.', 'She said "stop." Then left.'),
        ("It ended (finally). now we rest.", "It ended (finally). Now we rest."),
        ("i think i'm right, and i'll show it.", "I think I'm right, and I'll show it."),
        # abbreviations, ellipses and list numbers do not end a sentence
        ("Use fruit, e.g. apples or pears.", "Use fruit, e.g. apples or pears."),
        ("Wait... maybe later.", "Wait... maybe later."),
        ("Steps:\n1. boil water\n2. add tea", "Steps:\n1. boil water\n2. add tea"),
        # words that are lower case on purpose
        ("Buy one. iPhone owners love it. mRNA vaccines work.", "Buy one. iPhone owners love it. mRNA vaccines work."),
        ("Open it. config.yaml holds the settings.", "Open it. config.yaml holds the settings."),
        ("Call it. print(x) shows the value.", "Call it. print(x) shows the value."),
        ("Name it. my_variable is fine.", "Name it. my_variable is fine."),
        # URLs, e-mail addresses and code stay exactly as written
        ("See https://example.com/a. then go.", "See https://example.com/a. Then go."),
        ("Visit https://x.org/docs. index.html is there.", "Visit https://x.org/docs. index.html is there."),
        ("Write to me at bob@example.com. thanks.", "Write to me at bob@example.com. Thanks."),
        ("Run `x = 1. y = 2` first. then test.", "Run `x = 1. y = 2` first. Then test."),
        (
            "Code:\n```python\nx = 1. i = 2\nprint('a. b')\n```\ndone. ok",
            "Code:\n```python\nx = 1. i = 2\nprint('a. b')\n```\ndone. Ok",
        ),
        # code pasted without a fence: indented lines, definitions, imports and assignments are kept ...
        (
            "Explain this.\n\ndef total(prices):\n    result = 0\n    return result",
            "Explain this.\n\ndef total(prices):\n    result = 0\n    return result",
        ),
        (
            "Read it.\nimport os\nfrom pathlib import Path\nRun it. then stop.",
            "Read it.\nimport os\nfrom pathlib import Path\nRun it. Then stop.",
        ),
        ("Set it.\ncount = 0\ntotal += 1", "Set it.\ncount = 0\ntotal += 1"),
        # ... while prose that starts with the same words is still truecased
        ("It works. from there, go on. class starts at nine.", "It works. From there, go on. Class starts at nine."),
        ("", ""),
    ],
)
def test_truecase_fixes_sentence_starts_and_leaves_intended_lowercase(text, expected):
    assert truecase(text) == expected


def test_truecase_is_idempotent():
    text = "hello. this is it. e.g. no. see www.a.com. i agree."
    once = truecase(text)
    assert truecase(once) == once
    assert once == "Hello. This is it. e.g. no. See www.a.com. I agree."


def dialogue(*turns: str, prompt_id: str | None = None, **extra) -> dict:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return {"prompt": turns[0], "prompt_id": prompt_id or f"id-{turns[0]}", "messages": messages, **extra}


GOOD = [
    dialogue("Why is the sky blue?", "Sunlight scatters off air molecules, and blue light scatters the most."),
    dialogue("Name a red fruit.", "A strawberry is a red fruit that grows in summer."),
    dialogue("What is 2 + 2?", "Two plus two equals four.", "and 3 + 3?", "three plus three equals six."),
]


def test_clean_rows_pass_and_are_truecased():
    kept, report = filter_dialogues(GOOD)
    assert report.output_rows == len(GOOD) == len(kept)
    assert all(step.removed == 0 for step in report.steps)
    assert kept[2]["messages"][2]["content"] == "And 3 + 3?"
    assert kept[2]["messages"][3]["content"] == "Three plus three equals six."
    assert report.truecased_rows == 1


def test_disclaimers_are_removed_and_counted_with_examples():
    bad = [
        dialogue("What is your favourite food?", "As an AI language model, I cannot eat food at all."),
        dialogue("Do you like jazz?", "I don't have personal preferences, but jazz is popular."),
        dialogue("Are you sad?", "I am fine, thanks.", "Really?", "I do not have emotions like humans do."),
        dialogue("Tell me about AI.", "AI systems learn patterns from data to make predictions."),  # mentions AI: kept
    ]
    kept, report = filter_dialogues(GOOD + bad)
    step = {s.name: s for s in report.steps}["disclaimer"]
    assert step.removed == 3
    assert len(step.examples) == 3 and "assistant turn" in step.examples[0]["detail"]
    assert [r["prompt"] for r in kept][-1] == "Tell me about AI."


def test_disclaimer_patterns_are_configurable():
    rows = GOOD + [dialogue("Hello?", "Beep boop, I am a robot and I like you.")]
    _, default_report = filter_dialogues(rows)
    kept, custom_report = filter_dialogues(rows, FilterConfig(disclaimer_patterns=(r"\bbeep boop\b",)))
    assert dict((n, r) for n, r, _ in default_report.as_rows())["disclaimer"] == 0
    assert dict((n, r) for n, r, _ in custom_report.as_rows())["disclaimer"] == 1
    assert len(kept) == len(GOOD)


def test_structure_truncation_and_length_filters():
    rows = GOOD + [
        dialogue("Only a question?"),  # no answer
        dialogue("Hi there, how are you?", "   "),  # empty reply
        {"prompt": "x", "prompt_id": "p", "messages": [{"role": "assistant", "content": "I start."}]},
        dialogue("Write a story.", "Once upon a time there was a fox who", finish_reasons=["stop"]),  # heuristic
        dialogue("Write a poem.", "Roses are red. Violets are blue.", finish_reasons=["length"]),  # recorded
        dialogue("Say something.", "Ok."),  # too short
    ]
    kept, report = filter_dialogues(rows)
    removed = {name: n for name, n, _ in report.as_rows()}
    assert removed["structure"] == 3
    assert removed["truncated"] == 2
    assert removed["length"] == 1
    assert report.input_rows - sum(removed.values()) == report.output_rows == len(GOOD)


def test_exact_and_near_duplicates_keep_the_first_copy():
    long_answer = " ".join(f"Point {i}: the river carries sediment downstream and builds a delta." for i in range(30))
    original = dialogue("Explain river deltas.", long_answer, prompt_id="a")
    exact = dialogue("explain   RIVER deltas.", long_answer.upper(), prompt_id="b")
    near = dialogue("Explain river deltas.", long_answer.replace("Point 29", "Finally"), prompt_id="c")
    kept, report = filter_dialogues([original, exact, near] + GOOD)
    removed = {name: n for name, n, _ in report.as_rows()}
    assert removed["exact duplicate"] == 1 and removed["near duplicate"] == 1
    assert [r["prompt_id"] for r in kept][0] == "a"
    # with the near-duplicate threshold above 1 only exact copies go
    _, strict = filter_dialogues([original, exact, near], FilterConfig(near_duplicate_threshold=1.01))
    assert {name: n for name, n, _ in strict.as_rows()}["near duplicate"] == 0


def test_malformed_rows_raise_with_position_and_field():
    with pytest.raises(DataError, match=r"line 2, field 'messages\[0\].content'"):
        filter_dialogues(
            GOOD[:1] + [{"prompt": "p", "prompt_id": "x", "messages": [{"role": "user"}]}], source="f.jsonl"
        )
    with pytest.raises(DataError, match=r"line 1, field 'prompt_id'"):
        filter_dialogues([{"prompt": "p", "messages": GOOD[0]["messages"]}])


def test_structure_problem_and_truncation_heuristic():
    assert structure_problem([{"role": "system", "content": "s"}] + GOOD[0]["messages"]) is None
    assert "expected 'assistant'" in structure_problem([{"role": "user", "content": "a"}] * 2)
    assert looks_truncated("The answer is") and looks_truncated("Items:\n```python\nx = 1")
    assert not looks_truncated("The answer is 4.") and not looks_truncated("```\nx = 1\n```")


def test_report_prints_a_table():
    _, report = filter_dialogues(GOOD + [dialogue("Q?", "As an AI, I cannot say that.")])
    text = str(report)
    assert "disclaimer" in text and "-1" in text and text.splitlines()[-1].split()[:2] == ["kept", "3"]


def test_truecasing_the_prompt_keeps_prompt_id_its_hash():
    from zephyr_tutorial.schemas import prompt_id_for

    prompt = "hey all. the fridge gets cleaned thursday."
    hashed = dialogue(prompt, "Here is a formal version.", prompt_id=prompt_id_for(prompt))
    foreign = dialogue(prompt + " Again.", "Here is another version.", prompt_id="an-id-from-elsewhere")
    kept, report = filter_dialogues([hashed, foreign])
    assert report.truecased_rows == 2
    assert kept[0]["prompt"] == "Hey all. The fridge gets cleaned thursday." == kept[0]["messages"][0]["content"]
    assert kept[0]["prompt_id"] == prompt_id_for(kept[0]["prompt"]) != hashed["prompt_id"]
    assert kept[1]["prompt_id"] == "an-id-from-elsewhere"  # not a hash of the prompt: left alone
