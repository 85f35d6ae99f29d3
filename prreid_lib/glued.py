"""The chapters' glued numbers, shown to a reader of the live notebook too.

The HTML book puts a chapter's computed numbers into its prose with MyST-NB's
``glue`` (``{glue:text}`name```); a student who opens the chapter in Jupyter
sees only the raw role there. So the chapters glue through :func:`glue`, which
also remembers each value, and end every glue cell with :func:`glued`: a table
of the values glued since the last call. The glue cells are tagged
``remove-cell``, so the HTML book shows the values in its prose only, and
Jupyter shows the table under the cell.

Every value glued in a chapter is also written to ``<output_dir>/glued/<chapter>.json``
once the chapter has checked its parameters (:func:`record_glued`), so that the
findings page can quote the chapters' numbers (:func:`load_glued`).
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["glue", "glued", "load_glued", "record_glued"]

GLUED_DIR = "glued"
"""Folder of ``<output_dir>`` with one JSON file of glued values per chapter."""

_PENDING: dict[str, Any] = {}
_ALL: dict[str, Any] = {}
_RECORD: list[Path] = []  # the JSON file this process writes its glued values to, if any


def glue(name: str, value: Any, display: bool = False) -> None:
    """Glue ``value`` as ``name`` for the book's prose (MyST-NB) and remember it for
    :func:`glued`."""
    from myst_nb import glue as myst_glue

    if isinstance(value, np.generic):
        value = value.item()  # numpy 2 prints np.float64(0.5), which MyST-NB cannot format
    myst_glue(name, value, display=display)
    _PENDING[name] = value
    _ALL[name] = value
    if _RECORD:
        _write(_RECORD[0])


def record_glued(output_dir: str | Path, chapter: str) -> Path:
    """Write every value glued in this process, now and from here on, to
    ``<output_dir>/glued/<chapter>.json``; return that path."""
    path = Path(output_dir) / GLUED_DIR / f"{chapter}.json"
    _RECORD[:] = [path]
    _write(path)
    return path


def load_glued(output_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The values each chapter glued in ``output_dir``, by chapter (empty when none ran)."""
    folder = Path(output_dir) / GLUED_DIR
    if not folder.is_dir():
        return {}
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{path}: not a readable record of glued values ({err}); rerun chapter "
                f"{path.stem} or delete the file"
            ) from None
    return found


def _write(path: Path) -> None:
    """The glued values so far, as JSON (atomic: a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({k: _jsonable(v) for k, v in _ALL.items()}, indent=1) + "\n",
                   encoding="utf-8")  # fmt: skip
    tmp.replace(path)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: numbers as numbers (NaN as null), the rest as text."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(float(value)) else None
    return str(value)


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
