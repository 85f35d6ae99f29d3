"""The chapters' glued numbers, shown to a reader of the live notebook too.

The HTML book puts a chapter's computed numbers into its prose with MyST-NB's
``glue`` (``{glue:text}`name```); a student who opens the chapter in Jupyter
sees only the raw role there. So the chapters glue through :func:`glue`, which
also remembers each value, and end every glue cell with :func:`glued`: a table
of the values glued since the last call. The glue cells are tagged
``remove-cell``, so the HTML book shows the values in its prose only, and
Jupyter shows the table under the cell.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["glue", "glued"]

_PENDING: dict[str, Any] = {}


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue ``value`` as ``name`` for the book's prose (MyST-NB) and remember it for
    :func:`glued`."""
    from myst_nb import glue as myst_glue

    myst_glue(name, value, display=display)
    _PENDING[name] = value


def glued() -> pd.DataFrame:
    """The values glued since the last call, one row each (``name``, ``value``), and forget
    them: the last line of a glue cell, so Jupyter shows what the book's prose quotes."""
    rows = [(name, _shown(value)) for name, value in _PENDING.items()]
    _PENDING.clear()
    return pd.DataFrame(rows, columns=["name", "value"]).set_index("name")


def _shown(value: Any) -> str:
    """A value as the prose prints it: floats to three decimals, the rest as text."""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
