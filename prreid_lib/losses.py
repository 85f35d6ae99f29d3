"""Training losses: the part-regularized identity loss (paper Eq. 3) and the strong-recipe terms.

Eq. 3 of the paper is the identity cross-entropy of the global branch plus,
for every part p, ``lambda_p`` times the identity cross-entropy of part p's
branch, with the vehicle identity as the part label (y ~ y_p). The paper gives
no value for ``lambda_p``; our default is 1.0 for every part. Per image::

    L_i = CE(global_logits_i, y_i) + sum_p lambda_p * v_ip * CE(part_logits_ip, y_i)

where ``v_ip`` is 1 when part p was found in image i (non-empty grid mask)
and 0 otherwise: a missing part contributes no loss for that image. The batch
loss is the mean of ``L_i`` over the B images of the batch.

Options a re-id user expects from a strong baseline (Luo et al., "Bag of
Tricks", 2019): label smoothing of the cross-entropies and a batch-hard
triplet loss on the global feature; ``use_global=False`` drops the global
cross-entropy ("parts only", paper Table 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from prreid_lib.config import PART_NAMES


@dataclass
class LossTerms:
    """The total loss and its detached terms: global CE, per-part CE (P,) before lambda_p, triplet.

    Terms stay tensors (on the training device) so a training loop can sum
    them without a device synchronisation per step.
    """

    total: torch.Tensor
    global_ce: torch.Tensor
    part_ce: torch.Tensor
    triplet: torch.Tensor


def part_weights(lambda_p: Mapping[str, float], parts: Sequence[str]) -> list[float]:
    """``lambda_p`` of each of ``parts`` in order; a part absent from the mapping gets 0."""
    unknown = [p for p in lambda_p if p not in PART_NAMES]
    if unknown:
        raise ValueError(f"lambda_p has unknown parts {unknown}; valid parts are {PART_NAMES}")
    return [float(lambda_p.get(p, 0.0)) for p in parts]


def part_regularized_loss(
    global_logits: torch.Tensor | None,
    part_logits: torch.Tensor | None,
    part_valid: torch.Tensor | None,
    targets: torch.Tensor,
    lambdas: Sequence[float] = (),
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 3: mean over the batch of global CE + sum_p lambda_p * v_ip * part CE.

    ``global_logits`` (B, C) or ``None`` (parts only); ``part_logits`` (B, P, C)
    and ``part_valid`` (B, P) bool, or ``None`` without part branches;
    ``lambdas`` one weight per part. Returns the total (a scalar tensor), the
    mean global CE and the per-part mean contributions (P,) before the
    ``lambda_p`` weights (each a sum over valid images divided by B).
    """
    batch = targets.shape[0]
    zero = targets.new_zeros((), dtype=torch.float32)
    total = zero
    global_ce = zero
    if global_logits is not None:
        global_ce = F.cross_entropy(global_logits.float(), targets, label_smoothing=label_smoothing)
        total = total + global_ce
    per_part = zero.new_zeros(0)
    if part_logits is not None:
        n_parts = part_logits.shape[1]
        if len(lambdas) != n_parts:
            raise ValueError(f"lambdas has {len(lambdas)} weights for {n_parts} part branches")
        ce = F.cross_entropy(
            part_logits.float().flatten(0, 1),
            targets.repeat_interleave(n_parts),
            label_smoothing=label_smoothing,
            reduction="none",
        ).view(batch, n_parts)
        valid = part_valid.to(ce.dtype) if part_valid is not None else torch.ones_like(ce)
        per_part = (ce * valid).sum(0) / batch  # missing parts contribute zero
        weights = torch.tensor(list(lambdas), dtype=ce.dtype, device=ce.device)
        total = total + (weights * per_part).sum()
    return total, global_ce, per_part


def batch_hard_triplet_loss(
    features: torch.Tensor, targets: torch.Tensor, margin: float = 0.3
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) with Euclidean distances.

    For each anchor: its farthest same-identity sample and its closest
    other-identity sample in the batch; loss = mean over anchors of
    ``relu(d(a, p) - d(a, n) + margin)``. Anchors without a positive or a
    negative in the batch are left out. Equivalent to pytorch-metric-learning's
    ``TripletMarginLoss(margin, distance=LpDistance(normalize_embeddings=False),
    reducer=MeanReducer())`` with ``BatchHardMiner``, written out so the
    reader sees it.
    """
    x = features.float()
    sq = (x * x).sum(1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * x @ x.T).clamp_min(1e-12).sqrt()
    same = targets[:, None] == targets[None, :]
    eye = torch.eye(len(targets), dtype=torch.bool, device=x.device)
    pos_mask, neg_mask = same & ~eye, ~same
    has = pos_mask.any(1) & neg_mask.any(1)
    if not bool(has.any()):
        return x.sum() * 0.0
    hardest_pos = dist.masked_fill(~pos_mask, float("-inf")).amax(1)
    hardest_neg = dist.masked_fill(~neg_mask, float("inf")).amin(1)
    return F.relu(hardest_pos - hardest_neg + margin)[has].mean()


class ReIDLoss:
    """The training criterion: Eq. 3 (+ optional label smoothing and batch-hard triplet).

    ``parts`` are the model's part branches in order, ``lambda_p`` their
    weights (missing names count 0), ``use_global`` whether the global CE is
    used, ``triplet_weight`` > 0 adds the batch-hard triplet loss on the global
    feature (before the BNNeck, as in Bag of Tricks). Call it with the model's
    output dict and the targets; it returns :class:`LossTerms`.
    """

    def __init__(
        self,
        parts: Sequence[str],
        lambda_p: Mapping[str, float],
        use_global: bool = True,
        label_smoothing: float = 0.0,
        triplet_weight: float = 0.0,
        triplet_margin: float = 0.3,
    ) -> None:
        self.parts = tuple(parts)
        self.lambdas = part_weights(lambda_p, self.parts)
        self.use_global = use_global
        self.label_smoothing = label_smoothing
        self.triplet_weight = triplet_weight
        self.triplet_margin = triplet_margin

    def __call__(self, out: Mapping[str, torch.Tensor], targets: torch.Tensor) -> LossTerms:
        total, global_ce, per_part = part_regularized_loss(
            out["global_logits"] if self.use_global else None,
            out.get("part_logits") if self.parts else None,
            out.get("part_valid"),
            targets,
            self.lambdas,
            self.label_smoothing,
        )
        triplet = torch.zeros((), device=total.device)
        if self.triplet_weight > 0:
            triplet = batch_hard_triplet_loss(out["global_feat"], targets, self.triplet_margin)
            total = total + self.triplet_weight * triplet
        return LossTerms(total, global_ce.detach(), per_part.detach(), triplet.detach())
