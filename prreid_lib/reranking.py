"""Distances between features, and k-reciprocal re-ranking of them.

``distance_chunks`` / ``pairwise_distance`` give the query x gallery distances that the
protocols of :mod:`prreid_lib.metrics` rank (the paper's L2, Sec. 4.2, or cosine).
``re_rank`` refines them by k-reciprocal re-ranking (Zhong et al., CVPR 2017) as fast-reid
and torchreid apply it: a gallery item ranks higher when the query and the item are in
each other's k nearest neighbours. Each image is encoded by a weight vector over its
(expanded) k-reciprocal neighbours; the Jaccard distance between two such vectors is mixed
with the original distance: ``d* = (1 - lambda) d_J + lambda d``. The result matches the
reference code of the paper's authors (``zhunzhong07/person-re-ranking``, copied into
fast-reid and torchreid as ``re_ranking``) up to float32 rounding, ties broken by index.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypedDict

import numpy as np
import torch

__all__ = ["RerankOptions", "distance_chunks", "pairwise_distance", "re_rank"]

Array = np.ndarray | torch.Tensor


class RerankOptions(TypedDict, total=False):
    """Keyword arguments of :func:`re_rank`; ``{}`` keeps its defaults."""

    k1: int
    k2: int
    lambda_value: float


def _feats(x: Array, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (n x dim) array, got shape {tuple(t.shape)}")
    return t if t.dtype == torch.float64 else t.float()


def distance_chunks(
    query_feats: Array, gallery_feats: Array, metric: str = "euclidean", chunk_size: int = 1024
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Query x gallery distances as ``(q0, q1, block)``, ``chunk_size`` query rows at a time.

    ``euclidean`` (the paper's L2, Sec. 4.2) or ``cosine`` (1 - cosine similarity), in the
    features' precision (float32 unless both are float64), Euclidean by the expansion
    ``sqrt(|q|^2 + |g|^2 - 2 q.g)``. Only one block is held at a time.
    """
    q, g = _feats(query_feats, "query_feats"), _feats(gallery_feats, "gallery_feats")
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric: expected 'euclidean' or 'cosine', got {metric!r}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"features: query dim {q.shape[1]} != gallery dim {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    q, g = q.to(dtype), g.to(dtype)
    if metric == "cosine":
        q, g = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(g, dim=1)
    g_sq, step = g.pow(2).sum(1), max(1, int(chunk_size))

    def blocks() -> Iterator[tuple[int, int, torch.Tensor]]:
        for q0 in range(0, q.shape[0], step):
            qc = q[q0 : q0 + step]
            if metric == "cosine":
                yield q0, q0 + qc.shape[0], 1.0 - qc @ g.T
                continue
            d2 = torch.addmm(g_sq[None, :], qc, g.T, alpha=-2.0)
            d2 += qc.pow(2).sum(1, keepdim=True)
            yield q0, q0 + qc.shape[0], d2.clamp_(min=0).sqrt_()

    return blocks()


def pairwise_distance(
    query_feats: Array, gallery_feats: Array, metric: str = "euclidean", chunk_size: int = 1024
) -> np.ndarray:
    """The full query x gallery distance matrix, built from :func:`distance_chunks`."""
    out = np.zeros((len(query_feats), len(gallery_feats)), dtype=np.float32)
    for q0, q1, block in distance_chunks(query_feats, gallery_feats, metric, chunk_size):
        if block.dtype == torch.float64 and out.dtype != np.float64:
            out = out.astype(np.float64)
        out[q0:q1] = block.numpy()
    return out


