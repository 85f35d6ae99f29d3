"""Chapter 8's study functions and figures: CAMs of tiny random models on hand-made images."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from matplotlib.container import BarContainer
from PIL import Image

from prreid_lib.config import PART_NAMES
from prreid_lib.model import PartRegularizedReID
from prreid_lib.studies import cam as sc
from prreid_lib.studies.variants import BASELINE, FULL
from prreid_lib.uncertainty import Interval
from prreid_lib.viz.cam import cam_pair_figure, share_bar_figure

torch.set_num_threads(1)  # the CI machine is shared; more threads only contend
PIDS = (10, 11, 12, 13)
SIZE = 64


@cache
def tiny_model(seed: int) -> PartRegularizedReID:
    """A random ResNet-18 model trained (so to speak) on the identities :data:`PIDS`."""
    torch.manual_seed(seed)
    model = PartRegularizedReID(len(PIDS), "resnet18", last_stride=1, feat_dim=16)
    model.input_size = SIZE
    model.pid_values = np.array(PIDS)
    return model.eval()


def models() -> dict[str, PartRegularizedReID]:
    return {BASELINE: tiny_model(0), FULL: tiny_model(1)}


def write_images(folder: Path, pids: tuple[int, ...], size: tuple[int, int] = (64, 48)) -> list:
    """One random RGB PNG per pid, ``size`` = (width, height); returns their paths."""
    rng = np.random.default_rng(3)
    paths = []
    for k, pid in enumerate(pids):
        path = folder / f"{pid}_{k}.png"
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


def quadrant_boxes(paths: list[str], w: int = 64, h: int = 48) -> pd.DataFrame:
    """A window in the top-left and a light in the bottom-right quarter of every image
    but the last (which has no boxes)."""
    rows = []
    for path in paths[:-1]:
        rows.append([path, "window", 0, 0, w / 2, h / 2, w, h, 1.0, False])
        rows.append([path, "light", w / 2, h / 2, w, h, w, h, 1.0, False])
    columns = ["path", "part", "x1", "y1", "x2", "y2", "img_w", "img_h", "score", "imputed"]
    return pd.DataFrame(rows, columns=columns)


@pytest.fixture
def pair_shares(tmp_path: Path) -> tuple[sc.CamShares, pd.DataFrame]:
    paths = write_images(tmp_path, PIDS)
    boxes = quadrant_boxes(paths)
    frame = pd.DataFrame({"path": paths, "pid": PIDS})
    return sc.cam_shares(models(), frame, boxes, SIZE, cache=False), boxes


def test_cam_shares_measures_each_models_map_against_the_boxes_area(pair_shares):
    result, _ = pair_shares
    assert list(result.maps) == [BASELINE, FULL]
    assert result.grid == 4  # 64 px, last stride 1
    # the boxes cover a quarter each; the last image has none
    area = result.area
    assert area["parts"].tolist() == [0.5, 0.5, 0.5, 0.0]
    assert area["window"].tolist() == [0.25, 0.25, 0.25, 0.0]
    assert area["brand"].tolist() == [0.0] * 4
    for name, model in models().items():
        maps = result.maps[name]
        # each image's map is for its own identity (class k for pid PIDS[k])
        images = sc.decoded_images(result.frame, SIZE)
        own = sc.class_activation_maps(model, images, torch.arange(len(PIDS)))
        torch.testing.assert_close(maps, own)
        # by hand: positive mass of the upsampled map in the two quarters over the total
        up = F.interpolate(maps[:, None], size=(SIZE, SIZE), mode="bilinear")[:, 0].clamp_min(0)
        half = SIZE // 2
        inside = up[:, :half, :half].sum((1, 2)) + up[:, half:, half:].sum((1, 2))
        expected = (inside / up.sum((1, 2))).numpy()
        expected[-1] = 0.0
        np.testing.assert_allclose(result.shares[name]["parts"], expected, atol=1e-6)
    assert not torch.equal(result.maps[BASELINE], result.maps[FULL])


def test_cam_shares_refuses_an_identity_the_models_did_not_train_on(tmp_path: Path):
    paths = write_images(tmp_path, (10, 99))
    frame = pd.DataFrame({"path": paths, "pid": [10, 99]})
    with pytest.raises(ValueError, match=r"identities \[99\]"):
        sc.cam_shares(models(), frame, quadrant_boxes(paths), SIZE, cache=False)
    with pytest.raises(ValueError, match="empty"):
        sc.cam_shares(models(), frame.iloc[:0], quadrant_boxes(paths), SIZE, cache=False)


def test_the_chapters_check_mean_cam_plus_bias_is_the_logit(tmp_path, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path / "cache"))
    paths = write_images(tmp_path, PIDS)
    frame = pd.DataFrame({"path": paths, "pid": PIDS})
    images = sc.decoded_images(frame, SIZE)
    assert images.shape == (4, 3, SIZE, SIZE) and images.dtype == torch.uint8
    assert any((tmp_path / "cache").iterdir())  # kept in the decoded-image cache
    model = tiny_model(0)
    classes = sc.identity_classes(model, frame["pid"])
    assert classes.tolist() == [0, 1, 2, 3]
    cams = sc.class_activation_maps(model, images, classes)
    logits = sc.class_logits(model, images, classes)
    assert logits.shape == (4,) and logits.dtype == torch.float64
    bias = sc.global_class_weights(model)[1].cpu()[classes]
    assert float((cams.double().mean(dim=(1, 2)) + bias - logits).abs().max()) < 1e-4
    other = sc.class_logits(model, images, (classes + 1) % 4)
    assert not torch.allclose(other, logits)


def shares_of(parts: list[float]) -> pd.DataFrame:
    """A per-image share table whose union and window columns are ``parts``."""
    values = np.asarray(parts, dtype=float)
    return pd.DataFrame({"parts": values} | {p: values / 2 for p in PART_NAMES})


def hand_made(base: list[float], full: list[float], area: list[float]) -> sc.CamShares:
    frame = pd.DataFrame({"path": [f"{k}.png" for k in range(len(base))], "pid": 0})
    maps = {BASELINE: torch.zeros(len(base), 3, 3), FULL: torch.zeros(len(base), 3, 3)}
    shares = {BASELINE: shares_of(base), FULL: shares_of(full)}
    return sc.CamShares(frame, maps, shares, shares_of(area))


def test_share_table_rows_columns_and_intervals():
    result = hand_made([0.2, 0.4, np.nan, 0.6], [0.5, 0.7, 0.9, 0.3], [0.3] * 4)
    table, intervals = sc.share_table(result, seed=0)
    assert list(table.index) == [sc.UNIFORM, "baseline (NoPR)", "part-regularized (PR)"]
    assert list(table.columns) == [
        sc.UNION,
        *PART_NAMES,
        "union: 95% CI low",
        "union: 95% CI high",
    ]
    assert table.loc["baseline (NoPR)", sc.UNION] == pytest.approx(0.4)  # the NaN left out
    assert table.loc["part-regularized (PR)", "window"] == pytest.approx(0.3)
    assert table.loc[sc.UNIFORM, "union: 95% CI low"] == pytest.approx(0.3)
    ci = intervals["part-regularized (PR)"]
    assert ci.mean == pytest.approx(0.6) and ci.low < ci.mean < ci.high
    assert table.loc["part-regularized (PR)", "union: 95% CI high"] == ci.high


@pytest.mark.parametrize(
    ("full", "start"),
    [
        ([0.6, 0.61, 0.62, 0.6, 0.61, 0.6], "moved it towards the parts"),
        ([0.1, 0.11, 0.12, 0.1, 0.11, 0.1], "moved it away from the parts"),
        ([0.35, 0.35, 0.45, 0.45, 0.3, 0.5], "did not move it measurably"),
    ],
)
def test_share_shift_reads_the_paired_difference_by_the_one_rule(full, start):
    base = [0.3, 0.31, 0.4, 0.5, 0.35, 0.45]
    shift = sc.share_shift(hand_made(base, full, [0.3] * 6), seed=0)
    assert shift.words.startswith(start)
    assert shift.words.endswith("within the noise") == (start == "did not move it measurably")
    # a shift beyond the images' noise says that one training per model leaves out the seeds
    assert ("spread over training seeds" in shift.words) == (start != "did not move it measurably")
    assert shift.moved.mean == pytest.approx(np.mean(full) - np.mean(base))
    assert shift.verdict.difference == pytest.approx(shift.moved.mean)
    image_sd = np.std(np.subtract(full, base), ddof=1)
    assert shift.image_sd == pytest.approx(image_sd)
    assert shift.se_of(16) == pytest.approx(image_sd / 4)  # eight pairs: 16 images


def test_each_model_is_read_against_the_uniform_map_image_by_image():
    area = [0.3, 0.25, 0.35, 0.3, 0.28, 0.32]
    near = [a + d for a, d in zip(area, [0.05, -0.05, 0.04, -0.04, 0.03, -0.03], strict=True)]
    above = [a + 0.2 + 0.01 * k for k, a in enumerate(area)]  # +0.2 to +0.25 on every image
    verdicts = sc.uniform_verdicts(hand_made([np.nan, *near[1:]], above, area), seed=0)
    assert list(verdicts) == [BASELINE, FULL]
    assert verdicts[FULL].difference == pytest.approx(0.225) and verdicts[FULL].beyond
    assert verdicts[BASELINE].difference == pytest.approx(0.0, abs=0.02)
    assert not verdicts[BASELINE].beyond
    assert verdicts[BASELINE].basis == "bootstrap over 5 images"  # the NaN map left out
    assert verdicts[FULL].basis == "bootstrap over 6 images"
    words = sc.uniform_words(verdicts)
    assert words.startswith(
        "Against the uniform map's share inside the boxes, the baseline's lies within the "
        "noise of it, the part-regularized model's lies above it: for the baseline the "
        "difference is "
    )
    assert "; for the part-regularized model the difference is +0.225, which is " in words
    assert words.endswith("beyond the noise.")
    both = sc.uniform_verdicts(hand_made(above, above, area), seed=0)
    assert sc.uniform_lead(both) == (
        "Both models' shares inside the boxes lie above the uniform map's"
    )
    below = sc.uniform_verdicts(hand_made(area, [a - 0.2 for a in area], area), seed=0)
    one = {FULL: below[FULL]}
    assert sc.uniform_lead(one) == (
        "The part-regularized model's share inside the boxes lies below the uniform map's"
    )


def test_part_ratio_words_divide_each_part_by_its_area():
    table = pd.DataFrame(
        {
            sc.UNION: [0.3, 0.4, 0.5],
            "window": [0.2, 0.2, 0.1],
            "light": [0.1, 0.15, 0.3],
            "brand": [0.0, 0.05, 0.1],  # no brand box on these images: left out
        },
        index=[sc.UNIFORM, "baseline (NoPR)", "part-regularized (PR)"],
    )
    assert sc.part_ratio_words(table) == (
        "Each part's share of the map divided by its share of the image: baseline (NoPR): "
        "window 1.000, light 1.500 (largest: light); part-regularized (PR): window 0.500, "
        "light 3.000 (largest: light)."
    )
    nothing = table.assign(window=0.0, light=0.0)
    assert "cover none" in sc.part_ratio_words(nothing)


def test_share_shift_names_a_model_without_maps():
    result = hand_made([0.2, 0.3], [0.4, 0.5], [0.3, 0.3])
    with pytest.raises(ValueError, match=r"none for \['nope'\]"):
        sc.share_shift(result, other="nope")


def test_overlay_maps_are_the_positive_part_scaled_to_one_at_the_image_size():
    maps = torch.tensor([[[-1.0, 2.0], [0.5, 4.0]], [[-3.0, -1.0], [-2.0, -1.0]]])
    out = sc.overlay_maps(maps, [(6, 10), (3, 5)])
    assert out[0].shape == (6, 10) and out[1].shape == (3, 5)
    assert out[0].max() == pytest.approx(1.0) and out[0].min() == 0.0
    assert out[0][-1, -1] == pytest.approx(1.0)  # the corner of the largest cell
    assert (out[1] == 0).all()  # no positive mass: all zero, no division by zero
    with pytest.raises(ValueError, match="2 maps but 1 image sizes"):
        sc.overlay_maps(maps, [(6, 10)])


def test_cam_pair_panels_and_the_figure_they_draw(pair_shares):
    result, boxes = pair_shares
    panels = sc.cam_pair_panels(result, boxes)
    assert [p.shape for p in panels.pictures] == [(48, 64, 3)] * 4  # upright, full size
    assert list(panels.overlays) == ["baseline (NoPR)", "part-regularized (PR)"]
    assert all(o.shape == (48, 64) for o in panels.overlays["baseline (NoPR)"])
    assert panels.shares["part-regularized (PR)"] == list(result.shares[FULL]["parts"])
    assert [b is None for b in panels.boxes] == [False, False, False, True]
    assert panels.pids == list(PIDS)
    fig = cam_pair_figure(
        panels.pictures, panels.overlays, panels.shares, panels.boxes, panels.pids
    )
    axes = fig.axes[:-1]  # the last is the colour bar
    assert len(fig.axes) == 4 * 3 + 1
    assert [ax.get_title() for ax in axes[:3]] == [
        "image, part boxes",
        "baseline (NoPR)",
        "part-regularized (PR)",
    ]
    assert [len(ax.images) for ax in axes[:3]] == [1, 2, 2]  # picture, picture + map
    assert len(axes[0].patches) == 2 and len(axes[-1].patches) == 0  # the boxes
    assert axes[3].get_ylabel() == "pair 1\nid 11"
    assert axes[6].get_ylabel() == "pair 2\nid 12"
    share = panels.shares["baseline (NoPR)"][0]
    assert [t.get_text() for t in axes[1].texts] == [f"in parts {share:.3f}"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(PART_NAMES)
    plt.close(fig)


def test_cam_pair_figure_refuses_panels_of_unequal_length():
    picture = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="'PR' has 1 entries for 2 pictures"):
        cam_pair_figure(
            [picture, picture], {"PR": [np.zeros((4, 4))]}, {"PR": [0.1, 0.2]}, [None] * 2, [1, 2]
        )


def test_share_bar_figure_draws_one_bar_per_row_and_column():
    table, intervals = sc.share_table(
        hand_made([0.2, 0.4, 0.3], [0.5, 0.7, 0.9], [0.3, 0.3, 0.3]), seed=0
    )
    fig = share_bar_figure(table, intervals)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3 and all(len(b) == len(PART_NAMES) + 1 for b in bars)
    heights = [r.get_height() for r in bars[2]]
    np.testing.assert_allclose(heights, table.iloc[2, : len(PART_NAMES) + 1])
    assert [t.get_text() for t in ax.get_xticklabels()] == [sc.UNION, *PART_NAMES]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(table.index)
    assert len(ax.lines) == 3 * 1 + 3 * 2  # an error bar per row: its line and two caps
    plt.close(fig)
    with pytest.raises(ValueError, match="no interval for the rows"):
        share_bar_figure(table, {sc.UNIFORM: Interval(0.3, 0.3, 0.3, 0.95)})


def run(acc: float, reused: bool) -> SimpleNamespace:
    return SimpleNamespace(history=pd.DataFrame({"global_acc": [0.0, acc]}), reused=reused)


def test_setup_summary_and_final_accuracy():
    runs = {BASELINE: run(0.25, True), FULL: run(0.5, False)}
    data = SimpleNamespace(synthetic=True, part_source="ground truth")
    lines = sc.setup_summary(data, runs).splitlines()
    assert lines[:2] == ["data: SynthVeh", "part boxes: ground truth"]
    assert lines[2].endswith(" reused from the run cache") and lines[3].endswith(" trained now")
    assert lines[2].startswith("Baseline (w/o parts) ")  # the paper's row labels
    assert sc.final_training_accuracy(runs) == {BASELINE: 0.25, FULL: 0.5}
