"""Next-token multiple-choice evaluation: request building, batching, data checks, and parity with lm-eval."""

from __future__ import annotations

import json
import math

import pytest

from zephyr_tutorial.data import DataError
from zephyr_tutorial.evaluation import (
    MCItem,
    build_requests,
    encode_pair,
    evaluate_multiple_choice,
    load_mc_items,
    score_continuations,
)
from zephyr_tutorial.runtime import data_dir

ITEMS = [
    MCItem("What is the capital of France?", ("Berlin", "Paris", "a very long name of some town"), 1, "q1", "geo"),
    MCItem("What is 2 + 3?", ("4", "5", "6"), 1, "q2", "math"),
]


def test_request_formats_follow_lm_eval_conventions():
    context, continuations, texts = build_requests(ITEMS[0], "continuation")
    assert context == "Question: What is the capital of France?\nAnswer:"
    assert continuations == [" Berlin", " Paris", " a very long name of some town"]
    assert texts == list(ITEMS[0].choices)
    context, continuations, texts = build_requests(ITEMS[0], "letters")
    assert context.endswith("\nA. Berlin\nB. Paris\nC. a very long name of some town\nAnswer:")
    assert continuations == [" A", " B", " C"]
    with pytest.raises(ValueError, match="unknown format"):
        build_requests(ITEMS[0], "cloze")


def test_encode_pair_moves_trailing_space_to_the_continuation(embedded_tokenizer):
    context_ids, continuation_ids = encode_pair(embedded_tokenizer, "Answer: ", "Paris")
    assert embedded_tokenizer.decode(continuation_ids) == " Paris"
    assert context_ids + continuation_ids == embedded_tokenizer.encode("Answer: Paris")


def test_batched_scores_equal_one_at_a_time_scores(tiny_model, embedded_tokenizer):
    pairs = [(c, x) for item in ITEMS for c, xs, _ in [build_requests(item)] for x in xs]
    batched = score_continuations(tiny_model, embedded_tokenizer, pairs, batch_size=8, progress=False)
    single = score_continuations(tiny_model, embedded_tokenizer, pairs, batch_size=1, progress=False)
    for (a, _), (b, _) in zip(batched, single):
        assert a == pytest.approx(b, abs=1e-4)
    assert all(ll < 0 for ll, _ in batched)


def test_log_likelihood_is_the_sum_over_continuation_tokens(tiny_model, embedded_tokenizer):
    import torch

    context, continuation = "Question: hi\nAnswer:", " hello there"
    ((score, _),) = score_continuations(tiny_model, embedded_tokenizer, [(context, continuation)], progress=False)
    context_ids, continuation_ids = encode_pair(embedded_tokenizer, context, continuation)
    ids = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        log_probs = torch.log_softmax(tiny_model(ids).logits[0], -1)
    expected = sum(float(log_probs[len(context_ids) - 1 + t, tok]) for t, tok in enumerate(continuation_ids))
    assert score == pytest.approx(expected, abs=1e-4)


def test_acc_norm_divides_by_character_length(tiny_model, embedded_tokenizer):
    report = evaluate_multiple_choice(tiny_model, embedded_tokenizer, ITEMS, progress=False)
    for item, result in zip(ITEMS, report.items):
        normalized = [ll / len(c) for ll, c in zip(result.loglikelihoods, item.choices)]
        assert result.prediction_norm == normalized.index(max(normalized))
        assert result.prediction == result.loglikelihoods.index(max(result.loglikelihoods))
    assert report.n == 2 and set(report.accuracy_by_category()) == {"geo", "math"}
    assert report.to_dict()["items"][0]["loglikelihoods"] == report.items[0].loglikelihoods


def test_embedded_model_beats_chance_on_shipped_questions(embedded_model_and_tokenizer):
    model, tokenizer = embedded_model_and_tokenizer
    items = load_mc_items(data_dir() / "mc_questions.jsonl")
    assert len(items) >= 60 and {"general_knowledge", "science", "arithmetic", "reading"} <= {i.category for i in items}
    report = evaluate_multiple_choice(model, tokenizer, items[:16], progress=False)
    assert report.acc > 0.5  # chance is 0.25 on four choices


@pytest.mark.parametrize(
    "row, field",
    [
        ({"question": "q", "choices": ["a", "b"]}, "answer"),
        ({"question": "q", "choices": "a,b", "answer": 0}, "choices"),
        ({"question": "q", "choices": ["a", "b"], "answer": 2}, "answer"),
        ({"question": "q", "choices": ["a"], "answer": 0}, "choices"),
        ({"question": "q", "choices": ["a", ""], "answer": 0}, "choices"),
        ({"question": "", "choices": ["a", "b"], "answer": 0}, "question"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path, row, field):
    path = tmp_path / "mc.jsonl"
    good = {"question": "q", "choices": ["a", "b"], "answer": 0}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=f"line 2, field '{field}'"):
        load_mc_items(path)


TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{text}"
doc_to_choice: {choice}
doc_to_target: answer
metric_list:
  - metric: acc
  - metric: acc_norm
"""


@pytest.mark.parametrize("fmt", ["continuation", "letters"])
def test_numbers_equal_lm_eval_on_a_local_task(tmp_path, embedded_model_and_tokenizer, fmt):
    lm_eval = pytest.importorskip("lm_eval", reason="lm-eval (dev dependency) is needed for the parity check")
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model, tokenizer = embedded_model_and_tokenizer
    items = load_mc_items(data_dir() / "mc_questions.jsonl")[::10]  # 6 items, every category
    data = tmp_path / "items.jsonl"
    data.write_text(
        "".join(
            json.dumps({"question": i.question, "choices": list(i.choices), "answer": i.answer}) + "\n" for i in items
        )
    )
    if fmt == "continuation":
        text, choice = "Question: {{question}}\\nAnswer:", '"{{choices}}"'
    else:
        listed = "".join(f"\\n{letter}. {{{{choices[{k}]}}}}" for k, letter in enumerate("ABCD"))
        text, choice = "Question: {{question}}" + listed + "\\nAnswer:", '["A", "B", "C", "D"]'
    (tmp_path / "task.yaml").write_text(TASK_YAML.format(name=f"zt_parity_{fmt}", data=data, text=text, choice=choice))

    harness = lm_eval.simple_evaluate(
        model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8),
        tasks=[f"zt_parity_{fmt}"],
        task_manager=TaskManager(include_path=str(tmp_path)),
        log_samples=True,
    )
    theirs = harness["results"][f"zt_parity_{fmt}"]
    ours = evaluate_multiple_choice(model, tokenizer, items, fmt=fmt, batch_size=8, progress=False)
    assert ours.acc == theirs["acc,none"]
    assert ours.acc_norm == theirs["acc_norm,none"]
    assert ours.acc_stderr == pytest.approx(theirs["acc_stderr,none"])
    samples = sorted(harness["samples"][f"zt_parity_{fmt}"], key=lambda s: s["doc_id"])
    for sample, result in zip(samples, ours.items):
        their_lls = [resp[0][0] for resp in sample["resps"]]
        assert result.loglikelihoods == pytest.approx(their_lls, abs=2e-4)
        assert result.is_greedy == [resp[0][1] for resp in sample["resps"]]
    assert not math.isnan(ours.acc)
