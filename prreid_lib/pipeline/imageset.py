"""Images and part boxes in memory, as uint8 tensors, for fast training on a CPU.

:class:`ReIDImageSet` decodes every image of a DataFrame (columns ``path``,
``pid``) once, resized to ``input_size`` x ``input_size``, into one uint8
tensor (N, 3, H, W), and caches it as an ``.npy`` file keyed by the content of
the files (:func:`prreid_lib.cache.files_digest`) and the size, so a rerun
(also in another checkout of the same data) loads it in about a second. Part
boxes (a table with ``prreid_lib.parts.PART_BOX_COLUMNS``: ``path, part, x1,
y1, x2, y2, img_w, img_h, score, imputed``) become normalised boxes
(N, P, 2, 4) with a validity mask (N, P, 2): window and brand use slot 0, lights up to two slots
(the two highest-scoring boxes, left one first). Identities are relabelled to
0..C-1 for the classifiers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prreid_lib.cache import atomic_path, atomic_write, config_digest, files_digest
from prreid_lib.config import PART_NAMES
from prreid_lib.errors import DatasetFormatError
from prreid_lib.images import ImageFileError, UndecodableImageError, decode_rgb
from prreid_lib.paths import canonical_paths

CACHE_VERSION = "3"
"""Version of the decoded-image cache (3: full-resolution JPEG decode, EXIF orientation,
16-bit and transparent images as :mod:`prreid_lib.images` shows them)."""
MAX_SLOTS = 2
"""Boxes kept per part and image (two lights)."""
DECODE_CHUNK = 256
"""Images decoded at once into a cache file (256 x 3 x 256 x 256 bytes = 48 MiB at 256 px)."""


def default_cache_dir() -> Path:
    """``$PRREID_CACHE_DIR`` or ``~/.cache/prreid``: where decoded image tensors are kept."""
    return Path(os.environ.get("PRREID_CACHE_DIR", Path.home() / ".cache" / "prreid"))


def decode_image(path: str, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """One image -> (3, size, size) uint8 and its (width, height) as a viewer shows it.

    Decoded by :func:`prreid_lib.images.decode_rgb` (full-resolution decode,
    EXIF orientation, 8-bit RGB, Pillow's bilinear resize). A file that is not
    an image, is cut short, or is over :data:`prreid_lib.images.MAX_PIXELS`
    raises :class:`~prreid_lib.errors.DatasetFormatError` naming it.
    """
    try:
        return decode_rgb(path, size)
    except ImageFileError as err:
        fix = err.fix
        if not isinstance(err, UndecodableImageError):
            fix = f"{fix}, or remove it from the list"
        raise DatasetFormatError(err.path, err.expected, err.found, fix) from None


def decode_images(
    paths: Sequence[str], size: int, cache_dir: str | Path | None = None, workers: int = 4
) -> tuple[torch.Tensor, np.ndarray]:
    """Decode ``paths`` (as :func:`decode_image`) into uint8 (N, 3, size, size) and sizes (N, 2).

    The sizes are each image's (width, height) as a viewer shows it. With
    ``cache_dir`` the result is stored as ``<key>.npy`` / ``<key>.sizes.npy``
    (written atomically) and later calls with the same files and size memory-map
    it copy-on-write instead of decoding again. The images are decoded into that
    file a chunk at a time and the result is memory-mapped, so a set larger than
    the RAM is decoded and used with bounded memory: the operating system pages
    it in and out. Without ``cache_dir`` the set is held in memory.
    """
    paths = [str(p) for p in paths]
    if cache_dir is not None:
        key = config_digest({"version": CACHE_VERSION, "size": size, "files": files_digest(paths)})
        cache = Path(cache_dir)
        img_file, size_file = (
            cache / f"images-{key[:20]}.npy",
            cache / f"images-{key[:20]}.sizes.npy",
        )
        if img_file.is_file() and size_file.is_file():
            return torch.from_numpy(np.load(img_file, mmap_mode="c")), np.load(size_file)
    shape = (len(paths), 3, size, size)
    sizes = np.empty((len(paths), 2), dtype=np.int64)
    if cache_dir is None or not paths:
        images = np.empty(shape, dtype=np.uint8)

        def work(i: int) -> None:
            images[i], sizes[i] = decode_image(paths[i], size)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(work, range(len(paths))))
        return torch.from_numpy(images), sizes
    check_cache_room(len(paths), size, cache)
    created = not cache.exists()
    cache.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(img_file) as img_tmp:
            _decode_to_file(paths, size, img_tmp, sizes, workers)
        atomic_write(size_file, lambda handle: np.save(handle, sizes))
    except BaseException:
        img_file.unlink(missing_ok=True)
        if created and not any(cache.iterdir()):
            cache.rmdir()  # nothing cached from a failed decode
        raise
    return torch.from_numpy(np.load(img_file, mmap_mode="c")), sizes


def check_cache_room(count: int, size: int, cache: Path) -> None:
    """Refuse, before anything is created, a cache of ``count`` images that cannot fit.

    The cache file takes ``count x 3 x size x size`` bytes; a ``cache`` that is
    (or lies under) a file raises ``NotADirectoryError``, a disk with less free
    space ``OSError``; both name the folder, the size and the fix.
    """
    fix = "pass another cache folder (prreid train --cache-dir, or PRREID_CACHE_DIR)"
    found = next((p for p in (cache, *cache.parents) if p.exists() or p.is_symlink()), Path("."))
    if not found.is_dir():
        where = "" if found == cache else f" ({found} is not a folder)"
        raise NotADirectoryError(f"image cache {cache} is not a folder{where}; {fix}")
    need = count * 3 * size * size
    free = shutil.disk_usage(found).free
    if need > free:
        raise OSError(
            f"the image cache of {count} images at {size} x {size} px needs {_bytes(need)}, "
            f"{cache} has {_bytes(free)} free; free disk space, {fix} on a larger disk, "
            "or train at a smaller input_size"
        )


def _bytes(n: int) -> str:
    """``n`` bytes in the largest unit that keeps a leading digit: 9.0 MiB, 1.8 TiB."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _decode_to_file(
    paths: Sequence[str], size: int, target: Path, sizes: np.ndarray, workers: int
) -> None:
    """Decode ``paths`` into the ``.npy`` file ``target``, :data:`DECODE_CHUNK` images at a time.

    Only one chunk is in the process's memory; the file's pages live in the
    operating system's page cache, which it can write out and drop, so
    decoding a set larger than the RAM needs about one chunk of memory.
    """
    shape = (len(paths), 3, size, size)
    header = np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=shape)
    offset, per_image = header.offset, 3 * size * size
    del header  # the file now has its header and full length
    chunk = np.empty((min(DECODE_CHUNK, len(paths)), 3, size, size), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, open(target, "r+b") as handle:
        for start in range(0, len(paths), DECODE_CHUNK):
            stop = min(start + DECODE_CHUNK, len(paths))

            def work(i: int, start: int = start) -> None:
                chunk[i - start], sizes[i] = decode_image(paths[i], size)

            list(pool.map(work, range(start, stop)))
            handle.seek(offset + start * per_image)
            handle.write(chunk[: stop - start].tobytes())


def boxes_to_tensors(
    paths: Sequence[str],
    part_boxes: pd.DataFrame,
    parts: Sequence[str] = PART_NAMES,
    image_sizes: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Part-box table -> normalised boxes (N, P, 2, 4) and validity (N, P, 2) for ``paths``.

    Coordinates are divided by ``img_w`` / ``img_h`` of the table (or by
    ``image_sizes`` (N, 2) when the table lacks them) and clipped to [0, 1].
    Per image and part the highest-scoring boxes fill the slots (window and
    brand one slot, light two, ordered left to right); images without a row
    for a part, and empty boxes, are invalid. Table rows join ``paths`` by their
    canonical path (:func:`prreid_lib.paths.canonical_paths`), however either is spelled.
    """
    need = {"path", "part", "x1", "y1", "x2", "y2"}
    if not need <= set(part_boxes.columns):
        raise ValueError(
            f"part boxes table lacks columns {sorted(need - set(part_boxes.columns))}; "
            "expected path, part, x1, y1, x2, y2, img_w, img_h, score (pixels; the table that "
            "prreid_lib.parts.select_part_boxes or chapter 3 writes)"
        )
    n, n_parts = len(paths), len(parts)
    boxes = np.zeros((n, n_parts, MAX_SLOTS, 4), dtype=np.float32)
    valid = np.zeros((n, n_parts, MAX_SLOTS), dtype=bool)
    table = part_boxes[part_boxes["part"].isin(parts)]
    # joined on canonical paths: a root reached via ``..`` or a link is the same image
    rows = pd.DataFrame({"path": canonical_paths(paths), "row": np.arange(n)})
    table = rows.merge(table.assign(path=canonical_paths(table["path"])), on="path")
    if len(table):
        score = table["score"] if "score" in table else pd.Series(1.0, index=table.index)
        table = table.assign(_score=score.fillna(1.0).to_numpy())
        table = table.sort_values(["row", "part", "_score"], ascending=[True, True, False])
        table = table.assign(slot=table.groupby(["row", "part"]).cumcount())
        slots = np.where(table["part"].to_numpy() == "light", MAX_SLOTS, 1)
        table = table[table["slot"].to_numpy() < slots]
        # lights: left box first (slots reassigned by x1 among the kept boxes)
        table = table.sort_values(["row", "part", "x1"], kind="stable")
        table = table.assign(slot=table.groupby(["row", "part"]).cumcount())
        r = table["row"].to_numpy()
        if {"img_w", "img_h"} <= set(table.columns):
            w = table["img_w"].to_numpy(dtype=np.float64)
            h = table["img_h"].to_numpy(dtype=np.float64)
        elif image_sizes is not None:
            w, h = image_sizes[r, 0].astype(np.float64), image_sizes[r, 1].astype(np.float64)
        else:
            raise ValueError("part boxes table lacks img_w/img_h and no image sizes were given")
        xyxy = table[["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float64)
        xyxy = np.clip(xyxy / np.stack([w, h, w, h], 1), 0.0, 1.0)
        p = pd.Index(parts).get_indexer(table["part"])
        s = table["slot"].to_numpy()
        boxes[r, p, s] = xyxy
        valid[r, p, s] = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    return torch.from_numpy(boxes), torch.from_numpy(valid)


class ReIDImageSet(torch.utils.data.Dataset):
    """A re-id image set in memory: uint8 images, labels, part boxes.

    Built from ``frame`` (columns ``path``, ``pid``) and optional
    ``part_boxes``. Attributes: ``images`` uint8 (N, 3, S, S), ``labels`` long
    (N,) in 0..C-1 (``relabel=True``) or the original pids, ``pids`` the
    original pids (N,), ``pid_values`` original pid of each label, ``boxes``
    (N, P, 2, 4) normalised xyxy, ``box_valid`` (N, P, 2), ``parts``,
    ``num_classes``. ``batch(idx)`` returns the tensors of a batch at once;
    ``__getitem__`` makes it usable with a torch DataLoader too.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        part_boxes: pd.DataFrame | None = None,
        input_size: int = 64,
        parts: Sequence[str] = PART_NAMES,
        cache_dir: str | Path | None = None,
        relabel: bool = True,
        workers: int = 4,
    ) -> None:
        missing = {"path", "pid"} - set(frame.columns)
        if missing:
            raise ValueError(f"the image frame lacks columns {sorted(missing)}; need path and pid")
        self.frame = frame.reset_index(drop=True)
        self.paths = [str(p) for p in self.frame["path"]]
        self.parts = tuple(parts)
        self.input_size = int(input_size)
        self.images, sizes = decode_images(self.paths, self.input_size, cache_dir, workers)
        self.pids = torch.from_numpy(np.array(self.frame["pid"], dtype=np.int64))
        self.pid_values, inverse = np.unique(self.pids.numpy(), return_inverse=True)
        self.labels = torch.from_numpy(inverse.astype(np.int64)) if relabel else self.pids
        self.num_classes = len(self.pid_values)
        if part_boxes is not None and self.parts:
            self.boxes, self.box_valid = boxes_to_tensors(self.paths, part_boxes, self.parts, sizes)
        else:
            self.boxes = torch.zeros(len(self.paths), len(self.parts), MAX_SLOTS, 4)
            shape = (len(self.paths), len(self.parts), MAX_SLOTS)
            self.box_valid = torch.zeros(shape, dtype=torch.bool)
        self.has_boxes = part_boxes is not None

    def __len__(self) -> int:
        return len(self.paths)

    def part_coverage(self) -> dict[str, float]:
        """Share of images where each part has at least one valid box."""
        found = self.box_valid.any(-1).float().mean(0).tolist()
        return dict(zip(self.parts, found, strict=True))

    def batch(self, idx: torch.Tensor | np.ndarray | Sequence[int]) -> dict[str, torch.Tensor]:
        """Images (uint8), labels, boxes and box validity of the rows ``idx``."""
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return {
            "images": self.images[idx],
            "labels": self.labels[idx],
            "boxes": self.boxes[idx],
            "box_valid": self.box_valid[idx],
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch([i]).items()}
