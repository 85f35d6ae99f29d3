"""The data a study trains and tests on: the data folder, its part labels and part boxes.

:func:`load_study_data` gathers, once per chapter, what every experiment of
the chapter needs (:class:`StudyData`): the VehicleID training set and test
sets, the part boxes of the training images (chapter 3's detections or
SynthVeh's ground truth), SynthVeh's VeRi-776 and the pretrained start.
:func:`resolve_data_root` and :func:`resolve_parts_yaml` find the data folder
and the part labels the chapters before training read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from prreid_lib.config import Profile, get_profile
from prreid_lib.datasets import VehicleID, VeRi776, load_vehicleid, load_veri776
from prreid_lib.detector import detected_boxes_path, load_detected_boxes
from prreid_lib.errors import DatasetFormatError
from prreid_lib.paper_tables import PAPER_LABEL
from prreid_lib.paths import canonical_path, yaml_data_root
from prreid_lib.synthveh_files import is_synthveh

if TYPE_CHECKING:
    from prreid_lib.pretrain import PretrainedBackbone

TEST_SET_NAMES = ("small", "medium", "large")
"""VehicleID test sets in the order of their (real) sizes 800, 1600, 2400."""
REAL_TEST_SIZES = (800, 1600, 2400)
PART_SOURCES = ("auto", "detected", "ground_truth")
"""Where the training part boxes come from (``part_source`` of :func:`load_study_data`)."""
MIN_DETECTED_COVERAGE = 0.9
"""``part_source="auto"`` uses detections only when they cover this share of training images."""


@dataclass(frozen=True, kw_only=True, eq=False)
class StudyData:
    """Everything a training chapter needs about its data (:func:`load_study_data`)."""

    profile: Profile
    root: Path
    """The data folder (canonical): a SynthVeh root or the user's real data."""
    synthetic: bool
    """Whether the data is SynthVeh (:func:`prreid_lib.synthveh_files.is_synthveh`)."""
    vehicleid: VehicleID
    """VehicleID with its 800-identity test list: every variant trains on its ``train``."""
    tests: Mapping[str, pd.DataFrame]
    """The VehicleID test sets the data has, by name (:data:`TEST_SET_NAMES`)."""
    part_boxes: pd.DataFrame
    """The part boxes of the VehicleID training images."""
    test_part_boxes: pd.DataFrame | None
    """SynthVeh's ground-truth part boxes of every VehicleID image (a parts-only model
    needs them on the test images), or ``None`` on real data."""
    part_source: str
    """Where ``part_boxes`` come from, in words (detected or ground truth)."""
    veri: VeRi776 | None = None
    """SynthVeh's VeRi-776, or ``None`` on real data."""
    veri_part_boxes: pd.DataFrame | None = None
    """SynthVeh's ground-truth part boxes of the VeRi-776 training images."""
    start: PretrainedBackbone | None = None
    """The SynthVeh-pretrained backbone (:class:`prreid_lib.pretrain.PretrainedBackbone`)
    every variant starts from, or ``None`` (the profile's ``pretrained`` file or random)."""

    @property
    def data_name(self) -> str:
        """The data set the numbers come from, for prose: ``"SynthVeh"`` or, on real data,
        ``"VehicleID"``: every variant trains and tests on :attr:`vehicleid`, whichever real
        profile (``veri776`` or ``vehicleid``) runs."""
        return "SynthVeh" if self.synthetic else "VehicleID"

    @property
    def label(self) -> str:
        """Whose numbers these are, for tables: ``"ours (SynthVeh, quick)"`` or, on a
        real data set, ``"ours (VehicleID, vehicleid profile)"``."""
        if self.synthetic:
            return f"ours (SynthVeh, {self.profile.name})"
        return f"ours ({self.data_name}, {self.profile.name} profile)"

    @property
    def pretrained(self) -> str | None:
        """The weights file the variants start from (``None``: random initialisation)."""
        if self.profile.train.pretrained is not None:
            return self.profile.train.pretrained
        return None if self.start is None else str(self.start.path)


