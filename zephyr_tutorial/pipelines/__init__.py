"""Pipelines: the recipe runner that serves the notebooks and the command line for both training stages.

The top layer of the package, with :mod:`zephyr_tutorial.cli` and :mod:`zephyr_tutorial.widgets`: it imports the
stages, and nothing in the library imports it back. :mod:`.results` completes a run's ``results.json`` and model
card and uploads an adapter to the Hub.
"""

from .results import HubLoginError, hub_login_problem, push_to_hub, record_results
from .runner import ensure_sft_adapter, recipe_datasets, resolve_sft_adapter, run_recipe

__all__ = [
    "HubLoginError",
    "ensure_sft_adapter",
    "hub_login_problem",
    "push_to_hub",
    "recipe_datasets",
    "record_results",
    "resolve_sft_adapter",
    "run_recipe",
]
