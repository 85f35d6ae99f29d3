"""The part detector: ultralytics YOLO trained offline on part labels (paper Sec. 3.2).

The paper trains YOLO on 500 hand-labelled images and runs it on every image
of the data sets. Here :func:`train_detector` builds YOLO11 from its yaml (no
pretrained weights, no download) and trains it with the settings of a
profile's :class:`~prreid_lib.config.DetectorConfig` on the labels prepared by
:func:`prreid_lib.yolo_env.prepare_dataset` (validated, light boxes extended
to the vehicle's bottom); a finished run is reused when nothing that
determines it changed. :func:`predict_parts` runs the model
on a list of images into one table, cached by the hash of the weights file;
:func:`evaluate_detector` reports AP50 and AP50-95 per part with ultralytics'
own validator plus a confusion summary; :func:`detect_part_boxes` goes from
images to the part boxes table the re-id model consumes. ultralytics is
imported lazily, after :func:`prreid_lib.yolo_env.configure_offline`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prreid_lib.cache import atomic_write_text, config_digest, file_digest, files_digest, write_json
from prreid_lib.config import PART_NAMES, DetectorConfig
from prreid_lib.errors import PrreidError
from prreid_lib.paths import canonical_path, canonical_paths
from prreid_lib.synthveh_files import PARTS_FILE, is_synthveh
from prreid_lib.yolo_env import configure_offline, prepare_dataset, training_precision

__all__ = [
    "DEFAULT_TRAIN_ARGS",
    "DETECTED_BOXES_FILE",
    "PREDICTION_COLUMNS",
    "DetectionReport",
    "DetectorRun",
    "PartBoxSteps",
    "detect_part_box_steps",
    "detect_part_boxes",
    "dataset_images",
    "detected_boxes_path",
    "evaluate_detector",
    "load_detected_boxes",
    "main",
    "missing_part_notes",
    "predict_parts",
    "predictions_file",
    "prepare_dataset",
    "resolve_device",
    "save_detected_boxes",
    "train_detector",
]

PREDICTION_COLUMNS = ["path", "part", "x1", "y1", "x2", "y2", "score", "img_w", "img_h"]
KEY_VERSION = "2"
DEFAULT_TRAIN_ARGS: dict[str, Any] = {"mosaic": 0.0}
"""Ultralytics training arguments that differ from its defaults for vehicle crops: no
mosaic (four crops tiled into one image halve the parts' size and look like no input
the detector will see)."""
DETECTED_BOXES_FILE = Path("ch03") / "part_boxes.csv"
"""Where chapter 3 saves the detected (and imputed) part boxes of every image, relative to
its ``output_dir``; the training chapters read them there (:func:`load_detected_boxes`)."""


@dataclass
class DetectorRun:
    """A trained (or reused) detector: weights, run folder, per-epoch history, time."""

    weights: Path
    run_dir: Path
    key: str
    history: pd.DataFrame
    seconds: float
    reused: bool


@dataclass
class DetectionReport:
    """Detection quality on a labelled split, from ultralytics' validator.

    ``per_part``: one row per part with ``images``, ``instances``,
    ``precision``, ``recall``, ``ap50``, ``ap50_95``; ``map50`` and
    ``map50_95`` are their means over parts. ``confusion`` has one row per
    true part (plus ``background``) and one column per predicted part (plus
    ``background``): counts of detections with confidence of at least ``conf``
    matched at IoU 0.45 (ultralytics' rule).
    """

    per_part: pd.DataFrame
    map50: float
    map50_95: float
    confusion: pd.DataFrame
    save_dir: Path


def resolve_device(device: str = "auto") -> str:
    """An ultralytics device string: ``"auto"`` -> first CUDA GPU (``"0"``) or ``"cpu"``."""
    import torch

    if device == "auto":
        return "0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        return device.split(":", 1)[1] if ":" in device else "0"
    return device


def _run_key(cfg: DetectorConfig, data_hash: str, seed: int, extra: dict[str, Any]) -> str:
    import ultralytics

    payload = {
        "version": KEY_VERSION,
        "config": asdict(cfg),
        "data": data_hash,
        "seed": seed,
        "train_args": extra,
        "ultralytics": ultralytics.__version__,
    }
    return config_digest(payload)[:12]


def train_detector(
    data_yaml: str | Path,
    cfg: DetectorConfig,
    output_dir: str | Path = "runs",
    device: str = "auto",
    seed: int = 0,
    workers: int | None = None,
    threads: int | None = None,
    force: bool = False,
    train_args: dict[str, Any] | None = None,
) -> DetectorRun:
    """Train YOLO from ``cfg.model_yaml`` on the part dataset ``data_yaml``, or reuse the run.

    Everything stays offline (:func:`prreid_lib.yolo_env.configure_offline`):
    the model is built from its yaml with random weights, AMP is off on CPU
    (its check would download weights) and bf16 on GPU. The run lives in
    ``output_dir/detector/<model>-<key>``, where ``key`` hashes ``cfg``, the
    dataset files and ``seed``; a finished run with that key is reused unless
    ``force``. ``threads`` sets torch's CPU threads during training
    (default: the current setting; ultralytics would use cores - 1) and is
    restored afterwards; ``workers`` the data-loading processes (default: none
    on CPU, where worker processes only compete with training for the cores;
    up to 8 on a GPU). ``train_args`` are further ultralytics training
    arguments, merged over :data:`DEFAULT_TRAIN_ARGS`; they are part of the key.
    """
    configure_offline()
    root = Path(output_dir) / "detector"
    dataset, data_hash = prepare_dataset(data_yaml, root / "data")
    extra = {**DEFAULT_TRAIN_ARGS, **(train_args or {})}
    key = _run_key(cfg, data_hash, seed, extra)
    run_dir = (root / f"{Path(cfg.model_yaml).stem}-{key}").resolve()
    weights = run_dir / "weights" / "best.pt"
    done = run_dir / "done.json"
    if done.is_file() and weights.is_file() and not force:
        try:
            info = json.loads(done.read_text())
            history = pd.read_csv(run_dir / "results.csv")
            return DetectorRun(weights, run_dir, key, history, info["seconds"], reused=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged record is not a finished run: train again

    import torch
    from ultralytics import YOLO
    from ultralytics.utils import torch_utils

    dev = resolve_device(device)
    if workers is None:
        workers = 0 if dev in {"cpu", "mps"} else min(8, os.cpu_count() or 1)
    old_threads = torch.get_num_threads()
    torch_utils.NUM_THREADS = threads or old_threads
    start = time.perf_counter()
    try:
        model = YOLO(cfg.model_yaml)
        model.train(
            data=str(dataset),
            epochs=cfg.epochs,
            imgsz=cfg.imgsz,
            batch=cfg.batch,
            device=dev,
            workers=workers,
            seed=seed,
            deterministic=True,
            amp=training_precision(dev),
            pretrained=False,
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            plots=False,
            verbose=False,
            val=True,
            **extra,
        )
    finally:
        torch.set_num_threads(old_threads)
    seconds = time.perf_counter() - start
    if not weights.is_file():
        raise PrreidError(f"YOLO training in {run_dir} finished without {weights}; see its log")
    info = {
        "seconds": seconds,
        "key": key,
        "device": dev,
        "config": asdict(cfg),
        "seed": seed,
        "train_args": extra,
    }
    write_json(done, info)  # the marker appears whole or not
    history = pd.read_csv(run_dir / "results.csv")
    return DetectorRun(weights, run_dir, key, history, seconds, reused=False)


def predictions_file(
    weights: str | Path,
    paths: list[str],
    imgsz: int,
    conf: float,
    cache_dir: str | Path | None = None,
) -> Path:
    """Where :func:`predict_parts` caches its table: named by the content key of the
    weights (first 16 hex digits) and of the images in order with the settings."""
    weights = Path(weights)
    args = config_digest({"images": files_digest(paths), "imgsz": imgsz, "conf": conf})
    cache_dir = Path(cache_dir) if cache_dir else weights.parent.parent / "predictions"
    return cache_dir / f"parts-{file_digest(weights)[:16]}-{args[:12]}.csv"


def predict_parts(
    weights: str | Path,
    paths: list[str] | pd.Series,
    imgsz: int,
    conf: float = 0.25,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    batch: int = 64,
) -> pd.DataFrame:
    """Detect parts on every image of ``paths``: one row per box (``PREDICTION_COLUMNS``).

    Boxes are in pixels of the original image, ``score`` is YOLO's confidence
    (at least ``conf``). The table is cached as CSV in ``cache_dir`` (default:
    ``predictions/`` in the run folder) under the content key of the weights
    and of the images (in order) and the settings, so chapters reuse it, also
    on a copy of the data elsewhere: the file names each box's image by its
    position in ``paths``.
    """
    configure_offline()
    paths = [str(p) for p in paths]
    cache = predictions_file(weights, paths, imgsz, conf, cache_dir)
    cache_dir = cache.parent
    if cache.is_file():
        stored = pd.read_csv(cache)
        where = stored.pop("image").to_numpy()
        return stored.assign(path=[paths[i] for i in where])[PREDICTION_COLUMNS]
    from ultralytics import YOLO

    model = YOLO(str(weights))
    dev = resolve_device(device)
    rows = []
    for k in range(0, len(paths), batch):
        chunk = paths[k : k + batch]
        results = model.predict(chunk, imgsz=imgsz, conf=conf, device=dev, verbose=False)
        for i, (path, r) in enumerate(zip(chunk, results, strict=True)):
            (h, w), xyxy, cls, score = _detections(r)
            for b, c, s in zip(xyxy, cls, score, strict=True):
                rows.append((k + i, path, model.names[c], *map(float, b), float(s), w, h))
    table = pd.DataFrame(rows, columns=["image", *PREDICTION_COLUMNS])
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, table.drop(columns="path").to_csv(index=False))
    return table.drop(columns="image")


def _detections(result: object) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Image size (h, w), boxes (x1, y1, x2, y2), class indices and scores of a YOLO result."""
    from ultralytics.engine.results import Results

    if not isinstance(result, Results) or result.boxes is None:
        raise TypeError(f"expected an ultralytics detection result, got {type(result).__name__}")
    boxes = result.boxes.cpu().numpy()
    xyxy, cls, score = np.asarray(boxes.xyxy), np.asarray(boxes.cls), np.asarray(boxes.conf)
    return tuple(result.orig_shape), xyxy, cls.astype(int), score


def evaluate_detector(
    weights: str | Path,
    data_yaml: str | Path,
    imgsz: int,
    device: str = "auto",
    split: str = "val",
    batch: int = 32,
    conf: float = 0.25,
    save_dir: str | Path | None = None,
) -> DetectionReport:
    """AP50 and AP50-95 per part on ``split`` with ultralytics' validator, plus confusions.

    ``data_yaml`` is the part dataset, prepared as for training (lights
    extended; a copy next to the weights' run). AP comes from a validation at
    ultralytics' default confidence (0.001), the confusion matrix from a second
    one keeping detections of at least ``conf`` (what the pipeline uses). Plots
    (PR curves, confusion matrix) go to ``save_dir`` (default ``val-<split>`` in
    the run folder).
    """
    configure_offline()
    weights = Path(weights)
    run_dir = weights.parent.parent
    dataset, _ = prepare_dataset(data_yaml, run_dir / "val-data")
    save_dir = Path(save_dir) if save_dir else run_dir / f"val-{split}"
    from ultralytics import YOLO

    model = YOLO(str(weights))
    common = {
        "data": str(dataset),
        "imgsz": imgsz,
        "batch": batch,
        "split": split,
        "device": resolve_device(device),
        "verbose": False,
        "workers": 0,
        "project": str(save_dir.parent),
        "exist_ok": True,
    }
    metrics = model.val(**common, plots=True, name=save_dir.name)
    at_conf = model.val(**common, plots=True, conf=conf, name=f"{save_dir.name}-conf{conf:g}")
    rows = []
    for k, part in enumerate(PART_NAMES):
        idx = list(metrics.ap_class_index).index(k) if k in metrics.ap_class_index else None
        p, r, ap50, ap = metrics.class_result(idx) if idx is not None else (0.0, 0.0, 0.0, 0.0)
        rows.append(
            {
                "part": part,
                "images": int(metrics.nt_per_image[k]),
                "instances": int(metrics.nt_per_class[k]),
                "precision": float(p),
                "recall": float(r),
                "ap50": float(ap50),
                "ap50_95": float(ap),
            }
        )
    per_part = pd.DataFrame(rows)
    labels = [*PART_NAMES, "background"]
    matrix = np.asarray(at_conf.confusion_matrix.matrix, dtype=int)  # [predicted, true]
    confusion = pd.DataFrame(matrix.T, index=labels, columns=labels)
    confusion.index.name, confusion.columns.name = "true", "predicted"
    return DetectionReport(
        per_part,
        float(per_part["ap50"].mean()),
        float(per_part["ap50_95"].mean()),
        confusion,
        Path(metrics.save_dir),
    )


@dataclass
class PartBoxSteps:
    """The part boxes of :func:`detect_part_box_steps` after each step of the pipeline.

    ``raw``: every detection (columns ``PREDICTION_COLUMNS``); ``selected``: one box per
    part and image, two lights, lights extended; ``boxes``: ``selected`` with the
    missing parts imputed (flagged ``imputed``), the table the re-id model consumes.
    """

    raw: pd.DataFrame
    selected: pd.DataFrame
    boxes: pd.DataFrame


def detect_part_box_steps(
    images: pd.DataFrame,
    weights: str | Path,
    cfg: DetectorConfig,
    device: str = "auto",
    bottoms: pd.Series | None = None,
    fallback: str = "view",
    cache_dir: str | Path | None = None,
) -> PartBoxSteps:
    """:func:`detect_part_boxes`, keeping the table of every step (:class:`PartBoxSteps`)."""
    from prreid_lib.parts import extend_lights, impute_missing_parts, select_part_boxes

    raw = predict_parts(weights, images["path"], cfg.imgsz, cfg.conf, device, cache_dir)
    chosen = extend_lights(select_part_boxes(raw), bottoms)
    if "dataset" in images:  # identity numbers restart in every data set
        images = images.assign(pid=images["dataset"] + "/" + images["pid"].astype(str))
    return PartBoxSteps(raw, chosen, impute_missing_parts(chosen, images, fallback=fallback))


def detect_part_boxes(
    images: pd.DataFrame,
    weights: str | Path,
    cfg: DetectorConfig,
    device: str = "auto",
    bottoms: pd.Series | None = None,
    fallback: str = "view",
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """From images (``path``, ``pid``, optionally ``view``, ``dataset``) to the part boxes table.

    Runs :func:`predict_parts`, keeps one box per part (two lights) with
    :func:`~prreid_lib.parts.select_part_boxes`, extends lights to the
    vehicle's bottom (``bottoms`` per path, default the image's bottom) and
    fills missing parts with the identity's average box
    (:func:`~prreid_lib.parts.impute_missing_parts`, flagged ``imputed``).
    :func:`detect_part_box_steps` keeps the tables of the steps too.
    """
    return detect_part_box_steps(images, weights, cfg, device, bottoms, fallback, cache_dir).boxes


def detected_boxes_path(output_dir: str | Path = "runs") -> Path:
    """The file of chapter 3's part boxes: ``output_dir/ch03/part_boxes.csv``."""
    return Path(output_dir) / DETECTED_BOXES_FILE


def save_detected_boxes(boxes: pd.DataFrame, output_dir: str | Path = "runs") -> Path:
    """Write the part boxes of every image (chapter 3) where :func:`load_detected_boxes`
    and :func:`prreid_lib.studies.data.load_study_data` find them; returns the file."""
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


def dataset_images(root: str | Path) -> pd.DataFrame:
    """Every image of the VeRi-776 and VehicleID data sets under ``root`` (path, pid, dataset).

    ``root`` is a SynthVeh root or a folder holding the real data sets (each
    found as the loaders find it, e.g. ``VeRi-776/`` or ``VehicleID_V1.0/``);
    one missing data set is skipped, a malformed one raises. Images listed twice
    (VeRi-776 query images are also in ``image_test``) keep both paths. A
    SynthVeh export adds ``view`` from its ground-truth table
    (:data:`~prreid_lib.synthveh_files.PARTS_FILE`).
    """
    from prreid_lib.datasets import DatasetFormatError, load_vehicleid, load_veri776

    root = canonical_path(root)
    frames = []
    for name, loader in (("VeRi-776", load_veri776), ("VehicleID", load_vehicleid)):
        try:
            ds = loader(root)
        except DatasetFormatError as err:
            if err.path.expanduser() == root.expanduser():  # not there: the root lacks it
                continue
            raise
        splits = [ds.train, ds.query, ds.gallery]
        frame = pd.concat([f[["path", "pid"]] for f in splits]).drop_duplicates("path")
        if is_synthveh(ds.root):
            views = pd.read_csv(Path(ds.root) / PARTS_FILE, usecols=["image", "view"])
            views = views.drop_duplicates("image")
            paths = canonical_paths(Path(ds.root) / i for i in views["image"])
            frame["view"] = frame["path"].map(pd.Series(views["view"].to_numpy(), index=paths))
        frames.append(frame.assign(dataset=name))
    if not frames:
        raise FileNotFoundError(f"{root} holds neither VeRi-776 nor VehicleID to detect parts on")
    return pd.concat(frames, ignore_index=True)


def _labelling_fix(parts: Path) -> str:
    """What to do when ``parts`` holds no part labels: label about 500 images there."""
    return (
        f"label about 500 of its images (window, light, brand) in YOLO format into {parts}/ "
        f"(images/, labels/ and {parts / 'data.yaml'}; the README's 'The real data sets' and "
        "chapter 2 say how), or pass --parts-yaml FILE"
    )


def parse_args(argv: list[str] | None = None):
    """The options of ``prreid detect``, checked: each bad one is refused naming it.

    ``args.out`` becomes the CSV file to write (``DIR/part_boxes.csv`` for a folder), or
    ``None`` for the run folder's ``part_boxes.csv``.
    """
    from prreid_lib import argcheck
    from prreid_lib.config import PROFILES

    parser = argcheck.Parser(
        prog="prreid detect",
        description="Train (or reuse) the YOLO part detector on the part labels "
        "DATA/parts/data.yaml (or --parts-yaml), print AP per part on their val split and "
        "write the part boxes of every image of the data sets in DATA (missing parts imputed "
        "from the same vehicle's other images), the CSV `prreid train --parts` reads. DATA is "
        "a folder holding VeRi-776/ and/or VehicleID/ (real or SynthVeh). Writes the detector "
        "run to OUTPUT_DIR/detector/<model>-<key>/ (weights/best.pt) and the boxes to --out "
        "(default part_boxes.csv in that run folder).",
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="quick", help="detector and data profile"
    )
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DATA",
        help="the folder holding VeRi-776/ and/or VehicleID/ and the part labels parts/ (the "
        "real data sets or a SynthVeh root; default: the profile's SynthVeh, generated)",
    )
    parser.add_argument(
        "--parts-yaml",
        default=None,
        help="the part labels' YOLO data.yaml (default: DATA/parts/data.yaml)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--output-dir", default="runs", help="where the detector run goes")
    parser.add_argument(
        "--out",
        default=None,
        help="part boxes CSV (default: in the run; a folder: FOLDER/part_boxes.csv; missing "
        "folders are made; an existing file is replaced)",
    )
    args = parser.parse_args(argv)
    if args.data_root is not None:
        fix = "pass the folder holding VeRi-776/ and/or VehicleID/ (or a SynthVeh root)"
        argcheck.input_folder("--data-root", args.data_root, fix)
    else:
        argcheck.data_source(args)  # a real-data profile has no SynthVeh to generate
    if args.parts_yaml is not None:
        fix = "pass the data.yaml of a YOLO part data set (names window, light, brand)"
        argcheck.input_file("--parts-yaml", args.parts_yaml, fix)
    elif args.data_root and not (Path(args.data_root) / "parts" / "data.yaml").is_file():
        raise argcheck.OptionError(
            "--data-root",
            args.data_root,
            "has no parts/data.yaml (the part labels)",
            _labelling_fix(Path(args.data_root) / "parts"),
        )
    argcheck.seed("--seed", args.seed)
    argcheck.device("--device", args.device)
    argcheck.output_folder("--output-dir", args.output_dir)
    if args.out is not None:
        args.out = argcheck.output_file("--out", args.out, "part_boxes.csv")
    return args


def main(argv: list[str] | None = None) -> int:
    """``prreid detect``: train (or reuse) the detector, print AP per part, write part boxes."""
    from prreid_lib.argcheck import Interrupted
    from prreid_lib.config import get_profile

    args = parse_args(argv)
    os.environ.setdefault("YOLO_VERBOSE", "True")  # show ultralytics' progress on the console
    cfg = get_profile(args.profile).detector
    run = None
    try:
        if args.data_root is None:
            from prreid_lib.synthveh import ensure_synthveh

            root = ensure_synthveh(args.profile, seed=args.seed)
        else:
            root = Path(args.data_root)
        parts_yaml = Path(args.parts_yaml) if args.parts_yaml else root / "parts" / "data.yaml"
        images = dataset_images(root)  # no data set to detect on: refused before training
        run = train_detector(parts_yaml, cfg, args.output_dir, args.device, args.seed)
        state = "reused" if run.reused else f"trained in {run.seconds:.0f} s"
        print(f"detector {run.weights} ({state})")
        report = evaluate_detector(run.weights, parts_yaml, cfg.imgsz, args.device)
        print(report.per_part.round(3).to_string(index=False))
        print(f"mAP50 {report.map50:.3f}  mAP50-95 {report.map50_95:.3f}")
        boxes = detect_part_boxes(images, run.weights, cfg, args.device)
    except KeyboardInterrupt:
        if run is None:
            kept = "the detector training did not finish; run the same command again (it "
            kept += "trains from the start; a finished detector is reused)"
        else:
            kept = f"the trained detector {run.weights} was kept, no part boxes were written; "
            kept += "run the same command again (the detector is reused)"
        raise Interrupted(kept) from None
    out = args.out or run.run_dir / "part_boxes.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, boxes.to_csv(index=False))
    print(f"{len(boxes)} part boxes ({int(boxes['imputed'].sum())} imputed) written to {out}")
    for note in missing_part_notes(boxes, len(images)):
        print(f"prreid detect: warning: {note}", file=sys.stderr)
    return 0


def missing_part_notes(boxes: pd.DataFrame, n_images: int) -> list[str]:
    """One line per part without a single box in ``boxes`` (the detector found it on no
    image, so it could not be imputed either): a run training that part's branch on
    these boxes is refused, and the line says so and what to do."""
    found = set(boxes["part"]) if "part" in boxes else set()
    return [
        f"no {part} box on any of the {n_images} images (the detector found none, so none "
        f"could be imputed): `prreid train --parts` refuses these boxes for a run with the "
        f"{part} branch; label more images or train the detector longer"
        for part in PART_NAMES
        if part not in found
    ]