def resolve_data_root(
    profile: str | Profile, data_root: str | Path | None = None, *, data_seed: int = 0
) -> Path:
    """The chapters' data folder: ``data_root``, or (``None``) the profile's SynthVeh of seed
    ``data_seed``, generated on first use
    (:func:`prreid_lib.synthveh.generator.ensure_synthveh`); canonical
    (:func:`prreid_lib.paths.canonical_path`), as the loaders' image paths under it."""
    if data_root is not None:
        return canonical_path(data_root)
    from prreid_lib.synthveh import ensure_synthveh

    return canonical_path(
        ensure_synthveh(
            get_profile(profile) if isinstance(profile, str) else profile, seed=data_seed
        )
    )


def load_data_sets(root: str | Path) -> tuple[VeRi776 | None, VehicleID | None]:
    """``(VeRi-776, VehicleID)`` under ``root`` (VehicleID with its 800-identity test list);
    one the folder lacks is ``None`` (the reason printed), neither raises
    ``FileNotFoundError``."""
    veri: VeRi776 | None = None
    vid: VehicleID | None = None
    try:
        veri = load_veri776(root)
    except DatasetFormatError as err:
        print(f"not loaded: {err}")
    try:
        vid = load_vehicleid(root, REAL_TEST_SIZES[0])
    except DatasetFormatError as err:
        print(f"not loaded: {err}")
    if veri is None and vid is None:
        raise FileNotFoundError(
            f"neither VeRi-776 nor VehicleID was found under data_root={root}: pass the folder "
            "that holds VeRi-776/ and/or VehicleID_V1.0/, or data_root=None for SynthVeh"
        )
    return veri, vid


def resolve_parts_yaml(root: str | Path, parts_yaml: str | Path | None = None) -> Path:
    """The part labels' YOLO ``data.yaml``: ``parts_yaml``, or ``<root>/parts/data.yaml``
    (SynthVeh's labelled subset; on real data the user's labels). A missing file raises
    ``FileNotFoundError`` naming it."""
    path = canonical_path(parts_yaml if parts_yaml else Path(root) / "parts" / "data.yaml")
    if not path.is_file():
        where = "there" if parts_yaml else f"into {path.parent}/ (images/, labels/, data.yaml)"
        raise FileNotFoundError(
            f"no part labels at {path}: label about 500 images (window, light, brand) in YOLO "
            f"format {where} as chapter 2 and the README's 'The real data sets' explain (the "
            "annotator of chapter 2 helps), or pass parts_yaml=<your data.yaml>"
        )
    return path


LABEL_CHAPTERS = ("02_part_annotation", "03_part_detection")
"""The chapters that read the part labels (:func:`resolve_parts_yaml`)."""
VEHICLEID_CHAPTERS = ("04_training", "05_evaluation", "06_ablation", "07_resolution", "08_cam")
"""The chapters that train and test on VehicleID (:func:`load_study_data`)."""


def check_book_data(root: str | Path, chapters: Iterable[str]) -> None:
    """Refuse, before any chapter runs, real data at ``root`` that ``chapters`` (notebook
    names) cannot use: no part labels at ``root/parts/data.yaml`` for chapters 2 and 3
    (``FileNotFoundError`` of :func:`resolve_parts_yaml`), no VehicleID for chapters 4 to
    8 (``FileNotFoundError``; a malformed one raises the loader's
    :class:`DatasetFormatError`). SynthVeh passes."""
    root = canonical_path(root)
    names = set(chapters)
    if is_synthveh(root):
        return
    if names & set(LABEL_CHAPTERS):
        resolve_parts_yaml(root)
    needing = sorted(names & set(VEHICLEID_CHAPTERS))
    if not needing:
        return
    try:
        load_vehicleid(root, REAL_TEST_SIZES[0], check_images=False)
    except DatasetFormatError as err:
        if err.path.expanduser() != root.expanduser():  # there, but malformed
            raise
        raise FileNotFoundError(
            f"{root} holds no VehicleID (VehicleID_V1.0/ or VehicleID/), and the chapters "
            f"{', '.join(needing)} train and test on it: add it there, run only the chapters "
            "before them (--chapters 01 02 03), or take VeRi-776 through prreid detect, train "
            "and evaluate (README: The real data sets)"
        ) from None


