"""Result tables and their archive: save, archive with provenance, load, and the appendix."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from prreid_lib import cli
from prreid_lib.results import (
    archive_tables,
    archived_profiles,
    load_archive,
    load_tables,
    save_table,
)

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_TABLES = {
    "ch03_detector_ap",
    "ch04_baseline_vs_parts",
    "ch05_vehicleid",
    "ch05_veri776",
    "ch06_ablation",
    "ch06_recipes",
    "ch07_resolution",
    "ch07_cue_outside",
    "ch08_cam_share",
}


def _table(value: float) -> pd.DataFrame:
    return pd.DataFrame({"CMC@1": [value, value / 2]}, index=pd.Index(["a", "b"], name="variant"))


def test_save_and_load_tables_round_trip(tmp_path):
    path = save_table(_table(0.5), tmp_path, "ch06_ablation")
    assert path == tmp_path / "tables" / "ch06_ablation.csv"
    pd.testing.assert_frame_equal(load_tables(tmp_path)["ch06_ablation"], _table(0.5))
    assert load_tables(tmp_path / "nothing") == {}
    with pytest.raises(ValueError, match="table name"):
        save_table(_table(0.5), tmp_path, "../escape")


def test_archive_keeps_provenance_and_replaces_an_older_archive(tmp_path):
    build, results = tmp_path / "runs", tmp_path / "results"
    with pytest.raises(FileNotFoundError, match="no result tables"):
        archive_tables("paper", build, results)
    save_table(_table(0.5), build, "ch06_ablation")
    save_table(_table(0.3), build, "ch07_resolution")
    dest = archive_tables("paper", build, results)
    info = json.loads((dest / "provenance.json").read_text())
    assert info["profile"] == "paper" and info["tables"] == ["ch06_ablation", "ch07_resolution"]
    assert {"commit", "date", "hardware", "torch", "python"} <= set(info)
    assert archived_profiles(results) == ["paper"]
    (build / "tables" / "ch07_resolution.csv").unlink()
    save_table(_table(0.9), build, "ch06_ablation")
    archive_tables("paper", build, results)  # a newer build replaces the whole archive
    archived = load_archive("paper", results)
    assert set(archived.tables) == {"ch06_ablation"}
    assert archived.tables["ch06_ablation"].loc["a", "CMC@1"] == 0.9


def test_load_archive_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="prreid archive --profile paper"):
        load_archive("paper", tmp_path)
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "provenance.json").write_text("{not json")
    with pytest.raises(ValueError, match="provenance.json: not valid JSON"):
        load_archive("paper", tmp_path)


def test_cli_archive(tmp_path, capsys):
    build, results = tmp_path / "runs", tmp_path / "results"
    args = ["archive", "--profile", "paper", "--output-dir", str(build), "--results", str(results)]
    assert cli.main(args) == 2  # nothing to archive: a clear message, no traceback
    err = capsys.readouterr().err  # no build folder: the option is named
    assert f"--output-dir {build}: not found" in err and err.count("\n") == 1
    build.mkdir()
    assert cli.main(args) == 2  # an empty build: nothing to archive
    assert "no result tables" in capsys.readouterr().err
    save_table(_table(0.5), build, "ch06_ablation")
    assert cli.main(args) == 0
    assert (results / "paper" / "ch06_ablation.csv").is_file()


@pytest.mark.slow
def test_chapters_save_their_tables(executed_chapters, smoke_runs):
    assert all(c.error is None for c in executed_chapters.values())
    assert CHAPTER_TABLES <= set(load_tables(smoke_runs))


@pytest.mark.slow
def test_appendix_shows_an_archived_profile_beside_this_build(
    executed_chapters, smoke_runs, tmp_path
):
    import papermill as pm

    from tests.conftest import read_glue

    results = tmp_path / "results"
    archive_tables("paper", smoke_runs, results)
    out = tmp_path / "09.ipynb"
    params = {"profile": "smoke", "output_dir": str(smoke_runs), "results_root": str(results)}
    pm.execute_notebook(
        str(ROOT / "notebooks" / "09_appendix.ipynb"), str(out), parameters=params,
        cwd=str(ROOT), kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    assert read_glue(out)["ch09_n_archived_profiles"] == 1
    text = out.read_text()
    assert "ours, paper" in text and "ours, smoke (this build)" in text
