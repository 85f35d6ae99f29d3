"""Features of a folder of images with a trained run (``prreid extract``).

:func:`extract_folder` finds every image under a folder (recursively; ``.jpg``,
``.jpeg``, ``.png``, ``.bmp`` in any case), decodes it as training and the
evaluation do (:func:`prreid_lib.images.decode_rgb`: full-resolution decode,
EXIF orientation, 8-bit RGB, Pillow's bilinear resize to the run's training
size) and passes it through the test-time model: the global
feature, as :func:`prreid_lib.evaluate.image_features` gives it. Images are
decoded batch by batch, so memory stays at one batch whatever the folder's
size. :func:`write_features` stores the result as ``FEATS.npy`` (N x D
float32) and ``FEATS.csv`` (a ``path`` column in the same row order).

Features and distances: the features are raw by default (not unit norm: the
norm varies from image to image), compared by Euclidean distance, the paper's
protocol (``prreid evaluate --metric euclidean``). ``normalize=True``
(``--normalize``) divides each row by its L2 norm, as fast-reid's predictor
does; unit-norm features are compared by cosine similarity, their dot product
(Euclidean distance on them ranks alike).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prreid_lib import distributed
from prreid_lib.cache import atomic_write, atomic_write_text
from prreid_lib.errors import DatasetFormatError
from prreid_lib.images import ImageFileError, UndecodableImageError, decode_rgb
from prreid_lib.model import PartRegularizedReID, extract_features

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
"""File endings read as images (compared case-insensitively)."""

__all__ = [
    "IMAGE_SUFFIXES",
    "extract_folder",
    "iter_features",
    "l2_normalize",
    "list_images",
    "load_run_model",
    "write_features",
]


def list_images(folder: str | Path) -> list[Path]:
    """Every image file under ``folder`` (recursive), sorted by path.

    A missing folder raises ``FileNotFoundError``, a folder without images
    ``ValueError``; both name the folder and the fix.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image folder {folder} not found (or not a folder); pass a folder of images"
        )
    found = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not found:
        raise ValueError(
            f"no images ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}) under {folder}; "
            "pass a folder that holds vehicle images (subfolders are searched too)"
        )
    return found


def load_run_model(run_dir: str | Path, device: str | torch.device = "cpu") -> PartRegularizedReID:
    """A finished run's model (:func:`prreid_lib.runs.load_trained`) with a global feature.

    A parts-only model (``use_global=False``) needs part boxes for its
    descriptor and is refused with ``ValueError``.
    """
    from prreid_lib.runs import load_trained

    model = load_trained(run_dir, device)
    if not model.use_global:
        raise ValueError(
            f"{run_dir} is a parts-only model: its descriptor needs part boxes of every image; "
            "use prreid_lib.evaluate.image_features with part_boxes, or a run with a global branch"
        )
    return model


def _read(path: str, size: int, folder: str | Path) -> np.ndarray:
    """One image as (3, size, size) uint8, decoded as training and the evaluation decode it."""
    try:
        return decode_rgb(path, size)[0]
    except ImageFileError as err:
        fix = f"replace the file or move it out of {folder}"
        if not isinstance(err, UndecodableImageError):
            fix = f"{err.fix}, or move it out of {folder}"
        raise DatasetFormatError(err.path, err.expected, err.found, fix) from None


def iter_features(
    model: PartRegularizedReID,
    paths: Sequence[str],
    device: torch.device,
    batch_size: int = 64,
    *,
    where: str | Path,
    workers: int = 4,
) -> Iterator[np.ndarray]:
    """Test-time features of ``paths``, one (b, D) float32 array per batch of ``batch_size``.

    Images are decoded as :func:`extract_folder` decodes them (``workers``
    threads); only one batch is held at a time. An unreadable image raises
    :class:`~prreid_lib.errors.DatasetFormatError` whose fix says to move it
    out of ``where`` (its folder or list).
    """
    size, step = int(model.input_size), max(1, int(batch_size))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(paths), step):
            chunk = [str(p) for p in paths[start : start + step]]
            arrays = list(pool.map(lambda p: _read(p, size, where), chunk))
            images = torch.from_numpy(np.stack(arrays))
            feats = extract_features(model, images, batch_size=len(chunk), device=device)
            yield feats.numpy().astype(np.float32, copy=False)


def l2_normalize(features: np.ndarray, paths: Sequence[str] | None = None) -> np.ndarray:
    """Each row of ``features`` divided by its L2 norm (float32): unit-norm features.

    A row whose norm is zero or not finite cannot be made unit-norm and raises
    ``ValueError`` naming its image (``paths[i]``) or row.
    """
    feats = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(feats.astype(np.float64), axis=1, keepdims=True)
    bad = np.flatnonzero(~(np.isfinite(norms[:, 0]) & (norms[:, 0] > 0)))
    if bad.size:
        names = [str(paths[i]) if paths is not None else f"row {i}" for i in bad[:3]]
        more = f" and {bad.size - 3} more" if bad.size > 3 else ""
        raise ValueError(
            f"features of {', '.join(names)}{more}: expected a finite, non-zero norm to "
            f"divide by; found {norms[bad[0], 0]:g}; fix: leave out --normalize (raw "
            "features) or the images named"
        )
    return (feats / norms).astype(np.float32)


