"""nbval settings shared by every notebook of the series.

nbval compares each output stream of a ``# NBVAL_CHECK_OUTPUT`` cell, stderr included.
Library warnings land on stderr with the absolute path of the installed package, and
their wording changes with each release, so a checked cell would fail on any machine
whose virtual environment lives elsewhere. We compare stdout and results only.
"""

STREAMS_NEVER_COMPARED = ("stderr",)


def pytest_collection_modifyitems(items):
    for notebook in {item.parent for item in items if hasattr(item.parent, "skip_compare")}:
        notebook.skip_compare = tuple(notebook.skip_compare) + STREAMS_NEVER_COMPARED
