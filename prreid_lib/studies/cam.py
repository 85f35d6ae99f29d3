"""Where the identity classifier looks: the class activation maps of chapter 8 (paper Fig. 5).

The maps themselves are :mod:`prreid_lib.cam`'s (exact CAMs of the global
branch); the chapter teaches three of its functions by name
(:func:`~prreid_lib.cam.class_activation_maps`,
:func:`~prreid_lib.cam.global_class_weights`,
:func:`~prreid_lib.cam.identity_classes`), re-exported here. This module puts
them to work on a set of training images: the maps of each model
(:func:`cam_shares`), the share of their positive mass inside the part boxes
against the share of the image the boxes cover, with bootstrap intervals
(:func:`share_table`), each model against the uniform map
(:func:`uniform_verdicts`, :func:`uniform_words`) and each part against its area
(:func:`part_ratio_words`), the paired difference between the baseline and the
part-regularized model in words (:func:`share_shift`), and the panels of the
CAM-pair figure (:func:`cam_pair_panels`, drawn by
:func:`prreid_lib.viz.cam.cam_pair_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from prreid_lib.cam import (
    activation_share_in_parts,
    box_masks,
    class_activation_maps,
    global_class_weights,
    identity_classes,
    upsample_cams,
)
from prreid_lib.config import PART_NAMES
from prreid_lib.imagenet import normalize_images
from prreid_lib.images import shown_rgb
from prreid_lib.model import PartRegularizedReID
from prreid_lib.paper_tables import LABELS
from prreid_lib.pipeline.imageset import ReIDImageSet, default_cache_dir
from prreid_lib.runs import TrainResult
from prreid_lib.studies.data import StudyData
from prreid_lib.studies.variants import BASELINE, FULL
from prreid_lib.uncertainty import (
    Interval,
    Verdict,
    bootstrap_mean,
    bootstrap_paired_difference,
    paired_difference,
)

__all__ = [
    "CAM_LABELS",
    "PROSE_NAMES",
    "UNIFORM",
    "UNION",
    "CamPairPanels",
    "CamShares",
    "ShareShift",
    "cam_models",
    "cam_pair_panels",
    "cam_shares",
    "class_activation_maps",
    "class_logits",
    "decoded_images",
    "final_training_accuracy",
    "global_class_weights",
    "identity_classes",
    "overlay_maps",
    "part_ratio_words",
    "setup_summary",
    "share_shift",
    "share_table",
    "shift_words",
    "uniform_lead",
    "uniform_verdicts",
    "uniform_words",
]

CAM_LABELS: dict[str, str] = {BASELINE: "baseline (NoPR)", FULL: "part-regularized (PR)"}
"""Short names of the two models in the chapter's figures and tables."""
PROSE_NAMES: dict[str, str] = {BASELINE: "the baseline", FULL: "the part-regularized model"}
"""The two models as the chapter's sentences name them."""
UNIFORM = "uniform map (area of the boxes)"
"""The reference row of :func:`share_table`: a map that ignores the image."""
UNION = "all parts (union)"
"""The column of :func:`share_table` with the share inside the union of the part boxes."""


def cam_models(runs: Mapping[str, TrainResult]) -> dict[str, PartRegularizedReID]:
    """The trained model of each run, in eval mode, by variant name (in the order of ``runs``)."""
    return {name: run.model.eval() for name, run in runs.items()}


def setup_summary(data: StudyData, runs: Mapping[str, TrainResult]) -> str:
    """Lines saying which data and part boxes the chapter uses and whether each model
    was reused from the run cache or trained now."""
    lines = [
        f"data: {'SynthVeh' if data.synthetic else 'the real data sets'}",
        f"part boxes: {data.part_source}",
    ]
    for name, run in runs.items():
        how = "reused from the run cache" if run.reused else "trained now"
        lines.append(f"{LABELS.get(name, name):28s} {how}")
    return "\n".join(lines)


def final_training_accuracy(runs: Mapping[str, TrainResult]) -> dict[str, float]:
    """Each run's global-branch training accuracy in its last epoch, by variant name."""
    return {name: float(run.history["global_acc"].iloc[-1]) for name, run in runs.items()}


