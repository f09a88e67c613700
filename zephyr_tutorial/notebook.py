"""What the notebooks display besides results: the package code they teach, and where the reader is in the series.

- :func:`show_source` puts a package function's source on screen, syntax-highlighted, so a notebook teaches the
  code that runs instead of a copy that drifts from it (d2l and LLMs-from-scratch keep the code in view; we keep
  it in the package, tested, and *show* it).
- :func:`you_are_here` draws the one-line strip of the seven stages, 00 to 06, with the current one highlighted.

Both return small objects that Jupyter displays as HTML, with a ``text/plain`` version of the same content
(what GitHub's renderer falls back to, what a terminal prints and what nbval compares).
"""

from __future__ import annotations

import html
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

STAGES: tuple[tuple[str, str, str], ...] = (
    ("00", "setup", "00_setup.ipynb"),
    ("01", "evaluation", "01_evaluation.ipynb"),
    ("02", "synthetic data", "02_synthetic_data.ipynb"),
    ("03", "dSFT", "03_sft_qlora.ipynb"),
    ("04", "AI feedback", "04_ai_feedback.ipynb"),
    ("05", "dDPO", "05_dpo.ipynb"),
    ("06", "ablations", "06_ablations.ipynb"),
)
"""``(number, short name, notebook file)`` of every notebook of the series, in reading order."""


def _package_relative(path: str) -> str:
    """``zephyr_tutorial/chat_template.py`` for a file inside the package, else the file's name (no machine path)."""
    parts = Path(path).resolve().parts
    if "zephyr_tutorial" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("zephyr_tutorial") :])
    return Path(path).name


def _without_docstring(source: str) -> str:
    """``source`` of a function or class with its docstring removed (the notebook's prose says it instead)."""
    import ast

    tree = ast.parse(source)
    node = tree.body[0]
    body = getattr(node, "body", None)
    if not body or not isinstance(body[0], ast.Expr) or not isinstance(getattr(body[0], "value", None), ast.Constant):
        return source
    if not isinstance(body[0].value.value, str):
        return source
    lines = source.splitlines(keepends=True)
    start, end = body[0].lineno - 1, body[0].end_lineno
    return "".join(lines[:start] + lines[end:])


@dataclass(frozen=True)
class SourceView:
    """The source of one package object, as text with a header naming where it lives."""

    name: str
    """``module.qualname`` of the object."""
    location: str
    """``zephyr_tutorial/<file>.py`` (no line numbers: the view changes only when the code does)."""
    code: str
    docstring: bool = True

    @property
    def header(self) -> str:
        note = "" if self.docstring else "; docstring left out"
        return f"# {self.name}  ({self.location}{note})"

    def __repr__(self) -> str:
        return f"{self.header}\n{self.code}"

    def _repr_html_(self) -> str:
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer
        except ImportError:  # pragma: no cover - pygments ships with IPython
            return f"<pre>{html.escape(repr(self))}</pre>"
        formatter = HtmlFormatter(noclasses=True, style="default", nobackground=True)
        body = highlight(self.code, PythonLexer(), formatter)
        note = "" if self.docstring else "; docstring left out"
        caption = f"<code>{html.escape(self.name)}</code> <small>({html.escape(self.location + note)})</small>"
        return f'<div style="border-left: 3px solid #4C72B0; padding-left: 0.6em">{caption}{body}</div>'


def source_view(obj, *, docstring: bool = True) -> SourceView:
    """The :class:`SourceView` of a function, method or class (decorators unwrapped).

    ``docstring=False`` leaves the docstring out, for a notebook whose prose already explains it.
    ``tests/test_notebooks.py`` checks that every view committed in a notebook equals the code as it is now.
    """
    target = inspect.unwrap(obj)
    code = textwrap.dedent(inspect.getsource(target))
    if not docstring:
        code = _without_docstring(code)
    location = _package_relative(inspect.getsourcefile(target) or "?")
    name = f"{target.__module__}.{target.__qualname__}"
    return SourceView(name, location, code.rstrip("\n"), docstring)


def show_source(obj, *, docstring: bool = True) -> None:
    """Display ``obj``'s source in the notebook, syntax-highlighted (several calls in one cell show each).

    The output carries both ``text/html`` (Pygments, inline styles: Jupyter, Colab, VS Code) and ``text/plain``
    (the same code under a ``# module.name  (file)`` header): what GitHub falls back to and nbval compares.
    """
    view = source_view(obj, docstring=docstring)
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - outside IPython: print the text
        print(repr(view))
    else:
        display(view)


@dataclass(frozen=True)
class StageStrip:
    """The seven stages of the series with one of them marked as the current notebook."""

    current: str

    def __repr__(self) -> str:
        cells = [f"[{n} {name}]" if n == self.current else f"{n} {name}" for n, name, _ in STAGES]
        return "you are here: " + " > ".join(cells)

    def _repr_html_(self) -> str:
        items = []
        for number, name, filename in STAGES:
            label = f"{number}&nbsp;{html.escape(name).replace(' ', '&nbsp;')}"
            if number == self.current:
                items.append(
                    f'<span style="background:#4C72B0;color:white;padding:1px 6px;border-radius:3px">'
                    f"<b>{label}</b></span>"
                )
            else:
                items.append(f'<a href="{filename}" style="padding:1px 6px">{label}</a>')
        return '<div style="font-size:0.9em">you are here: ' + " &rsaquo; ".join(items) + "</div>"


def you_are_here(current: str) -> StageStrip:
    """The strip for notebook ``current`` (``"00"`` ... ``"06"``); Jupyter displays what the cell returns."""
    current = str(current).zfill(2)
    if current not in {number for number, _, _ in STAGES}:
        raise ValueError(f"no notebook {current!r} in the series; the stages are {', '.join(n for n, *_ in STAGES)}")
    return StageStrip(current)
