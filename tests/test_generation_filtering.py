"""Truecasing and the ultrachat_200k cleaning filters."""

from __future__ import annotations

import pytest

from zephyr_tutorial.data import DataError
from zephyr_tutorial.generation.filtering import (
    FilterConfig,
    FilterReport,
    FilterStep,
    filter_dataset,
    filter_dialogues,
    looks_truncated,
    structure_problem,
    truecase,
    truncation_suspect,
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
        # ... and shell commands on their own lines
        ("Run it like this.\n\nls -la", "Run it like this.\n\nls -la"),
        ("Install it. then run.\npip install numpy", "Install it. Then run.\npip install numpy"),
        ("Commit it.\ngit commit -m 'fix typo'", "Commit it.\ngit commit -m 'fix typo'"),
        (
            "Start the server.\nuvicorn app:main --reload --port 8000",
            "Start the server.\nuvicorn app:main --reload --port 8000",
        ),
        # ... while prose that starts with the same words is still truecased
        ("It works. from there, go on. class starts at nine.", "It works. From there, go on. Class starts at nine."),
        ("It is late.\nwell - we go home. it - is fine.", "It is late.\nWell - we go home. It - is fine."),
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
        dialogue("Write a poem.", "Roses are red. Violets are blue.", finish_reasons=["length"]),  # recorded
        dialogue("Ask me.", "Fine.", "Why is the sea", "Because of salt.", user_finish_reasons=["length"]),
        dialogue("Say something.", "Ok."),  # short, but an answer: kept by default
    ]
    kept, report = filter_dialogues(rows)
    removed = report.removed_by()
    assert removed["structure"] == 3 and removed["truncated"] == 2 and removed["length"] == 0
    assert report.input_rows - sum(removed.values()) == report.output_rows == len(GOOD) + 1
    reasons = {r.position: r.reason for r in report.rejects}
    assert reasons[7] == "assistant turn 0 hit the token limit"
    assert reasons[8] == "simulated user turn 1 hit the token limit"
    # terse replies go only when asked for
    _, strict = filter_dialogues(rows, FilterConfig(min_assistant_words=3))
    assert strict.removed_by()["length"] == 1
    assert [r.reason for r in strict.rejects if r.filter == "length"] == ["assistant turn 0 has 1 words < 3"]


CUT_OFF = "Once upon a time there was a fox who lived at the edge of the forest, and every morning he"


def test_truncation_heuristic_is_opt_in_and_reports_what_it_would_remove():
    rows = GOOD + [
        dialogue("Write a story.", CUT_OFF),  # no finish reason recorded: only the heuristic can tell
        dialogue("Write another story.", CUT_OFF + " ran", finish_reasons=["stop"]),  # the generator says it stopped
    ]
    kept, report = filter_dialogues(rows)  # default: report only
    assert report.output_rows == len(rows) and report.removed_by()["truncated"] == 0
    assert [(f.position, f.filter) for f in report.flagged] == [(4, "truncated")]
    assert report.flagged[0].reason.startswith("heuristic, assistant turn 0 ends mid-sentence")
    assert "flagged" in str(report) and str(report).splitlines()[-1].split()[:2] == ["flagged", "1"]
    kept, removing = filter_dialogues(rows, FilterConfig(truncation_heuristic="remove"))
    assert removing.removed_by()["truncated"] == 1 and not removing.flagged
    assert [r.position for r in removing.rejects] == [4]  # the recorded "stop" beats the guess
    _, off = filter_dialogues(rows, FilterConfig(truncation_heuristic="off"))
    assert not off.flagged and off.output_rows == len(rows)
    with pytest.raises(ValueError, match="truncation_heuristic"):
        FilterConfig(truncation_heuristic="maybe")