def decoded_images(frame: pd.DataFrame, input_size: int) -> torch.Tensor:
    """The images of ``frame`` (column ``path``) as uint8 (N, 3, S, S) at ``input_size``,
    decoded as training decodes them (and kept in the decoded-image cache)."""
    return ReIDImageSet(frame, None, input_size, (), default_cache_dir(), relabel=False).images


@torch.no_grad()
def class_logits(
    model: PartRegularizedReID, images: torch.Tensor, classes: torch.Tensor
) -> torch.Tensor:
    """The global-branch logit (N,) of class ``classes[n]`` for image ``n``, float64 on the CPU.

    ``images`` are uint8 (N, 3, S, S) at the model's input size (:func:`decoded_images`);
    the model runs as it is (eval mode for the logits a CAM splits)."""
    device = next(model.parameters()).device
    logits = model(normalize_images(images).to(device))["global_logits"].double().cpu()
    return logits[torch.arange(len(images)), torch.as_tensor(classes)]


@dataclass(frozen=True)
class CamShares:
    """The class activation maps of some models on one set of images, and their shares.

    ``frame``: the images (one row each, columns ``path``, ``pid``); ``maps``: the CAM
    (N, S, S) of each model, by variant name, each image for its own identity;
    ``shares``: per image, the share of each map's positive mass inside the union of the
    part boxes (column ``"parts"``) and inside each part
    (:func:`~prreid_lib.cam.activation_share_in_parts`); ``area``: the same for a uniform
    map, i.e. the share of the image the boxes cover.
    """

    frame: pd.DataFrame
    maps: dict[str, torch.Tensor]
    shares: dict[str, pd.DataFrame]
    area: pd.DataFrame

    @property
    def grid(self) -> int:
        """The side S of the maps' grid."""
        return int(next(iter(self.maps.values())).shape[-1])


def cam_shares(
    models: Mapping[str, PartRegularizedReID],
    frame: pd.DataFrame,
    part_boxes: pd.DataFrame,
    input_size: int,
    *,
    cache: bool = True,
) -> CamShares:
    """The CAM of every model on the training images ``frame`` (each for its own identity)
    and the share of its positive mass inside the part boxes ``part_boxes``.

    The images are decoded at ``input_size`` (kept in the decoded-image cache unless
    ``cache`` is false); the identities must be training identities of every model.
    """
    if frame.empty:
        raise ValueError("cam_shares needs at least one image; the image frame is empty")
    cache_dir = default_cache_dir() if cache else None
    images = ReIDImageSet(frame, part_boxes, input_size, PART_NAMES, cache_dir, relabel=False)
    masks = box_masks(images.boxes, images.box_valid, input_size)
    area = activation_share_in_parts(torch.ones(len(frame), input_size, input_size), masks)
    maps = {
        name: class_activation_maps(m, images.images, identity_classes(m, frame["pid"]))
        for name, m in models.items()
    }
    shares = {name: activation_share_in_parts(cams, masks) for name, cams in maps.items()}
    return CamShares(images.frame, maps, shares, area)


def share_table(
    result: CamShares, *, seed: int = 0, labels: Mapping[str, str] = CAM_LABELS
) -> tuple[pd.DataFrame, dict[str, Interval]]:
    """Mean share of positive CAM mass inside the part boxes, one row per model.

    The first row (:data:`UNIFORM`) is the reference, a uniform map; then one row per
    model, named by ``labels``. Columns: :data:`UNION`, one per part, and the 95%
    bootstrap interval (``seed``) of the union's mean over the images. Returns the table
    and the intervals by row name. Images whose map has no positive mass are left out.
    """
    shares = {UNIFORM: result.area} | {
        labels.get(name, name): s for name, s in result.shares.items()
    }
    table = pd.DataFrame({name: s.mean() for name, s in shares.items()}).T
    table.columns = [UNION, *table.columns[1:]]
    intervals = {name: bootstrap_mean(s["parts"].dropna(), seed=seed) for name, s in shares.items()}
    table["union: 95% CI low"] = [intervals[n].low for n in table.index]
    table["union: 95% CI high"] = [intervals[n].high for n in table.index]
    return table, intervals


