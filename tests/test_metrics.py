"""Re-id metrics: hand-worked cases, a plain-loop reference and fast-reid's own evaluator.

Expected numbers in the hand-worked cases are derived in the comments, not taken from
the code. The outside references (fast-reid's ``rank.py`` and ``rerank.py``) are loaded
from the installed ``fastreid`` package's files without importing the rest of fastreid;
those tests are skipped when fastreid is not installed (it is installed with
``pip install --no-deps fastreid==1.4.0``: its own dependencies pin torch 1.13).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch

from prreid_lib.metrics import (
    ReIDResult,
    evaluate_features,
    evaluate_ranking,
    evaluate_ranking_with_index,
    evaluate_tracks,
    pairwise_distance,
    re_rank,
    vehicleid_protocol,
)

torch.set_num_threads(1)


def _fastreid_file(name: str) -> ModuleType:
    """fast-reid's ``evaluation/<name>.py`` loaded on its own (skip when not installed)."""
    spec = importlib.util.find_spec("fastreid")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("fastreid is not installed (pip install --no-deps fastreid==1.4.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / "evaluation" / f"{name}.py"
    module_spec = importlib.util.spec_from_file_location(f"_fastreid_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    with warnings.catch_warnings():  # rank.py warns that its Cython part is missing
        warnings.simplefilter("ignore")
        module_spec.loader.exec_module(module)
    return module


def loop_reference(d, q_pids, g_pids, q_camids, g_camids, max_rank):
    """The protocol written out plainly, one query and one gallery item at a time."""
    cmc, ap, inp = [], [], []
    for i in range(len(q_pids)):
        order = sorted(range(len(g_pids)), key=lambda g: (d[i][g], g))  # ties: gallery index
        hits = [
            g_pids[g] == q_pids[i]
            for g in order
            if not (g_pids[g] == q_pids[i] and g_camids[g] == q_camids[i])  # drop junk
        ]
        ranks = [r + 1 for r, hit in enumerate(hits) if hit]  # 1-based
        if not ranks:
            continue
        cmc.append([1.0 if ranks[0] <= k else 0.0 for k in range(1, max_rank + 1)])
        ap.append(sum((j + 1) / r for j, r in enumerate(ranks)) / len(ranks))
        inp.append(len(ranks) / ranks[-1])
    if not ap:
        return None  # no valid query
    return np.mean(cmc, axis=0), float(np.mean(ap)), float(np.mean(inp)), len(ap)


# --------------------------------------------------------------------------- hand-worked

# One query (id 1, camera 0). Gallery: (distance, id, camera)
#   0: 0.40 id1 c1 match | 1: 0.10 id2 c1 | 2: 0.20 id1 c0 junk | 3: 0.30 id3 c2
#   4: 0.50 id1 c2 match | 5: 0.60 id4 c1 | 6: 0.90 id1 c1 match
# Sorted: 1, 2(junk), 3, 0, 4, 5, 6 -> without junk: -, -, M, M, -, M: ranks 3, 4, 6.
# AP = (1/3 + 2/4 + 3/6) / 3 = 4/9; CMC@k = 1 from k = 3; INP = 3 / 6 = 1/2.
D1 = np.array([[0.40, 0.10, 0.20, 0.30, 0.50, 0.60, 0.90]])
G_PIDS = np.array([1, 2, 1, 3, 1, 4, 1])
G_CAMS = np.array([1, 1, 0, 2, 2, 1, 1])


def test_single_query_several_matches():
    r = evaluate_ranking(D1, [1], G_PIDS, [0], G_CAMS, max_rank=5)
    assert isinstance(r, ReIDResult)
    np.testing.assert_allclose(r.cmc, [0, 0, 1, 1, 1])
    assert r.mAP == pytest.approx(4 / 9)
    assert r.mINP == pytest.approx(1 / 2)
    assert (r.num_valid, r.num_query) == (1, 1)
    assert r.summary() == pytest.approx(
        {"CMC@1": 0.0, "CMC@5": 1.0, "CMC@10": math.nan, "mAP": 4 / 9, "mINP": 0.5}, nan_ok=True
    )


def test_all_junk_query_is_skipped_and_queries_average():
    # Query 1 (id 5, camera 0): its only gallery image (7, id 5 c0) is junk -> skipped.
    # Query 2 (id 3, camera 0): gallery 3 (id 3, c2) is nearest -> rank 1, AP 1, INP 1.
    # Gallery 7 is far from query 0 (0.95, after its last match): query 0 stays as above.
    d = np.array(
        [
            [0.40, 0.10, 0.20, 0.30, 0.50, 0.60, 0.90, 0.95],
            [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.01],
            [0.40, 0.30, 0.20, 0.05, 0.50, 0.60, 0.90, 0.95],
        ]
    )
    r = evaluate_ranking(d, [1, 5, 3], np.r_[G_PIDS, 5], [0, 0, 0], np.r_[G_CAMS, 0], 4)
    assert (r.num_valid, r.num_query) == (2, 3)
    np.testing.assert_allclose(r.cmc, [0.5, 0.5, 1, 1])  # first matches at ranks 3 and 1
    assert r.mAP == pytest.approx((4 / 9 + 1) / 2)
    assert r.mINP == pytest.approx((1 / 2 + 1) / 2)


def test_book_two_query_example():
    # book/_partials/evaluation_protocols.md: query A as above; query B (id 4, camera 2)
    # has its only match (item 5, id 4 c1) second after item 1: AP = INP = 1/2.
    # CMC = (0, 1/2, 1, 1, 1); mAP = (4/9 + 1/2) / 2 = 17/36; mINP = 1/2.
    d = np.vstack([D1, [0.70, 0.20, 0.80, 0.50, 0.60, 0.30, 0.90]])
    r = evaluate_ranking(d, [1, 4], G_PIDS, [0, 2], G_CAMS, max_rank=5)
    np.testing.assert_allclose(r.cmc, [0, 0.5, 1, 1, 1])
    assert r.mAP == pytest.approx(17 / 36) and r.mINP == pytest.approx(0.5)


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_ranking([[0.1, 0.2]], [7], [7, 8], [0], [0, 1])  # its id only in camera 0


def test_match_beyond_max_rank_still_counts_in_ap():
    # Sorted: 3 negatives, then the match at rank 4: CMC@1..3 = 0, AP = INP = 1/4.
    r = evaluate_ranking([[0.4, 0.1, 0.2, 0.3]], [1], [1, 2, 3, 4], [0], [1, 1, 1, 1], 3)
    np.testing.assert_allclose(r.cmc, [0, 0, 0])
    assert r.mAP == pytest.approx(1 / 4) and r.mINP == pytest.approx(1 / 4)


def test_gallery_smaller_than_max_rank():
    # 3 gallery items, match at rank 2: CMC@k = 1 for every k >= 2 up to max_rank.
    r = evaluate_ranking([[0.3, 0.1, 0.9]], [1], [1, 2, 3], [0], [1, 1, 1], max_rank=50)
    assert r.cmc.shape == (50,)
    assert r.cmc[0] == 0 and np.all(r.cmc[1:] == 1)
    assert r.mAP == pytest.approx(1 / 2)


def test_ties_rank_by_gallery_index():
    # Equal distances keep gallery order: 3 (0.2), then 0, 1, 2 (all 0.5): the match
    # (index 1) is third -> AP 1/3. Were ties broken the other way it would be second.
    r = evaluate_ranking([[0.5, 0.5, 0.5, 0.2]], [1], [9, 1, 9, 9], [0], [1, 1, 1, 1], 5)
    assert r.mAP == pytest.approx(1 / 3)
    np.testing.assert_allclose(r.cmc, [0, 0, 1, 1, 1])
    # A match tied with a later negative comes first: AP 1.
    r = evaluate_ranking([[0.5, 0.5]], [1], [1, 9], [0], [1, 1], 1)
    assert r.mAP == 1.0


def test_infinite_distances_and_nan():
    # Distances: [inf, 0.3, -inf] -> order 2, 1, 0; the match (0) is third.
    r = evaluate_ranking([[np.inf, 0.3, -np.inf]], [1], [1, 2, 3], [0], [1, 1, 1], 3)
    assert r.mAP == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking([[np.nan, 0.3]], [1], [1, 2], [0], [1, 1])


def test_input_errors_name_the_parameter():
    with pytest.raises(ValueError, match="g_camids"):
        evaluate_ranking(D1, [1], G_PIDS, [0], G_CAMS[:3])
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_ranking(D1, [1], G_PIDS, [0], G_CAMS, max_rank=0)
    with pytest.raises(ValueError, match="distmat"):
        evaluate_ranking(np.zeros(3), [1], G_PIDS, [0], G_CAMS)


def test_tracks_hand_worked():
    # Tracks: T0 = images 0, 1 (id 1, c1); T1 = 2, 3 (id 2, c1); T2 = 4, 5 (id 1, c0).
    # Query id 1 c0: T2 is junk. Track distances (minimum): T0 0.3, T1 0.2, T2 0.1.
    # Ranking without junk: T1, T0 -> match at rank 2: HIT@1 = 0, HIT@5 = 1, AP = 1/2.
    d = [[0.8, 0.3, 0.2, 0.9, 0.1, 0.1]]
    tracks = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]
    r = evaluate_tracks(d, [1], [0], [1, 1, 2, 2, 1, 1], [1, 1, 1, 1, 0, 0], tracks, 5)
    np.testing.assert_allclose(r.cmc, [0, 1, 1, 1, 1])
    assert r.mAP == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match=r"tracks\[1\]"):
        evaluate_tracks(d, [1], [0], [1, 1, 2, 1, 1, 1], [1, 1, 1, 1, 0, 0], tracks, 5)


