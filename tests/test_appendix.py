"""The appendix's tables (prreid_lib.studies.appendix): chapter times, archived profiles
beside this build, benchmark results."""

from __future__ import annotations

import json
import math

import pandas as pd

from prreid_lib import chapters
from prreid_lib.results import RESULTS_ROOT, save_table
from prreid_lib.studies import appendix


def test_the_appendix_reads_the_timings_file_prreid_book_writes(tmp_path):
    assert appendix.TIMINGS_FILE == chapters.TIMINGS_FILE
    params = chapters.ChapterParameters(profile="smoke", output_dir=str(tmp_path / "runs"))
    chapters.run_chapters(params, chapters=[], cwd=tmp_path)  # writes the (empty) table
    assert (tmp_path / "runs" / appendix.TIMINGS_FILE).is_file()
    assert appendix.chapter_timings(tmp_path / "runs") is None  # no chapter before this one


def test_chapter_timings_total_and_summary(tmp_path):
    assert appendix.chapter_timings(tmp_path) is None
    assert math.isnan(appendix.total_seconds(None))
    assert appendix.timings_summary(None).startswith("no chapter timings: this notebook was run")
    rows = {"chapter": ["01_data", "02_part_annotation"], "seconds": [8.6, 20.25]}
    pd.DataFrame(rows).to_csv(tmp_path / appendix.TIMINGS_FILE, index=False)
    timings = appendix.chapter_timings(tmp_path)
    assert timings["chapter"].tolist() == rows["chapter"]
    assert appendix.total_seconds(timings) == 28.85
    assert appendix.timings_summary(timings) == "total (chapters before this one): 29 s = 0.5 min"


def _archive(root, profile, tables, provenance):
    folder = root / profile
    folder.mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps(provenance))
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv")


def test_archived_views_set_each_table_beside_this_builds(tmp_path):
    ours = pd.DataFrame({"CMC@1": [0.51234]}, index=["baseline"])
    save_table(ours, tmp_path / "runs", "ch04_headline")
    archive = tmp_path / "results"
    paper = {"ch04_headline": ours + 0.2, "ch06_ablation": pd.DataFrame({"mAP": [0.412345]})}
    prov = {"commit": "0123456789abcdef", "date": "2025-01-01", "hardware": "H100", "gpus": 4}
    _archive(archive, "paper", paper, prov | {"torch": "2.14.1"})
    _archive(archive, "smoke", {"ch04_headline": ours}, {})
    (view,) = appendix.archived_views("smoke", tmp_path / "runs", archive)  # not smoke itself
    assert view.profile == "paper"
    assert view.provenance == "profile paper: commit 0123456789, 2025-01-01, H100 x 4, torch 2.14.1"
    beside, alone = view.tables.values()
    assert list(view.tables) == [
        "**ch04_headline** (profile paper)",
        "**ch06_ablation** (profile paper)",
    ]
    assert list(beside.columns) == [
        ("ours, smoke (this build)", "CMC@1"),
        ("ours, paper", "CMC@1"),
    ]
    assert beside.iloc[0].tolist() == [0.512, 0.712]
    assert alone.index.name == "ours, paper" and alone["mAP"].tolist() == [0.412]


def test_archived_views_without_other_profiles_and_the_note(tmp_path):
    assert appendix.archived_views("smoke", tmp_path / "runs", tmp_path / "results") == []
    assert appendix.archive_folder(None) == RESULTS_ROOT
    assert appendix.archive_folder(str(tmp_path)) == tmp_path
    note = appendix.no_archive_note(tmp_path / "results")
    assert note.startswith("No archived results of another profile in results/.")
    assert "prreid archive --profile paper" in note


def test_benchmark_tables_summarise_each_csv_and_name_the_full_file(tmp_path):
    pd.DataFrame(
        {
            "step": range(8),
            "seconds": [1.23456] * 7 + [None],
            "host": ["a"] * 8,
            "c3": 0,
            "c4": 0,
            "c5": 0,
            "c6": 0,
            "c7": 0,
        }
    ).to_csv(tmp_path / "b_long.csv", index=False)
    pd.DataFrame({"step": [1], "seconds": [2.5]}).to_csv(tmp_path / "a_short.csv", index=False)
    (tmp_path / "notes.md").write_text("not a table")
    tables = appendix.benchmark_tables(tmp_path, shown_rows=6)
    assert list(tables) == [
        "**a_short**: its one row, all 2 columns; the full table is "
        "`benchmarks/results/a_short.csv` in the repository.",
        "**b_long**: the last 6 of 8 rows, 6 of 8 columns; the full table is "
        "`benchmarks/results/b_long.csv` in the repository.",
    ]
    long = list(tables.values())[1]
    # no view for this file: its first SUMMARY_COLUMNS columns, the first labelling the rows
    assert long.index.name == "step" and long.index.tolist() == [2, 3, 4, 5, 6, 7]
    assert list(long.columns) == ["seconds", "host", "c3", "c4", "c5"]
    assert long["seconds"].iloc[0] == 1.235  # three decimals
    assert long["seconds"].iloc[-1] == ""  # not measured in that row
    assert appendix.benchmark_tables(tmp_path / "none") == {}


def test_benchmark_summary_shows_the_views_columns_of_the_latest_measurement():
    measured = pd.DataFrame(
        {
            "commit": ["aaa", "aaa", "bbb", "bbb"],
            "target": ["baseline CMC@1", "part gain CMC@1"] * 2,
            "measured": [0.11111, -0.02222, 0.23456, -0.03456],
            "unread": [9, 9, 9, 9],
        }
    )
    view = appendix.BenchmarkView("targets", ("target", "measured", "absent"), batch="commit")
    table, which = appendix.benchmark_summary(measured, view)
    assert which == "its latest commit (bbb): 2 of 4 rows"
    assert list(table.columns) == ["measured"]  # "absent" is skipped, "unread" not shown
    assert table.index.tolist() == ["baseline CMC@1", "part-regularized minus baseline CMC@1"]
    assert table["measured"].tolist() == [0.235, -0.035]
    _, cut = appendix.benchmark_summary(measured, view, shown_rows=1)
    assert cut == "its latest commit (bbb): the last 1 of 4 rows"
    plain = appendix.BenchmarkView("targets", ("target", "measured"))
    _, tail = appendix.benchmark_summary(measured, plain, shown_rows=3)
    assert tail == "the last 3 of 4 rows"


def test_every_committed_benchmark_has_a_view_whose_columns_it_holds():
    for csv in sorted(appendix.BENCHMARK_RESULTS.glob("*.csv")):
        view = appendix.BENCHMARK_VIEWS.get(csv.name)
        assert view is not None, f"{csv.name}: no BenchmarkView in BENCHMARK_VIEWS"
        header = pd.read_csv(csv, nrows=0).columns
        missing = [c for c in (*view.columns, view.batch) if c and c not in header]
        assert not missing, f"{csv.name}: the view names columns it lacks: {missing}"


def test_the_benchmarks_folder_is_the_repositorys():
    assert appendix.BENCHMARK_RESULTS == RESULTS_ROOT.parent / "benchmarks" / "results"
    assert any(appendix.BENCHMARK_RESULTS.glob("*.csv"))
