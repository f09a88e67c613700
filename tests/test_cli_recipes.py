"""`zephyr-tutorial recipes` lists, prints and locates the shipped recipes."""

from __future__ import annotations

from zephyr_tutorial.recipes import (
    find_recipe,
)

from samples import RECIPES


def test_recipes_command_lists_and_prints(capsys):
    from zephyr_tutorial.cli import main

    assert main(["recipes"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["name", "stage", "profile", "description"]
    rows = {line.split()[0]: line.split()[1:3] for line in table[1:] if line and line.split()[0] in RECIPES}
    assert rows.keys() == RECIPES.keys()
    assert rows["dpo_zephyr-7b-beta_full"] == ["dpo", "full"] and rows["sft_zephyr-7b-beta_qlora"] == ["sft", "colab"]

    assert main(["recipes", "sft_zephyr-7b-beta_full", "--path"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(RECIPES["sft_zephyr-7b-beta_full"]) == str(find_recipe("sft_zephyr-7b-beta_full"))
    assert main(["recipes", "dpo_cpu"]) == 0
    assert capsys.readouterr().out == RECIPES["dpo_cpu"].read_text()
    assert main(["recipes", "zephyr-7b-gamma"]) == 2
    assert "no recipe 'zephyr-7b-gamma'" in capsys.readouterr().err
