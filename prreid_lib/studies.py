"""The experiments the chapters share: data, part boxes, named variants, train-and-evaluate.

Chapters 4-8 train many variants of the same model (baseline, part-regularized,
the ablation rows of Table 4, other input sizes). This module gives them one way
to do it, so a variant trained in one chapter is reused by the others through
the run cache (:func:`prreid_lib.train.run_or_load`).

It is also the chapters' one door to what they share: the data folder and the
part labels (:func:`resolve_data_root`, :func:`resolve_parts_yaml`), the part
boxes chapter 3 detects (:func:`save_detected_boxes`, :func:`load_detected_boxes`),
the labels of tables (:func:`table_labels`), the VeRi-776 junk rule
(:func:`same_camera_junk`) and the near-duplicate pairs of chapter 8
(:func:`near_duplicate_pairs`). A chapter explains and calls; the logic lives here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prreid_lib.cache import atomic_write_text, cached_json, config_digest
from prreid_lib.config import PART_NAMES, Profile, TrainConfig, get_profile
from prreid_lib.paper_tables import PAPER_LABEL
from prreid_lib.paths import canonical_path, yaml_data_root
from prreid_lib.runs import data_identity
from prreid_lib.uncertainty import difference_from_value

TEST_SET_NAMES = ("small", "medium", "large")
"""VehicleID test sets in the order of their (real) sizes 800, 1600, 2400."""
REAL_TEST_SIZES = (800, 1600, 2400)
DETECTED_BOXES_FILE = Path("ch03") / "part_boxes.csv"
"""Where chapter 3 saves detected (and imputed) part boxes, relative to ``output_dir``."""
MIN_DETECTED_COVERAGE = 0.9
"""``part_source="auto"`` uses detections only when they cover this share of training images."""
EVALUATION_KEY_VERSION = "3"
"""Version of :func:`evaluation_key` (2: keyed by image content, not by path; 3: images
decoded in full, without JPEG draft mode)."""

BASELINE, FULL = "Baseline (w/o parts)", "Global+Light+Brand+Window"
"""The two models of the headline comparison (Table 4's first and last rows)."""
ALL_PARTS = dict.fromkeys(PART_NAMES, 1.0)
NO_PARTS = dict.fromkeys(PART_NAMES, 0.0)

ABLATION_VARIANTS: dict[str, dict[str, Any]] = {
    "Global+Light+Brand+Window": {"lambda_p": ALL_PARTS},
    "Global+Light+Brand": {"lambda_p": {**ALL_PARTS, "window": 0.0}},
    "Global+Light+Window": {"lambda_p": {**ALL_PARTS, "brand": 0.0}},
    "Global+Window+Brand": {"lambda_p": {**ALL_PARTS, "light": 0.0}},
    "Global+Window": {"lambda_p": {**NO_PARTS, "window": 1.0}},
    "Window+Light+Brand": {"lambda_p": ALL_PARTS, "use_global": False},
    "Baseline (w/o parts)": {"lambda_p": NO_PARTS},
}
"""The seven rows of the paper's Table 4, as overrides of the profile's TrainConfig."""
HEADLINE_PAIR = {name: ABLATION_VARIANTS[name] for name in (BASELINE, FULL)}
"""Chapter 4's comparison: the baseline and the part-regularized model."""


def headline_seeds(profile: Profile, first: int = 0) -> list[int]:
    """The training seeds of the headline comparison: ``first``, ``first + 1``, ... (the
    profile's ``n_seeds`` of them)."""
    return [first + i for i in range(profile.n_seeds)]


def resolve_data_root(
    profile: str | Profile, data_root: str | Path | None = None, data_seed: int = 0
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


def is_synthveh(root: str | Path) -> bool:
    """Whether ``root`` is a SynthVeh export (it has ``synthveh.json``), not real data."""
    from prreid_lib.synthveh.generator import MANIFEST

    return (Path(root) / MANIFEST).is_file()


def load_data_sets(root: str | Path) -> tuple[Any, Any]:
    """``(VeRi-776, VehicleID)`` under ``root`` (VehicleID with its 800-identity test list);
    one the folder lacks is ``None`` (the reason printed), neither raises
    ``FileNotFoundError``."""
    from prreid_lib.datasets import DatasetFormatError, load_vehicleid, load_veri776

    loaded = []
    for loader, args in ((load_veri776, ()), (load_vehicleid, (REAL_TEST_SIZES[0],))):
        try:
            loaded.append(loader(root, *args))
        except DatasetFormatError as err:
            print(f"not loaded: {err}")
            loaded.append(None)
    if loaded == [None, None]:
        raise FileNotFoundError(
            f"neither VeRi-776 nor VehicleID was found under data_root={root}: pass the folder "
            "that holds VeRi-776/ and/or VehicleID_V1.0/, or data_root=None for SynthVeh"
        )
    return loaded[0], loaded[1]


def resolve_parts_yaml(root: str | Path, parts_yaml: str | Path | None = None) -> Path:
    """The part labels' YOLO ``data.yaml``: ``parts_yaml``, or ``<root>/parts/data.yaml``
    (SynthVeh's labelled subset). A missing file raises ``FileNotFoundError`` naming it."""
    path = canonical_path(parts_yaml if parts_yaml else Path(root) / "parts" / "data.yaml")
    if not path.is_file():
        raise FileNotFoundError(
            f"no part labels at {path}: label about 500 images (window, light, brand) in YOLO "
            "format as chapter 2 explains (its annotator helps) and pass parts_yaml=<your "
            "data.yaml>"
        )
    return path


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


def detected_boxes_path(output_dir: str | Path = "runs") -> Path:
    """The file of chapter 3's part boxes: ``output_dir/ch03/part_boxes.csv``."""
    return Path(output_dir) / DETECTED_BOXES_FILE


def save_detected_boxes(boxes: pd.DataFrame, output_dir: str | Path = "runs") -> Path:
    """Write the part boxes of every image (chapter 3) where :func:`load_detected_boxes`
    and :func:`load_study_data` find them; returns the file."""
    path = detected_boxes_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, boxes.to_csv(index=False))  # readers never see half a file
    return path


def load_detected_boxes(output_dir: str | Path = "runs") -> pd.DataFrame:
    """The part boxes :func:`save_detected_boxes` wrote under ``output_dir``; a missing
    file raises ``FileNotFoundError`` that says to run chapter 3."""
    path = detected_boxes_path(output_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no detected part boxes; run chapter 3 (03_part_detection) with "
            f"output_dir={output_dir}, or use part_source='ground_truth'"
        )
    from prreid_lib.parts import read_part_boxes

    return read_part_boxes(path)  # paths canonical: they join the loaders' image paths


@dataclass
class StudyData:
    """Everything a training chapter needs about its data."""

    profile: Profile
    root: Path
    synthetic: bool
    vehicleid: Any
    tests: dict[str, pd.DataFrame]
    part_boxes: pd.DataFrame | None
    test_part_boxes: pd.DataFrame | None
    part_source: str
    veri: Any = None
    veri_part_boxes: pd.DataFrame | None = None
    start: Any = None
    """The SynthVeh-pretrained backbone (:class:`prreid_lib.pretrain.PretrainedBackbone`)
    every variant starts from, or ``None`` (the profile's ``pretrained`` file or random)."""

    @property
    def data_name(self) -> str:
        """The data set the numbers come from, for prose: ``"SynthVeh"``, ``"VehicleID"``,
        ``"VeRi-776"`` or ``"real data"``."""
        if self.synthetic:
            return "SynthVeh"
        return {"veri776": "VeRi-776", "vehicleid": "VehicleID"}.get(
            self.profile.real_data or "", "real data"
        )

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


def load_study_data(
    profile: str | Profile,
    data_root: str | Path | None = None,
    data_seed: int = 0,
    output_dir: str | Path = "runs",
    part_source: str = "auto",
    device: str = "auto",
    start: Any = None,
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
    from prreid_lib.datasets import load_vehicleid
    from prreid_lib.datasets.vehicleid import available_test_sizes
    from prreid_lib.parts import ground_truth_part_boxes
    from prreid_lib.synthveh import load_synthveh_parts

    prof = get_profile(profile) if isinstance(profile, str) else profile
    root = resolve_data_root(prof, data_root, data_seed)
    synthetic = is_synthveh(root)
    vid = load_vehicleid(root, test_size=REAL_TEST_SIZES[0])
    sizes = [s for s in REAL_TEST_SIZES if s in available_test_sizes(vid.root)]
    tests = {
        name: (vid.test if size == REAL_TEST_SIZES[0] else load_vehicleid(root, size).test)
        for name, size in zip(TEST_SET_NAMES, REAL_TEST_SIZES, strict=True)
        if size in sizes
    }
    detected = detected_boxes_path(output_dir)
    if part_source not in {"auto", "detected", "ground_truth"}:
        raise ValueError(f"part_source must be auto, detected or ground_truth; got {part_source!r}")
    found = load_detected_boxes(output_dir) if detected.is_file() else None
    coverage = _coverage(found, vid.train["path"]) if found is not None else 0.0
    use_detected = part_source == "detected" or (
        part_source == "auto" and coverage >= MIN_DETECTED_COVERAGE
    )
    gt_boxes = test_boxes = None
    if synthetic:
        everything = pd.concat([vid.train, *tests.values()])
        gt_boxes = ground_truth_part_boxes(load_synthveh_parts(vid.root), everything)
        test_boxes = gt_boxes
    if use_detected:
        boxes = found if found is not None else load_detected_boxes(output_dir)
        source = f"detected (chapter 3), {coverage:.0%} of training images with a box"
    elif gt_boxes is not None:
        boxes, source = gt_boxes, "ground truth (SynthVeh), missing parts imputed"
    else:
        raise FileNotFoundError(
            f"no part boxes for the real data under {root}: run chapter 3 to detect them "
            f"(it writes {detected})"
        )
    train_paths = set(vid.train["path"])
    boxes = boxes[boxes["path"].isin(train_paths)].reset_index(drop=True)
    data = StudyData(prof, root, synthetic, vid, tests, boxes, test_boxes, source)
    if synthetic:
        from prreid_lib.datasets import load_veri776

        data.veri = load_veri776(root)
        veri_parts = load_synthveh_parts(data.veri.root)
        data.veri_part_boxes = ground_truth_part_boxes(veri_parts, data.veri.train)
    if start is not None:
        data.start = start
    elif synthetic and prof.pretrain is not None and prof.train.pretrained is None:
        from prreid_lib.pretrain import pretrained_backbone

        data.start = pretrained_backbone(prof, root, output_dir, device=device)
    return data


def _coverage(boxes: pd.DataFrame, paths: pd.Series) -> float:
    """Share of ``paths`` with at least one row in the part boxes table ``boxes``."""
    have = set(boxes["path"])
    return float(paths.isin(have).mean()) if len(paths) else 0.0


def variant_config(base: TrainConfig, **overrides: Any) -> TrainConfig:
    """``base`` with overrides; ``lambda_p`` may name only some parts (the others keep theirs)."""
    if "lambda_p" in overrides:
        unknown = set(overrides["lambda_p"]) - set(PART_NAMES)
        if unknown:
            raise ValueError(f"lambda_p names unknown parts {sorted(unknown)}; parts: {PART_NAMES}")
        overrides["lambda_p"] = {**base.lambda_p, **overrides["lambda_p"]}
    return replace(base, **overrides)


def slug(name: str) -> str:
    """A folder-safe name for a variant (``"Global+Window"`` -> ``"global-window"``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def train_variant(
    data: StudyData,
    name: str,
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    dataset: str = "vehicleid",
    **overrides: Any,
):
    """Train (or reuse) the variant ``name`` of the profile's model.

    ``dataset`` is ``"vehicleid"`` (VehicleID train, the paper's ablation set) or
    ``"veri776"`` (VeRi-776 train, SynthVeh ground-truth boxes). Returns
    :class:`prreid_lib.runs.TrainResult`; runs live under
    ``output_dir/reid/<slug(name)>-<key>``.
    """
    from prreid_lib.train import run_or_load

    if dataset == "vehicleid":
        frame, boxes = data.vehicleid.train, data.part_boxes
    elif dataset == "veri776" and data.veri is not None:
        frame, boxes = data.veri.train, data.veri_part_boxes
    else:
        raise ValueError(f"dataset must be 'vehicleid' or 'veri776' (SynthVeh); got {dataset!r}")
    cfg = variant_config(data.profile.train, **{"pretrained": data.pretrained, **overrides})
    return run_or_load(
        cfg,
        frame,
        boxes,
        Path(output_dir) / "reid" / dataset,
        seed=seed,
        device=device,
        progress=progress,
        name=slug(name),
    )


def evaluate_variant(
    result,
    data: StudyData,
    seed: int = 0,
    n_trials: int | None = None,
    test_sets: Sequence[str] | None = None,
    metric: str = "euclidean",
) -> pd.DataFrame:
    """VehicleID protocol on the test sets ``test_sets`` (default: all); one row per set,
    CMC@1/@5 and mAP (mean and std), with the distance ``metric`` ("euclidean", the
    paper's L2, or "cosine").

    Each row is stored in the run folder (``evaluations/``), keyed by the test
    images, their identities (and part boxes, for a parts-only model), the
    number of trials and the seed, so chapters that show the same run reuse it.
    """
    trials = n_trials or data.profile.eval.n_trials
    unknown = set(test_sets or ()) - set(data.tests)
    if unknown:
        raise ValueError(f"unknown test sets {sorted(unknown)}; this data has {list(data.tests)}")
    chosen = data.tests if test_sets is None else {t: data.tests[t] for t in test_sets}
    rows = [
        {
            "test set": name,
            **_vehicleid_row(result, test, data.test_part_boxes, trials, seed, metric),
        }
        for name, test in chosen.items()
    ]
    return pd.DataFrame(rows).set_index("test set")


def evaluation_key(
    result, test: pd.DataFrame, part_boxes, trials: int, seed: int, metric: str = "euclidean"
) -> str:
    """Content key of one VehicleID evaluation of a run: the test images' bytes and
    identities (and their part boxes, for a parts-only model), trials, seed and metric.

    No path is part of it, so an evaluation stored in a run folder is reused
    after the run and the data are copied to another checkout or machine.
    """
    parts = () if result.model.use_global else tuple(result.model.parts)
    data = data_identity(test, part_boxes if parts else None, parts)
    payload = {"version": EVALUATION_KEY_VERSION, "trials": trials, "seed": seed}
    return config_digest(payload | {"metric": metric, "data": data})


def _vehicleid_row(
    result, test: pd.DataFrame, part_boxes, trials: int, seed: int, metric: str = "euclidean"
) -> dict:
    """One test set's VehicleID figures for a run, from its evaluation cache or computed."""
    from prreid_lib.evaluate import evaluate_vehicleid

    key = evaluation_key(result, test, part_boxes, trials, seed, metric)
    cache = Path(result.run_dir) / "evaluations" / f"vehicleid-{key[:16]}.json"
    columns = ("identities", "CMC@1", "CMC@5", "mAP", "CMC@1 std", "mAP std")

    def compute() -> dict:
        res = evaluate_vehicleid(
            result.model, test, part_boxes=part_boxes, n_trials=trials, seed=seed, metric=metric
        )
        return {
            "identities": int(test["pid"].nunique()),
            "CMC@1": float(res.cmc_mean[0]),
            "CMC@5": float(res.cmc_mean[4]),
            "mAP": float(res.mAP_mean),
            "CMC@1 std": float(res.cmc_std[0]),
            "mAP std": float(res.mAP_std),
        }

    stored = cached_json(cache, compute, required=columns)
    return {k: stored[k] for k in columns}


def chosen_test_set(data: StudyData, test_set: str = "large") -> str:
    """``test_set`` when the data has it, else its largest test set (real data may lack
    the larger VehicleID lists)."""
    return test_set if test_set in data.tests else list(data.tests)[-1]


def compare_variants(
    data: StudyData,
    variants: Mapping[str, Mapping[str, Any]],
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    test_set: str = "large",
    eval_seed: int | None = None,
) -> pd.DataFrame:
    """Train (or reuse) each variant and evaluate it; one row per variant on ``test_set``.

    ``seed`` seeds the training; ``eval_seed`` the random gallery picks of the
    VehicleID protocol (default: ``seed``). Fix ``eval_seed`` to compare
    training seeds on the same splits. Columns: the evaluation figures,
    ``train accuracy`` (global branch, last epoch) and ``train seconds``.
    """
    chosen = chosen_test_set(data, test_set)
    split_seed = seed if eval_seed is None else eval_seed
    rows = []
    for name, result in train_variants(data, variants, output_dir, seed, device).items():
        row = evaluate_variant(result, data, split_seed, test_sets=[chosen]).loc[chosen].to_dict()
        h = result.history
        rows.append(
            {
                "variant": name,
                **row,
                "train accuracy": float(h["global_acc"].iloc[-1]) if len(h) else float("nan"),
                "train seconds": float(h["seconds"].sum()) if "seconds" in h else None,
            }
        )
    return pd.DataFrame(rows).set_index("variant")


def compare_over_seeds(
    data: StudyData,
    variants: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int],
    output_dir: str | Path = "runs",
    device: str = "auto",
    test_set: str = "large",
    eval_seed: int = 0,
) -> pd.DataFrame:
    """:func:`compare_variants` for every training seed; one row per (variant, seed).

    All seeds are evaluated on the same gallery splits (``eval_seed``), so the
    spread over seeds is the spread of training alone.
    """
    frames = [
        compare_variants(data, variants, output_dir, s, device, test_set, eval_seed).assign(seed=s)
        for s in seeds
    ]
    return pd.concat(frames)


def seed_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds of CMC@1, CMC@5 and mAP per variant, with ``CMC@1 std over seeds``
    (population std; 0 for one seed), ``mAP std over seeds`` and ``seeds`` (their count)."""
    grouped = per_seed.groupby(level=0, sort=False)
    table = grouped[["CMC@1", "CMC@5", "mAP"]].mean()
    table["CMC@1 std over seeds"] = grouped["CMC@1"].std(ddof=0)
    table["mAP std over seeds"] = grouped["mAP"].std(ddof=0)
    table["seeds"] = grouped["seed"].nunique()
    return table


def part_gain(summary: pd.DataFrame, base: str = BASELINE, full: str = FULL) -> dict[str, float]:
    """The part gain of a :func:`seed_summary`: ``gain`` (CMC@1 of ``full`` minus ``base``),
    ``noise`` (the larger of the two seed stds) and ``ratio`` (gain / noise; inf when the
    noise is 0)."""
    gain = float(summary.loc[full, "CMC@1"] - summary.loc[base, "CMC@1"])
    noise = float(summary.loc[[base, full], "CMC@1 std over seeds"].max())
    return {"gain": gain, "noise": noise, "ratio": gain / noise if noise > 0 else float("inf")}


def table_labels(data: StudyData) -> tuple[str, str]:
    """``(ours, paper)``: the column labels of a table that sets our numbers beside the
    paper's; ours names the data actually used (``StudyData.label``)."""
    return data.label, PAPER_LABEL


def train_variants(
    data: StudyData,
    variants: Mapping[str, Mapping[str, Any]],
    output_dir: str | Path = "runs",
    seed: int = 0,
    device: str = "auto",
    **common: Any,
) -> dict[str, Any]:
    """:func:`train_variant` for every named variant (its overrides, then ``common``, e.g.
    ``dataset="veri776"``); ``{name: TrainResult}`` in the order of ``variants``."""
    return {
        name: train_variant(data, name, output_dir, seed, device, **{**overrides, **common})
        for name, overrides in variants.items()
    }


def synthveh_variant(
    data: StudyData,
    name: str,
    root: str | Path,
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
        profile, root, data_seed, output_dir, "ground_truth", device, start=data.start
    )


def same_camera_junk(query: pd.DataFrame, gallery: pd.DataFrame) -> np.ndarray:
    """``(len(query), len(gallery))`` booleans: the gallery images the VeRi-776 protocol
    ignores for each query (same vehicle, same camera;
    ``prreid_lib.datasets.veri776.rule_gt_junk``)."""
    from prreid_lib.datasets.veri776 import rule_gt_junk

    _, junk = rule_gt_junk(query, gallery)
    mask = np.zeros((len(query), len(gallery)), dtype=bool)
    for row, columns in enumerate(junk):
        mask[row, columns] = True
    return mask


def veri_figures(result: Mapping[str, Any]) -> dict[str, float]:
    """One column of a VeRi-776 table from :func:`prreid_lib.evaluate.evaluate_veri`:
    image-to-image mAP and CMC@1 and, with tracks, image-to-track mAP, HIT@1 and HIT@5."""
    row = {
        "mAP (image-to-image)": result["image"].mAP,
        "CMC@1 (image-to-image)": result["image"].cmc[0],
    }
    if "track" in result:
        row.update(
            {
                "mAP (image-to-track)": result["track"].mAP,
                "HIT@1": result["track"].cmc[0],
                "HIT@5": result["track"].cmc[4],
            }
        )
    return row


def identity_groups(data: StudyData, frame: pd.DataFrame) -> pd.Series:
    """The near-duplicate group of each row of a VehicleID ``frame``, as strings.

    SynthVeh: the make-model-colour ``group`` of its identity; real VehicleID:
    ``"<model_id>-<colour_id>"`` where both are annotated. Rows without a group
    (no such labels) are missing (``NaN``).
    """
    identities = data.vehicleid.root / "synthveh_identities.csv"
    if identities.exists():
        groups = pd.read_csv(identities).set_index("pid")["group"]
        return frame["pid"].map(groups).astype(str)
    if {"model_id", "colour_id"} <= set(frame.columns):
        known = frame["model_id"].notna() & frame["colour_id"].notna()
        label = frame["model_id"].astype(str) + "-" + frame["colour_id"].astype(str)
        return label.where(known)
    return pd.Series(np.nan, index=frame.index, dtype=object)


def group_oracle(data: StudyData, test_set: str = "large") -> dict[str, float] | None:
    """VehicleID figures of a feature that knows each vehicle's make, model and colour
    exactly and nothing else: the floor above which a model has learnt something of
    the individual vehicle.

    Such a feature ranks the gallery images of the query's group first, in random
    order. With one gallery image per identity the true match then sits at a
    uniform rank among the ``m`` identities of the group, so the expected
    figures are exact: CMC@k = min(k, m) / m and AP = H_m / m (H the harmonic
    number), averaged over the queries (``n - 1`` per identity of ``n`` images) of
    ``test_set``. ``None`` when some test image has no group (real data without
    attributes).
    """
    test = data.tests[chosen_test_set(data, test_set)]
    groups = identity_groups(data, test)
    if groups.isna().any():
        return None
    per_id = (
        test.assign(group=groups).groupby("pid").agg(group=("group", "first"), n=("pid", "size"))
    )
    m = per_id["group"].map(per_id["group"].value_counts()).to_numpy(dtype=float)
    queries = per_id["n"].to_numpy(dtype=float) - 1
    harmonic = np.array([np.sum(1.0 / np.arange(1, int(k) + 1)) for k in m])

    def mean(values: np.ndarray) -> float:
        return float(np.sum(values * queries) / np.sum(queries))

    return {
        "identities": len(per_id),
        "groups": int(per_id["group"].nunique()),
        "CMC@1": mean(1 / m),
        "CMC@5": mean(np.minimum(5, m) / m),
        "mAP": mean(harmonic / m),
    }


def floor_verdict(cmc1: Sequence[float], floor: float | None) -> str:
    """How a model's CMC@1 (one value per training seed) stands against the
    :func:`group_oracle`'s ``floor``, in words, by the book's one rule
    (:func:`~prreid_lib.uncertainty.difference_from_value`: beyond two standard errors)."""
    if floor is None:
        return (
            "This test set has no make, model and colour labels, so the floor cannot be computed."
        )
    verdict = difference_from_value(cmc1, floor)
    if not verdict.known:
        return (
            f"With one training seed the baseline's distance to this floor "
            f"({verdict.difference:+.3f}) cannot be compared with the noise."
        )
    if verdict.beyond and verdict.difference > 0:
        return (
            f"The baseline lies above this floor ({verdict.difference:+.3f}, which "
            f"{verdict.words()}): it has learnt cues of the individual vehicle, not only of "
            "its group."
        )
    if verdict.beyond:
        return (
            f"The baseline lies below this floor ({verdict.difference:+.3f}, which "
            f"{verdict.words()}): it does not yet tell every group apart, let alone the "
            "vehicles within one."
        )
    return (
        f"The baseline sits at this floor ({verdict.difference:+.3f}, which {verdict.words()}): "
        "what it has learnt tells the groups apart, not the vehicles within a group."
    )


def near_duplicate_images(data: StudyData) -> pd.DataFrame:
    """The VehicleID training images with a near-duplicate ``group`` column.

    SynthVeh: the make-model-colour group of each identity, front views only
    (when there are any); real VehicleID: model and colour ids where annotated.
    Without such labels every image is in one group ``"all"``.
    """
    train = data.vehicleid.train
    frame = train.assign(group=identity_groups(data, train)).dropna(subset=["group"])
    if data.synthetic:
        from prreid_lib.synthveh import load_synthveh_parts

        views = load_synthveh_parts(data.vehicleid.root).drop_duplicates("path")
        frame["view"] = frame["path"].map(views.set_index("path")["view"])
        if (frame["view"] == "front").any():
            frame = frame[frame["view"] == "front"]
    if frame.empty or not (frame.groupby("group")["pid"].nunique() >= 2).any():
        frame = train.assign(group="all")  # no attributes: any two identities
    return frame


def sample_pairs(frame: pd.DataFrame, n_pairs: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``n_pairs`` pairs of different identities of one ``group``, one image each.

    ``frame`` has ``pid`` and ``group`` (and any other columns, kept). Rows
    ``2k`` and ``2k + 1`` are pair ``k``. Groups are visited in a random order
    (``seed``), one pair per group first, then further pairs from the groups
    again; no identity appears twice.
    """
    rng = np.random.default_rng(seed)
    sizes = frame.groupby("group")["pid"].nunique()
    groups = [g for g in rng.permutation(sizes.index.to_numpy()) if sizes[g] >= 2]
    rows: list[dict[str, Any]] = []
    for g in groups * n_pairs:
        if len(rows) >= 2 * n_pairs:
            break
        used = {r["pid"] for r in rows}
        pids = [p for p in frame.loc[frame["group"] == g, "pid"].unique() if p not in used]
        for pid in rng.permutation(pids)[:2] if len(pids) >= 2 else []:
            images = frame[frame["pid"] == pid]
            rows.append(images.iloc[int(rng.integers(len(images)))].to_dict())
    return pd.DataFrame(rows).reset_index(drop=True)


def near_duplicate_pairs(data: StudyData, n_pairs: int, seed: int = 0) -> pd.DataFrame:
    """Pairs of near-duplicate identities of the VehicleID training set, one image each
    (the paper's Fig. 5): :func:`sample_pairs` of :func:`near_duplicate_images`."""
    return sample_pairs(near_duplicate_images(data), n_pairs, seed)
