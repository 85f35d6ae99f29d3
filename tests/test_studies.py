"""The chapters' seam to the library: data roots, part labels, detected boxes, variants,
labels, the VeRi-776 junk rule, near-duplicate pairs and the profiles' study sizes."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from prreid_lib import paper_tables, studies, synthveh_files
from prreid_lib.config import PROFILES, get_profile
from prreid_lib.metrics import vehicleid_protocol
from prreid_lib.paper_tables import LABELS, PAPER_LABEL, Variant
from prreid_lib.synthveh_files import IDENTITIES_FILE, MANIFEST, PARTS_FILE

REPO = Path(__file__).resolve().parent.parent

START = SimpleNamespace(path=Path("pretrained.pt"))
"""Stands in for the pretrained backbone, so loading the data trains nothing."""


def _smoke_study(smoke_data: Path, output_dir: Path, part_source: str = "ground_truth"):
    return studies.load_study_data(
        "smoke",
        data_root=smoke_data,
        output_dir=output_dir,
        part_source=part_source,
        device="cpu",
        start=START,
    )


def _real_data(profile: str, root: Path, vehicleid=None, tests=None) -> studies.StudyData:
    """Study data of a real data set, without files: what the labels and the oracle read."""
    return studies.StudyData(
        profile=get_profile(profile),
        root=root,
        synthetic=False,
        vehicleid=vehicleid,
        tests=tests or {},
        part_boxes=pd.DataFrame(),
        test_part_boxes=None,
        part_source="",
    )


def test_data_root_is_the_given_folder_or_the_profiles_synthveh(monkeypatch, tmp_path):
    assert studies.resolve_data_root("smoke", tmp_path) == tmp_path
    calls = []
    monkeypatch.setattr(
        "prreid_lib.synthveh.ensure_synthveh",
        lambda prof, seed: calls.append((prof.name, seed)) or tmp_path / "made",
    )
    assert studies.resolve_data_root("smoke", None, data_seed=3) == tmp_path / "made"
    assert calls == [("smoke", 3)]


def test_synthveh_is_told_from_real_data(smoke_data, tmp_path):
    assert studies.is_synthveh(smoke_data)  # the root: its manifest
    for layout in ("VeRi-776", "VehicleID", "parts", "pretrain"):  # its folders: part boxes
        assert studies.is_synthveh(smoke_data / layout), layout
    assert not studies.is_synthveh(tmp_path)
    (tmp_path / "VehicleID_V1.0").mkdir()
    assert not studies.is_synthveh(tmp_path / "VehicleID_V1.0")


def test_synthveh_file_names_are_those_the_generator_writes(smoke_data):
    assert json.loads((smoke_data / MANIFEST).read_text())["seed"] == 0
    for layout in ("VeRi-776", "VehicleID", "parts", "pretrain"):
        assert (smoke_data / layout / PARTS_FILE).is_file(), layout
    for layout in ("VeRi-776", "VehicleID", "pretrain"):
        assert {"pid", "group"} <= set(pd.read_csv(smoke_data / layout / IDENTITIES_FILE))


def _string_constants(source: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant)}


def test_synthveh_file_names_are_written_in_one_module():
    names = {MANIFEST, PARTS_FILE, IDENTITIES_FILE}
    home = Path(synthveh_files.__file__)
    sources = {p: p.read_text() for p in (REPO / "prreid_lib").rglob("*.py") if p != home}
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        sources[nb] = "\n".join(line for c in code for line in c.splitlines() if line[:1] != "%")
    spelled = {str(p.relative_to(REPO)): names & _string_constants(s) for p, s in sources.items()}
    assert not {p: n for p, n in spelled.items() if n}, "use prreid_lib.synthveh_files"


def test_load_data_sets_takes_what_the_folder_holds(smoke_data, tmp_path, capsys):
    veri, vid = studies.load_data_sets(smoke_data)
    assert len(veri.train) and len(vid.train) and len(vid.test)
    only_vid = tmp_path / "only_vehicleid"
    only_vid.mkdir()
    (only_vid / "VehicleID").symlink_to(smoke_data / "VehicleID")
    veri, vid = studies.load_data_sets(only_vid)
    assert veri is None and vid is not None
    assert "not loaded" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="neither VeRi-776 nor VehicleID.*data_root=None"):
        studies.load_data_sets(empty)


def test_parts_yaml_defaults_to_the_labelled_subset_and_names_a_missing_file(smoke_data, tmp_path):
    path = studies.resolve_parts_yaml(smoke_data)
    assert path == smoke_data / "parts" / "data.yaml"
    assert studies.resolve_parts_yaml(tmp_path, path) == path
    spec, root = studies.parts_spec(path)
    assert {"train", "val", "names"} <= set(spec)
    assert (root / spec["train"]).is_dir()
    missing = tmp_path / "mine" / "data.yaml"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*parts_yaml="):
        studies.resolve_parts_yaml(tmp_path, missing)


def test_detected_boxes_round_trip_through_one_file(tmp_path):
    boxes = pd.DataFrame(
        {
            "path": ["/a.jpg", "/a.jpg"],
            "part": ["window", "light"],
            "side": [None, "left"],
            "x1": [1.5, 2.0],
            "y1": [0.0, 3.0],
            "x2": [10.0, 5.0],
            "y2": [4.0, 9.0],
            "imputed": [False, True],
        }
    )
    written = studies.save_detected_boxes(boxes, tmp_path)
    assert written == tmp_path / "ch03" / "part_boxes.csv" == studies.detected_boxes_path(tmp_path)
    pd.testing.assert_frame_equal(studies.load_detected_boxes(tmp_path), boxes)
    assert [p.name for p in written.parent.iterdir()] == ["part_boxes.csv"]  # no temporary left
    with pytest.raises(FileNotFoundError, match="run chapter 3 .*part_source='ground_truth'"):
        studies.load_detected_boxes(tmp_path / "elsewhere")


def test_load_study_data_reads_the_saved_detections(smoke_data, tmp_path):
    truth = _smoke_study(smoke_data, tmp_path)
    assert truth.part_source.startswith("ground truth")
    studies.save_detected_boxes(truth.part_boxes.assign(x1=0.0), tmp_path)
    detected = _smoke_study(smoke_data, tmp_path, "auto")
    assert detected.part_source.startswith("detected (chapter 3), 100%")
    assert (detected.part_boxes["x1"] == 0.0).all()
    with pytest.raises(FileNotFoundError, match="run chapter 3"):
        _smoke_study(smoke_data, tmp_path / "none", "detected")


def test_table_labels_name_the_data_used(smoke_data, tmp_path):
    data = _smoke_study(smoke_data, tmp_path)
    assert studies.table_labels(data) == ("ours (SynthVeh, smoke)", PAPER_LABEL)
    real = _real_data("vehicleid", tmp_path)
    ours, paper = studies.table_labels(real)
    assert ours == "ours (VehicleID, vehicleid profile)" and "SynthVeh" not in ours
    assert paper == PAPER_LABEL
    assert (data.data_name, real.data_name) == ("SynthVeh", "VehicleID")


def test_train_variants_trains_each_with_its_overrides_and_the_common_ones(monkeypatch):
    calls = []

    def fake(data, name, *, output_dir, seed, device, **overrides):
        calls.append((name, output_dir, seed, device, overrides))
        return f"run of {name}"

    monkeypatch.setattr("prreid_lib.studies.variants.train_variant", fake)
    runs = studies.train_variants(
        "data", studies.HEADLINE_PAIR, output_dir="out", seed=2, device="cpu", dataset="veri776"
    )
    assert list(runs) == [studies.BASELINE, studies.FULL]
    assert runs[studies.FULL] == f"run of {studies.FULL}"
    for (name, output_dir, seed, device, overrides), expected in zip(
        calls, studies.HEADLINE_PAIR.items(), strict=True
    ):
        assert (name, output_dir, seed, device) == (expected[0], "out", 2, "cpu")
        assert overrides == {**expected[1], "dataset": "veri776"}


def test_synthveh_variant_changes_only_the_named_settings(smoke_data, tmp_path):
    data = _smoke_study(smoke_data, tmp_path)
    other = studies.synthveh_variant(
        data,
        "smoke-outside1",
        tmp_path / "outside1",
        output_dir=tmp_path,
        device="cpu",
        outside_cue_share=1.0,
    )
    assert other.profile.name == "smoke-outside1" and other.root == tmp_path / "outside1"
    assert other.profile.synth.outside_cue_share == 1.0
    assert other.profile.synth.pretrain_ids == 0 and other.start is START
    assert other.profile.train == data.profile.train and other.synthetic
    assert other.part_source.startswith("ground truth")
    real = _real_data("veri776", tmp_path)
    with pytest.raises(ValueError, match="real data.*data_root=None"):
        studies.synthveh_variant(real, "x", tmp_path / "x", cue_strength=0.5)


def test_same_camera_junk_is_the_protocols_rule():
    query = pd.DataFrame({"pid": [1, 2], "camid": [1, 3]})
    gallery = pd.DataFrame({"pid": [1, 1, 2, 2, 3], "camid": [1, 2, 3, 3, 3]})
    expected = np.array([[1, 0, 0, 0, 0], [0, 0, 1, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(studies.same_camera_junk(query, gallery), expected)


def test_veri_figures_with_and_without_tracks():
    image = SimpleNamespace(mAP=0.5, cmc=[0.6, 0.7, 0.8, 0.9, 1.0])
    track = SimpleNamespace(mAP=0.4, cmc=[0.3, 0.35, 0.4, 0.45, 0.7])
    assert studies.veri_figures({"image": image}) == {
        "mAP (image-to-image)": 0.5,
        "CMC@1 (image-to-image)": 0.6,
    }
    row = studies.veri_figures({"image": image, "track": track})
    assert (row["mAP (image-to-track)"], row["HIT@1"], row["HIT@5"]) == (0.4, 0.3, 0.7)


def _frame():
    # groups a (3 identities), b (2), c (1: no pair); two images per identity
    pids = {"a": [1, 2, 3], "b": [4, 5], "c": [6]}
    rows = [
        {"path": f"{pid}_{k}.jpg", "pid": pid, "group": group}
        for group, members in pids.items()
        for pid in members
        for k in range(2)
    ]
    return pd.DataFrame(rows)


def test_sample_pairs_draws_distinct_identities_of_one_group():
    frame = _frame()
    pairs = studies.sample_pairs(frame, n_pairs=2, seed=0)
    assert len(pairs) == 4 and pairs["pid"].is_unique
    for k in range(0, len(pairs), 2):
        assert pairs["group"].iloc[k] == pairs["group"].iloc[k + 1]
    assert set(pairs["group"]) == {"a", "b"}  # one pair per group first
    assert set(pairs["path"]) <= set(frame["path"])
    pd.testing.assert_frame_equal(pairs, studies.sample_pairs(frame, 2, seed=0))
    assert len(studies.sample_pairs(frame, n_pairs=5, seed=1)) == 4  # only two pairs exist
    assert studies.sample_pairs(frame[frame["group"] == "c"], 3).empty


def test_near_duplicate_pairs_on_synthveh_share_make_model_colour(smoke_data, tmp_path):
    data = _smoke_study(smoke_data, tmp_path)
    pairs = studies.near_duplicate_pairs(data, n_pairs=3, seed=0)
    assert len(pairs) == 6 and pairs["pid"].is_unique
    assert (pairs["view"] == "front").all()
    assert (pairs["group"].iloc[0::2].to_numpy() == pairs["group"].iloc[1::2].to_numpy()).all()
    assert set(pairs["path"]) <= set(data.vehicleid.train["path"])


def test_profiles_carry_the_study_sizes_the_chapters_used():
    smoke, quick, paper = (get_profile(n).study for n in ("smoke", "quick", "paper"))
    assert smoke.input_sizes == quick.input_sizes == (48, 64)
    assert smoke.outside_cue_shares == quick.outside_cue_shares == (0.0, 1.0)
    assert paper.input_sizes == (128, 256, 512) and paper.outside_cue_shares == (0.0, 0.5, 1.0)
    assert smoke.random_start and paper.random_start and not quick.random_start
    assert smoke.veri_train == quick.veri_train == "vehicleid" and paper.veri_train == "veri776"
    check = get_profile("paper-check").study  # the paper's sizes, fewer images
    assert check.input_sizes == (128, 256) and (check.cam_pairs, check.cam_images) == (4, 32)
    for profile in PROFILES.values():
        if profile.name != "paper-check":
            assert (profile.study.cam_pairs, profile.study.cam_images) == (4, 300)
        if profile.real_data:
            assert profile.study == paper


def test_group_oracle_scores_chance_within_each_make_model_colour_group(smoke_data, tmp_path):
    data = _smoke_study(smoke_data, tmp_path)
    test = data.tests["large"]
    groups = studies.identity_groups(data, test)
    assert groups.notna().all() and groups.nunique() > 1
    oracle = studies.group_oracle(data, test_set="large")
    assert oracle["identities"] == test["pid"].nunique()
    assert oracle["groups"] == groups.nunique()
    # the same feature, measured: one-hot group codes with a little noise to break ties
    # at random, over many gallery draws of the protocol, agrees with the exact expectation
    codes = pd.factorize(groups)[0]
    rng = np.random.default_rng(0)
    cmc1, cmc5, mean_ap = [], [], []
    for _ in range(40):
        feats = np.eye(codes.max() + 1, dtype=np.float32)[codes]
        feats += rng.normal(0, 1e-3, feats.shape).astype(np.float32)
        res = vehicleid_protocol(feats, test["pid"].to_numpy(), 1, int(rng.integers(1 << 30)))
        cmc1.append(res.cmc_mean[0]), cmc5.append(res.cmc_mean[4]), mean_ap.append(res.mAP_mean)
    assert oracle["CMC@1"] == pytest.approx(np.mean(cmc1), abs=0.03)
    assert oracle["CMC@5"] == pytest.approx(np.mean(cmc5), abs=0.03)
    assert oracle["mAP"] == pytest.approx(np.mean(mean_ap), abs=0.03)
    assert 0 < oracle["CMC@1"] < oracle["CMC@5"] <= 1


def test_group_oracle_needs_every_test_image_grouped(tmp_path):
    test = pd.DataFrame(
        {"pid": [1, 1, 2, 2], "model_id": [3, 3, 3, None], "colour_id": [0, 0, 0, 0]}
    )
    data = _real_data("vehicleid", tmp_path, SimpleNamespace(root=tmp_path), {"large": test})
    groups = studies.identity_groups(data, test)
    assert groups.tolist()[:3] == ["3.0-0", "3.0-0", "3.0-0"] and pd.isna(groups.iloc[3])
    assert studies.group_oracle(data) is None
    full = test.assign(model_id=[3, 3, 4, 4])
    oracle = studies.group_oracle(dataclasses.replace(data, tests={"large": full}))
    assert (
        oracle["CMC@1"] == oracle["mAP"] == 1.0
    )  # two identities of two different models: the group is the id


def test_floor_verdict_reads_the_distance_against_two_standard_errors():
    assert "above" in studies.floor_verdict([0.24, 0.25, 0.26], 0.16)
    assert "below" in studies.floor_verdict([0.09, 0.10, 0.11], 0.16)
    # +.005 with a standard error of .0058: within the noise
    assert "sits at" in studies.floor_verdict([0.155, 0.165, 0.175], 0.16)
    assert "cannot be compared" in studies.floor_verdict([0.25], 0.16)  # one seed
    assert "cannot" in studies.floor_verdict([0.2, 0.21], None)


FLOOR = {"groups": 40, "CMC@1": 0.160, "CMC@5": 0.744, "mAP": 0.388}


def _seeds(cmc1: float, cmc5: float, mean_ap: float) -> dict[str, list[float]]:
    """Three seeds around each mean, .01 apart: a standard error of .0058."""
    means = {"CMC@1": cmc1, "CMC@5": cmc5, "mAP": mean_ap}
    return {m: [v - 0.01, v, v + 0.01] for m, v in means.items()}


def test_floor_reading_says_both_sides_when_the_figures_disagree():
    from prreid_lib.studies.near_duplicates import floor_reading, floor_summary

    mixed = _seeds(0.233, 0.469, 0.351)  # above at CMC@1, below at CMC@5 and mAP
    text = floor_reading(mixed, FLOOR)
    assert text.startswith(
        "The baseline lies above the floor at CMC@1 (0.233 against 0.160; +0.073"
    )
    assert "but below it at CMC@5 (0.469 against 0.744; -0.275" in text
    assert "and mAP (0.351 against 0.388; -0.037" in text
    assert "ranks the right vehicle first more often" in text
    assert "orders the rest of the gallery worse" in text
    assert "has learnt cues of the individual vehicle, not only" not in text
    assert floor_summary(mixed, FLOOR) == (
        "The baseline lies above the floor at CMC@1, but below it at CMC@5 and mAP."
    )


def test_floor_reading_reads_each_pattern_by_the_two_standard_error_rule():
    from prreid_lib.studies.near_duplicates import floor_reading, floor_summary

    above = floor_reading(_seeds(0.3, 0.9, 0.5), FLOOR)
    assert "lies above the floor at CMC@1 (" in above
    assert "but" not in above and "below" not in above and "level" not in above
    assert above.endswith("It has learnt cues of the individual vehicle, not only of its group.")
    below = floor_reading(_seeds(0.1, 0.5, 0.3), FLOOR, who="the model")
    assert below.startswith("The model lies below the floor at CMC@1")
    assert "does not yet reach what exact knowledge" in below
    level = _seeds(0.162, 0.746, 0.390)  # +.002: .3 standard errors
    assert (
        floor_summary(level, FLOOR)
        == "The baseline lies level with the floor at CMC@1, CMC@5 and mAP."
    )
    assert floor_reading(level, FLOOR).endswith("not the vehicles within a group.")
    late = floor_reading(_seeds(0.161, 0.9, 0.5), FLOOR)  # level at CMC@1, above after it
    assert "lies above the floor at CMC@5 and mAP: mixed evidence" in late
    one_seed = floor_reading({"CMC@1": [0.3], "CMC@5": [0.5], "mAP": [0.4]}, FLOOR)
    assert one_seed == (
        "With one training seed the baseline's distances to this floor "
        "(CMC@1 +0.140, CMC@5 -0.244, mAP +0.012) cannot be compared with the noise."
    )
    assert floor_reading(level, None).startswith("This test set has no make, model and colour")


def test_every_row_of_the_papers_table_4_is_one_of_our_variants_and_back():
    paper = list(paper_tables.ablation_table().index)
    assert paper == list(studies.ABLATION_VARIANTS)  # the same rows, in the same order
    assert set(LABELS) == set(Variant) == set(paper)
    assert len(set(LABELS.values())) == len(LABELS)  # one label per row
    assert list(studies.HEADLINE_PAIR) == [studies.BASELINE, studies.FULL]


def test_run_folders_keep_the_names_of_the_variants_labels(monkeypatch, tmp_path):
    assert {key: studies.run_name(key) for key in Variant} == {
        "full": "global-light-brand-window",
        "global_light_brand": "global-light-brand",
        "global_light_window": "global-light-window",
        "global_window_brand": "global-window-brand",
        "global_window": "global-window",
        "parts_only": "window-light-brand",
        "baseline": "baseline-w-o-parts",
    }
    assert studies.run_name("strong baseline") == "strong-baseline"  # any other name: itself
    trained = {}
    monkeypatch.setattr(
        "prreid_lib.train.run_or_load", lambda cfg, frame, boxes, root, **kw: trained.update(kw)
    )
    vid = SimpleNamespace(train=pd.DataFrame({"path": [], "pid": []}))
    data = _real_data("smoke", tmp_path, vid)
    studies.train_variant(data, studies.BASELINE, output_dir=tmp_path, seed=3, device="cpu")
    assert (trained["name"], trained["seed"]) == ("baseline-w-o-parts", 3)


def test_study_data_is_built_once_and_the_options_are_named(smoke_data, tmp_path):
    data = _real_data("vehicleid", tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.part_source = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        studies.load_study_data("smoke", smoke_data, 0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        studies.headline_seeds(get_profile("smoke"), 2)  # type: ignore[misc]
