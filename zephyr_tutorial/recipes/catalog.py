"""The table of shipped training recipes (``zephyr-tutorial recipes``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import RecipeError, read_recipe_file


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
    return RecipeSummary(
        path.stem, str(stage), str(recipe.get("profile", "")), str(recipe.get("description", "")).strip(), path
    )


def recipe_table(summaries: list[RecipeSummary]) -> str:
    headers = ("name", "stage", "profile", "description")
    rows = [(s.name, s.stage, s.profile, s.description) for s in summaries]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers[:-1])]
    lines = []
    for row in [headers, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1])
    return "\n".join(lines)
