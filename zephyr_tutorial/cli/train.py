"""``zephyr-tutorial sft|dpo [--config FILE] [--out DIR] [--key value ...]``: train a stage from a recipe."""

from __future__ import annotations

STAGE_HELP = {
    "sft": "supervised fine-tuning (QLoRA or full) from a YAML recipe",
    "dpo": "Direct Preference Optimization (QLoRA or full) from a YAML recipe",
}
EPILOG = (
    "Any further --key value (or --key=value, hyphens or underscores) overrides the recipe, typed by the "
    "class that receives it: a top-level key (sft_adapter, data_folder, packing, profile; --lora null), a "
    "from_pretrained argument (model_name_or_path: TRL then loads that model), a Profile field (max_steps, "
    "max_train_samples, sft_max_length...), section.key (lora.r, quantization.bnb_4bit_quant_type) or a "
    "trl SFTConfig/DPOConfig field (learning_rate, beta, loss_type...)."
)


def _train_command(args) -> int:
    from ..pipelines import run_recipe
    from ..profiles import active_profile
    from ..recipes import default_recipe, load_recipe, parse_overrides

    overrides = parse_overrides(args.overrides, args.stage)
    if args.config is None:
        recipe = default_recipe(args.stage, active_profile(), overrides)
    else:
        recipe = load_recipe(args.config, args.stage, overrides)
    if args.push_to_hub:  # asked before training: a missing login should not surface after hours of it
        from ..pipelines import hub_login_problem

        problem = hub_login_problem()
        if problem:
            from . import bad_input

            return bad_input(problem)
    run = run_recipe(recipe, run_dir=args.out)
    print(run.rank_report(args.stage))
    if not run.trainer.is_world_process_zero():
        return 0
    print(f"trained {run.steps} steps; adapter saved to {run.adapter_dir}")
    heldout = {
        k: v
        for k, v in sorted(run.metrics.items())
        if k.startswith("heldout_") or (k.startswith("eval_") and "rewards" in k)
    }
    if heldout:
        print("held-out: " + ", ".join(f"{k} {v:.4f}" for k, v in heldout.items()))
    if args.push_to_hub:
        from ..pipelines import push_to_hub

        print(f"pushed {run.adapter_dir} to {push_to_hub(run.adapter_dir, args.push_to_hub)}")
    return 0


def register(subparsers) -> None:
    for stage, help_text in STAGE_HELP.items():
        parser = subparsers.add_parser(stage, help=help_text, epilog=EPILOG, allow_abbrev=False)
        parser.add_argument(
            "--config",
            default=None,
            metavar="FILE",
            help=f"recipe file or shipped recipe name (default: the active profile's, e.g. {stage}_cpu on a CPU)",
        )
        parser.add_argument(
            "--out",
            default=None,
            metavar="DIR",
            help="run folder: checkpoints, and the result in DIR/final (default: the recipe's "
            f"trainer.output_dir, else outputs/{stage}/run)",
        )
        parser.add_argument(
            "--push-to-hub",
            default=None,
            metavar="REPO",
            help="after training, upload DIR/final (adapter, tokenizer, results.json, model card, TensorBoard logs) "
            "to the Hugging Face Hub repository REPO (created if missing); needs `hf auth login` or HF_TOKEN",
        )
        parser.set_defaults(handler=_train_command, stage=stage, takes_overrides=True, overrides=[])