@dataclass(frozen=True)
class ShareShift:
    """How part regularization moved the maps' share inside the part boxes, image by image.

    ``moved``: the mean paired difference (other minus base) with its 95% bootstrap
    interval, as shown; ``verdict``: the same difference read by the book's one rule
    (beyond two standard errors); ``words``: that verdict as a phrase; ``image_sd``: the
    standard deviation of one image's difference (NaN for one image).
    """

    moved: Interval
    verdict: Verdict
    words: str
    image_sd: float = float("nan")

    def se_of(self, n_images: int) -> float:
        """The standard error of the mean difference over ``n_images`` images like these
        (e.g. the 2 k images of k near-duplicate pairs): ``image_sd / sqrt(n_images)``."""
        return self.image_sd / math.sqrt(n_images)


def shift_words(verdict: Verdict) -> str:
    """A phrase for a paired difference in the share inside the part boxes: whether it
    moved the map towards the parts, away from them, or not measurably. A shift beyond the
    noise is stated with its size and the limit of its noise: a bootstrap over the images
    of one training per model, which leaves out the spread over training seeds."""
    if not verdict.beyond:
        return f"did not move it measurably: the difference {verdict.words()}"
    where = "towards" if verdict.difference > 0 else "away from"
    return (
        f"moved it {where} the parts by {abs(verdict.difference):.3f}: the difference "
        f"{verdict.words()} of the images; with one training per model, the spread over "
        "training seeds is not in that standard error"
    )


def share_shift(
    result: CamShares, *, base: str = BASELINE, other: str = FULL, seed: int = 0
) -> ShareShift:
    """The paired difference of the share inside the part boxes between the models ``base``
    and ``other`` over the images where both maps have positive mass."""
    missing = {base, other} - set(result.shares)
    if missing:
        raise ValueError(
            f"share_shift compares models {base!r} and {other!r}, but the maps have none for "
            f"{sorted(missing)}; models: {list(result.shares)}"
        )
    per_image = pd.DataFrame({n: result.shares[n]["parts"] for n in (base, other)}).dropna()
    moved = bootstrap_paired_difference(per_image[base], per_image[other], seed=seed)
    verdict = paired_difference(per_image[base], per_image[other], seed=seed)
    image_sd = float((per_image[other] - per_image[base]).std(ddof=1))
    return ShareShift(moved, verdict, shift_words(verdict), image_sd)


def uniform_verdicts(result: CamShares, *, seed: int = 0) -> dict[str, Verdict]:
    """Per model (by variant name), the verdict on its share inside the part boxes minus
    the uniform map's, paired image by image
    (:func:`~prreid_lib.uncertainty.paired_difference`, ``seed``); images whose map has no
    positive mass are left out."""
    out: dict[str, Verdict] = {}
    for name, shares in result.shares.items():
        both = pd.DataFrame({"area": result.area["parts"], "map": shares["parts"]}).dropna()
        out[name] = paired_difference(both["area"], both["map"], seed=seed)
    return out


def _side(verdict: Verdict) -> str:
    """Where a share lies against the uniform map's, by the book's one rule."""
    if not verdict.beyond:
        return "within the noise of"
    return "above" if verdict.difference > 0 else "below"


def uniform_lead(verdicts: Mapping[str, Verdict], names: Mapping[str, str] = PROSE_NAMES) -> str:
    """One clause: whether the models' shares inside the part boxes lie above the uniform
    map's, below it or within its noise (``verdicts`` of :func:`uniform_verdicts`, models
    named by ``names``)."""
    sides = {names.get(n, n): _side(v) for n, v in verdicts.items()}
    if len(set(sides.values())) == 1:
        side = next(iter(sides.values()))
        if len(sides) == 1:
            name = next(iter(sides))
            name = name[0].upper() + name[1:]
            return f"{name}'s share inside the boxes lies {side} the uniform map's"
        who = "Both" if len(sides) == 2 else "All"
        return f"{who} models' shares inside the boxes lie {side} the uniform map's"
    each = ", ".join(f"{name}'s lies {side} it" for name, side in sides.items())
    return f"Against the uniform map's share inside the boxes, {each}"


