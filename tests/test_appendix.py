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


def test_benchmark_tables_show_the_latest_rows_with_blank_gaps(tmp_path):
    pd.DataFrame({"step": range(8), "seconds": [1.0] * 7 + [None]}).to_csv(
        tmp_path / "b_long.csv", index=False
    )
    pd.DataFrame({"step": [1], "seconds": [2.5]}).to_csv(tmp_path / "a_short.csv", index=False)
    (tmp_path / "notes.md").write_text("not a table")
    tables = appendix.benchmark_tables(tmp_path)
    assert list(tables) == [
        "**`benchmarks/results/a_short.csv`**",
        "**`benchmarks/results/b_long.csv`**, the last 6 of 8 rows",
    ]
    long = tables["**`benchmarks/results/b_long.csv`**, the last 6 of 8 rows"]
    assert long["step"].tolist() == [2, 3, 4, 5, 6, 7]
    assert long["seconds"].iloc[-1] == ""  # not measured in that row
    assert appendix.benchmark_tables(tmp_path / "none") == {}


def test_the_benchmarks_folder_is_the_repositorys():
    assert appendix.BENCHMARK_RESULTS == RESULTS_ROOT.parent / "benchmarks" / "results"
    assert any(appendix.BENCHMARK_RESULTS.glob("*.csv"))
