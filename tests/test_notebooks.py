"""Every chapter executes under papermill with the smoke profile, and records what it should."""

from __future__ import annotations

import json

import pytest

from prreid_lib.chapters import list_chapters
from tests.conftest import read_glue

CHAPTERS = [nb.stem for nb in list_chapters()]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_executes_with_smoke_profile(chapter, executed_chapters):
    result = executed_chapters[chapter]
    assert result.error is None, result.error


def test_source_notebooks_have_parameters_cell_and_no_outputs():
    for nb_path in list_chapters():
        nb = json.loads(nb_path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb_path.name}: exactly one cell must be tagged 'parameters'"
        params = "".join(tagged[0]["source"])
        for name in ("profile", "data_root", "seed", "device", "output_dir"):
            assert f"{name} =" in params, f"{nb_path.name}: parameter {name} missing"
        assert all(not c.get("outputs") and not c.get("execution_count") for c in code), (
            f"{nb_path.name} is committed with outputs; clear them"
        )
        assert nb["cells"][0]["cell_type"] == "markdown"
        assert "".join(nb["cells"][0]["source"]).startswith("# ")


def test_every_chapter_is_in_the_table_of_contents():
    toc = (list_chapters()[0].parents[1] / "_toc.yml").read_text()
    for chapter in CHAPTERS:
        assert f"book/_generated/{chapter}" in toc, f"{chapter} missing from _toc.yml"


@pytest.mark.slow
def test_chapter_01_records_synthveh_statistics(executed_chapters, smoke_data):
    from prreid_lib.config import get_profile

    glued = read_glue(executed_chapters["01_data"].output)
    synth = get_profile("smoke").synth
    assert glued["ch01_veri_train_ids"] == synth.veri_train_ids
    assert glued["ch01_vid_train_ids"] == synth.vehicleid_train_ids
    assert glued["ch01_veri_cameras"] <= synth.veri_cameras
    assert 0.5 <= glued["ch01_near_dup_share"] <= 1.0
    assert 0.0 < glued["ch01_light_visible"] <= 1.0