def uniform_words(verdicts: Mapping[str, Verdict], names: Mapping[str, str] = PROSE_NAMES) -> str:
    """:func:`uniform_lead` followed by each model's measured difference from the uniform
    map's share and its verdict (the book's one rule), as one sentence."""
    each = "; ".join(
        f"for {names.get(n, n)} the difference is {v.difference:+.3f}, which {v.words()}"
        for n, v in verdicts.items()
    )
    return f"{uniform_lead(verdicts, names)}: {each}."


def part_ratio_words(
    table: pd.DataFrame, parts: Sequence[str] = PART_NAMES, uniform: str = UNIFORM
) -> str:
    """Each model's share of the map inside each part divided by the uniform map's (the
    part's share of the image), from :func:`share_table`, with the largest ratio named;
    parts that cover no image are left out."""
    area = table.loc[uniform, list(parts)].astype(float)
    seen = [p for p in parts if area[p] > 0]
    if not seen:
        return "The part boxes cover none of these images: there is no ratio to read."
    each: list[str] = []
    for name in table.index.drop(uniform):
        ratio = table.loc[name, seen].astype(float) / area[seen]
        listed = ", ".join(f"{p} {ratio[p]:.3f}" for p in seen)
        each.append(f"{name}: {listed} (largest: {ratio.idxmax()})")
    return "Each part's share of the map divided by its share of the image: " + (
        "; ".join(each) + "."
    )


def overlay_maps(maps: torch.Tensor, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Each map (N, S, S) as drawn over its image: its positive part, upsampled bilinearly to
    the image's ``(height, width)`` and divided by its maximum (values in [0, 1])."""
    if len(maps) != len(sizes):
        raise ValueError(f"overlay_maps got {len(maps)} maps but {len(sizes)} image sizes")
    out = []
    for k, size in enumerate(sizes):
        cam = upsample_cams(maps[k : k + 1], size)[0].clamp_min(0)
        out.append((cam / cam.max().clamp_min(1e-12)).numpy())
    return out


@dataclass(frozen=True)
class CamPairPanels:
    """What the CAM-pair figure draws, one entry per image (rows ``2k``, ``2k + 1`` a pair).

    ``pictures``: the images as a viewer shows them (H, W, 3); ``overlays``: per model
    label, each image's map scaled to [0, 1] at the picture's size (:func:`overlay_maps`);
    ``shares``: per model label, each map's share inside the part boxes; ``boxes``: each
    image's part boxes (``None`` when it has none); ``pids``: each image's identity.
    """

    pictures: list[np.ndarray]
    overlays: dict[str, list[np.ndarray]]
    shares: dict[str, list[float]]
    boxes: list[pd.DataFrame | None]
    pids: list[int]


def cam_pair_panels(
    result: CamShares, part_boxes: pd.DataFrame, *, labels: Mapping[str, str] = CAM_LABELS
) -> CamPairPanels:
    """The panels of :func:`prreid_lib.viz.cam.cam_pair_figure` for the maps ``result``
    (e.g. of near-duplicate pairs), models named by ``labels``, boxes from ``part_boxes``."""
    paths = list(result.frame["path"])
    pictures = [np.asarray(shown_rgb(p)) for p in paths]  # upright, as a viewer shows it
    sizes = [picture.shape[:2] for picture in pictures]
    by_path = part_boxes.groupby("path")
    return CamPairPanels(
        pictures=pictures,
        overlays={labels.get(n, n): overlay_maps(m, sizes) for n, m in result.maps.items()},
        shares={labels.get(n, n): list(s["parts"]) for n, s in result.shares.items()},
        boxes=[by_path.get_group(p) if p in by_path.groups else None for p in paths],
        pids=[int(pid) for pid in result.frame["pid"]],
    )