def _as_array(x, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D distance matrix, got shape {a.shape}")
    return a


def _reciprocal(rank: np.ndarray, k: int) -> np.ndarray:
    """(N, k+1) neighbour indices, -1 where the neighbour is not k-reciprocal."""
    forward = rank[:, : k + 1]
    back = forward[forward]  # (N, k+1, k+1): neighbours of each neighbour
    mutual = (back == np.arange(rank.shape[0])[:, None, None]).any(2)
    return np.where(mutual, forward, -1)


def re_rank(q_g, q_q, g_g, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked query x gallery distances from query-gallery, query-query, gallery-gallery.

    Zhong et al. (CVPR 2017): distances are squared and divided by each column's maximum; R(i)
    is the set of k1-reciprocal neighbours of image i, expanded by R_half(j) (k1/2-reciprocal)
    of each j in R(i) sharing more than 2/3 of it with R(i); V_i holds exp(-d) weights over
    that set, averaged over the k2 nearest neighbours (query expansion); the Jaccard distance
    1 - sum min(V_q, V_g) / sum max(V_q, V_g) is mixed with the normalised squared distance
    with weight ``lambda_value``. Memory is about three (N x N) float32 matrices, N = all
    images.
    """
    q_g, q_q, g_g = _as_array(q_g, "q_g"), _as_array(q_q, "q_q"), _as_array(g_g, "g_g")
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise ValueError(
            f"re_rank: expected q_q {(nq, nq)} and g_g {(ng, ng)} for q_g "
            f"{(nq, ng)}, got {q_q.shape} and {g_g.shape}"
        )
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise ValueError(
            f"re_rank: expected k1, k2 >= 1 and lambda_value in [0, 1], got "
            f"k1={k1}, k2={k2}, lambda_value={lambda_value}"
        )
    # The reference squares [[q_q, q_g], [q_g.T, g_g]], divides each column by its maximum
    # and transposes; filling the transposed blocks directly keeps one (N x N) matrix.
    n = nq + ng
    dist = np.empty((n, n), dtype=np.float32)
    dist[:nq, :nq], dist[:nq, nq:] = np.square(q_q).T, np.square(q_g)
    dist[nq:, :nq], dist[nq:, nq:] = np.square(q_g).T, np.square(g_g).T
    dist /= dist.max(axis=1, keepdims=True)
    width = min(n, max(k1 + 1, k2))
    rank = np.empty((n, width), dtype=np.int64)
    for r0 in range(0, n, 1024):  # stable: ties go to the smaller index
        rank[r0 : r0 + 1024] = np.argsort(dist[r0 : r0 + 1024], axis=1, kind="stable")[:, :width]

    recip = _reciprocal(rank, min(k1, n - 1))
    half = _reciprocal(rank, min(int(np.around(k1 / 2.0)), n - 1))
    half_size = (half >= 0).sum(1)
    v = np.zeros((n, n), dtype=np.float32)
    for r0 in range(0, n, 512):
        rows = slice(r0, r0 + 512)
        cand = recip[rows]  # (b, k+1), -1 = none
        cand_half = half[np.maximum(cand, 0)]  # (b, k+1, h)
        shared = (cand_half[..., None] == cand[:, None, None, :]) & (cand_half[..., None] >= 0)
        shared = shared.any(3).sum(2)  # |R_half(j) & R(i)|
        keep = (cand >= 0) & (shared > 2.0 / 3.0 * half_size[np.maximum(cand, 0)])
        members = np.concatenate(
            [cand, np.where(keep[..., None], cand_half, -1).reshape(cand.shape[0], -1)], axis=1
        )
        r_idx = np.broadcast_to(np.arange(r0, r0 + cand.shape[0])[:, None], members.shape)
        ok = members >= 0
        v[r_idx[ok], members[ok]] = np.exp(-dist[r_idx[ok], members[ok]])
    v /= v.sum(1, keepdims=True)

    if k2 != 1:
        v_qe = np.empty_like(v)
        for r0 in range(0, n, 256):
            v_qe[r0 : r0 + 256] = v[rank[r0 : r0 + 256, :k2]].mean(axis=1)
        v = v_qe
    gallery_t = np.ascontiguousarray(v[nq:].T)  # (N, ng): row k = weight k of each gallery
    jaccard = np.empty((nq, ng), dtype=np.float32)
    for i in range(nq):
        nz = np.flatnonzero(v[i])
        shared = np.minimum(gallery_t[nz], v[i, nz][:, None]).sum(0)
        jaccard[i] = 1.0 - shared / (2.0 - shared)
    return jaccard * (1 - lambda_value) + dist[:nq, nq:] * lambda_value