CLEAN_SHAPES = [
    ("Write a haiku about rain.", "Soft rain on the roof / the garden drinks in silence / clouds drift east at dusk"),
    (
        "Write a short poem about the sea.",
        "The sea is wide and grey\nIt keeps the light of day\nAnd sings the gulls away",
    ),
    (
        "Write a poem about autumn.",
        "Leaves fall in the lane,\nred and gold in the rain,\nthe year lets go again,\nand the wind says it plain",
    ),
    (
        "Write Python code to add two numbers.",
        "Here is a small function that adds them:\n\n```python\ndef add(a, b):\n    return a + b\n```",
    ),
    (
        "How do I print hello in Python?",
        'Call the print function with the text in quotes, like this:\n\nprint("hello")',
    ),
    (
        "How do I list the files in a folder on Linux?",
        "Open a terminal in the folder and run the list command, which prints every file and folder:\n\nls -la",
    ),
    ("Name the three primary colours of paint.", "The three primary colours of paint are:\n- red\n- yellow\n- blue"),
    (
        "How do I make a cup of tea?",
        "1. Boil the water\n2. Put a tea bag in a cup\n3. Pour the water and wait three minutes\n"
        "4. Remove the bag and add milk if you like it",
    ),
    ("What is the capital of France?", "Paris"),
    ("Is water wet?", "Yes"),
    ("What is 6 times 7?", "42"),
    (
        "What is pi to five decimal places, and who first computed it accurately?",
        "Archimedes first bounded it between two fractions; to five decimal places its value is 3.14159",
    ),
    (
        "Where can I read the Python documentation?",
        "The official documentation, with the tutorial and the library reference, is at https://docs.python.org/3/",
    ),
    (
        "How do I install the tutorial's dependencies with pip?",
        "Run this command in a terminal to install the package together with everything it needs:\n\n"
        "pip install --upgrade zephyr-tutorial datasets transformers accelerate peft",
    ),
    (
        "Where is the project's source code?",
        "You can find the full list of supported models and their licences on the project's page at "
        "github.com/org/project",
    ),
    (
        "How far is the walk to the summit and back?",
        "The total distance from the start of the trail to the summit and back again is about 14 km",
    ),
    ("Say something nice to me.", "You are doing great, so keep going and enjoy the rest of your sunny day 🌞"),
    ("Wie spät ist es in Berlin, wenn es in London Mittag ist?", "Dann ist es in Berlin ein Uhr nachmittags."),
    ("Comment dit-on merci en espagnol ?", "Gracias"),
    ("用中文怎么说谢谢？", "谢谢"),
    ("Describe Beijing in one sentence, in Chinese.", "北京是中华人民共和国的首都，也是全国的政治和文化中心"),
    ("Как сказать спасибо по-русски?", "Спасибо"),
    ("كيف حالك؟", "أنا بخير، شكرا لك"),
    (
        "Write a short thank-you note to my neighbour Sam.",
        "Dear Sam,\n\nThank you so much for watering my plants while I was away. They look happier than "
        "ever.\n\nBest wishes,\nAlex",
    ),
    ("Compare cats and dogs in a table.", "| animal | sound |\n|---|---|\n| cat | meow |\n| dog | woof |"),
    (
        "Suggest a title for my essay about bees.",
        "The Quiet Work of Bees: How Pollinators Feed the World and Why Their Future Depends on Us",
    ),
]


@pytest.mark.parametrize("prompt, reply", CLEAN_SHAPES, ids=[p[:30] for p, _ in CLEAN_SHAPES])
def test_the_heuristic_never_fires_on_clean_replies_of_any_shape(prompt, reply):
    assert truncation_suspect(reply) is None


def test_a_corpus_of_clean_rows_of_every_shape_is_kept_whole():
    rows = [dialogue(prompt, reply) for prompt, reply in CLEAN_SHAPES]
    for config in (FilterConfig(), FilterConfig(truncation_heuristic="remove")):
        kept, report = filter_dialogues(rows, config)
        assert report.output_rows == len(rows) == len(kept), report.rejects
        assert not report.rejects and not report.flagged
        assert [r["prompt_id"] for r in kept] == [r["prompt_id"] for r in rows]


@pytest.mark.parametrize(
    "text",
    [
        CUT_OFF,
        "The main causes of the French Revolution were the debt crisis, the rigid social order, and",
        "Here are some tips for a calmer and better sleep routine that you can try tonight:",
        "Here is the function:\n\n```python\ndef add(a, b):\n    return a +",
        "Sunlight is made of many colours. When it passes through the air, the blue part is scattered more than "
        "the red part, which is why the",
        # a colon before the last paragraph does not excuse prose, only a command line
        "Here are the steps to follow:\n\nFirst open the settings menu at the top of the screen and then choose the",
        "Here is what happened next:\n\nthe fox ran into the forest and hid behind the old oak tree while the hunters",
        "The whole trip, there and back, took us about 14 hours and we would have stayed longer if the",
    ],
)
def test_the_heuristic_fires_on_prose_cut_mid_sentence(text):
    assert truncation_suspect(text) is not None and looks_truncated(text)


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


