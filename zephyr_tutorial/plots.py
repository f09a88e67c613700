"""Plotting functions of the notebooks: plain functions that take data and return a matplotlib Figure.

They are tested in pytest (the figure holds the expected data) and used by the
notebooks and by the ipywidgets views. One section per notebook; each function
creates its own figure and never calls ``plt.show()`` (Jupyter displays the
returned figure).
"""

from __future__ import annotations

# --- setup (notebook 00) ---

# --- evaluation (notebook 01) ---

# --- generation (notebook 02) ---

# --- sft (notebook 03) ---

# --- feedback (notebook 04) ---

# --- dpo (notebook 05) ---
