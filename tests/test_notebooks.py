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
def test_chapter_04_trains_the_pair_with_the_profile_seeds_from_one_pretrained_start(
    executed_chapters, smoke_runs
):
    import pandas as pd

    from prreid_lib.config import get_profile
    from prreid_lib.studies import BASELINE, FULL, LABELS

    n_seeds = get_profile("smoke").n_seeds
    ch04 = _glued(executed_chapters, "04_training")
    table = pd.read_csv(smoke_runs / "tables" / "ch04_baseline_vs_parts.csv", index_col=0)
    assert list(table.index) == [LABELS[BASELINE], LABELS[FULL]]  # rows named as the paper's
    table = table.rename(index={label: key for key, label in LABELS.items()})
    for column in ("CMC@1", "CMC@5", "mAP", "CMC@1 std over seeds", "seeds"):
        assert column in table.columns, column
    assert (table["seeds"] == n_seeds).all()
    assert ch04["ch04_gain_cmc1"] == pytest.approx(
        table.loc[FULL, "CMC@1"] - table.loc[BASELINE, "CMC@1"]
    )
    assert ch04["ch04_noise_cmc1"] == pytest.approx(table["CMC@1 std over seeds"].max())
    created = executed_chapters["04_training"].new_runs
    assert len([r for r in created if r.startswith("pretrain/")]) == 1, created
    assert len([r for r in created if r.startswith("reid/vehicleid/")]) == 2 * n_seeds, created


@pytest.mark.slow
def test_later_chapters_reuse_the_start_and_chapter_4_runs(executed_chapters):
    for chapter in ("05_evaluation", "06_ablation", "07_resolution", "08_cam"):
        created = executed_chapters[chapter].new_runs
        assert not [r for r in created if r.startswith("pretrain/")], (chapter, created)
    # chapter 5 evaluates chapter 4's models (VehicleID and, on smoke, VeRi-776): no training
    assert executed_chapters["05_evaluation"].new_runs == ()
    # chapter 8 draws the maps of chapter 4's models
    assert executed_chapters["08_cam"].new_runs == ()
    ch05 = _glued(executed_chapters, "05_evaluation")
    # the two-query worked example of the protocol section: mAP = (4/9 + 1/2) / 2
    assert ch05["ch05_toy_map"] == pytest.approx((4 / 9 + 1 / 2) / 2)


@pytest.mark.slow
def test_chapter_06_trains_only_the_missing_variants_and_sorts_every_ordered_pair(
    executed_chapters,
):
    from itertools import combinations

    from prreid_lib import paper_tables
    from prreid_lib.studies import ABLATION_VARIANTS

    # five ablation rows beyond chapter 4's pair, and the strong recipe's two models
    assert len(executed_chapters["06_ablation"].new_runs) == len(ABLATION_VARIANTS) - 2 + 2
    ch06 = _glued(executed_chapters, "06_ablation")
    paper = paper_tables.ablation_table()["CMC@1"]
    ordered = sum(paper[a] != paper[b] for a, b in combinations(paper.index, 2))
    assert ch06["ch06_n_pairs"] == ordered
    assert ch06["ch06_n_held"] + ch06["ch06_n_reversed"] + ch06["ch06_n_unresolved"] == ordered
    assert ch06["ch06_threshold"] == pytest.approx(2 * 2**0.5 * ch06["ch06_noise"])


@pytest.mark.slow
def test_chapters_07_to_09_record_their_results(executed_chapters, smoke_runs):
    import pandas as pd

    ch07 = _glued(executed_chapters, "07_resolution")
    assert ch07["ch07_small_size"] < ch07["ch07_large_size"]
    strength = pd.read_csv(smoke_runs / "tables" / "ch07_gain_vs_strength.csv", index_col=0)
    assert "random start" in strength.index and "pretrained start (chapter 4)" in strength.index
    gain = strength["part-regularized CMC@1"] - strength["baseline CMC@1"]
    assert (gain - strength["gain CMC@1"]).abs().max() < 1e-9
    ch08 = _glued(executed_chapters, "08_cam")
    shares = pd.read_csv(smoke_runs / "tables" / "ch08_cam_share.csv", index_col=0)
    low, high = shares["union: 95% CI low"], shares["union: 95% CI high"]
    assert ((low <= shares["all parts (union)"]) & (shares["all parts (union)"] <= high)).all()
    assert (high - low).iloc[1:].gt(0).all()  # the models' shares vary over images
    assert ch08["ch08_share_verdict"].startswith(
        ("did not move", "moved it towards", "moved it away")
    )
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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ([0, 1, 2], [0, 1, 2]),
        ((48, 64), [48, 64]),
        ("[0, 1, 2]", [0, 1, 2]),  # papermill -p seeds "[0, 1, 2]"
        (" [0.0, 0.25] ", [0.0, 0.25]),
        ("(32, 64)", [32, 64]),
        ("0, 1", [0, 1]),
    ],
)
def test_list_parameters_accept_both_papermill_forms(value, expected):
    from prreid_lib.chapters import as_list

    assert as_list(value, "seeds") == expected


@pytest.mark.parametrize("value", ["seeds", "[0, 1", 3, "{'a': 1}"])
def test_list_parameter_that_is_no_list_is_refused_by_name(value):
    from prreid_lib.chapters import as_list

    with pytest.raises(ValueError, match="seeds must be a list"):
        as_list(value, "seeds")


LIST_PARAMETERS = [
    ("seeds", "[0, 1]", [0, 1]),
    ("input_sizes", "[64, 96]", [64, 96]),
    ("outside_cue_shares", "[0, 0.5]", [0.0, 0.5]),
]


def test_every_list_parameter_is_parsed_by_the_parameter_check():
    """Papermill gives ``-p seeds "[0, 1]"`` as text: the check cell after ``parameters``
    parses every list parameter a chapter declares, so no cell parses it again."""
    from prreid_lib.chapter_parameters import KINDS

    for nb_path in list_chapters():
        nb = json.loads(nb_path.read_text())
        code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        for name, text, value in LIST_PARAMETERS:
            if f"\n{name} = " in "\n" + code:
                assert KINDS[name].convert(text) == value, f"{nb_path.name}: {name}"
                assert f"as_list({name}" not in code, f"{nb_path.name}: {name} parsed twice"