def parts_spec(parts_yaml: str | Path) -> tuple[dict[str, Any], Path]:
    """A part labels' ``data.yaml`` as a dict, and the folder its ``train`` and ``val``
    paths are relative to: its ``path`` entry, relative to the yaml's own folder, else
    that folder (:func:`prreid_lib.paths.yaml_data_root`); canonical."""
    import yaml

    parts_yaml = Path(parts_yaml)
    spec = yaml.safe_load(parts_yaml.read_text())
    if not isinstance(spec, dict):
        raise ValueError(
            f"{parts_yaml}: expected a YOLO data.yaml mapping (train, val, names), found "
            f"{type(spec).__name__}; write it as ultralytics documents"
        )
    return spec, yaml_data_root(parts_yaml, spec.get("path"))


def load_study_data(
    profile: str | Profile,
    *,
    data_root: str | Path | None = None,
    data_seed: int = 0,
    output_dir: str | Path = "runs",
    part_source: str = "auto",
    device: str = "auto",
    start: PretrainedBackbone | None = None,
) -> StudyData:
    """Load the VehicleID-layout data and the training part boxes for a profile.

    ``data_root=None`` generates (or reuses) SynthVeh of seed ``data_seed``.
    On SynthVeh, when the profile has a ``pretrain`` schedule and no
    ``pretrained`` file, the make-model-colour backbone is trained once (or
    reused) under ``output_dir/pretrain/`` (:mod:`prreid_lib.pretrain`) and every
    variant starts from it, as the paper's start from ImageNet; ``start`` (a
    :class:`~prreid_lib.pretrain.PretrainedBackbone`) reuses one instead, e.g. for
    a SynthVeh variant that should share the main data's start. ``part_source``:
    ``"detected"`` uses the boxes chapter 3 saved (``output_dir/ch03/part_boxes.csv``),
    ``"ground_truth"`` SynthVeh's own boxes (missing parts imputed by identity as
    for detections), ``"auto"`` the detected ones when they cover at least
    ``MIN_DETECTED_COVERAGE`` of the training images (a detector trained for one
    epoch in the smoke profile finds nothing), else the ground truth. Real data
    without detected boxes raise a clear error.
    """
    if part_source not in PART_SOURCES:
        raise ValueError(f"part_source must be auto, detected or ground_truth; got {part_source!r}")
    prof = get_profile(profile) if isinstance(profile, str) else profile
    root = resolve_data_root(prof, data_root, data_seed=data_seed)
    synthetic = is_synthveh(root)
    vid = load_vehicleid(root, test_size=REAL_TEST_SIZES[0])
    tests = _test_sets(root, vid)
    truth = None  # SynthVeh's own boxes of every VehicleID image
    if synthetic:
        truth = _ground_truth_boxes(vid.root, pd.concat([vid.train, *tests.values()]))
    boxes, source = _training_boxes(vid, truth, root, output_dir, part_source)
    veri = veri_boxes = None
    if synthetic and vid.root != root:  # SynthVeh's VeRi-776 beside its VehicleID
        veri = load_veri776(root)
        veri_boxes = _ground_truth_boxes(veri.root, veri.train)
    if start is None and synthetic and prof.pretrain is not None and prof.train.pretrained is None:
        from prreid_lib.pretrain import pretrained_backbone

        start = pretrained_backbone(prof, root, output_dir, device=device)
    return StudyData(
        profile=prof,
        root=root,
        synthetic=synthetic,
        vehicleid=vid,
        tests=tests,
        part_boxes=boxes,
        test_part_boxes=truth,
        part_source=source,
        veri=veri,
        veri_part_boxes=veri_boxes,
        start=start,
    )