def test_structure_problem():
    assert structure_problem([{"role": "system", "content": "s"}] + GOOD[0]["messages"]) is None
    assert "expected 'assistant'" in structure_problem([{"role": "user", "content": "a"}] * 2)
    assert truncation_suspect("Items:\n```python\nx = 1") == "an unclosed code block"
    assert not looks_truncated("The answer is 4.") and not looks_truncated("```\nx = 1\n```")


def test_report_prints_a_table():
    _, report = filter_dialogues(GOOD + [dialogue("Q?", "As an AI, I cannot say that.")])
    lines = str(report).splitlines()
    assert "disclaimer" in str(report) and "-1" in str(report)
    assert lines[-2].split()[:2] == ["kept", "3"] and lines[-1].split()[:2] == ["accounted", "4"]


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


LONG = " ".join(f"Point {i}: the river carries sediment downstream and builds a delta." for i in range(30))


def mixed_rows() -> list[dict]:
    """Rows every filter objects to, clean rows, copies and near copies, in an order that exercises 'first copy'."""
    near = LONG.replace("Point 29", "Finally")
    return GOOD + [
        dialogue("Explain river deltas.", LONG, prompt_id="a"),
        dialogue("Only a question?"),
        dialogue("What is your favourite food?", "As an AI language model, I cannot eat food at all."),
        dialogue("explain   RIVER deltas.", LONG.upper(), prompt_id="b"),
        dialogue("Write a poem.", "Roses are red. Violets are blue.", finish_reasons=["length"]),
        dialogue("Explain river deltas.", near, prompt_id="c"),
        dialogue("Write a story.", CUT_OFF),
        dialogue("hello. who are you?", "i am a helper. i answer questions."),
    ]


def test_every_removal_is_listed_and_written_with_its_filter_and_reason(tmp_path):
    from zephyr_tutorial.data import read_jsonl

    rows = mixed_rows()
    kept, report = filter_dialogues(rows, rejects=tmp_path / "rejects.jsonl")
    written = read_jsonl(tmp_path / "rejects.jsonl")
    assert len(written) == report.removed_rows == len(rows) - len(kept) == 5
    assert [(r["position"], r["filter"]) for r in written] == [
        (5, "structure"),
        (6, "disclaimer"),
        (7, "exact duplicate"),
        (8, "truncated"),
        (9, "near duplicate"),
    ]
    assert written[2]["reason"] == "same as row 4" and written[4]["reason"].endswith("with row 4")
    assert all(r["row"] == rows[r["position"] - 1] for r in written)
    # kept + removed are the input, each row exactly once
    kept_ids = [r["prompt_id"] for r in kept]
    assert sorted(kept_ids + [r["row"]["prompt_id"] for r in written]) == sorted(r["prompt_id"] for r in rows)
    assert [f.position for f in report.flagged] == [10]
    assert report.steps[0].examples[0]["position"] == 5


def test_the_report_refuses_to_lose_a_row():
    steps = [FilterStep("structure", "x", removed=1)]
    with pytest.raises(RuntimeError, match="unaccounted"):
        FilterReport(input_rows=5, steps=steps, truecased_rows=0, output_rows=3).check()


def test_both_near_duplicate_engines_find_the_same_copies():
    rows = mixed_rows()
    fast_kept, fast = filter_dialogues(rows, FilterConfig(near_duplicates="datasketch"))
    ref_kept, reference = filter_dialogues(rows, FilterConfig(near_duplicates="reference"))
    assert fast_kept == ref_kept
    assert [(r.position, r.filter) for r in fast.rejects] == [(r.position, r.filter) for r in reference.rejects]


@pytest.mark.parametrize("num_proc", [None, 2])
def test_filter_dataset_decides_exactly_like_filter_dialogues(num_proc, tmp_path):
    from datasets import Dataset

    from zephyr_tutorial.data import read_jsonl

    rows = mixed_rows() + [dialogue(p, r) for p, r in CLEAN_SHAPES]
    rows = [{**r, "finish_reasons": r.get("finish_reasons"), "user_finish_reasons": None} for r in rows]
    expected_kept, expected = filter_dialogues(rows, rejects=tmp_path / "expected.jsonl")
    kept, report = filter_dataset(
        Dataset.from_list(rows), num_proc=num_proc, rejects=tmp_path / "rejects.jsonl", progress=False
    )
    assert kept.to_list() == expected_kept
    assert report.removed_by() == expected.removed_by() and report.truecased_rows == expected.truecased_rows
    assert read_jsonl(tmp_path / "rejects.jsonl") == read_jsonl(tmp_path / "expected.jsonl")
    assert [(f.position, f.reason) for f in report.flagged] == [(f.position, f.reason) for f in expected.flagged]
    assert [e["row"] for e in report.steps[0].examples] == [e["row"] for e in expected.steps[0].examples]


