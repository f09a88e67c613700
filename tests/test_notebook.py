"""The notebooks' display helpers: the source on screen is the code that runs, and the stage strip."""

from __future__ import annotations

import inspect

import pytest

from zephyr_tutorial import notebook
from zephyr_tutorial.chat_template import render_zephyr
from zephyr_tutorial.notebook import STAGES, show_source, source_view, you_are_here


def test_source_view_holds_the_function_exactly_as_the_module_defines_it():
    view = source_view(render_zephyr)
    assert view.code == inspect.getsource(render_zephyr).rstrip("\n")
    assert view.name == "zephyr_tutorial.chat_template.render_zephyr"
    assert view.location == "zephyr_tutorial/chat_template.py"
    text = repr(view)
    assert text.splitlines()[0] == f"# {view.name}  ({view.location})"
    assert "def render_zephyr(" in text and "/work/" not in text and "/root/" not in text


def test_the_docstring_can_be_left_out_and_the_code_still_runs():
    view = source_view(render_zephyr, docstring=False)
    code = view.code
    assert view.header.endswith("(zephyr_tutorial/chat_template.py; docstring left out)")
    assert '"""' not in code and "Render ``messages``" not in code
    namespace = {"ZEPHYR_ROLES": ("system", "user", "assistant"), "ZEPHYR_GENERATION_PROMPT": "<|assistant|>\n"}
    exec("from collections.abc import Mapping, Sequence\n" + code, namespace)
    messages = [{"role": "user", "content": "Hi"}]
    assert namespace["render_zephyr"](messages, "</s>", True) == render_zephyr(messages, "</s>", True)


def test_html_is_highlighted_and_escaped():
    rendered = source_view(render_zephyr)._repr_html_()
    assert "<span" in rendered and "style=" in rendered  # Pygments with inline styles (no stylesheet needed)
    assert "&lt;|" in rendered  # the template's markers are escaped, not read as tags
    assert "zephyr_tutorial/chat_template.py" in rendered


def test_decorated_functions_show_the_function_not_the_wrapper():
    import functools

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args):
            return function(*args)

        return wrapper

    @decorate
    def doubled(x):
        return 2 * x

    assert "return 2 * x" in source_view(doubled).code


def test_show_source_displays_text_and_html(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    assert show_source(render_zephyr) is None
    (view,) = shown
    assert repr(view).startswith("# zephyr_tutorial.chat_template.render_zephyr")
    assert "<div" in view._repr_html_()


def test_the_strip_lists_the_seven_stages_and_marks_the_current_one():
    strip = you_are_here("03")
    text = repr(strip)
    assert [n for n, _, _ in STAGES] == ["00", "01", "02", "03", "04", "05", "06"]
    assert text.count(" > ") == 6 and "[03 dSFT]" in text and text.count("[") == 1
    rendered = strip._repr_html_()
    assert rendered.count("<a href=") == 6 and 'href="05_dpo.ipynb"' in rendered
    assert "03_sft_qlora.ipynb" not in rendered  # the current stage is highlighted, not linked
    assert repr(you_are_here(0)) == repr(you_are_here("00"))


def test_an_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="no notebook '07'"):
        you_are_here("07")


def test_stage_files_are_the_series_notebooks():
    from pathlib import Path

    folder = Path(notebook.__file__).resolve().parents[1] / "notebooks"
    existing = {p.name for p in folder.glob("[0-9][0-9]_*.ipynb")}
    assert existing <= {filename for _, _, filename in STAGES}, "a notebook of the series is missing from STAGES"