def _test_sets(root: Path, vid: VehicleID) -> dict[str, pd.DataFrame]:
    """The VehicleID test sets under ``root`` by name; real data may lack the larger lists."""
    from prreid_lib.datasets.vehicleid import available_test_sizes

    sizes = available_test_sizes(vid.root)
    return {
        name: (vid.test if size == REAL_TEST_SIZES[0] else load_vehicleid(root, size).test)
        for name, size in zip(TEST_SET_NAMES, REAL_TEST_SIZES, strict=True)
        if size in sizes
    }


def _ground_truth_boxes(layout: Path, images: pd.DataFrame) -> pd.DataFrame:
    """SynthVeh's part boxes of ``images`` from the layout folder ``layout``, missing parts
    imputed (:func:`prreid_lib.parts.ground_truth_part_boxes`)."""
    from prreid_lib.parts import ground_truth_part_boxes
    from prreid_lib.synthveh import load_synthveh_parts

    return ground_truth_part_boxes(load_synthveh_parts(layout), images)


def _training_boxes(
    vid: VehicleID,
    truth: pd.DataFrame | None,
    root: Path,
    output_dir: str | Path,
    part_source: str,
) -> tuple[pd.DataFrame, str]:
    """The part boxes of the training images by ``part_source``, and their source in words."""
    detected = detected_boxes_path(output_dir)
    found = load_detected_boxes(output_dir) if detected.is_file() else None
    coverage = _coverage(found, vid.train["path"]) if found is not None else 0.0
    use_detected = part_source == "detected" or (
        part_source == "auto" and coverage >= MIN_DETECTED_COVERAGE
    )
    if use_detected:
        boxes = found if found is not None else load_detected_boxes(output_dir)
        source = f"detected (chapter 3), {coverage:.0%} of training images with a box"
    elif truth is not None:
        boxes, source = truth, "ground truth (SynthVeh), missing parts imputed"
    else:
        raise FileNotFoundError(
            f"no part boxes for the real data under {root}: run chapter 3 to detect them "
            f"(it writes {detected})"
        )
    train_paths = set(vid.train["path"])
    return boxes[boxes["path"].isin(train_paths)].reset_index(drop=True), source


def _coverage(boxes: pd.DataFrame, paths: pd.Series) -> float:
    """Share of ``paths`` with at least one row in the part boxes table ``boxes``."""
    have = set(boxes["path"])
    return float(paths.isin(have).mean()) if len(paths) else 0.0


def table_labels(data: StudyData) -> tuple[str, str]:
    """``(ours, paper)``: the column labels of a table that sets our numbers beside the
    paper's; ours names the data actually used (``StudyData.label``)."""
    return data.label, PAPER_LABEL


def chosen_test_set(data: StudyData, test_set: str = "large") -> str:
    """``test_set`` when the data has it, else its largest test set (real data may lack
    the larger VehicleID lists)."""
    return test_set if test_set in data.tests else list(data.tests)[-1]


def synthveh_variant(
    data: StudyData,
    name: str,
    root: str | Path,
    *,
    data_seed: int = 0,
    output_dir: str | Path = "runs",
    device: str = "auto",
    **synth: Any,
) -> StudyData:
    """The SynthVeh world of ``data`` with other :class:`~prreid_lib.config.SynthConfig`
    values (``synth``), generated (or reused) under ``root`` as profile ``name``.

    It has no pretraining split of its own: its variants start from ``data``'s
    pretrained backbone, and train on SynthVeh's ground-truth part boxes.
    """
    if not data.synthetic:
        raise ValueError(
            f"{data.root} is real data: only SynthVeh can be generated again with other "
            f"settings ({sorted(synth)}); use data_root=None"
        )
    from prreid_lib.synthveh import ensure_synthveh

    profile = replace(
        data.profile, name=name, synth=replace(data.profile.synth, pretrain_ids=0, **synth)
    )
    root = ensure_synthveh(profile, root=Path(root), seed=data_seed)
    return load_study_data(
        profile,
        data_root=root,
        data_seed=data_seed,
        output_dir=output_dir,
        part_source="ground_truth",
        device=device,
        start=data.start,
    )
