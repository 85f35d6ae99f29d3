"""Re-id evaluation: CMC, mAP and mINP under the VeRi-776 and VehicleID protocols.

Every protocol reduces to one question per query: at which ranks do its true matches
appear once junk is removed? CMC@k (paper Eq. 4) is the share of queries whose first
match is in the top k, AP (Eq. 5) the mean precision at each true match, mAP (Eq. 6) its
mean over queries, and mINP (Ye et al., TPAMI 2021) the mean of (number of matches) /
(rank of the hardest match). Ranks only need the true matches, so they are counted
without sorting whole rows: each row's distances go into equal-width bins (about two
gallery items a bin; a monotone map), one histogram counts the gallery items in lower
bins, and only the few items that share a bin with a true match are compared exactly.
Equal distances are ranked by gallery index (a stable sort), the convention fast-reid and
torchreid follow up to their unstable argsort.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from prreid_lib.datasets.vehicleid import protocol_splits
from prreid_lib.reranking import RerankOptions, distance_chunks, pairwise_distance, re_rank

__all__ = [
    "SUMMARY_KEYS",
    "SUMMARY_RANKS",
    "ReIDResult",
    "VehicleIDResult",
    "distance_chunks",
    "evaluate_features",
    "evaluate_ranking",
    "evaluate_ranking_with_index",
    "evaluate_tracks",
    "pairwise_distance",
    "re_rank",
    "reranked_distance",
    "vehicleid_protocol",
]

SUMMARY_RANKS = (1, 5, 10)
"""The CMC ranks of :meth:`ReIDResult.summary` and :meth:`VehicleIDResult.summary`."""
SUMMARY_KEYS = ("CMC@1", "CMC@5", "CMC@10", "mAP", "mINP")
"""The figures of a summary, named alike for VehicleID, VeRi-776 and every protocol."""

_BLOCK_ELEMENTS = 1 << 19  # distances ranked at once (2 MB of float32: stays in cache)
_ITEMS_PER_BIN = 2  # fewer bins: a smaller histogram, a few more exact comparisons

Array = np.ndarray | torch.Tensor


@dataclass(frozen=True, eq=False)
class ReIDResult:
    """CMC curve (``cmc[k]`` = CMC@(k+1)), mAP, mINP, valid and total query counts."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_query: int

    def summary(self) -> dict[str, float]:
        """``CMC@1``, ``CMC@5``, ``CMC@10``, ``mAP``, ``mINP`` as plain floats.

        NaN for a CMC rank beyond ``max_rank``. The names are those of
        :data:`SUMMARY_KEYS`, the same for every protocol.
        """
        out = {
            f"CMC@{k}": float(self.cmc[k - 1]) if k <= len(self.cmc) else float("nan")
            for k in SUMMARY_RANKS
        }
        return out | {"mAP": float(self.mAP), "mINP": float(self.mINP)}


@dataclass(frozen=True, eq=False)
class VehicleIDResult:
    """Per-trial results of the VehicleID protocol and their mean and std (``np.std``)."""

    trials: list[ReIDResult]
    cmc_mean: np.ndarray
    cmc_std: np.ndarray
    mAP_mean: float
    mAP_std: float

    @property
    def mINP_mean(self) -> float:
        """mINP averaged over the trials."""
        return float(np.mean([t.mINP for t in self.trials]))

    @property
    def mINP_std(self) -> float:
        """Standard deviation (``np.std``) of mINP over the trials."""
        return float(np.std([t.mINP for t in self.trials]))

    def summary(self) -> dict[str, float]:
        """Trial means under :data:`SUMMARY_KEYS`, and their std as ``<key>_std``.

        NaN for a CMC rank beyond ``max_rank``.
        """
        out: dict[str, float] = {}
        for k in SUMMARY_RANKS:
            inside = k <= len(self.cmc_mean)
            out[f"CMC@{k}"] = float(self.cmc_mean[k - 1]) if inside else float("nan")
            out[f"CMC@{k}_std"] = float(self.cmc_std[k - 1]) if inside else float("nan")
        return out | {
            "mAP": float(self.mAP_mean),
            "mAP_std": float(self.mAP_std),
            "mINP": self.mINP_mean,
            "mINP_std": self.mINP_std,
        }


# ----------------------------------------------------------------------------- rank counting


