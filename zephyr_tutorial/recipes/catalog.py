"""``zephyr-tutorial recipes``: list the shipped training recipes, or show one."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from . import RecipeError, find_recipe, read_recipe_file, shipped_recipes


@dataclass(frozen=True)
class RecipeSummary:
    name: str
    stage: str
    profile: str
    description: str
    path: Path


def summarize(path: Path) -> RecipeSummary:
    recipe = read_recipe_file(path)
    stage = recipe.get("stage")
    if stage is None:
        raise RecipeError(f"{path}: no 'stage' key; every shipped recipe says whether it is sft or dpo")
    return RecipeSummary(path.stem, str(stage), str(recipe.get("profile", "")),
                         str(recipe.get("description", "")).strip(), path)


def recipe_table(summaries: list[RecipeSummary]) -> str:
    headers = ("name", "stage", "profile", "description")
    rows = [(s.name, s.stage, s.profile, s.description) for s in summaries]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers[:-1])]
    lines = []
    for row in [headers, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1])
    return "\n".join(lines)


def _recipes_command(args) -> int:
    try:
        if args.name is None:
            print(recipe_table([summarize(path) for path in shipped_recipes()]))
            print("\nrun one with `zephyr-tutorial sft|dpo --config $(zephyr-tutorial recipes NAME --path)`")
            return 0
        path = find_recipe(args.name)
    except (FileNotFoundError, RecipeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path if args.path else path.read_text(encoding="utf-8"), end="\n" if args.path else "")
    return 0


def register_cli(subparsers) -> None:
    """``zephyr-tutorial recipes [NAME] [--path]``: the table of shipped recipes, one recipe's YAML, or its path."""
    parser = subparsers.add_parser("recipes", help="list the shipped training recipes, or print one")
    parser.add_argument("name", nargs="?", default=None, help="a recipe name from the list (or a file path)")
    parser.add_argument("--path", action="store_true", help="print the recipe's file path instead of its content")
    parser.set_defaults(handler=_recipes_command)
