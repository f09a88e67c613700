"""Shared fixtures: the embedded model (prepared once per session) and a tiny random model."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _artifacts_in_a_temporary_folder(tmp_path_factory):
    """Tests never write into the checkout's outputs/ (where the notebooks keep their artifacts)."""
    previous = os.environ.get("ZEPHYR_OUTPUT_DIR")
    os.environ["ZEPHYR_OUTPUT_DIR"] = str(tmp_path_factory.mktemp("outputs"))
    yield
    if previous is None:
        os.environ.pop("ZEPHYR_OUTPUT_DIR", None)
    else:
        os.environ["ZEPHYR_OUTPUT_DIR"] = previous


@pytest.fixture(scope="session")
def embedded_model_dir():
    from zephyr_tutorial.models import resolve_embedded_model

    return resolve_embedded_model()


@pytest.fixture(scope="session")
def embedded_tokenizer(embedded_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@pytest.fixture(scope="session")
def embedded_model_and_tokenizer(embedded_model_dir):
    from zephyr_tutorial.models import load_embedded_model

    return load_embedded_model(embedded_model_dir)


@pytest.fixture()
def tiny_model(embedded_tokenizer):
    from zephyr_tutorial.models import build_tiny_model

    return build_tiny_model(embedded_tokenizer)
