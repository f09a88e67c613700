"""DPO step time and peak memory for three ways to get the reference log-probabilities, side by side.

1. ``adapter``    : one base model; the reference is a frozen copy of the SFT adapter (TRL's default with PEFT);
2. ``precompute`` : the reference log-probs are computed once before training (``precompute_ref_log_probs``);
3. ``copy``       : a separate reference model (second copy of the base weights, SFT adapter merged).

Each strategy runs in its own process (peak RSS is per process) on the same pairs and steps;
the parent prints a table and the ratios to the ``adapter`` strategy::

    python benchmarks/dpo_reference_strategies.py [--steps 6] [--pairs 24] [--adapter DIR] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

STRATEGIES = ("adapter", "precompute", "copy")


def model_bytes(*models) -> int:
    """Bytes of parameters and buffers (4-bit weights at their packed size), each tensor counted once."""
    seen, total = set(), 0
    for model in models:
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                total += tensor.numel() * tensor.element_size()
    return total


def run_one(strategy: str, steps: int, pairs: int, adapter: str | None, data: str | None) -> dict:
    from transformers import TrainerCallback

    import tempfile

    from zephyr_tutorial.dpo import dpo_config, load_policy, train_dpo
    from zephyr_tutorial.models import load_base_model
    from zephyr_tutorial.pipelines import ensure_sft_adapter
    from zephyr_tutorial.profiles import active_profile
    from zephyr_tutorial.recipes import default_recipe
    from zephyr_tutorial.runtime import current_rss_mb, peak_rss_mb, seed_everything
    from zephyr_tutorial.schemas import find_preference_files, preference_dataset, read_preferences

    profile = active_profile()
    recipe = default_recipe("dpo", profile)
    profile = profile.with_overrides(**recipe["profile_overrides"], max_steps=steps)
    seed_everything(profile.seed)
    adapter = adapter or str(ensure_sft_adapter(profile))
    train_file, _ = find_preference_files(data)
    rows = read_preferences(train_file, pairs)
    model, tokenizer, _ = load_policy(profile, recipe, adapter)
    ref_model = None
    if strategy == "copy":
        from peft import PeftModel

        base, _ = load_base_model(profile)
        ref_model = PeftModel.from_pretrained(base, adapter).merge_and_unload().eval()
    step_times = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            step_times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as run_dir:
        args = dpo_config(profile, recipe, run_dir, precompute_ref_log_probs=strategy == "precompute", save_strategy="no",
                          logging_steps=steps)
        start = time.perf_counter()
        run = train_dpo(model, tokenizer, preference_dataset(rows), args=args, ref_model=ref_model, resume=False,
                        callbacks=[StepTimer()])
        total = time.perf_counter() - start
    warm = step_times[1:] or step_times  # the first step pays one-off costs
    return {
        "strategy": strategy,
        "seconds_per_step": sum(warm) / len(warm),
        "total_seconds": total,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_mb": current_rss_mb(),
        "model_mb": model_bytes(*(m for m in (run.model, ref_model) if m is not None)) / 2**20,
        "adapters": sorted(getattr(run.model, "peft_config", {})),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--adapter", default=None, help="SFT adapter folder (default: notebook 03's, trained if missing)")
    parser.add_argument("--data", default=None, help="folder with train_prefs.jsonl (default: outputs/ then data/)")
    parser.add_argument("--strategy", choices=STRATEGIES, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.strategy:
        print(json.dumps(run_one(args.strategy, args.steps, args.pairs, args.adapter, args.data)))
        return 0
    results = {}
    for strategy in STRATEGIES:
        command = [sys.executable, __file__, "--strategy", strategy, "--steps", str(args.steps), "--pairs", str(args.pairs)]
        command += ["--adapter", args.adapter] if args.adapter else []
        command += ["--data", args.data] if args.data else []
        print(f"[bench] {strategy} ...", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        results[strategy] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results["adapter"]
    print(f"\n{'strategy':<11} {'s/step':>7} {'total s':>8} {'peak RSS MB':>12} {'model MB':>9}   ratios vs adapter (time, peak, model)")
    for name, r in results.items():
        print(f"{name:<11} {r['seconds_per_step']:7.2f} {r['total_seconds']:8.1f} {r['peak_rss_mb']:12.0f} {r['model_mb']:9.1f}"
              f"   {r['seconds_per_step'] / base['seconds_per_step']:.2f}x, {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x,"
              f" {r['model_mb'] / base['model_mb']:.2f}x   adapters={r['adapters']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
