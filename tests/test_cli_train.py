"""`zephyr-tutorial sft` then `dpo` train any model from the shipped recipes; bad overrides stop at once."""

from __future__ import annotations

from samples import RECIPES, assert_adapter_loads_and_answers, dpo_command, lora_weights, sft_command


def test_sft_then_dpo_commands_run_the_cpu_recipes_on_another_model(tiny_model_dir, tmp_path, capsys):
    """`--model_name_or_path` points an unchanged recipe at any model; TRL loads it, trains, saves the adapter."""
    from zephyr_tutorial.cli import main

    sft_dir, dpo_dir = tmp_path / "sft", tmp_path / "dpo"
    assert main(sft_command(tiny_model_dir, sft_dir)) == 0
    assert "[sft] rank 0/1 (NO): trained 2 steps" in capsys.readouterr().out
    assert_adapter_loads_and_answers(tiny_model_dir, sft_dir / "final")
    sft_weights = lora_weights(sft_dir / "final")
    trained_b = [name for name, tensor in sft_weights.items() if "lora_B" in name and tensor.abs().sum() > 0]
    assert trained_b, "LoRA B starts at zero; after two steps it must have moved"

    assert main(dpo_command(tiny_model_dir, sft_dir / "final", dpo_dir)) == 0
    out = capsys.readouterr().out
    assert "[dpo] rank 0/1 (NO): trained 2 steps" in out and "eval_rewards/accuracies" in out
    assert_adapter_loads_and_answers(tiny_model_dir, dpo_dir / "final")
    dpo_weights = lora_weights(dpo_dir / "final")
    assert dpo_weights.keys() == sft_weights.keys()  # DPO continued the SFT adapter, it did not start a new one
    assert any(not (dpo_weights[name] == sft_weights[name]).all() for name in sft_weights)


def test_commands_report_a_bad_override_without_training(capsys):
    from zephyr_tutorial.cli import main

    assert main(["dpo", "--config", str(RECIPES["dpo_cpu"]), "--bta", "0.1"]) == 2
    assert "'bta' is not a trl.DPOConfig field (did you mean 'beta'?)" in capsys.readouterr().err
    assert main(["sft", "--config", str(RECIPES["dpo_cpu"])]) == 2
    assert "a 'dpo' recipe, but the sft command" in capsys.readouterr().err


def test_the_recipe_file_output_dir_is_an_override_too(tiny_model_dir, tmp_path, capsys):
    """`--output_dir` (an SFTConfig field) and `--out` (the command's run folder) lead to the same place."""
    from zephyr_tutorial.cli import main

    assert (
        main(
            [
                "sft",
                "--config",
                str(RECIPES["sft_cpu"]),
                "--model_name_or_path",
                str(tiny_model_dir),
                "--sft_max_length",
                "64",
                "--fit_to_length",
                "false",
                "--output_dir",
                str(tmp_path / "run"),
                "--quantization",
                "null",
                "--max-steps",
                "1",
                "--max_train_samples",
                "2",
                "--per-device-batch-size",
                "2",
            ]
        )
        == 0
    )
    assert "trained 1 steps" in capsys.readouterr().out and (tmp_path / "run" / "final" / "metrics.json").is_file()