def test_index_lists_hand_worked():
    # Same problem as D1, given by lists: good = 0, 4, 6; junk = 2 -> AP 4/9.
    r = evaluate_ranking_with_index(D1, [np.array([0, 4, 6])], [np.array([2])], 5)
    assert r.mAP == pytest.approx(4 / 9)
    with pytest.raises(ValueError, match="in both"):
        evaluate_ranking_with_index(D1, [np.array([0, 2])], [np.array([2])], 5)


def test_vehicleid_protocol_hand_worked():
    # 1-D features. Id A: 0, 4; id B: 5, 20. The four galleries and their queries:
    #   A=0, B=5 : q 4 -> B nearer (1 < 4): rank 2; q 20 -> B: rank 1 => R1 .5, mAP .75
    #   A=0, B=20: q 4 -> A: rank 1; q 5 -> A nearer (5 < 15): rank 2 => .5, .75
    #   A=4, B=5 : q 0 -> A (4 < 5); q 20 -> B (15 < 16): both rank 1 => 1, 1
    #   A=4, B=20: q 0 -> A; q 5 -> A nearer (1 < 15): rank 2      => .5, .75
    feats = np.array([[0.0], [4.0], [5.0], [20.0]])
    res = vehicleid_protocol(feats, ["A", "A", "B", "B"], n_trials=40, seed=3, max_rank=2)
    for t in res.trials:
        assert (t.cmc[0], t.mAP) in {(0.5, 0.75), (1.0, 1.0)}
        assert t.num_query == 2 and t.cmc[1] == 1.0
    maps = [t.mAP for t in res.trials]
    assert 0.75 in maps and 1.0 in maps  # both kinds of split drawn in 40 trials
    assert res.mAP_mean == pytest.approx(np.mean(maps))
    assert res.mAP_std == pytest.approx(np.std(maps))
    np.testing.assert_allclose(res.cmc_mean, np.mean([t.cmc for t in res.trials], axis=0))
    again = vehicleid_protocol(feats, ["A", "A", "B", "B"], n_trials=40, seed=3, max_rank=2)
    assert [t.mAP for t in again.trials] == maps


