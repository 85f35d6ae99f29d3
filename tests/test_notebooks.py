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
        ids = [c.get("id") for c in nb["cells"]]  # nbformat 4.5: every cell has a unique id
        assert all(ids) and len(set(ids)) == len(ids), (
            f"{nb_path.name}: cell ids missing or repeated"
        )


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


def _glued(executed_chapters, chapter):
    result = executed_chapters[chapter]
    assert result.error is None, result.error
    return read_glue(result.output)


@pytest.mark.slow
def test_training_chapters_record_their_metrics(executed_chapters):
    ch04 = _glued(executed_chapters, "04_training")
    for key in ("ch04_base_cmc1", "ch04_pr_cmc1", "ch04_base_map", "ch04_pr_map"):
        assert 0.0 <= ch04[key] <= 1.0, key
    assert ch04["ch04_gain_cmc1"] == pytest.approx(ch04["ch04_pr_cmc1"] - ch04["ch04_base_cmc1"])
    ch05 = _glued(executed_chapters, "05_evaluation")
    # the two-query worked example of the protocol section: mAP = (4/9 + 1/2) / 2
    assert ch05["ch05_toy_map"] == pytest.approx((4 / 9 + 1 / 2) / 2)
    assert 0.0 <= ch05["ch05_veri_pr_map"] <= 1.0
    # chapter 5 reuses chapter 4's runs: the same models give the same small-set CMC@1 order
    assert 0.0 <= ch05["ch05_vid_pr_cmc1"] <= 1.0


@pytest.mark.slow
def test_study_chapters_record_their_results(executed_chapters):
    ch06 = _glued(executed_chapters, "06_ablation")
    assert -1.0 <= ch06["ch06_spearman"] <= 1.0
    assert ch06["ch06_best"] in {
        "Global+Light+Brand+Window",
        "Global+Light+Brand",
        "Global+Light+Window",
        "Global+Window+Brand",
        "Global+Window",
        "Window+Light+Brand",
        "Baseline (w/o parts)",
    }
    ch07 = _glued(executed_chapters, "07_resolution")
    assert ch07["ch07_small_size"] < ch07["ch07_large_size"]
    assert -1.0 <= ch07["ch07_gain_inside"] <= 1.0
    ch08 = _glued(executed_chapters, "08_cam")
    assert 0.0 < ch08["ch08_area_share"] < 1.0
    assert 0.0 <= ch08["ch08_share_base"] <= 1.0
    assert 0.0 <= ch08["ch08_share_pr"] <= 1.0
    ch09 = _glued(executed_chapters, "09_appendix")
    assert ch09["ch09_n_benchmarks"] >= 1


@pytest.mark.slow
def test_part_chapters_record_validation_and_detection(executed_chapters):
    ch02 = _glued(executed_chapters, "02_part_annotation")
    # the deliberately broken label file of chapter 2 breaks each of the six rules once
    assert ch02["ch02_n_problems"] == 6
    assert ch02["ch02_train_problems"] == 0
    assert ch02["ch02_roundtrip_error"] < 0.01
    ch03 = _glued(executed_chapters, "03_part_detection")
    for part in ("window", "light", "brand"):
        assert 0.0 <= ch03[f"ch03_map50_{part}"] <= 1.0
    assert 0.0 <= ch03["ch03_imputed_share"] <= 1.0
