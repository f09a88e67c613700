"""How many optimizer steps a recipe trains on a profile: one count for the plan, the notebooks and the ablations."""

from __future__ import annotations


def planned_steps(profile, recipe: dict, rows: int | None = None) -> int:
    """The optimizer steps ``recipe`` trains: its ``max_steps`` (the recipe's trainer, else the profile's, after the
    recipe's ``profile_overrides``) when positive, else its epochs over ``rows`` rows (default: the profile's
    ``max_train_samples``) at the global batch, as the Hugging Face trainer counts them."""
    profile = profile.with_overrides(**recipe.get("profile_overrides", {}))
    trainer = recipe.get("trainer", {})
    max_steps = trainer.get("max_steps", profile.train.max_steps)
    if max_steps and max_steps > 0:
        return int(max_steps)
    rows = profile.data.max_train_samples if rows is None else rows
    if rows is None:
        raise ValueError(f"recipe {recipe.get('description', '')!r} counts epochs over all rows: give their number")
    batch = profile.train.per_device_batch_size * profile.train.gradient_accumulation_steps
    batch *= profile.hardware.num_gpus
    epochs = trainer.get("num_train_epochs", profile.train.num_train_epochs)
    return int(-(-rows // batch) * epochs)