def _match_ranks(
    x: np.ndarray, pos_q: np.ndarray, pos_g: np.ndarray, junk_q: np.ndarray, junk_g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """0-based ranks among non-junk items of the true matches of each row of ``x``.

    ``(pos_q, pos_g)`` and ``(junk_q, junk_g)`` list (row, gallery index) pairs. Returns the
    rows of the matches and their ranks, sorted by row then rank. The rank of a match is
    (non-junk items in lower bins) + (non-junk items of its own bin before it by distance,
    then gallery index). Bins are exact: truncating (x - min) * scale is monotone, so an
    item in a lower bin is strictly nearer, and one in a higher bin strictly farther.
    """
    b, ng = x.shape
    nb = max(1, min(ng // _ITEMS_PER_BIN, 1 << 20))  # < 2^20: float32 rounding stays < 1 bin
    if pos_q.size == 0:
        return pos_q, pos_q
    xb, lo, hi = x, x.min(1, keepdims=True), x.max(1, keepdims=True)  # NaN propagates
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        if np.isnan(x).any():
            raise ValueError("distmat contains NaN; expected finite or infinite distances")
        finite = np.isfinite(x)
        lo = np.where(finite, x, np.inf).min(1, keepdims=True)
        hi = np.where(finite, x, -np.inf).max(1, keepdims=True)
        lo[~np.isfinite(lo)], hi[~np.isfinite(hi)] = 0, 0  # rows without a finite value
        xb = np.clip(x, lo, hi)  # monotone: bins stay ordered, +-inf share the end bins
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if not np.isfinite(hi - lo).all():  # range overflows: halve (monotone)
            xb, lo, hi = xb * 0.5, lo * 0.5, hi * 0.5
        scale = (nb - 1) / (hi - lo)
    scale[~np.isfinite(scale)] = 0  # all distances of a row equal: one bin
    v = xb - lo
    v *= scale
    bins = v.astype(np.intp)
    bins += (np.arange(b) * nb)[:, None]  # bin of x[q, g], + q * nb

    hist = np.bincount(bins.ravel(), minlength=b * nb)
    if junk_q.size:
        hist -= np.bincount(bins[junk_q, junk_g], minlength=b * nb)
    hist = hist.reshape(b, nb)
    below = (np.cumsum(hist, 1) - hist).ravel()  # non-junk items in lower bins of the row
    marker = np.zeros(b * nb, dtype=bool)
    marker[bins[pos_q, pos_g]] = True
    cq, cg = np.nonzero(marker[bins])  # items sharing a bin with a match
    cbin, cd = bins[cq, cg], x[cq, cg]

    # Exact order inside the candidate bins: flag matches and junk, sort, count.
    keys = cq * ng + cg  # ascending: nonzero is row-major
    is_pos = np.zeros(keys.size, dtype=bool)
    is_pos[np.searchsorted(keys, pos_q * ng + pos_g)] = True
    nonjunk = np.ones(keys.size, dtype=np.int64)
    if junk_q.size:
        jk = junk_q * ng + junk_g
        at = np.minimum(np.searchsorted(keys, jk), keys.size - 1)
        nonjunk[at[keys[at] == jk]] = 0
    order = np.lexsort((cg, cd, cbin))  # by row and bin, then distance, then gallery index
    cbin, is_pos, nonjunk, cq = cbin[order], is_pos[order], nonjunk[order], cq[order]
    before = np.cumsum(nonjunk) - nonjunk
    starts = np.flatnonzero(np.r_[True, cbin[1:] != cbin[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, cbin.size]))
    ranks = below[cbin] + before - before[group_start]
    return cq[is_pos], ranks[is_pos]


class _Accumulator:
    """Per-query first rank, AP and INP, gathered block by block."""

    def __init__(self) -> None:
        self.first: list[np.ndarray] = []
        self.ap: list[np.ndarray] = []
        self.inp: list[np.ndarray] = []
        self.num_query = 0

    def add(self, n_rows: int, rows: np.ndarray, ranks: np.ndarray) -> None:
        self.num_query += n_rows
        if rows.size == 0:
            return
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        m = np.diff(np.r_[starts, rows.size])
        seg = np.repeat(np.arange(m.size), m)
        position = np.arange(rows.size) - np.repeat(starts, m)  # i-th match of its query
        precision = (position + 1) / (ranks + 1.0)
        self.ap.append(np.bincount(seg, weights=precision, minlength=m.size) / m)
        self.first.append(ranks[starts])
        self.inp.append(m / (ranks[starts + m - 1] + 1.0))

    def result(self, max_rank: int, where: str) -> ReIDResult:
        if not self.first:
            raise ValueError(
                f"{where}: no query has a true match in the gallery once junk (same id and "
                "camera) is removed; check that query and gallery ids overlap and that "
                "their cameras differ"
            )
        first = np.concatenate(self.first)
        counts = np.bincount(np.minimum(first, max_rank), minlength=max_rank + 1)
        cmc = np.cumsum(counts[:max_rank]) / first.size
        cmc.setflags(write=False)
        return ReIDResult(
            cmc=cmc,
            mAP=float(np.concatenate(self.ap).mean()),
            mINP=float(np.concatenate(self.inp).mean()),
            num_valid=int(first.size),
            num_query=self.num_query,
        )


# ----------------------------------------------------------------------------- protocols


def _as_array(distmat: Array) -> np.ndarray:
    if isinstance(distmat, torch.Tensor):  # counted on the host (numpy, one thread)
        distmat = distmat.detach().cpu()
        distmat = distmat if distmat.dtype in (torch.float32, torch.float64) else distmat.float()
        distmat = distmat.numpy()
    d = np.asarray(distmat)
    if d.ndim != 2 or 0 in d.shape:
        raise ValueError(f"distmat: expected a non-empty (query x gallery) matrix, got {d.shape}")
    return np.ascontiguousarray(d, dtype=d.dtype if d.dtype.char in "fd" else np.float32)


def _check_len(name: str, a: Array, n: int) -> np.ndarray:
    a = np.asarray(a).reshape(-1)
    if a.size != n:
        raise ValueError(f"{name}: expected {n} entries to match distmat, got {a.size}")
    return a


class _IdPairs:
    """(query, gallery) pairs of equal id: matches, and junk where the camera is the same."""

    def __init__(self, q_pids, g_pids, q_camids, g_camids, nq: int, ng: int):
        q_pids, q_camids = _check_len("q_pids", q_pids, nq), _check_len("q_camids", q_camids, nq)
        g_pids, g_camids = _check_len("g_pids", g_pids, ng), _check_len("g_camids", g_camids, ng)
        _, inv = np.unique(np.concatenate([q_pids, g_pids]), return_inverse=True)
        self.qi, gi = inv[: len(q_pids)], inv[len(q_pids) :]
        self.g_order = np.argsort(gi, kind="stable")
        self.g_count = np.bincount(gi, minlength=inv.max() + 1)
        self.g_start = np.cumsum(self.g_count) - self.g_count
        self.q_camids, self.g_camids = q_camids, g_camids

    def __call__(self, q0: int, q1: int) -> tuple[np.ndarray, ...]:
        ids = self.qi[q0:q1]
        length = self.g_count[ids]
        rows = np.repeat(np.arange(q1 - q0), length)
        shift = np.repeat(self.g_start[ids] - (np.cumsum(length) - length), length)
        g = self.g_order[shift + np.arange(rows.size)]
        junk = self.g_camids[g] == self.q_camids[q0 + rows]
        return rows[~junk], g[~junk], rows[junk], g[junk]


class _ListPairs:
    """(query, gallery) pairs from per-query lists of good and junk gallery indices."""

    def __init__(self, good: Sequence[Array], junk: Sequence[Array], nq: int, ng: int):
        self.csr = []
        for name, lists in (("good_index", good), ("junk_index", junk)):
            if len(lists) != nq:
                raise ValueError(f"{name}: expected one array per query ({nq}), got {len(lists)}")
            arrays = [np.unique(np.asarray(a, dtype=np.int64).reshape(-1)) for a in lists]
            flat = np.concatenate(arrays)
            if flat.size and (flat.min() < 0 or flat.max() >= ng):
                raise ValueError(f"{name}: gallery indices must be 0-based and below {ng}")
            ptr = np.r_[0, np.cumsum([a.size for a in arrays])]
            self.csr.append((ptr, flat, np.repeat(np.arange(nq), np.diff(ptr))))
        good_keys, junk_keys = (q * ng + flat for _, flat, q in self.csr)
        both = np.intersect1d(good_keys, junk_keys)
        if both.size:
            raise ValueError(
                f"good_index/junk_index: query {both[0] // ng} lists gallery "
                f"index {both[0] % ng} in both; expected disjoint lists"
            )

    def __call__(self, q0: int, q1: int) -> tuple[np.ndarray, ...]:
        out = []
        for ptr, flat, q in self.csr:
            out += [q[ptr[q0] : ptr[q1]] - q0, flat[ptr[q0] : ptr[q1]]]
        return tuple(out)


def _blocks(n_query: int, n_gallery: int) -> Iterator[tuple[int, int]]:
    step = max(1, _BLOCK_ELEMENTS // max(n_gallery, 1))
    for q0 in range(0, n_query, step):
        yield q0, min(q0 + step, n_query)


def _matrix_blocks(d: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(q0, q1, d[q0:q1])`` over the query blocks of the distance matrix ``d``."""
    for q0, q1 in _blocks(*d.shape):
        yield q0, q1, d[q0:q1]


def _evaluate(
    blocks: Iterator[tuple[int, int, np.ndarray]],
    pairs: _IdPairs | _ListPairs,
    max_rank: int,
    where: str,
) -> ReIDResult:
    """Rank counting over (q0, q1, distances of queries q0:q1) blocks."""
    if int(max_rank) < 1:
        raise ValueError(f"max_rank: expected a positive integer, got {max_rank}")
    acc = _Accumulator()
    for q0, q1, x in blocks:
        acc.add(q1 - q0, *_match_ranks(x, *pairs(q0, q1)))
    return acc.result(int(max_rank), where)


def evaluate_ranking(
    distmat: Array,
    q_pids: Array,
    g_pids: Array,
    q_camids: Array,
    g_camids: Array,
    max_rank: int = 50,
) -> ReIDResult:
    """CMC, mAP (paper Eqs. 4-6) and mINP of a query x gallery distance matrix.

    VeRi-776/Market-1501 convention (fast-reid, torchreid): gallery items with the query's
    id and camera are junk and removed; true matches share the id with another camera;
    queries without a true match are skipped (``num_valid`` counts the others). Equal
    distances rank by gallery index. ``cmc`` always has ``max_rank`` entries (1 beyond
    the gallery size). ``distmat`` may be a numpy array or a torch tensor (any device).
    """
    d = _as_array(distmat)
    pairs = _IdPairs(q_pids, g_pids, q_camids, g_camids, *d.shape)
    return _evaluate(_matrix_blocks(d), pairs, max_rank, "evaluate_ranking")


def evaluate_ranking_with_index(
    distmat: Array, good_index: Sequence[Array], junk_index: Sequence[Array], max_rank: int = 50
) -> ReIDResult:
    """Like :func:`evaluate_ranking`, with matches and junk given per query as 0-based arrays.

    This is how the official VeRi-776 ``gt_index.txt`` / ``jk_index.txt`` describe a test
    (1-based there; see ``prreid_lib.datasets.veri776.read_veri_index``). An index may not be
    both good and junk.
    """
    d = _as_array(distmat)
    pairs = _ListPairs(good_index, junk_index, *d.shape)
    return _evaluate(_matrix_blocks(d), pairs, max_rank, "evaluate_ranking_with_index")


def evaluate_tracks(
    distmat: Array,
    q_pids: Array,
    q_camids: Array,
    g_pids: Array,
    g_camids: Array,
    tracks: Sequence[Array],
    max_rank: int = 50,
) -> ReIDResult:
    """VeRi-776 image-to-track evaluation: HIT@k is ``cmc[k-1]`` (paper Table 3).

    ``tracks`` lists arrays of gallery indices, each of one id and one camera. A query's
    distance to a track is the minimum over the track's images (maximum similarity, as in
    Liu et al. [14]); tracks of the query's own id and camera are junk.
    """
    d = _as_array(distmat)
    nq, ng = d.shape
    g_pids, g_camids = _check_len("g_pids", g_pids, ng), _check_len("g_camids", g_camids, ng)
    members = [np.asarray(t, dtype=np.int64).reshape(-1) for t in tracks]
    for i, t in enumerate(members):
        if t.size == 0 or t.min() < 0 or t.max() >= ng:
            raise ValueError(f"tracks[{i}]: expected a non-empty array of indices below {ng}")
        if np.unique(g_pids[t]).size > 1 or np.unique(g_camids[t]).size > 1:
            raise ValueError(f"tracks[{i}]: images of several ids or cameras; expected one each")
    if not members:
        raise ValueError("tracks: expected at least one track")
    flat = np.concatenate(members)
    starts = np.r_[0, np.cumsum([t.size for t in members])[:-1]]
    track_d = np.empty((nq, len(members)), dtype=d.dtype)
    for q0, q1 in _blocks(nq, flat.size):
        track_d[q0:q1] = np.minimum.reduceat(d[q0:q1, flat], starts, axis=1)
    first = np.array([t[0] for t in members])
    return evaluate_ranking(track_d, q_pids, g_pids[first], q_camids, g_camids[first], max_rank)


# ----------------------------------------------------------------------------- features


def reranked_distance(
    q_feats: Array,
    g_feats: Array,
    metric: str = "euclidean",
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """Query x gallery distances of ``metric`` after k-reciprocal re-ranking (:func:`re_rank`)."""
    return re_rank(
        pairwise_distance(q_feats, g_feats, metric),
        pairwise_distance(q_feats, q_feats, metric),
        pairwise_distance(g_feats, g_feats, metric),
        k1=int(k1),
        k2=int(k2),
        lambda_value=float(lambda_value),
    )


def evaluate_features(
    q_feats: Array,
    g_feats: Array,
    q_pids: Array,
    g_pids: Array,
    q_camids: Array,
    g_camids: Array,
    metric: str = "euclidean",
    max_rank: int = 50,
    chunk_size: int = 256,
) -> ReIDResult:
    """:func:`evaluate_ranking` from features, never holding the full distance matrix.

    Distances are computed for ``chunk_size`` queries at a time and evaluated at once, so
    memory stays at the features plus one chunk (a 10k x 100k problem fits in well under
    2 GB). The result equals ``evaluate_ranking(pairwise_distance(...), ...)``.
    """
    nq, ng = len(q_feats), len(g_feats)
    chunks = distance_chunks(q_feats, g_feats, metric, chunk_size)
    pairs = _IdPairs(q_pids, g_pids, q_camids, g_camids, nq, ng)

    def blocks():
        for c0, _, chunk in chunks:
            rows = chunk.numpy()
            for b0, b1 in _blocks(rows.shape[0], ng):
                yield c0 + b0, c0 + b1, rows[b0:b1]

    return _evaluate(blocks(), pairs, max_rank, "evaluate_features")


def _require_queries(pids: np.ndarray) -> None:
    """Refuse test identities from which the VehicleID protocol draws no query."""
    if pids.size == 0:
        raise ValueError("pids: expected the identities of the test images; got no test image")
    counts = np.unique(pids, return_counts=True)[1]
    if counts.max() < 2:
        raise ValueError(
            f"pids: expected a vehicle with 2 or more test images (one is drawn into the "
            f"gallery, the others are queries); found {counts.size} vehicles of one image "
            "each, so no query; fix: test on a list with several images per vehicle"
        )


def vehicleid_protocol(
    features: Array,
    pids: Array,
    n_trials: int = 10,
    seed: int = 0,
    max_rank: int = 50,
    *,
    metric: str = "euclidean",
    rerank: RerankOptions | None = None,
) -> VehicleIDResult:
    """VehicleID test protocol (Liu et al. 2016; paper Sec. 4.3, Tables 1-2).

    In each of ``n_trials`` trials one random image of every identity forms the gallery and
    all other images are queries (:func:`prreid_lib.datasets.vehicleid.protocol_splits`);
    there is no camera junk. Trials draw from one ``np.random.default_rng(seed)``, so a
    seed fixes every split. Returns each trial's
    result and the mean and std (``np.std``, ddof 0) of CMC and mAP over trials.
    ``rerank`` (keyword arguments of :func:`re_rank`: ``k1``, ``k2``, ``lambda_value``;
    ``{}`` for its defaults) re-ranks each trial's distances by k-reciprocal encoding;
    it holds the full distance matrices of a trial in memory.
    """
    f = torch.as_tensor(features)
    pids = _check_len("pids", pids, len(f))
    _require_queries(pids)
    trials = []
    for query, gallery in protocol_splits(pids, n_trials, seed):
        q_feats, g_feats = f[torch.from_numpy(query)], f[torch.from_numpy(gallery)]
        cams = np.zeros(query.size), np.ones(gallery.size)  # no query-gallery pair is junk
        if rerank is None:
            r = evaluate_features(
                q_feats, g_feats, pids[query], pids[gallery], *cams, metric, max_rank
            )
        else:
            dist = reranked_distance(q_feats, g_feats, metric, **rerank)
            r = evaluate_ranking(dist, pids[query], pids[gallery], *cams, max_rank)
        trials.append(r)
    cmc = np.stack([t.cmc for t in trials])
    maps = np.array([t.mAP for t in trials])
    return VehicleIDResult(
        trials=trials,
        cmc_mean=cmc.mean(0),
        cmc_std=cmc.std(0),
        mAP_mean=float(maps.mean()),
        mAP_std=float(maps.std()),
    )
