"""nbval settings shared by every notebook of the series (and of ``solutions/``).

nbval compares each output of a checked cell (tag ``nbval-check-output``), stderr and progress bars included.
Two kinds of output differ between machines without the result differing, so they are never compared:

- **stderr**: library warnings land there with the absolute path of the installed package, and their wording
  changes with each release;
- **progress**: tqdm bars (a widget output whose ``text/plain`` is the bar, or bar lines on a stream) and the
  trainer's progress table. How many appear depends on the machine's caches: on a fresh machine transformers
  adds a ``Writing model shards`` bar beside ``Loading weights`` the first time it saves the NF4 copy.

Everything else (stdout, results, displayed text and HTML) is compared, after ``sanitize.cfg``.
"""

from __future__ import annotations

import re

STREAMS_NEVER_COMPARED = ("stderr",)
PROGRESS_LINE = re.compile(r"^[^\n]*\d+%\|[^\n]*\|[^\n]*$")
"""A tqdm bar as text: ``desc: 42%|████      | 5/12 [00:01<00:02, 3.1it/s]``."""


def _is_progress_text(text: str) -> bool:
    lines = [line for line in re.split(r"[\r\n]", str(text)) if line.strip()]
    return bool(lines) and all(PROGRESS_LINE.match(line) for line in lines)


def is_progress_output(output) -> bool:
    """True for an output that only shows progress: a tqdm bar (widget or text) or a trainer's progress table."""
    kind = output.get("output_type")
    if kind == "stream":
        return _is_progress_text(output.get("text", ""))
    if kind in ("display_data", "execute_result", "update_display_data"):
        data = output.get("data", {})
        if "<progress" in str(data.get("text/html", "")):
            return True
        return "text/plain" in data and _is_progress_text(data["text/plain"])
    return False


def without_progress(outputs):
    """``outputs`` with progress outputs dropped and bar lines removed from streams that also carry text."""
    kept = []
    for output in outputs:
        if is_progress_output(output):
            continue
        if output.get("output_type") == "stream" and "text" in output:
            lines = re.split(r"(?<=\n)", output["text"])
            text = "".join(line for line in lines if not _is_progress_text(line))
            if text != output["text"]:
                output = type(output)(output)
                output["text"] = text
        kept.append(output)
    return kept


def _compare_without_progress(compare):
    def compare_outputs(test, ref, skip_compare=None):
        return compare(without_progress(test), without_progress(ref), skip_compare)

    return compare_outputs


def pytest_collection_modifyitems(items):
    for notebook in {item.parent for item in items if hasattr(item.parent, "skip_compare")}:
        notebook.skip_compare = tuple(notebook.skip_compare) + STREAMS_NEVER_COMPARED
    for item in items:
        if hasattr(item, "compare_outputs") and hasattr(item, "cell"):
            item.compare_outputs = _compare_without_progress(item.compare_outputs)