def test_vehicleid_splits_are_the_protocol_draws():
    """The data set's query/gallery frames are the draws the protocol evaluates, and the
    draws are the ones the protocol has always made (a fixed seed, one generator)."""
    from pathlib import Path

    from prreid_lib.datasets.vehicleid import VehicleID, protocol_splits

    pids = np.array([7, 7, 7, 9, 9, 4])
    test = pd.DataFrame({"path": [f"/x/{i}.jpg" for i in range(6)], "pid": pids})
    data = VehicleID(Path("/x"), test.iloc[:0], test, 800)
    splits = data.splits(n_trials=3, seed=5)
    rng = np.random.default_rng(5)
    by_id, count = np.array([5, 0, 1, 2, 3, 4]), np.array([1, 3, 2])  # ids 4, 7, 9
    start = np.cumsum(count) - count
    for (query, gallery), (q_idx, g_idx) in zip(splits, protocol_splits(pids, 3, 5), strict=True):
        expected = np.sort(by_id[start + rng.integers(0, count)])
        assert np.sort(g_idx).tolist() == expected.tolist()
        assert sorted(gallery["pid"]) == [4, 7, 9]  # one image of every vehicle
        assert sorted([*query["path"], *gallery["path"]]) == sorted(test["path"])
        assert query["path"].tolist() == test["path"].iloc[q_idx].tolist()
    assert data.gallery.equals(data.splits(1)[0][1]) and len(data.query) == 3
    with pytest.raises(ValueError, match="n_trials"):
        protocol_splits(pids, 0)


