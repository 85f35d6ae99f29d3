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