def extract_folder(
    run_dir: str | Path,
    folder: str | Path,
    device: str | torch.device = "auto",
    batch_size: int = 64,
    *,
    progress: bool = True,
    workers: int = 4,
    normalize: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Test-time features (N, D) float32 of every image under ``folder``, and their paths.

    ``run_dir`` is a finished run (holds ``model.pt``); ``device`` "auto"
    picks CUDA when available. Images are decoded ``batch_size`` at a time
    (``workers`` threads) and passed through
    :func:`prreid_lib.model.extract_features`, so row ``i`` equals
    ``image_features(model, frame)`` for the same file: raw features, compared
    by Euclidean distance as in the paper. ``normalize`` divides each row by
    its L2 norm (:func:`l2_normalize`), fast-reid's convention, for cosine
    similarity. ``progress`` shows a tqdm bar on stderr. An unreadable image
    raises :class:`~prreid_lib.errors.DatasetFormatError` naming it.
    """
    from tqdm import tqdm

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    paths = list_images(folder)
    dev = distributed.local_device(device) if isinstance(device, str) else torch.device(device)
    model = load_run_model(run_dir, dev)
    size = int(model.input_size)
    feats = []
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(paths), desc="extract", unit="img", disable=not progress) as bar,
    ):
        for start in range(0, len(paths), int(batch_size)):
            chunk = [str(p) for p in paths[start : start + int(batch_size)]]
            arrays = list(pool.map(lambda p: _read(p, size, folder), chunk))
            images = torch.from_numpy(np.stack(arrays))
            feats.append(extract_features(model, images, batch_size=len(chunk), device=dev))
            bar.update(len(chunk))
    out = torch.cat(feats).numpy().astype(np.float32, copy=False)
    names = [str(p) for p in paths]
    return (l2_normalize(out, names) if normalize else out), names


def feature_files(out: str | Path) -> tuple[Path, Path]:
    """``(FEATS.npy, FEATS.csv)`` for ``out`` (``.npy`` appended when missing)."""
    out = Path(out)
    npy = out if out.suffix == ".npy" else out.with_name(out.name + ".npy")
    return npy, npy.with_suffix(".csv")


def write_features(
    out: str | Path, features: np.ndarray, paths: Sequence[str]
) -> tuple[Path, Path]:
    """Write ``features`` to ``FEATS.npy`` and the paths to ``FEATS.csv`` (atomically)."""
    if len(features) != len(paths):
        raise ValueError(f"{len(features)} feature rows for {len(paths)} paths")
    npy, csv = feature_files(out)
    npy.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(npy, lambda handle: np.save(handle, np.asarray(features, dtype=np.float32)))
    atomic_write_text(csv, pd.DataFrame({"path": list(paths)}).to_csv(index=False))
    return npy, csv


MAX_BATCH_SIZE = 4096
"""Largest ``--batch-size``: 4096 images at 512 px are 12 GiB of float32 input."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``prreid extract``, checked: each bad one is refused naming it.

    ``args.out`` becomes the ``.npy`` file to write (``DIR/features.npy`` for a folder).
    """
    from prreid_lib import argcheck

    parser = argcheck.Parser(
        prog="prreid extract",
        description="Test-time features of every image under a folder. Writes FEATS.npy "
        "(N x D float32) and FEATS.csv (column path, same row order) next to it. The features "
        "are raw (not unit norm; their range is printed) and compared by Euclidean distance, "
        "the paper's protocol; --normalize writes unit-norm (L2-normalised) features, as "
        "fast-reid's predictor returns them, to compare by cosine similarity (their dot product).",
    )
    parser.add_argument("--run", required=True, help="a finished run folder (holds model.pt)")
    parser.add_argument(
        "--images", required=True, help="folder of images (recursive; jpg, jpeg, png, bmp)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="FEATS.npy to write; FEATS.csv (paths) goes beside it. A folder: FOLDER/features.npy "
        "and FOLDER/features.csv; missing folders are made; existing files are replaced",
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="divide each feature by its L2 norm (unit norm, for cosine similarity; default: "
        "raw features, for Euclidean distance)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument(
        "--batch-size", type=int, default=64, help=f"images per batch, 1 to {MAX_BATCH_SIZE}"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    argcheck.run_folder("--run", args.run)
    argcheck.input_folder("--images", args.images, "pass a folder of images")
    argcheck.device("--device", args.device)
    argcheck.int_in("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE)
    protected = argcheck.run_files(args.run)
    npy, csv = feature_files(argcheck.output_file("--out", args.out, "features.npy", protected))
    for path in (npy, csv):
        argcheck.check_output_file("--out", args.out, path, protected)
    args.out = npy
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """``prreid extract --run RUN --images FOLDER --out FEATS.npy``."""
    args = parse_args(argv)
    feats, paths = extract_folder(
        args.run,
        args.images,
        args.device,
        args.batch_size,
        progress=not args.no_progress,
        normalize=args.normalize,
    )
    npy, csv = write_features(args.out, feats, paths)
    print(
        f"{feats.shape[0]} images x {feats.shape[1]} features written to {npy} and {csv}: "
        f"{convention(feats, args.normalize)}"
    )
    return 0


def convention(features: np.ndarray, normalized: bool) -> str:
    """What the written features are and how to compare them (printed by ``prreid extract``)."""
    if normalized:
        return "L2-normalised (unit norm); compare them by cosine similarity (dot product)"
    norms = np.linalg.norm(features, axis=1) if len(features) else np.zeros(1)
    return (
        f"raw (norms {norms.min():.3g} to {norms.max():.3g}); compare them by Euclidean "
        "distance, the paper's protocol, or pass --normalize for unit-norm features"
    )


if __name__ == "__main__":
    raise SystemExit(main())
