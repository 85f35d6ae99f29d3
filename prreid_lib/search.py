"""Which gallery images look like each query? (``prreid search``).

:func:`search_images` ranks the images of a gallery for every query image with
a trained run and returns one row per (query, rank): ``query``, ``rank``
(1 = nearest), ``gallery``, ``distance``, and ``match`` when an identities
table says which vehicle each image shows. Query and gallery are each a folder
(every image under it, as ``prreid extract`` lists them), one image file, or a
text file listing image paths (one a line, relative to the list's folder;
blank lines, lines starting with ``#`` and a first line ``path``, the header
of the CSV ``prreid extract`` writes, are skipped). Paths are written in
their canonical spelling (:mod:`prreid_lib.paths`). A gallery image that is the
query file itself is left out of that query's ranking.

The distance: ``cosine`` (the default, the common practice of fast-reid's
predictor and torchreid) L2-normalises the features and compares them by
``1 - cosine similarity`` (0 to 2); ``euclidean`` is the paper's L2 distance
between the raw features (Sec. 4.2; their norms are about 8 to 12). Both give
the same features as ``prreid extract``; only the comparison differs.

Memory stays bounded for galleries of any size: the query features are held,
the gallery is decoded and passed through the model ``block`` images at a
time (``batch_size`` per forward pass), its distances to the queries are
computed block by block, and only the running top-k of each query is kept:
O(Q x D + Q x block) numbers. Ties go to the earlier gallery image, as a
stable sort of the whole distance matrix orders them. k-reciprocal re-ranking
(:func:`prreid_lib.reranking.re_rank`) needs the full (Q + G) x (Q + G)
distance matrix and is refused above :data:`MAX_RERANK_IMAGES` images.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from prreid_lib.errors import DatasetFormatError, PrreidError
from prreid_lib.paths import canonical_paths
from prreid_lib.reranking import RerankOptions, distance_chunks

if TYPE_CHECKING:
    from prreid_lib.model import PartRegularizedReID

__all__ = [
    "MAX_RERANK_IMAGES",
    "MAX_TOP_K",
    "METRICS",
    "check_rerank_size",
    "read_identities",
    "search_files",
    "search_images",
    "source_images",
    "top_k_features",
    "unknown_images",
    "write_search",
]

MAX_TOP_K = 1000
"""Largest ``top_k`` (``--top-k``)."""
MAX_RERANK_IMAGES = 10_000
"""Most query + gallery images re-ranked: k-reciprocal re-ranking holds about six
(N x N) float32 matrices, 2.2 GiB at N = 10,000 (and 4 x that at twice N)."""
METRICS = ("cosine", "euclidean")
"""``cosine``: L2-normalised features, 1 - cosine similarity; ``euclidean``: raw features, L2."""
LIST_COMMENT = "#"
QUERY_ROWS = 1024
"""Query rows whose running top-k are merged at once (bounds the sort's memory)."""

Source = str | os.PathLike[str] | Sequence[str]
"""A folder, an image file, a text file listing images, or the image paths themselves."""


# ------------------------------------------------------------------------------ the images


def _listed_images(list_file: Path) -> list[str]:
    """The image paths a text file lists (one a line, relative to its folder), checked."""
    from prreid_lib.extract import IMAGE_SUFFIXES

    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DatasetFormatError(
            list_file,
            f"an image ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}), a folder or a UTF-8 "
            "text file listing image paths",
            "a file that is neither",
            "pass a folder of images, one image, or a list of image paths, one a line",
        ) from None
    out = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith(LIST_COMMENT) or (number == 1 and text == "path"):
            continue
        path = Path(os.path.expanduser(text))
        path = path if path.is_absolute() else list_file.parent / path
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            found = "no such file" if not path.exists() else "not an image file name"
            if path.is_dir():
                found = "a folder"
            raise DatasetFormatError(
                list_file,
                f"the path of an image file ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}), "
                "absolute or relative to the list's folder",
                f"{text!r} ({found}: {path})",
                "correct or remove the line",
                line=number,
            )
        out.append(str(path))
    if not out:
        raise DatasetFormatError(
            list_file, "image paths, one a line", "no path", "list the images to search"
        )
    return out


def source_images(source: Source) -> list[str]:
    """The image paths of ``source`` (canonical, in order): see the module's rule.

    A folder gives every image under it (sorted), an image file itself, another
    file the paths it lists; a sequence of paths is taken as it is. A missing
    source raises ``FileNotFoundError``, a bad list line
    :class:`~prreid_lib.errors.DatasetFormatError` naming the line.
    """
    from prreid_lib.extract import IMAGE_SUFFIXES, list_images

    if not isinstance(source, str | os.PathLike):
        paths = [str(p) for p in source]
        if not paths:
            raise ValueError("expected at least one image path; got none")
        return canonical_paths(paths)
    path = Path(os.path.expanduser(os.fspath(source)))
    if path.is_dir():
        return canonical_paths(list_images(path))
    if not path.is_file():
        raise FileNotFoundError(
            f"{source} not found; pass a folder of images, one image or a list of image paths"
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return canonical_paths([path])
    return canonical_paths(_listed_images(path))


def read_identities(csv_file: str | os.PathLike[str]) -> dict[str, str]:
    """Canonical image path -> vehicle identity, from a CSV with columns ``path`` and ``pid``.

    Relative paths are relative to the CSV's folder. An identity is any
    non-empty text (``7`` and ``07`` differ). A missing column, an empty cell
    or a path given two identities raises
    :class:`~prreid_lib.errors.DatasetFormatError` naming the line.
    """
    csv_file = Path(csv_file)
    try:
        table = pd.read_csv(
            csv_file,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetFormatError(
            csv_file,
            "a CSV with columns path,pid",
            f"a file pandas cannot read ({' '.join(str(err).split())})",
            "write it as path,pid lines with a header",
        ) from None
    missing = [c for c in ("path", "pid") if c not in table.columns]
    if missing:
        raise DatasetFormatError(
            csv_file,
            "a header with columns path and pid",
            f"columns {list(table.columns)}",
            "name the columns path,pid",
            line=1,
        )
    base = csv_file.expanduser().absolute().parent
    raw = [os.path.expanduser(p.strip()) for p in table["path"]]
    keys = canonical_paths(p if os.path.isabs(p) else str(base / p) for p in raw)
    out: dict[str, str] = {}
    for number, (text, key, pid) in enumerate(zip(raw, keys, table["pid"], strict=True), 2):
        pid = pid.strip()
        if not text and not pid:  # a blank line
            continue
        if not text or not pid:
            empty = "path" if not text else "pid"
            raise DatasetFormatError(
                csv_file,
                "a path and a pid",
                f"an empty {empty}",
                "fill or remove the line",
                line=number,
            )
        if out.setdefault(key, pid) != pid:
            raise DatasetFormatError(
                csv_file,
                "one identity per image",
                f"{text} as {out[key]} and as {pid}",
                "keep one line per image",
                line=number,
            )
    return out


# ---------------------------------------------------------------------------- the ranking


def _self_pairs(queries: Sequence[str], gallery: Sequence[str]) -> np.ndarray:
    """(P, 2) array of (query row, gallery column) where the gallery image is the query file."""
    where: dict[str, list[int]] = {}
    for j, path in enumerate(gallery):
        where.setdefault(path, []).append(j)
    pairs = [(i, j) for i, q in enumerate(queries) for j in where.get(q, [])]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def _merge(
    best: tuple[np.ndarray, np.ndarray], dist: np.ndarray, g0: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest of ``best`` (distances, indices) and ``dist`` (columns ``g0...``).

    ``best`` holds earlier (smaller) gallery indices, sorted; a stable sort of
    the concatenation therefore breaks ties by gallery index. Rows are merged
    :data:`QUERY_ROWS` at a time.
    """
    best_d, best_i = best
    width = min(k, best_d.shape[1] + dist.shape[1])
    out_d = np.empty((len(dist), width), np.float32)
    out_i = np.empty((len(dist), width), np.int64)
    cols = np.arange(g0, g0 + dist.shape[1], dtype=np.int64)
    for r0 in range(0, len(dist), QUERY_ROWS):
        rows = slice(r0, r0 + QUERY_ROWS)
        cand_d = np.concatenate([best_d[rows], dist[rows]], axis=1)
        cand_i = np.concatenate([best_i[rows], np.broadcast_to(cols, dist[rows].shape)], axis=1)
        order = np.argsort(cand_d, axis=1, kind="stable")[:, :width]
        out_d[rows] = np.take_along_axis(cand_d, order, 1)
        out_i[rows] = np.take_along_axis(cand_i, order, 1)
    return out_d, out_i


def _running_top_k(
    blocks: Iterable[tuple[int, np.ndarray]], n_query: int, k: int, excluded: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (indices, distances) over distance ``blocks`` ``(g0, (Q, b))``.

    ``excluded`` (P, 2) pairs get an infinite distance (dropped by the caller).
    """
    best = (np.zeros((n_query, 0), np.float32), np.zeros((n_query, 0), np.int64))
    for g0, dist in blocks:
        dist = np.array(dist, dtype=np.float32)
        inside = (excluded[:, 1] >= g0) & (excluded[:, 1] < g0 + dist.shape[1])
        dist[excluded[inside, 0], excluded[inside, 1] - g0] = np.inf
        best = _merge(best, dist, g0, k)
    return best[1], best[0]


def _distance_blocks(
    query_feats: np.ndarray, gallery_blocks: Iterable[np.ndarray], metric: str
) -> Iterator[tuple[int, np.ndarray]]:
    """``(g0, Q x b distances)`` for each gallery feature block, in order.

    Computed in float64 and rounded to float32: a distance then does not depend
    on the block's size (float32 products do, in their last bit), so the same
    features give the same distance and ties go to the earlier gallery image.
    """
    g0 = 0
    q = np.asarray(query_feats, dtype=np.float64)
    for feats in gallery_blocks:
        dist = np.empty((len(q), len(feats)), dtype=np.float32)
        for q0, q1, part in distance_chunks(q, np.asarray(feats, np.float64), metric):
            dist[q0:q1] = part.numpy()
        yield g0, dist
        g0 += len(feats)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}; got {metric!r}")


def _check_top_k(top_k: int) -> None:
    if not 1 <= int(top_k) <= MAX_TOP_K:
        raise ValueError(f"top_k: expected an integer from 1 to {MAX_TOP_K}; got {top_k}")


def top_k_features(
    query_feats: np.ndarray,
    gallery_feats: np.ndarray,
    top_k: int = 10,
    metric: str = "cosine",
    block: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``top_k`` nearest gallery rows of each query row: ``(indices, distances)``, (Q, k).

    ``k = min(top_k, G)``; distances by ``metric`` (see the module), computed
    in float64 ``block`` gallery rows at a time and rounded to float32; ties go
    to the smaller gallery index, so the result equals a stable argsort of the
    full float32 distance matrix, whatever ``block``.
    """
    _check_metric(metric)
    _check_top_k(top_k)
    q, g = np.asarray(query_feats), np.asarray(gallery_feats)
    step = max(1, int(block))
    blocks = (g[g0 : g0 + step] for g0 in range(0, len(g), step))
    none = np.zeros((0, 2), np.int64)
    return _running_top_k(_distance_blocks(q, blocks, metric), len(q), int(top_k), none)


def check_rerank_size(n_query: int, n_gallery: int, option: str = "rerank") -> None:
    """Refuse re-ranking more than :data:`MAX_RERANK_IMAGES` images (``ValueError``)."""
    n = n_query + n_gallery
    if n > MAX_RERANK_IMAGES:
        gib = 6 * 4 * n * n / 2**30
        raise ValueError(
            f"{option}: {n_query} query + {n_gallery} gallery images; k-reciprocal re-ranking "
            f"holds (N x N) matrices of all N images (about {gib:.0f} GiB here) and takes at "
            f"most {MAX_RERANK_IMAGES} images; search without re-ranking, or re-rank a smaller "
            "gallery"
        )


# ------------------------------------------------------------------------------- features


def _check_features(feats: np.ndarray, paths: Sequence[str], metric: str) -> None:
    """Refuse non-finite features, and all-zero ones under the cosine distance."""
    finite = np.isfinite(feats).all(1)
    if not finite.all():
        raise PrreidError(
            f"the run's model gave non-finite features for {paths[int(np.argmin(finite))]}; "
            "its weights are damaged or its training diverged: train the run again"
        )
    zero = ~np.any(feats != 0, axis=1)
    if metric == "cosine" and zero.any():
        raise PrreidError(
            f"the run's model gave an all-zero feature for {paths[int(np.argmax(zero))]}, "
            "whose cosine distance is undefined; pass --metric euclidean or leave the image out"
        )


def _features(
    model: PartRegularizedReID,
    paths: Sequence[str],
    device: torch.device,
    batch_size: int,
    where: str,
    metric: str,
    bar: Any,
) -> np.ndarray:
    """Features (N, D) of ``paths``, checked by :func:`_check_features`."""
    from prreid_lib.extract import iter_features

    out = []
    batches = iter_features(model, paths, device, batch_size, where=where)
    for start, feats in zip(range(0, len(paths), batch_size), batches, strict=True):
        _check_features(feats, paths[start : start + batch_size], metric)
        out.append(feats)
        bar.update(len(feats))
    return np.concatenate(out)


def _gallery_blocks(
    model: PartRegularizedReID,
    paths: Sequence[str],
    device: torch.device,
    batch_size: int,
    block: int,
    where: str,
    metric: str,
    bar: Any,
) -> Iterator[np.ndarray]:
    """Gallery features, ``block`` images at a time."""
    for g0 in range(0, len(paths), block):
        yield _features(model, paths[g0 : g0 + block], device, batch_size, where, metric, bar)


def _where(source: Source) -> str:
    """How an unreadable image's fix names its source (a folder or a list file)."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return "the list of images"


def _check_sizes(top_k: int, metric: str, batch_size: int, block: int) -> None:
    _check_top_k(top_k)
    _check_metric(metric)
    for name, value in (("batch_size", batch_size), ("block", block)):
        if int(value) < 1:
            raise ValueError(f"{name}: expected a positive integer; got {value}")


def search_images(
    run_dir: str | os.PathLike[str],
    query: Source,
    gallery: Source,
    top_k: int = 10,
    rerank: bool | RerankOptions = False,
    metric: str = "cosine",
    device: str | torch.device = "auto",
    batch_size: int = 64,
    block: int = 4096,
    *,
    identities: str | os.PathLike[str] | dict[str, str] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Rank ``gallery`` for every image of ``query`` with the run ``run_dir``.

    Returns one row per (query, rank): ``query``, ``rank`` (1 = nearest),
    ``gallery``, ``distance`` (``metric``; the re-ranked distance with
    ``rerank``), at most ``top_k`` rows per query (fewer when the gallery is
    smaller), queries in the order of :func:`source_images`. ``rerank`` True
    uses the defaults of :func:`prreid_lib.reranking.re_rank`, a dict sets
    ``k1``, ``k2``, ``lambda_value``. ``identities`` (a path,pid CSV or a dict
    of canonical path -> pid) adds ``match``: True when query and gallery image
    show the same vehicle, NA when either is not listed. ``block`` gallery
    images are decoded and compared at a time (see the module).
    """
    from tqdm import tqdm

    from prreid_lib import distributed
    from prreid_lib.extract import load_run_model

    _check_sizes(top_k, metric, batch_size, block)
    queries, gallery_paths = source_images(query), source_images(gallery)
    reranking = rerank is True or isinstance(rerank, dict)
    if reranking:
        check_rerank_size(len(queries), len(gallery_paths))
    excluded = _self_pairs(queries, gallery_paths)
    _check_not_only_self(queries, gallery_paths, excluded)
    known = None
    if isinstance(identities, dict):
        known = dict(identities)
        unknown_images(known, queries, gallery_paths)
    elif identities is not None:
        known = read_identities(identities)
        unknown_images(known, queries, gallery_paths, identities)
    dev = distributed.local_device(device) if isinstance(device, str) else torch.device(device)
    model = load_run_model(Path(run_dir), dev)
    total = len(queries) + len(gallery_paths)
    with tqdm(total=total, desc="search", unit="img", disable=not progress) as bar:
        q = _features(model, queries, dev, int(batch_size), _where(query), metric, bar)
        blocks = _gallery_blocks(
            model, gallery_paths, dev, int(batch_size), int(block), _where(gallery), metric, bar
        )
        if not reranking:
            dist_blocks: Iterable[tuple[int, np.ndarray]] = _distance_blocks(q, blocks, metric)
        else:
            dist_blocks = [(0, _reranked(q, np.concatenate(list(blocks)), metric, rerank))]
        idx, dist = _running_top_k(dist_blocks, len(queries), int(top_k), excluded)
    return _table(queries, gallery_paths, idx, dist, known)


def _reranked(
    q: np.ndarray, g: np.ndarray, metric: str, rerank: bool | RerankOptions
) -> np.ndarray:
    """The re-ranked (Q, G) distances (``rerank`` True: the defaults)."""
    from prreid_lib.metrics import reranked_distance

    options: RerankOptions = rerank if isinstance(rerank, dict) else {}
    return reranked_distance(q, g, metric, **options)


def _check_not_only_self(
    queries: Sequence[str], gallery: Sequence[str], excluded: np.ndarray
) -> None:
    """Refuse a query whose only gallery images are the query file itself."""
    if not len(excluded):
        return
    counts = np.bincount(excluded[:, 0], minlength=len(queries))
    alone = np.flatnonzero(counts >= len(gallery))
    if len(alone):
        raise ValueError(
            f"gallery: holds no image other than the query {queries[int(alone[0])]} itself; "
            "pass a gallery with other images"
        )


def _table(
    queries: Sequence[str],
    gallery: Sequence[str],
    idx: np.ndarray,
    dist: np.ndarray,
    known: dict[str, str] | None,
) -> pd.DataFrame:
    """The long search table; rows of excluded (infinite) pairs are dropped."""
    nq, k = idx.shape
    keep = np.isfinite(dist).ravel()
    table = pd.DataFrame(
        {
            "query": np.repeat(np.asarray(queries, dtype=object), k),
            "rank": np.tile(np.arange(1, k + 1), nq),
            "gallery": np.asarray(gallery, dtype=object)[idx.ravel()],
            "distance": dist.ravel().astype(np.float64),
        }
    )[keep]
    table["rank"] = table.groupby("query", sort=False).cumcount() + 1
    if known is not None:
        q_pid = table["query"].map(known)
        g_pid = table["gallery"].map(known)
        table["match"] = pd.array(q_pid == g_pid, dtype="boolean")
        table.loc[q_pid.isna() | g_pid.isna(), "match"] = pd.NA
    return table.reset_index(drop=True)


def unknown_images(
    known: dict[str, str],
    queries: Sequence[str],
    gallery: Sequence[str],
    where: str | os.PathLike[str] = "identities",
) -> list[str]:
    """The searched images ``known`` (canonical path -> pid) gives no identity, sorted.

    When it names none of them (paths spelled otherwise, a CSV of another
    folder) :class:`~prreid_lib.errors.DatasetFormatError` names ``where``.
    """
    images = set(queries) | set(gallery)
    missing = sorted(p for p in images if p not in known)
    if len(missing) == len(images):
        raise DatasetFormatError(
            Path(where),
            "the paths of the searched images (relative to the CSV's folder)",
            f"none of them, e.g. not {missing[0]}",
            "list the query and gallery images",
        )
    return missing


# -------------------------------------------------------------------------------- writing


def search_files(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(OUT.csv, OUT.png)`` for ``out``; a given ``.csv`` or ``.png`` ending is the stem's."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix.lower() in (".csv", ".png") else out
    return stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".png")


def write_search(
    out: str | os.PathLike[str], table: pd.DataFrame, written: list[Path] | None = None
) -> tuple[Path, Path]:
    """Write ``table`` to ``OUT.csv`` and its figure to ``OUT.png`` (each atomically).

    The figure is drawn before anything is written; the PNG is written first.
    Each file written is appended to ``written`` (to say what an interruption kept).
    """
    import io

    import matplotlib.pyplot as plt

    from prreid_lib.cache import atomic_write_bytes, atomic_write_text
    from prreid_lib.viz.search import search_figure

    csv, png = search_files(out)
    fig = search_figure(table)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=120)
    finally:
        plt.close(fig)
    csv.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(png, buffer.getvalue())
    if written is not None:
        written.append(png)
    atomic_write_text(csv, table.to_csv(index=False, float_format="%.6g"))
    return csv, png


# ------------------------------------------------------------------------ command line


def _source_option(option: str, value: str) -> Path:
    """An existing folder or file for ``--query`` / ``--gallery``."""
    from prreid_lib import argcheck

    fix = "pass a folder of images, one image, or a text file listing image paths"
    if value and Path(value).expanduser().is_dir():
        return argcheck.input_folder(option, Path(value).expanduser(), fix)
    return argcheck.input_file(option, Path(value).expanduser() if value else value, fix)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``prreid search``, checked: each bad one is refused naming it.

    ``args.out`` becomes the stem: ``OUT.csv`` and ``OUT.png`` are written
    (``DIR/search.csv`` and ``DIR/search.png`` for a folder).
    """
    from prreid_lib import argcheck
    from prreid_lib.evaluate import add_rerank_options, checked_rerank
    from prreid_lib.extract import MAX_BATCH_SIZE

    parser = argcheck.Parser(
        prog="prreid search",
        description="Which gallery images look like each query? Ranks the gallery for every "
        "query image with a trained run and writes OUT.csv (columns query, rank, gallery, "
        "distance, and match with --identities) and OUT.png (the first 8 queries, each with "
        "its top 10). --query and --gallery each take a folder (every jpg, jpeg, png, bmp "
        "under it), one image, or a text file listing image paths (one a line, relative to "
        "its folder). A gallery image that is the query file itself is left out.",
    )
    parser.add_argument("--run", required=True, help="a finished run folder (holds model.pt)")
    parser.add_argument("--query", required=True, help="query images: folder, image or list")
    parser.add_argument("--gallery", required=True, help="gallery images: folder, image or list")
    parser.add_argument(
        "--out",
        required=True,
        help="writes OUT.csv and OUT.png (OUT given as NAME.csv or NAME.png: NAME.csv and "
        "NAME.png); "
        "a folder: FOLDER/search.csv and FOLDER/search.png; missing folders are made; "
        "existing files are replaced",
    )
    parser.add_argument(
        "--top-k", type=int, default=10, help=f"gallery images per query, 1 to {MAX_TOP_K}"
    )
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default="cosine",
        help="cosine: the common practice, as fast-reid's predictor (L2-normalised features, "
        "distance 1 - cosine similarity, 0 to 2); euclidean: the paper's L2 distance between "
        "the raw features",
    )
    add_rerank_options(
        parser,
        f"k-reciprocal re-ranking (Zhong et al. 2017); at most {MAX_RERANK_IMAGES} query "
        "+ gallery images",
    )
    parser.add_argument(
        "--identities",
        help="CSV with columns path,pid (paths relative to its folder allowed): adds the "
        "column match and frames true matches green, other vehicles red, unknown grey",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument(
        "--batch-size", type=int, default=64, help=f"images per batch, 1 to {MAX_BATCH_SIZE}"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    argcheck.run_folder("--run", args.run)
    _source_option("--query", args.query)
    _source_option("--gallery", args.gallery)
    argcheck.int_in("--top-k", args.top_k, 1, MAX_TOP_K)
    args.rerank_options = checked_rerank(args) or False  # search_images takes False or options
    if args.identities is not None:
        argcheck.input_file("--identities", args.identities, "pass a CSV with columns path,pid")
    argcheck.device("--device", args.device)
    argcheck.int_in("--batch-size", args.batch_size, 1, MAX_BATCH_SIZE)
    args.out = _out_stem(args)
    return args


def _out_stem(args: argparse.Namespace) -> Path:
    """The checked ``--out`` stem: neither file may be one prreid or this search reads."""
    from prreid_lib import argcheck

    inputs = [args.query, args.gallery, args.identities]
    protected = argcheck.run_files(args.run) + [Path(p) for p in inputs if p and Path(p).is_file()]
    first = argcheck.output_file("--out", args.out, "search.csv", protected)
    for path in search_files(first):
        argcheck.check_output_file("--out", args.out, path, protected)
    png = canonical_paths([search_files(first)[1]])[0]
    for option in ("--query", "--gallery"):
        folder = Path(getattr(args, option[2:])).expanduser()
        inside = folder.is_dir() and Path(png).is_relative_to(canonical_paths([folder])[0])
        if inside:
            raise argcheck.OptionError(
                "--out",
                args.out,
                f"{png} would land in the {option} folder and be searched "
                "as an image the next time",
                f"pass an --out outside {folder}",
            )
    return search_files(first)[0].with_suffix("")


def main(argv: Sequence[str] | None = None) -> int:
    """``prreid search --run RUN --query Q --gallery G --out OUT``."""
    from prreid_lib import argcheck

    args = parse_args(argv)
    queries, gallery = source_images(args.query), source_images(args.gallery)
    if args.rerank:
        check_rerank_size(len(queries), len(gallery), "--rerank")
    known = None
    if args.identities is not None:
        known = read_identities(args.identities)
        missing = unknown_images(known, queries, gallery, args.identities)
        if missing:
            print(
                f"prreid search: note: {len(missing)} of {len(set(queries) | set(gallery))} "
                f"images have no identity in {args.identities}; their match is left empty "
                "and framed grey",
                file=sys.stderr,
            )
    table = search_images(
        args.run,
        args.query,
        args.gallery,
        args.top_k,
        args.rerank_options,
        args.metric,
        args.device,
        args.batch_size,
        identities=known,
        progress=not args.no_progress,
    )
    written: list[Path] = []
    try:
        csv, png = write_search(args.out, table, written)
    except KeyboardInterrupt:
        kept = f"{written[0]} was written, not its CSV" if written else "nothing was written"
        raise argcheck.Interrupted(f"{kept}; run the same command again") from None
    plural = "s" if len(queries) != 1 else ""
    print(
        f"top {args.top_k} of {len(gallery)} gallery images for {len(queries)} query "
        f"image{plural} ({args.metric}{', re-ranked' if args.rerank else ''}) written to "
        f"{csv} and {png}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
