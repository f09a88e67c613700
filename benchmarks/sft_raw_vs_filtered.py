"""SFT on the generator's raw output against SFT on the filtered rows: does notebook 02's filtering pay off?

The Zephyr authors report a "much better SFT model" once UltraChat was truecased and its "I don't have personal
..." replies removed. This runs that comparison at our scale, with everything but the data held fixed:

- **filtered**: the ``sft_cpu`` recipe on ``data/sft/train_sft.jsonl`` (notebook 03's adapter, reused from
  ``outputs/sft/run/final`` when it is there);
- **raw**: the same recipe, steps and seed on ``data/sft/raw_generated.jsonl`` as the generator wrote it (no
  truncation, disclaimer, length, duplicate or truecasing filter), less the rows of the four held-out ``test_sft``
  prompts, so neither arm trains on what its held-out loss is measured on.

Both then answer the 75 held-out verifiable prompts (greedy, 160 new tokens) and go through notebook 06's suite:
the rule-based judge's mean score and win rate against the filtered arm (both orders), stop rate and reply length,
each with its 95% interval, and the paired difference of the scores. The recipe leaves out rows longer than its
256 tokens in both arms (``fit_to_length``: a cut row would lose its end-of-turn token), which already removes most
replies the generator cut at its token limit; the counts are printed.

    python benchmarks/sft_raw_vs_filtered.py [--out outputs/benchmarks/sft_raw_vs_filtered]

About 8 minutes on 2 CPU cores (one 30-step QLoRA run, 150 answers).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from datasets import Dataset

from zephyr_tutorial.data import write_jsonl
from zephyr_tutorial.evaluation import make_judge, read_verifiable_prompts
from zephyr_tutorial.models import load_tokenizer
from zephyr_tutorial.pipelines import ensure_sft_adapter, run_recipe
from zephyr_tutorial.pipelines.ablations import Arm, format_table, run_suite
from zephyr_tutorial.profiles import get_profile
from zephyr_tutorial.recipes import default_recipe
from zephyr_tutorial.runtime import data_dir, output_dir, seed_everything
from zephyr_tutorial.schemas import read_sft_rows
from zephyr_tutorial.sft import fit_to_length
from zephyr_tutorial.stats import paired_difference

SFT_KEYS = ("prompt", "prompt_id", "messages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/benchmarks/sft_raw_vs_filtered")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    args = parser.parse_args()
    out = args.out or output_dir("benchmarks", "sft_raw_vs_filtered")
    started = time.perf_counter()

    profile = get_profile("cpu")
    seed_everything(profile.seed)
    recipe = default_recipe("sft", profile)
    sft = data_dir() / "sft"
    test = read_sft_rows(sft / "test_sft.jsonl")
    held_out = {row["prompt_id"] for row in test}
    raw = read_sft_rows(sft / "raw_generated.jsonl")  # every raw row must still be a valid SFT row: else an error
    raw_train = [{key: row[key] for key in SFT_KEYS} for row in raw if row["prompt_id"] not in held_out]
    filtered = read_sft_rows(sft / "train_sft.jsonl")
    print(
        f"raw rows {len(raw)}: {len(raw) - len(raw_train)} of the held-out test_sft prompts left out, "
        f"{len(raw_train)} to train on; filtered training rows {len(filtered)}"
    )
    tokenizer = load_tokenizer(profile)
    max_length = profile.with_overrides(**recipe["profile_overrides"]).train.sft_max_length
    for name, rows in (("raw", raw_train), ("filtered", filtered)):
        _, fit = fit_to_length(Dataset.from_list(rows), tokenizer, max_length)
        print(f"{name:>8}: {fit}")

    raw_data = out / "raw_data"
    write_jsonl(raw_data / "train_sft.jsonl", raw_train)
    write_jsonl(raw_data / "test_sft.jsonl", test)
    raw_run = out / "raw_run"
    if not (raw_run / "final" / "adapter_config.json").is_file():
        run_recipe({**recipe, "data_folder": str(raw_data)}, profile=profile, run_dir=raw_run, resume=False)
    filtered_adapter = ensure_sft_adapter(profile)

    steps = profile.with_overrides(**recipe["profile_overrides"]).train.max_steps
    arms = [
        Arm("SFT, raw rows", raw_run / "final", steps=steps),
        Arm("SFT, filtered rows", filtered_adapter, steps=steps),
    ]
    prompts = [
        row for row in read_verifiable_prompts(data_dir() / "verifiable_prompts.jsonl") if row["split"] == "test"
    ]
    suite = run_suite(
        profile,
        arms,
        prompts,
        judge=make_judge("rules"),
        baseline="SFT, filtered rows",
        max_new_tokens=args.max_new_tokens,
        cache_path=out / "answers.sqlite",
    )
    print(format_table(suite.table()))
    raw_result, filtered_result = suite.results["SFT, raw rows"], suite.results["SFT, filtered rows"]
    difference = paired_difference(raw_result.rule_scores, filtered_result.rule_scores)
    print(
        difference.interpret(
            "rule-judge score, raw minus filtered",
            0.0,
            above="the raw rows trained a better model",
            below="filtering trained a better model",
            null_name="no difference",
        )
    )
    for name, result in suite.results.items():
        print(f"{name}: stop rate {result.stop_rate.format()}; reply length {result.length.format(1)} tokens")
    print(f"run time {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
