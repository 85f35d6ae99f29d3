"""The chapters' glued numbers are shown in Jupyter too: glue cells end with glued()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prreid_lib import glued

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_glued_lists_the_values_glued_since_the_last_call(monkeypatch):
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display=True: None)
    glued.glue("ch00_share", 0.12345)
    glued.glue("ch00_words", "beyond the noise")
    table = glued.glued()
    assert table.to_dict()["value"] == {"ch00_share": "0.123", "ch00_words": "beyond the noise"}
    assert glued.glued().empty


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_hidden_glue_cell_shows_its_values_in_jupyter(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] != "code" or "glue(" not in text:
            continue
        assert "from myst_nb import glue" not in text, "glue through prreid_lib.glued"
        if "remove-cell" in cell["metadata"].get("tags", []):
            assert text.rstrip().endswith("glued()"), text[:200]


def test_recorded_values_are_read_back_by_chapter(monkeypatch, tmp_path):
    import numpy as np

    monkeypatch.setattr("myst_nb.glue", lambda name, value, display=True: None)
    monkeypatch.setattr(glued, "_ALL", {})
    monkeypatch.setattr(glued, "_RECORD", [])
    glued.glue("ch04_quick_time", "7 min")  # glued before the chapter's parameters were known
    path = glued.record_glued(tmp_path, "04_training")
    glued.glue("ch04_gain", np.float64(-0.058))
    glued.glue("ch04_n_seeds", np.int64(3))
    glued.glue("ch04_noise", float("nan"))
    glued.glued()
    assert path == tmp_path / "glued" / "04_training.json"
    assert glued.load_glued(tmp_path) == {
        "04_training": {
            "ch04_quick_time": "7 min", "ch04_gain": -0.058, "ch04_n_seeds": 3, "ch04_noise": None
        }
    }  # fmt: skip
    assert glued.load_glued(tmp_path / "elsewhere") == {}


def test_a_damaged_record_names_its_file(tmp_path):
    (tmp_path / "glued").mkdir()
    (tmp_path / "glued" / "06_ablation.json").write_text("{not json")
    with pytest.raises(ValueError, match="06_ablation.json.*rerun chapter 06_ablation"):
        glued.load_glued(tmp_path)


def test_numpy_scalars_are_glued_as_python_numbers(monkeypatch):
    import numpy as np

    seen = {}
    monkeypatch.setattr(
        "myst_nb.glue", lambda name, value, display=True: seen.update({name: value})
    )
    glued.glue("ch00_se", np.float64(0.047))
    glued.glue("ch00_n", np.int64(3))
    glued.glued()
    assert type(seen["ch00_se"]) is float and type(seen["ch00_n"]) is int