def test_filter_dataset_streams_an_iterable_dataset_with_the_same_result():
    from datasets import Dataset

    rows = [{**r, "finish_reasons": r.get("finish_reasons")} for r in mixed_rows()]
    dataset = Dataset.from_list(rows)
    kept, report = filter_dataset(dataset, progress=False)
    streamed, streamed_report = filter_dataset(dataset.to_iterable_dataset(), progress=False)
    assert streamed.to_list() == kept.to_list()
    assert [(r.position, r.filter, r.reason) for r in streamed_report.rejects] == [
        (r.position, r.filter, r.reason) for r in report.rejects
    ]
    assert streamed_report.rejects[0].row == rows[4]  # a stream's rejected rows are held: it cannot be read again
    part, part_report = filter_dataset(dataset.to_iterable_dataset(), limit=4, progress=False)
    assert part_report.input_rows == 4 and len(part) == 4


def test_filter_dataset_names_the_position_of_a_malformed_row():
    from datasets import Dataset

    rows = [dict(GOOD[0]), {**GOOD[1], "prompt": None}]
    with pytest.raises(DataError, match=r"clean.jsonl, line 2, field 'prompt'"):
        filter_dataset(Dataset.from_list(rows), source="clean.jsonl", progress=False)


def starts_with_sure(row: dict) -> str | None:
    replies = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
    return next((f"assistant turn {i} starts with 'Sure'" for i, t in enumerate(replies) if t.startswith("Sure")), None)


def test_a_custom_filter_gets_its_own_line_and_its_rejects():
    from datasets import Dataset

    rows = GOOD + [dialogue("Can you help?", "Sure! Here is what I would do first."), dialogue("x?", "As an AI, no.")]
    config = FilterConfig(custom_filters=(("sure", starts_with_sure),))
    kept, report = filter_dialogues(rows, config)
    assert [s.name for s in report.steps][3:6] == ["disclaimer", "sure", "exact duplicate"]
    assert report.removed_by()["sure"] == 1 and len(kept) == len(GOOD)
    assert [(r.position, r.filter, r.reason) for r in report.rejects] == [
        (4, "sure", "assistant turn 0 starts with 'Sure'"),
        (5, "disclaimer", "assistant turn 0: 'As an AI'"),
    ]
    _, through_datasets = filter_dataset(Dataset.from_list(rows), config, num_proc=2, progress=False)
    assert through_datasets.removed_by() == report.removed_by()
    with pytest.raises(ValueError, match="custom filter names"):
        FilterConfig(custom_filters=(("disclaimer", starts_with_sure),))


def test_the_datasketch_lsh_index_answers_exactly_like_the_reference_banding():
    """Given the same signatures, the two indexes find the same earlier row with the same estimate, or none.

    Random signatures near known ones (each position replaced with probability 0 to 0.5), so that candidates
    come from shared bands at every similarity, above and below the threshold, and a row can match several."""
    import numpy as np

    from zephyr_tutorial.generation.filtering import DatasketchNearDuplicateIndex, ReferenceNearDuplicateIndex

    rng = np.random.default_rng(4)
    bases = [rng.integers(0, 2**32, size=128, dtype=np.uint64).astype(np.uint32) for _ in range(30)]
    signatures = []
    for _ in range(400):
        signature = bases[int(rng.integers(0, len(bases)))].copy()
        replaced = rng.random(128) < rng.uniform(0.0, 0.5)
        signature[replaced] = rng.integers(0, 2**32, size=int(replaced.sum()), dtype=np.uint64).astype(np.uint32)
        signatures.append(signature)
    reference, fast = ReferenceNearDuplicateIndex(0.8, 128, 20), DatasketchNearDuplicateIndex(0.8, 128, 20)
    answers = [(reference.find_or_add(s, k), fast.find_or_add(s, k)) for k, s in enumerate(signatures, start=1)]
    assert all(ours == theirs for ours, theirs in answers)
    found = [ours for ours, _ in answers if ours is not None]
    assert 50 < len(found) < 370, "both outcomes occur"
    assert any(similarity < 1.0 for _, similarity in found)
