"""Pipelines: the recipe runner that serves the notebooks and the command line for both training stages.

The top layer of the package, with :mod:`zephyr_tutorial.cli` and :mod:`zephyr_tutorial.widgets`: it imports the
stages, and nothing in the library imports it back.
"""

from .runner import ensure_sft_adapter, recipe_datasets, resolve_sft_adapter, run_recipe

__all__ = ["ensure_sft_adapter", "recipe_datasets", "resolve_sft_adapter", "run_recipe"]
