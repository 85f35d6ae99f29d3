"""Eq. 3 on hand-made logits, missing parts, label smoothing and the batch-hard triplet loss."""

from __future__ import annotations

import math

import pytest
import torch

from prreid_lib.losses import (
    ReIDLoss,
    batch_hard_triplet_loss,
    part_regularized_loss,
    part_weights,
)


def ce(logits: list[float], target: int) -> float:
    """Cross-entropy written out: -l_y + log sum_j exp(l_j)."""
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


GLOBAL = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
PART = [  # (B=2, P=2, C=3)
    [[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]],
    [[0.0, 0.0, 0.0], [5.0, -1.0, 2.0]],
]
TARGETS = [0, 1]


def _tensors(valid):
    return (
        torch.tensor(GLOBAL, requires_grad=True),
        torch.tensor(PART, requires_grad=True),
        torch.tensor(valid),
        torch.tensor(TARGETS),
    )


def test_eq3_value_on_hand_made_logits():
    g, p, v, y = _tensors([[True, True], [True, True]])
    total, global_ce, per_part = part_regularized_loss(g, p, v, y, lambdas=[1.0, 0.5])
    g_ce = [ce(GLOBAL[0], 0), ce(GLOBAL[1], 1)]  # log(1 + 2/e^2), log(2 + e) - 1
    p0 = [ce(PART[0][0], 0), ce(PART[1][0], 1)]  # log(1 + 2/e), log 3
    p1 = [ce(PART[0][1], 0), ce(PART[1][1], 1)]
    expected = sum(g_ce[i] + 1.0 * p0[i] + 0.5 * p1[i] for i in range(2)) / 2
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert global_ce.item() == pytest.approx(sum(g_ce) / 2, rel=1e-6)
    assert per_part.tolist() == pytest.approx([sum(p0) / 2, sum(p1) / 2], rel=1e-6)
    assert g_ce[0] == pytest.approx(math.log(1 + 2 * math.exp(-2)))
    assert p0[1] == pytest.approx(math.log(3))


def test_missing_part_contributes_no_loss_and_no_gradient():
    g, p, v, y = _tensors([[True, True], [True, False]])  # image 1 has no part 1
    total, _, per_part = part_regularized_loss(g, p, v, y, lambdas=[1.0, 1.0])
    g_ce = ce(GLOBAL[0], 0) + ce(GLOBAL[1], 1)
    p0 = ce(PART[0][0], 0) + ce(PART[1][0], 1)
    p1 = ce(PART[0][1], 0)  # image 1's part-1 term is gone, the divisor stays B = 2
    assert total.item() == pytest.approx((g_ce + p0 + p1) / 2, rel=1e-6)
    assert per_part[1].item() == pytest.approx(p1 / 2, rel=1e-6)
    total.backward()
    assert p.grad[1, 1].abs().sum() == 0 and p.grad[0, 1].abs().sum() > 0


def test_lambda_zero_and_parts_only():
    g, p, v, y = _tensors([[True, True], [True, True]])
    only_global, _, _ = part_regularized_loss(g, p, v, y, lambdas=[0.0, 0.0])
    assert only_global.item() == pytest.approx((ce(GLOBAL[0], 0) + ce(GLOBAL[1], 1)) / 2)
    parts_only, global_ce, _ = part_regularized_loss(None, p, v, y, lambdas=[1.0, 0.0])
    assert parts_only.item() == pytest.approx((ce(PART[0][0], 0) + ce(PART[1][0], 1)) / 2)
    assert global_ce.item() == 0.0
    with pytest.raises(ValueError, match="2 part branches"):
        part_regularized_loss(g, p, v, y, lambdas=[1.0])
    assert part_weights({"window": 0.5}, ("window", "light")) == [0.5, 0.0]
    with pytest.raises(ValueError, match="unknown parts"):
        part_weights({"wheel": 1.0}, ("window",))


def test_label_smoothing_matches_the_formula():
    eps, logits = 0.1, [2.0, 0.0, 0.0]
    logp = [v - math.log(sum(math.exp(u) for u in logits)) for v in logits]
    expected = -(1 - eps) * logp[0] - eps * sum(logp) / 3
    total, _, _ = part_regularized_loss(
        torch.tensor([logits]), None, None, torch.tensor([0]), label_smoothing=eps
    )
    assert total.item() == pytest.approx(expected, rel=1e-6)


def test_batch_hard_triplet_by_hand():
    # 1-D points 0, 1 (id 0) and 3, 5 (id 1). Per anchor (hardest pos, hardest neg):
    # 0: (1, 3) -> 0; 1: (1, 2) -> 0; 3: (2, 2) -> 0.3; 5: (2, 4) -> 0. Mean 0.075.
    x = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet_loss(x, y, margin=0.3).item() == pytest.approx(0.075, abs=1e-5)
    lone = batch_hard_triplet_loss(x[:3], torch.tensor([0, 1, 2]))  # no positives at all
    assert lone.item() == 0.0


def test_batch_hard_triplet_equals_pytorch_metric_learning():
    from pytorch_metric_learning import losses, miners, reducers
    from pytorch_metric_learning.distances import LpDistance

    torch.manual_seed(0)
    x = torch.randn(16, 8)
    y = torch.arange(4).repeat_interleave(4)
    dist = LpDistance(normalize_embeddings=False)
    miner = miners.BatchHardMiner(distance=dist)
    pml = losses.TripletMarginLoss(margin=0.3, distance=dist, reducer=reducers.MeanReducer())
    expected = pml(x, y, miner(x, y))
    assert batch_hard_triplet_loss(x, y, 0.3).item() == pytest.approx(expected.item(), rel=1e-4)


def test_reid_loss_combines_the_terms():
    torch.manual_seed(0)
    out = {
        "global_logits": torch.randn(4, 3),
        "global_feat": torch.randn(4, 5),
        "part_logits": torch.randn(4, 2, 3),
        "part_valid": torch.tensor([[True, True], [False, True], [True, True], [True, False]]),
    }
    y = torch.tensor([0, 0, 1, 1])
    crit = ReIDLoss(("window", "brand"), {"window": 1.0, "brand": 0.5}, triplet_weight=2.0)
    terms = crit(out, y)
    eq3, _, _ = part_regularized_loss(
        out["global_logits"], out["part_logits"], out["part_valid"], y, [1.0, 0.5]
    )
    trip = batch_hard_triplet_loss(out["global_feat"], y)
    assert terms.total.item() == pytest.approx((eq3 + 2.0 * trip).item(), rel=1e-6)
    assert terms.triplet.item() == pytest.approx(trip.item())
    assert terms.part_ce.shape == (2,)
