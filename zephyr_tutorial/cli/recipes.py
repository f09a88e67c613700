"""``zephyr-tutorial recipes [NAME] [--path]``: the table of shipped recipes, one recipe's YAML, or its path."""

from __future__ import annotations


def _recipes_command(args) -> int:
    from ..recipes import find_recipe, shipped_recipes
    from ..recipes.catalog import recipe_table, summarize

    if args.name is None:
        print(recipe_table([summarize(path) for path in shipped_recipes()]))
        print("\nrun one with `zephyr-tutorial sft|dpo --config $(zephyr-tutorial recipes NAME --path)`")
        return 0
    path = find_recipe(args.name)
    print(path if args.path else path.read_text(encoding="utf-8"), end="\n" if args.path else "")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("recipes", help="list the shipped training recipes, or print one")
    parser.add_argument("name", nargs="?", default=None, help="a recipe name from the list (or a file path)")
    parser.add_argument("--path", action="store_true", help="print the recipe's file path instead of its content")
    parser.set_defaults(handler=_recipes_command)
