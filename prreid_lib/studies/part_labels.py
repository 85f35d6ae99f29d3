"""The part labels a detector learns from (chapter 2): where they are, what they hold.

:func:`labelled_set` finds the labelled images (a YOLO ``data.yaml``: SynthVeh's
``parts/`` or the user's own) and :func:`load_part_labels` reads their boxes as
drawn and as used. The other steps of the chapter: a YOLO -> COCO -> YOLO
round trip (:func:`round_trip`), a copy with broken labels for the validator
(:func:`break_labels`), and the light boxes' height at the detector's input
size (:func:`light_box_heights`). The sentences the chapter quotes about its
labels are made from their numbers (:func:`label_size_sentence`,
:func:`problem_lines`, :func:`light_height_sentence`).

The chapter teaches the annotation functions of :mod:`prreid_lib.annotate` by
name (:func:`~prreid_lib.annotate.validate`, :func:`~prreid_lib.annotate.read_yolo`,
the converters, the statistics); they are re-exported here.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from prreid_lib.annotate import (
    RULES,
    annotation_widget,
    coco_to_yolo,
    part_statistics,
    plot_part_statistics,
    read_yolo,
    validate,
    yolo_to_coco,
)
from prreid_lib.config import PART_NAMES, Profile, get_profile
from prreid_lib.errors import DatasetFormatError
from prreid_lib.parts import PART_DEFINITIONS, extend_lights, ground_truth_part_boxes
from prreid_lib.studies.data import parts_spec, resolve_data_root, resolve_parts_yaml
from prreid_lib.synthveh_files import is_synthveh

__all__ = [
    "MISTAKES",
    "PART_DEFINITIONS",
    "RULES",
    "DatasetFormatError",
    "LabelledSet",
    "PartLabels",
    "RoundTrip",
    "annotation_widget",
    "break_labels",
    "coco_to_yolo",
    "hide_folder",
    "label_size_sentence",
    "labelled_set",
    "lamp_share",
    "light_box_heights",
    "light_height_sentence",
    "load_part_labels",
    "part_statistics",
    "plot_part_statistics",
    "problem_lines",
    "read_yolo",
    "round_trip",
    "shown_problems",
    "single_image_labels",
    "validate",
    "work_folder",
    "yolo_to_coco",
]

MISTAKES = ("0 0.5 0.3 0.4", "7 0.5 0.5 0.2 0.2", "1 0.2 0.7 0.0 0.05", "2 0.9 0.6 0.3 0.1")
"""Label lines :func:`break_labels` appends: four numbers, class 7, zero width, outside."""
_XYXY = ["x1", "y1", "x2", "y2"]


@dataclass(frozen=True)
class LabelledSet:
    """A labelled part dataset (YOLO ``data.yaml``) and the data folder it belongs to."""

    profile: Profile
    root: Path
    """The data folder (a SynthVeh root or the user's real data)."""
    parts_yaml: Path
    spec: dict[str, Any]
    """The ``data.yaml`` as a dict (``train``, ``val``, ``names``)."""
    parts_root: Path
    """The folder ``train`` and ``val`` are relative to."""

    def images(self, split: str = "train") -> Path:
        """The images folder of ``split`` (``"train"`` or ``"val"``)."""
        return self.parts_root / self.spec[split]

    def labels(self, split: str = "train") -> Path:
        """The label files of ``split``: ``labels/<name of the images folder>``."""
        return self.parts_root / "labels" / Path(self.spec[split]).name

    def n_images(self, split: str = "train") -> int:
        """How many ``.jpg`` images ``split`` has."""
        return len(list(self.images(split).glob("*.jpg")))

    @property
    def synthetic(self) -> bool:
        """Whether the labels are SynthVeh's (their boxes come from the renderer)."""
        return is_synthveh(self.parts_root)


def labelled_set(
    profile: str | Profile,
    data_root: str | Path | None = None,
    data_seed: int = 0,
    parts_yaml: str | Path | None = None,
) -> LabelledSet:
    """The chapters' labelled set: ``parts_yaml``, or SynthVeh's ``parts/data.yaml`` under
    the data folder (:func:`~prreid_lib.studies.data.resolve_data_root`)."""
    cfg = get_profile(profile) if isinstance(profile, str) else profile
    root = resolve_data_root(cfg, data_root, data_seed=data_seed)
    yaml_path = resolve_parts_yaml(root, parts_yaml)
    spec, parts_root = parts_spec(yaml_path)
    return LabelledSet(cfg, root, yaml_path, spec, parts_root)


def work_folder(output_dir: str | Path, chapter: str) -> Path:
    """``output_dir/<chapter>``, created: where a chapter writes its files and figures."""
    work = Path(output_dir) / chapter
    work.mkdir(parents=True, exist_ok=True)
    return work


def hide_folder(text: object, folder: str | Path, name: str) -> str:
    """``text`` with ``folder`` written as ``name``: messages name files by their place in
    the labelled set, not by this machine's folders."""
    return str(text).replace(str(folder), name)


@dataclass(frozen=True)
class PartLabels:
    """The boxes of a labelled set's training images, as drawn and as used."""

    labelled: pd.DataFrame
    """Visible window, light and brand boxes as labelled (tight lamps)."""
    used: pd.DataFrame
    """The same boxes as the detector and the re-id model use them (lights extended)."""
    examples: list[str]
    """Four images to show the guideline on (SynthVeh: two front, two rear views)."""
    truth: pd.DataFrame | None = None
    """SynthVeh's ground-truth rows of the training images (views, hidden parts, the
    vehicle box); ``None`` for the user's own labels."""

    @property
    def statistics_boxes(self) -> pd.DataFrame:
        """The boxes :func:`~prreid_lib.annotate.part_statistics` describes: on SynthVeh
        every part row, with visibility flags and views; else the labels."""
        if self.truth is None:
            return self.labelled
        return self.truth[self.truth["part"].isin(PART_NAMES)]


def load_part_labels(labels: LabelledSet) -> PartLabels:
    """The training boxes of ``labels`` (:class:`PartLabels`): SynthVeh's ground-truth table
    when the set is SynthVeh's, else its YOLO label files
    (:func:`~prreid_lib.annotate.read_yolo`)."""
    if not labels.synthetic:
        drawn = read_yolo(labels.images("train"))
        examples = drawn["path"].drop_duplicates().iloc[:4].tolist()
        return PartLabels(drawn, extend_lights(drawn), examples)
    from prreid_lib.synthveh import load_synthveh_parts

    gt = load_synthveh_parts(labels.parts_root)
    gt = gt[gt["image"].str.startswith(labels.spec["train"])]
    front = gt.loc[gt["view"] == "front", "path"].drop_duplicates().iloc[:2].tolist()
    rear = gt.loc[gt["view"] == "rear", "path"].drop_duplicates().iloc[:2].tolist()
    drawn = gt[gt["part"].isin(PART_NAMES) & (gt["visible"] == 1)]
    return PartLabels(drawn, ground_truth_part_boxes(gt), front + rear, gt)


@dataclass(frozen=True)
class RoundTrip:
    """The boxes before and after a YOLO -> COCO -> YOLO round trip."""

    before: pd.DataFrame
    after: pd.DataFrame
    error: float
    """The largest corner difference in pixels."""


def round_trip(coco_path: str | Path, images_dir: str | Path, labels_dir: str | Path) -> RoundTrip:
    """Convert ``coco_path`` back into YOLO files in ``labels_dir`` and compare their boxes
    with the original labels of ``images_dir``, box by box.

    ``labels_dir`` is emptied of the label files of an earlier round trip first; one that
    holds anything else is refused (``FileExistsError``). A COCO file that lost or gained
    boxes raises ``ValueError``.
    """
    _clear(Path(labels_dir), lambda entry: entry.is_file() and entry.suffix == ".txt")
    coco_to_yolo(coco_path, images_dir, labels_dir)
    order = ["path", "part", "x1"]
    before = read_yolo(images_dir).sort_values(order, ignore_index=True)
    after = read_yolo(images_dir, labels_dir=labels_dir).sort_values(order, ignore_index=True)
    if len(before) != len(after):
        raise ValueError(
            f"{labels_dir}: expected {len(before)} boxes back from {coco_path}, found "
            f"{len(after)}; the COCO file lost or gained boxes"
        )
    error = float((before[_XYXY] - after[_XYXY]).abs().max().max())
    return RoundTrip(before, after, error)


def _clear(folder: Path, ours: Callable[[Path], bool]) -> None:
    """Empty ``folder`` of what an earlier run wrote there (``ours``); anything else in it
    is refused rather than deleted."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: expected a folder to write into, found a file")
    foreign = sorted(entry.name for entry in folder.iterdir() if not ours(entry))
    if foreign:
        raise FileExistsError(
            f"{folder}: expected an empty folder or one this chapter wrote, found {foreign[:3]}; "
            "pass a new folder"
        )
    shutil.rmtree(folder)


def _fresh_copy(out: Path) -> None:
    _clear(out, lambda entry: entry.is_dir() and entry.name in ("images", "labels"))
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()


def break_labels(images_dir: str | Path, labels_dir: str | Path, out: str | Path) -> Path:
    """Copy six labelled images into ``out`` and break their labels, one rule each.

    The first four label files get a line of :data:`MISTAKES`; the fifth image
    loses its label file, the sixth label file its image. Returns ``out/images``.
    An earlier copy in ``out`` is replaced; a folder holding anything else is refused.
    """
    out = Path(out)
    sample = sorted(Path(images_dir).glob("*.jpg"))[:6]
    if len(sample) < 6:
        raise ValueError(f"{images_dir}: expected six .jpg images or more, found {len(sample)}")
    _fresh_copy(out)
    labels = [out / "labels" / f"{img.stem}.txt" for img in sample]
    for img, label in zip(sample, labels, strict=True):
        shutil.copy(img, out / "images" / img.name)
        shutil.copy(Path(labels_dir) / label.name, label)
    for label, line in zip(labels, MISTAKES, strict=False):
        label.write_text(label.read_text() + line + "\n")
    labels[4].unlink()  # an image without label file
    (out / "images" / sample[5].name).unlink()  # a label file without image
    return out / "images"


def single_image_labels(image: str | Path, text: str, out: str | Path) -> Path:
    """A fresh labelled set in ``out`` of one copy of ``image`` with the label file ``text``;
    returns ``out/images`` (``out`` as in :func:`break_labels`)."""
    out, image = Path(out), Path(image)
    _fresh_copy(out)
    shutil.copy(image, out / "images" / image.name)
    (out / "labels" / f"{image.stem}.txt").write_text(text)
    return out / "images"


def shown_problems(
    problems: pd.DataFrame, folder: str | Path, name: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`~prreid_lib.annotate.validate`'s problem table for a page: files by name,
    ``folder`` shown as ``name`` in what was found, ``"-"`` for the line of a problem with a
    whole file (lines stay numbers when every problem has one); ``columns`` picks columns."""
    line = problems["line"]
    shown = problems.assign(
        line=line.astype(object).fillna("-") if line.isna().any() else line,
        file=problems["file"].map(lambda f: Path(f).name),
        found=problems["found"].map(lambda text: hide_folder(text, folder, name)),
    )
    return shown if columns is None else shown[list(columns)]


def lamp_share(boxes: pd.DataFrame) -> float:
    """The share of light rows that are visible (1 without a ``visible`` column)."""
    lights = boxes[boxes["part"] == "light"]
    return float(lights["visible"].mean()) if "visible" in lights else 1.0


def _light_height_px(boxes: pd.DataFrame, imgsz: int) -> float:
    lights = boxes[boxes["part"] == "light"]
    scale = imgsz / lights[["img_w", "img_h"]].max(axis=1)
    return float(((lights["y2"] - lights["y1"]) * scale).mean())


def light_box_heights(labels: PartLabels, imgsz: int) -> pd.DataFrame:
    """Mean light box height, tight (as labelled) and extended, in pixels once the image's
    longer side is scaled to ``imgsz`` (the detector's input)."""
    heights = {
        "tight (as labelled)": _light_height_px(labels.labelled, imgsz),
        "extended": _light_height_px(labels.used, imgsz),
    }
    return pd.Series(heights, name=f"mean light box height, px at imgsz {imgsz}").to_frame()


def light_height_sentence(heights: pd.DataFrame) -> str:
    """:func:`light_box_heights`'s table in one sentence: the tight and the extended light
    box's mean height in pixels and how many times higher the extended one is."""
    column = heights.columns[0]
    tight = float(heights.loc["tight (as labelled)", column])
    extended = float(heights.loc["extended", column])
    return (
        f"At the detector's input size a tight light box is {tight:.1f} px high on average and "
        f"an extended one {extended:.1f} px, {extended / tight:.1f} times as high."
    )


def problem_lines(problems: pd.DataFrame) -> str:
    """The rows of :func:`~prreid_lib.annotate.validate`'s problem table in a few words:
    ``"line 1: non_positive_size; line 2: unknown_class"`` (``whole file`` for a problem
    without a line), in the table's order."""
    if problems.empty:
        return "no problem"
    where = ["whole file" if pd.isna(line) else f"line {int(line)}" for line in problems["line"]]
    return "; ".join(f"{w}: {rule}" for w, rule in zip(where, problems["rule"], strict=True))


def label_size_sentence(boxes: pd.DataFrame) -> str:
    """The parts' sizes and how often each is hidden, in two sentences, from an annotation
    table (``part``, corners, ``img_w``, ``img_h``, optional ``visible``).

    Size: the mean box area relative to the image of the visible boxes; the largest part
    is named and the others are given as a share of its area. Hidden: the share of each
    part's boxes that are visible (rows of hidden parts count when ``visible`` is there;
    parts that tie at three decimals are named together); without ``visible`` the labels
    hold visible boxes only and the sentence says so.
    """
    seen = boxes[boxes["visible"].astype(bool)] if "visible" in boxes else boxes
    seen = seen[seen["part"].isin(PART_NAMES)]
    area = (seen["x2"] - seen["x1"]) * (seen["y2"] - seen["y1"]) / (seen["img_w"] * seen["img_h"])
    mean_area = area.groupby(seen["part"]).mean().reindex(list(PART_NAMES)).dropna()
    largest = str(mean_area.idxmax())
    others = [
        f"a {part} box covers {mean_area[part] / mean_area[largest]:.3f} times that"
        for part in mean_area.index
        if part != largest
    ]
    text = f"The {largest} is the largest part: its mean box covers {mean_area[largest]:.3f}"
    text += " of the image"
    if others:
        text += f"; on average {' and '.join(others)}"
    text += "."
    if "visible" not in boxes:
        return (
            f"{text} The labels hold visible boxes only, so they do not say which part is hidden."
        )
    rows = boxes[boxes["part"].isin(PART_NAMES)]
    visible = rows.groupby("part")["visible"].mean().reindex(list(PART_NAMES)).dropna().round(3)
    if visible.min() >= 1:
        return f"{text} No part is hidden in these labels."
    most = [str(p) for p in visible.index if visible[p] == visible.min()]
    rest = ", ".join(f"{visible[p]:.3f} ({p})" for p in visible.index if p not in most)
    named = " and the ".join(most)
    text += (
        f" The part{'s' if len(most) > 1 else ''} hidden most often "
        f"{'are' if len(most) > 1 else 'is'} the {named}: {visible.min():.3f} of "
        f"{'their' if len(most) > 1 else 'its'} boxes are visible"
    )
    return text + (f", against {rest}." if rest else ".")