def test_pairwise_distance_and_features_entry_point():
    q = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    g = np.array([[3.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(pairwise_distance(q, g), [[3, 2], [4, 13**0.5]], atol=1e-5)
    # cosine: q1 = (0.6, 0.8); g0 = (1, 0) -> 1 - 0.6; g1 = (0, 1) -> 1 - 0.8
    np.testing.assert_allclose(pairwise_distance(q[1:], g, "cosine"), [[0.4, 0.2]], atol=1e-6)
    with pytest.raises(ValueError, match="metric"):
        pairwise_distance(q, g, "manhattan")
    rng = np.random.default_rng(0)
    qf, gf = rng.standard_normal((70, 8)), rng.standard_normal((300, 8))
    qp, gp = rng.integers(0, 10, 70), rng.integers(0, 10, 300)
    qc, gc = rng.integers(0, 3, 70), rng.integers(0, 3, 300)
    for metric in ("euclidean", "cosine"):
        a = evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric, max_rank=20, chunk_size=9)
        b = evaluate_ranking(pairwise_distance(qf, gf, metric, chunk_size=9), qp, gp, qc, gc, 20)
        assert a.mAP == pytest.approx(b.mAP, abs=1e-12)
        np.testing.assert_array_equal(a.cmc, b.cmc)


# --------------------------------------------------------------------------- references


def _random_problem(rng, ties: bool):
    nq, ng = int(rng.integers(1, 25)), int(rng.integers(1, 70))
    n_ids, n_cams = int(rng.integers(1, 8)), int(rng.integers(1, 4))
    d = rng.integers(0, 4, (nq, ng)).astype(np.float32) if ties else rng.random((nq, ng))
    ids = [rng.integers(0, n_ids, n) for n in (nq, ng)]
    cams = [rng.integers(0, n_cams, n) for n in (nq, ng)]
    return d, ids[0], ids[1], cams[0], cams[1]


@pytest.mark.parametrize("ties", [False, True])
def test_matches_loop_reference_on_random_problems(ties):
    rng = np.random.default_rng(7 + ties)
    compared = 0
    for _ in range(150):
        d, qp, gp, qc, gc = _random_problem(rng, ties)
        max_rank = int(rng.integers(1, 60))
        ref = loop_reference(d, qp, gp, qc, gc, max_rank)
        if ref is None:
            with pytest.raises(ValueError, match="no query has a true match"):
                evaluate_ranking(d, qp, gp, qc, gc, max_rank)
            continue
        cmc, m_ap, m_inp, n_valid = ref
        r = evaluate_ranking(torch.from_numpy(d), qp, gp, qc, gc, max_rank)
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-6)
        assert abs(r.mAP - m_ap) < 1e-6 and abs(r.mINP - m_inp) < 1e-6
        assert r.num_valid == n_valid
        good = [np.flatnonzero((gp == p) & (gc != c)) for p, c in zip(qp, qc, strict=True)]
        junk = [np.flatnonzero((gp == p) & (gc == c)) for p, c in zip(qp, qc, strict=True)]
        r2 = evaluate_ranking_with_index(d, good, junk, max_rank)
        assert r2.mAP == r.mAP and np.array_equal(r2.cmc, r.cmc)
        compared += 1
    assert compared > 50


def test_tracks_match_loop_reference():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n_tracks = int(rng.integers(2, 12))
        sizes = rng.integers(1, 5, n_tracks)
        t_pid, t_cam = rng.integers(0, 4, n_tracks), rng.integers(0, 3, n_tracks)
        tracks = np.split(rng.permutation(sizes.sum()), np.cumsum(sizes)[:-1])  # scattered
        g_pids, g_cams = np.zeros(sizes.sum(), int), np.zeros(sizes.sum(), int)
        for t, members in enumerate(tracks):
            g_pids[members], g_cams[members] = t_pid[t], t_cam[t]
        nq = int(rng.integers(1, 10))
        qp, qc = rng.integers(0, 4, nq), rng.integers(0, 3, nq)
        d = rng.random((nq, g_pids.size))
        track_d = np.array([[d[i, t].min() for t in tracks] for i in range(nq)])
        ref = loop_reference(track_d, qp, t_pid, qc, t_cam, 5)
        if ref is None:
            continue
        r = evaluate_tracks(d, qp, qc, g_pids, g_cams, tracks, 5)
        np.testing.assert_allclose(r.cmc, ref[0], atol=1e-6)
        assert abs(r.mAP - ref[1]) < 1e-6


def test_matches_fastreid_eval_market1501():
    rank = _fastreid_file("rank")
    rng = np.random.default_rng(11)
    for _ in range(20):
        nq, ng, max_rank = int(rng.integers(5, 40)), int(rng.integers(60, 300)), 20
        qp, gp = rng.integers(0, 12, nq), rng.integers(0, 12, ng)
        qc, gc = rng.integers(0, 4, nq), rng.integers(0, 4, ng)
        d = rng.random((nq, ng))  # float64: no ties (fast-reid sorts with an unstable argsort)
        cmc, all_ap, all_inp = rank.eval_market1501(d, qp, gp, qc, gc, max_rank)
        r = evaluate_ranking(d, qp, gp, qc, gc, max_rank)
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-6)
        assert abs(r.mAP - np.mean(all_ap)) < 1e-6 and abs(r.mINP - np.mean(all_inp)) < 1e-6
        assert r.num_valid == len(all_ap)


