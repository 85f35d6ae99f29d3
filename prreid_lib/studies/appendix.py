"""The appendix's tables: the chapters' times, archived profiles beside this build, and
a short summary of each benchmark's measurements (the full CSVs stay in the repository).

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
    "BENCHMARK_VIEWS",
    "READER_WORDS",
    "SHOWN_ROWS",
    "SUMMARY_COLUMNS",
    "TIMINGS_FILE",
    "ArchivedView",
    "BenchmarkView",
    "archive_folder",
    "archived_views",
    "benchmark_summary",
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
SHOWN_ROWS = 12
"""Most rows of a benchmark CSV the appendix shows: its latest measurements."""


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


@dataclass(frozen=True)
class BenchmarkView:
    """How the appendix summarises one benchmark CSV: a title and the few columns a reader
    needs; the full table stays in ``benchmarks/results/``."""

    title: str
    """What the benchmark measures, in a few words (Markdown)."""
    columns: tuple[str, ...]
    """The columns shown, in this order; the first labels the rows. Columns the CSV lacks
    are skipped."""
    batch: str | None = None
    """A column naming one measurement (a commit, a build): only the rows of its last
    value are shown. ``None``: the latest rows, whatever they measured."""


BENCHMARK_VIEWS: dict[str, BenchmarkView] = {
    "book_timing_quick.csv": BenchmarkView(
        "Time of each step of a full `quick` build", ("step", "seconds", "date", "cpu_count")
    ),
    "handout_alone.csv": BenchmarkView(
        "Each student notebook run alone in an empty folder (time and disk)",
        ("chapter", "profile", "seconds", "runs_mib", "cache_mib", "date"),
    ),
    "heap_reuse.csv": BenchmarkView(
        "A ResNet-50 step at 256 px with glibc's malloc as it comes and with freed memory kept",
        ("setting", "step", "seconds", "peak_gib", "minor_faults", "date"),
    ),
    "image_cache.csv": BenchmarkView(
        "The decoded image cache on a large set (speed and memory)",
        ("mode", "n_images", "decode_img_per_s", "epoch_read_s", "peak_rss_mib", "peak_anon_mib"),
    ),
    "load_slowdown.csv": BenchmarkView(
        "The part detector's training beside other jobs, by OpenMP wait setting",
        ("date", "epochs", "busy_jobs", "wait_policy", "in_force", "seconds"),
    ),
    "metrics_bench.csv": BenchmarkView(
        "The evaluation (`prreid_lib.metrics`) against fast-reid's evaluators",
        ("implementation", "case", "seconds", "mAP", "rank1"),
    ),
    "paper_check.csv": BenchmarkView(
        "Every chapter at the `paper` profile's sizes (time and peak memory)",
        ("chapter", "build", "seconds", "peak GiB"),
        batch="build",
    ),
    "quality_targets.csv": BenchmarkView(
        "Chapter 4's comparison against the `quick` profile's targets",
        ("target", "threshold", "measured", "passed", "commit"),
        batch="commit",
    ),
    "quick_science.csv": BenchmarkView(
        "Schedules and data sizes tried for the `quick` profile",
        ("label", "synth", "set", "lambda_p", "seed", "cmc1", "mAP"),
    ),
    "regime_map.csv": BenchmarkView(
        "The part losses across cue strengths and feature grids",
        ("synth", "arch", "set", "lambda_p", "seed", "cmc1", "mAP"),
    ),
    "synth_time.csv": BenchmarkView(
        "Time to generate SynthVeh", ("profile", "seconds", "n_images", "date")
    ),
    "train_quality.csv": BenchmarkView(
        "Training runs of the baseline and the part-regularized model",
        ("batch", "lambda_p", "seed", "test_set", "cmc1", "mAP", "final_train_acc"),
        batch="batch",
    ),
    "train_throughput.csv": BenchmarkView(
        "Training speed: images per second of one step, by variant",
        ("variant", "arch", "precision", "img_per_s", "date"),
    ),
}
"""The appendix's summary of each benchmark CSV in ``benchmarks/results/``, by file name.

:meta hide-value:
"""
SUMMARY_COLUMNS = 6
"""Columns shown of a benchmark CSV without a :data:`BENCHMARK_VIEWS` entry (its first ones)."""
READER_WORDS = {"part gain": "part-regularized minus baseline"}
"""Labels in the benchmark CSVs written as the book writes them (the difference can be a
loss, so it is not called a gain)."""


def benchmark_summary(
    measured: pd.DataFrame, view: BenchmarkView | None, shown_rows: int = SHOWN_ROWS
) -> tuple[pd.DataFrame, str]:
    """A benchmark table cut to what a reader needs, and which rows it holds, in words.

    The rows: those of the last measurement (``view.batch``), else the latest ones, at
    most ``shown_rows`` either way; the columns: ``view.columns`` (those present), else
    the first :data:`SUMMARY_COLUMNS`, the first one labelling the rows. Numbers are
    rounded to three decimals, empty cells are blank and labels follow
    :data:`READER_WORDS`.
    """
    columns = [c for c in view.columns if c in measured.columns] if view else []
    columns = columns or list(measured.columns[:SUMMARY_COLUMNS])
    rows = measured
    batch = view.batch if view and view.batch in measured.columns else None
    if batch is not None and len(measured):
        last = measured[batch].iloc[-1]
        rows = measured[measured[batch].isna() if pd.isna(last) else measured[batch] == last]
    shown = rows.tail(shown_rows)
    n_all = len(measured)
    if len(rows) < n_all:
        cut = "" if len(shown) == len(rows) else "the last "
        which = f"its latest {batch} ({last}): {cut}{len(shown)} of {n_all} rows"
    elif len(shown) < n_all:
        which = f"the last {len(shown)} of {n_all} rows"
    else:
        which = "its one row" if n_all == 1 else f"all {n_all} rows"
    table = shown[columns].round(3).astype(object).fillna("")
    table = table.map(lambda cell: _reader_words(cell) if isinstance(cell, str) else cell)
    return table.set_index(columns[0]), which


def _reader_words(text: str) -> str:
    for old, new in READER_WORDS.items():
        text = text.replace(old, new)
    return text


def benchmark_tables(
    results_dir: str | Path = BENCHMARK_RESULTS, shown_rows: int = SHOWN_ROWS
) -> dict[str, pd.DataFrame]:
    """A short summary of each benchmark CSV in ``results_dir`` (:func:`benchmark_summary`
    with the file's :data:`BENCHMARK_VIEWS` entry), by heading: Markdown naming what it
    measures, the rows and columns shown and the full table's path in the repository."""
    tables = {}
    for csv in sorted(Path(results_dir).glob("*.csv")):
        measured = pd.read_csv(csv)
        view = BENCHMARK_VIEWS.get(csv.name)
        table, which = benchmark_summary(measured, view, shown_rows)
        n_shown, n_all = table.shape[1] + 1, measured.shape[1]
        columns = f"all {n_all} columns" if n_shown == n_all else f"{n_shown} of {n_all} columns"
        title = view.title if view else csv.stem
        heading = (
            f"**{title}**: {which}, {columns}; the full table is "
            f"`benchmarks/results/{csv.name}` in the repository."
        )
        tables[heading] = table
    return tables
