"""How long the book takes: the timing table of ``prreid book`` and its committed copy.

``prreid book`` times every step of a build (SynthVeh, each chapter, the HTML
build) and writes them to ``<output_dir>/book_timing.csv`` (:func:`write_timing`).
A build of the ``quick`` profile on a fresh clone is kept as
``benchmarks/results/book_timing_quick.csv`` (see ``book_timing.md`` there);
each chapter states its time from that file (:func:`quick_profile_time`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
BOOK_TIMING_FILE = "book_timing.csv"
"""The timing table's name in a build's ``output_dir``."""
QUICK_TIMING_CSV = REPO_ROOT / "benchmarks" / "results" / "book_timing_quick.csv"
"""The committed timing table of the last full ``quick`` build.

:meta hide-value:
"""
COLUMNS = ("step", "seconds", "profile", "date", "cpu_count")
"""Columns of a timing table: one row per step of a build."""


def timing_table(
    steps: Sequence[tuple[str, float]],
    profile: str,
    date: str | None = None,
    cpu_count: int | None = None,
) -> pd.DataFrame:
    """One row per ``(step, seconds)`` of a build of ``profile`` (seconds to 0.1 s), with
    the build's ``date`` (default: today, UTC) and ``cpu_count`` (default: this machine's)."""
    date = date or datetime.now(UTC).date().isoformat()
    cpus = cpu_count if cpu_count is not None else os.cpu_count()
    rows = [(name, round(float(s), 1), profile, date, cpus) for name, s in steps]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_timing(table: pd.DataFrame, output_dir: str | Path) -> Path:
    """Write a :func:`timing_table` to ``<output_dir>/book_timing.csv``; returns the file."""
    path = Path(output_dir) / BOOK_TIMING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, columns=list(COLUMNS))
    return path


def read_timing(path: str | Path) -> pd.DataFrame:
    """A timing table written by :func:`write_timing`; other columns raise ``ValueError``."""
    table = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path} lacks the columns {missing} of a book timing table ({', '.join(COLUMNS)}); "
            f"copy runs/<profile>/{BOOK_TIMING_FILE} of a `prreid book` build over it"
        )
    return table


def _quick_row(notebook_stem: str, path: str | Path) -> pd.Series | None:
    """The last row of ``notebook_stem`` in the timing table at ``path``, or ``None``."""
    if not Path(path).is_file():
        return None
    table = read_timing(path)
    rows = table[table["step"] == notebook_stem]
    return rows.iloc[-1] if len(rows) else None


def quick_profile_minutes(notebook_stem: str, path: str | Path = QUICK_TIMING_CSV) -> float | None:
    """Minutes the chapter ``notebook_stem`` (e.g. ``"03_part_detection"``) took in the
    committed ``quick`` build; ``None`` when the file or its row is missing."""
    row = _quick_row(notebook_stem, path)
    return None if row is None else float(row["seconds"]) / 60


def quick_profile_time(notebook_stem: str, path: str | Path = QUICK_TIMING_CSV) -> str:
    """The chapter's time with the ``quick`` profile, as the text each chapter shows:
    ``"about 3 min on 2 CPU cores (measured in benchmarks/results/...)"``, or
    ``"not measured (...)"`` when the committed table has no row for it."""
    name = f"benchmarks/results/{Path(path).name}"
    row = _quick_row(notebook_stem, path)
    if row is None:
        return f"not measured ({name} has no row for this chapter)"
    minutes = float(row["seconds"]) / 60
    amount = "under a minute" if minutes < 0.75 else f"about {max(1, round(minutes))} min"
    return f"{amount} on {int(row['cpu_count'])} CPU cores (measured in {name})"