# --------------------------------------------------------------------------- re-ranking


def test_re_rank_hand_worked():
    # Points on a line: query 0; gallery 1, 3, 10. Squared distances divided by each row's
    # maximum: q: [0, .01, .09, 1]; g(1): [1/81, 0, 4/81, 1]. With k1 = 1 a point's
    # neighbours are itself and its nearest; q and g(1) are mutual, so R(q) = {q, g(1)},
    # R(g(1)) = {g(1), q}, R(3) = {3}, R(10) = {10} (k1/2 rounds to 0: no expansion).
    # V(q) = [1, a] / (1 + a), a = exp(-.01); V(g1) = [b, 1] / (1 + b), b = exp(-1/81).
    a, b = math.exp(-0.01), math.exp(-1 / 81)
    s = min(1 / (1 + a), b / (1 + b)) + min(a / (1 + a), 1 / (1 + b))
    jaccard = [1 - s / (2 - s), 1.0, 1.0]  # 3 and 10 share nothing with q
    original = [0.01, 0.09, 1.0]
    pos = np.array([0.0, 1.0, 3.0, 10.0])
    dist = np.abs(pos[:, None] - pos[None, :])
    out = re_rank(dist[:1, 1:], dist[:1, :1], dist[1:, 1:], k1=1, k2=1, lambda_value=0.5)
    expected = [0.5 * j + 0.5 * o for j, o in zip(jaccard, original, strict=True)]
    np.testing.assert_allclose(out, [expected], atol=1e-6)  # float32 inside


def test_re_rank_lambda_one_is_normalised_squared_distance():
    rng = np.random.default_rng(0)
    q, g = rng.standard_normal((6, 4)), rng.standard_normal((15, 4))
    qg, qq, gg = pairwise_distance(q, g), pairwise_distance(q, q), pairwise_distance(g, g)
    out = re_rank(qg, qq, gg, k1=4, k2=2, lambda_value=1.0)
    col_max = np.maximum(np.square(qq).max(0), np.square(qg).T.max(0))  # query columns
    np.testing.assert_allclose(out, np.square(qg) / col_max[:, None], rtol=1e-5)


def test_re_rank_matches_fastreid():
    rerank = _fastreid_file("rerank")
    rng = np.random.default_rng(5)
    q, g = rng.standard_normal((25, 8)), rng.standard_normal((70, 8))
    qg, qq, gg = pairwise_distance(q, g), pairwise_distance(q, q), pairwise_distance(g, g)
    for k1, k2, lam in ((20, 6, 0.3), (5, 3, 0.0), (3, 1, 0.5)):
        ours = re_rank(qg, qq, gg, k1, k2, lam)
        np.testing.assert_allclose(ours, rerank.re_ranking(qg, qq, gg, k1, k2, lam), atol=1e-6)


# --------------------------------------------------------------------------- SynthVeh


def test_official_index_files_agree_with_id_camera_rule(request):
    from prreid_lib.datasets import load_veri776, read_veri_index

    root = request.getfixturevalue("smoke_data") / "VeRi-776"
    veri = load_veri776(root)
    q, g = veri.query, veri.gallery
    good = read_veri_index(root / "gt_index.txt", len(g))
    junk = read_veri_index(root / "jk_index.txt", len(g))
    rng = np.random.default_rng(0)
    d = rng.random((len(q), len(g)))
    by_rule = evaluate_ranking(d, q.pid, g.pid, q.camid, g.camid, max_rank=10)
    by_files = evaluate_ranking_with_index(d, good, junk, max_rank=10)
    np.testing.assert_array_equal(by_rule.cmc, by_files.cmc)
    assert by_rule.mAP == by_files.mAP and by_rule.num_valid == by_files.num_valid
    tracks = evaluate_tracks(d, q.pid, q.camid, g.pid, g.camid, veri.tracks, max_rank=5)
    assert tracks.num_valid == by_rule.num_valid  # every query has a track elsewhere
