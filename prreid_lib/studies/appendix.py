"""The appendix's tables: the chapters' times, archived profiles beside this build, and
the benchmarks' measurements.

The archive of other profiles is :mod:`prreid_lib.results`'s; the chapter times are
the table ``prreid book`` writes before each chapter
(``prreid_lib.chapters.run_chapters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from prreid_lib.book_timing import REPO_ROOT
from prreid_lib.results import RESULTS_ROOT, archived_profiles, load_archive, load_tables

__all__ = [
    "BENCHMARK_RESULTS",
    "SHOWN_ROWS",
    "TIMINGS_FILE",
    "ArchivedView",
    "archive_folder",
    "archived_views",
    "benchmark_tables",
    "chapter_timings",
    "no_archive_note",
    "timings_summary",
    "total_seconds",
]

TIMINGS_FILE = "chapter_timings.csv"
"""The chapters' wall times in a build's ``output_dir``, as ``prreid book`` writes them
(the name of ``prreid_lib.chapters.TIMINGS_FILE``)."""
BENCHMARK_RESULTS = REPO_ROOT / "benchmarks" / "results"
"""Where each benchmark script writes its CSV.

:meta hide-value:
"""
SHOWN_ROWS = 6
"""Rows of a benchmark CSV the appendix shows: its latest measurements."""


def chapter_timings(output_dir: str | Path) -> pd.DataFrame | None:
    """The chapters' wall times of the build in ``output_dir`` (columns ``chapter``,
    ``seconds``), or ``None`` when the file is missing or empty (a chapter run on its own)."""
    path = Path(output_dir) / TIMINGS_FILE
    if not path.exists():
        return None
    timings = pd.read_csv(path)
    return timings if len(timings) else None


def total_seconds(timings: pd.DataFrame | None) -> float:
    """Seconds of all the chapters in ``timings``; NaN without timings."""
    return float("nan") if timings is None else float(timings["seconds"].sum())


def timings_summary(timings: pd.DataFrame | None) -> str:
    """The total time in one line, or why there is none."""
    if timings is None:
        return "no chapter timings: this notebook was run on its own, not by `prreid book`"
    total = total_seconds(timings)
    return f"total (chapters before this one): {total:.0f} s = {total / 60:.1f} min"


def archive_folder(results_root: str | Path | None = None) -> Path:
    """The archive the appendix reads: ``results_root``, or the repository's ``results/``."""
    return Path(results_root) if results_root else RESULTS_ROOT


def no_archive_note(archive_root: Path) -> str:
    """What the appendix says when no other profile is archived, and how to add one."""
    return (
        f"No archived results of another profile in {archive_root.name}/. The paper profile "
        "needs a GPU, and none was available when these results were last archived.\n"
        "On a GPU: make book PROFILE=paper, then prreid archive --profile paper, and commit "
        "results/paper/."
    )


@dataclass(frozen=True)
class ArchivedView:
    """One archived profile as the appendix shows it."""

    profile: str
    provenance: str
    """Where its results come from, in one line: commit, date, hardware, torch."""
    tables: dict[str, pd.DataFrame]
    """Each archived table by its heading (Markdown), beside this build's same table
    when there is one, rounded to three decimals."""


def archived_views(
    profile: str, output_dir: str | Path, archive_root: str | Path
) -> list[ArchivedView]:
    """Every profile archived under ``archive_root`` but ``profile``, each table set beside
    the same table of the build in ``output_dir`` (columns labelled with their profile)."""
    this_build = load_tables(output_dir)
    others = [p for p in archived_profiles(archive_root) if p != profile]
    return [_view(profile, other, this_build, Path(archive_root)) for other in others]


def _view(
    profile: str, other: str, this_build: dict[str, pd.DataFrame], archive_root: Path
) -> ArchivedView:
    archived = load_archive(other, archive_root)
    tables = {
        f"**{name}** (profile {other})": _beside(profile, other, this_build.get(name), table)
        for name, table in archived.tables.items()
    }
    return ArchivedView(other, _provenance_line(other, archived.provenance), tables)


def _beside(
    profile: str, other: str, ours: pd.DataFrame | None, archived: pd.DataFrame
) -> pd.DataFrame:
    if ours is None:
        return archived.round(3).rename_axis(f"ours, {other}")
    both = {f"ours, {profile} (this build)": ours, f"ours, {other}": archived}
    return pd.concat(both, axis=1).round(3)


def _provenance_line(other: str, prov: dict) -> str:
    return (
        f"profile {other}: commit {str(prov.get('commit', '?'))[:10]}, {prov.get('date', '?')}, "
        f"{prov.get('hardware', '?')} x {prov.get('gpus', '?')}, torch {prov.get('torch', '?')}"
    )


def benchmark_tables(
    results_dir: str | Path = BENCHMARK_RESULTS, shown_rows: int = SHOWN_ROWS
) -> dict[str, pd.DataFrame]:
    """The latest ``shown_rows`` rows of each benchmark CSV in ``results_dir``, by heading
    (Markdown: the file, and how many rows it holds when more); empty cells blank."""
    tables = {}
    for csv in sorted(Path(results_dir).glob("*.csv")):
        measured = pd.read_csv(csv)
        note = (
            ""
            if len(measured) <= shown_rows
            else f", the last {shown_rows} of {len(measured)} rows"
        )
        heading = f"**`benchmarks/results/{csv.name}`**{note}"
        tables[heading] = measured.tail(shown_rows).astype(object).fillna("")
    return tables
