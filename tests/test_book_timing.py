"""The book's timing table: written by `prreid book`, committed for the quick profile,
read back by each chapter's header."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from prreid_lib import book_timing
from prreid_lib.chapters import list_chapters

STEPS = [("SynthVeh", 24.84), ("01_data", 8.6), ("03_part_detection", 153.2), ("HTML build", 14.1)]


def _committed_like(tmp_path, steps=STEPS):
    table = book_timing.timing_table(steps, "quick", date="2026-12-02", cpu_count=2)
    return book_timing.write_timing(table, tmp_path)


def test_timing_table_has_one_row_per_step_with_the_build(tmp_path):
    table = book_timing.timing_table(STEPS, "smoke", date="2026-01-01", cpu_count=4)
    assert list(table.columns) == list(book_timing.COLUMNS)
    assert table["step"].tolist() == [s for s, _ in STEPS]
    assert table["seconds"].tolist() == [24.8, 8.6, 153.2, 14.1]
    assert set(table["profile"]) == {"smoke"} and set(table["cpu_count"]) == {4}
    path = book_timing.write_timing(table, tmp_path / "runs")
    assert path == tmp_path / "runs" / "book_timing.csv"
    pd.testing.assert_frame_equal(book_timing.read_timing(path), table)
    today = book_timing.timing_table(STEPS, "smoke")
    assert len(today["date"].iloc[0]) == 10 and today["cpu_count"].iloc[0] >= 1


def test_quick_profile_minutes_and_text(tmp_path):
    path = _committed_like(tmp_path)
    assert book_timing.quick_profile_minutes("03_part_detection", path) == pytest.approx(153.2 / 60)
    assert book_timing.quick_profile_minutes("04_training", path) is None
    assert book_timing.quick_profile_minutes("01_data", tmp_path / "none.csv") is None
    assert book_timing.quick_profile_time("03_part_detection", path) == (
        "about 3 min on 2 CPU cores (measured in benchmarks/results/book_timing.csv)"
    )
    assert book_timing.quick_profile_time("01_data", path).startswith("under a minute on 2 CPU")
    assert book_timing.quick_profile_time("04_training", path).startswith("not measured")


def test_a_table_with_other_columns_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "timing.csv"
    pd.DataFrame({"chapter": ["01_data"], "seconds": [1.0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=f"{path}.*lacks the columns.*prreid book"):
        book_timing.quick_profile_minutes("01_data", path)


def test_committed_quick_timing_is_in_the_writers_format_and_covers_every_chapter(tmp_path):
    committed = book_timing.QUICK_TIMING_CSV
    table = book_timing.read_timing(committed)
    assert set(table["profile"]) == {"quick"}
    for chapter in list_chapters():
        assert book_timing.quick_profile_minutes(chapter.stem) is not None, chapter.stem
    rewritten = book_timing.write_timing(table, tmp_path)
    assert rewritten.read_text() == committed.read_text()


def test_every_chapter_states_its_quick_time_at_the_top():
    for path in list_chapters():
        cells = json.loads(path.read_text())["cells"]
        key = f"ch{path.stem[:2]}_quick_time"
        code = [
            i
            for i, c in enumerate(cells)
            if f'quick_profile_time("{path.stem}")' in "".join(c["source"])
        ]
        assert len(code) == 1, f"{path.name}: no cell glues {key}"
        cell = cells[code[0]]
        assert "remove-cell" in cell["metadata"].get("tags", []), path.name  # Jupyter shows it
        assert f'glue("{key}"' in "".join(cell["source"])
        text = "".join(cells[code[0] + 1]["source"])
        assert text.startswith("Time with the `quick` profile:") and key in text, path.name
        assert code[0] <= 3, f"{path.name}: the time belongs right after the learning goals"


def test_prreid_book_writes_its_timing_table(monkeypatch, tmp_path, capsys):
    from prreid_lib import chapters, cli

    def fake_run(params, selected, on_done=None, **kwargs):
        for k, notebook in enumerate(selected):
            on_done(notebook.stem, 1.0 + k)
        return pd.DataFrame()

    monkeypatch.setattr(chapters, "run_chapters", fake_run)
    out = tmp_path / "runs"
    (tmp_path / "parts").mkdir()  # chapter 02 reads the part labels, checked before it runs
    (tmp_path / "parts" / "data.yaml").write_text("train: images/train\n")
    args = ["book", "--profile", "smoke", "--data-root", str(tmp_path), "--output-dir", str(out)]
    assert cli.main([*args, "--chapters", "01", "02", "--no-build"]) == 0
    table = book_timing.read_timing(out / "book_timing.csv")
    assert table["step"].tolist() == ["01_data", "02_part_annotation"]
    assert table["seconds"].tolist() == [1.0, 2.0] and set(table["profile"]) == {"smoke"}
    assert "book_timing.csv" in capsys.readouterr().out
