"""How sure is a number? Percentile-bootstrap intervals for means and paired differences.

The book shows each of its figures beside its noise. Across training seeds the
noise is the standard deviation over seeds
(:func:`prreid_lib.studies.variants.seed_summary`);
over the images of one model (chapter 8's share of activation inside the parts)
it is a bootstrap interval: resample the images with replacement, recompute the
mean, and read the 2.5th and 97.5th percentiles of the resampled means
(Efron and Tibshirani, 1993). For a difference between two models measured on
the same images, resample the images once for both (a paired bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap confidence interval ``[low, high]`` at ``level``."""

    mean: float
    low: float
    high: float
    level: float

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval (e.g. 0 for a difference)."""
        return not self.low <= value <= self.high


def bootstrap_mean(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Mean of ``values`` (1-D, finite) and its percentile-bootstrap interval at ``level``.

    ``n_boot`` resamples of the same size, drawn with replacement by a generator
    seeded with ``seed`` (so the interval is reproducible). One value gives a
    zero-width interval.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"bootstrap_mean needs finite values, got {x.size} values")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(x.mean()), float(low), float(high), level)


def bootstrap_paired_difference(
    a, b, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> Interval:
    """``mean(b - a)`` over paired measurements (the same images) and its interval."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    return bootstrap_mean(b - a, level, n_boot, seed)


MARGIN_SE = 2.0
"""A difference is beyond the noise when it exceeds this many standard errors."""


@dataclass(frozen=True)
class Verdict:
    """A difference, its standard error, and whether it lies beyond the noise.

    ``difference`` is ``b - a`` (or value minus reference); ``se`` its standard
    error (NaN when the noise is unknown, e.g. one seed and no reference spread);
    ``basis`` says in words where ``se`` comes from.
    """

    difference: float
    se: float
    basis: str

    @property
    def known(self) -> bool:
        """Whether the noise is known (a finite standard error)."""
        return math.isfinite(self.se)

    @property
    def margin(self) -> float:
        """The threshold: :data:`MARGIN_SE` standard errors (NaN when unknown)."""
        return MARGIN_SE * self.se

    @property
    def ratio(self) -> float:
        """``|difference| / se``: inf for a difference with no noise, NaN when unknown."""
        if not self.known:
            return float("nan")
        if self.se == 0:
            return float("inf") if self.difference != 0 else 0.0
        return abs(self.difference) / self.se

    @property
    def beyond(self) -> bool:
        """Whether ``|difference|`` exceeds the margin (False when the noise is unknown)."""
        return self.known and self.ratio > MARGIN_SE

    @property
    def sign(self) -> str:
        """ "gain", "loss" or "no change": the direction of the difference."""
        return "gain" if self.difference > 0 else "loss" if self.difference < 0 else "no change"

    def words(self) -> str:
        """The book's one sentence pattern: the ratio, the basis and the verdict."""
        if not self.known:
            return f"cannot be compared with the noise ({self.basis})"
        ratio = "more than 100" if self.ratio > 100 else f"{self.ratio:.1f}"
        if ratio == f"{MARGIN_SE:.1f}":  # 1.96 or 2.04: one decimal would hide the verdict
            ratio = f"{self.ratio:.2f}"
        if self.beyond:
            return f"is {ratio} times its standard error ({self.basis}): beyond the noise"
        return f"is {ratio} times its standard error ({self.basis}): within the noise"


def _finite(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"{name} needs finite values, got {x.size} values: {x.tolist()[:5]}")
    return x


def _mean_se(x: np.ndarray, reference_sd: float | None) -> float:
    """Standard error of the mean of ``x``: its sample std over sqrt(n); with one value,
    ``reference_sd`` (the seed spread of one run measured elsewhere), else NaN."""
    if x.size > 1:
        return float(x.std(ddof=1) / math.sqrt(x.size))
    return float(reference_sd) if reference_sd is not None else float("nan")


def seed_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    reference_sd: float | None = None,
) -> Verdict:
    """Verdict on ``mean(b) - mean(a)`` where ``a`` and ``b`` hold one value per training seed.

    The standard error is ``sqrt(s_a**2 / n_a + s_b**2 / n_b)`` with the sample
    standard deviation (``ddof=1``) over seeds; a side measured with one seed
    takes ``reference_sd``, the seed spread of one run measured elsewhere (for
    example over the seeds of chapter 4), and without it the noise is unknown.
    """
    x, y = _finite(a, "seed_difference"), _finite(b, "seed_difference")
    se = math.sqrt(_mean_se(x, reference_sd) ** 2 + _mean_se(y, reference_sd) ** 2)
    if x.size > 1 or y.size > 1 or reference_sd is None:
        basis = f"seed spread over {x.size} and {y.size} seeds"
    else:
        basis = f"two single trainings, each with a seed spread of {reference_sd:.3f}"
    return Verdict(float(y.mean() - x.mean()), se, basis)


def difference_from_value(
    values: Sequence[float] | np.ndarray, reference: float, reference_sd: float | None = None
) -> Verdict:
    """Verdict on ``mean(values) - reference`` for an exact ``reference`` (e.g. a floor).

    ``values`` holds one value per seed; the standard error is that of their
    mean (``reference_sd`` when there is one value).
    """
    x = _finite(values, "difference_from_value")
    return Verdict(float(x.mean() - reference), _mean_se(x, reference_sd),
                   f"seed spread over {x.size} seeds")  # fmt: skip


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
) -> Verdict:
    """Verdict on ``mean(b - a)`` over paired measurements (the same images of two models).

    The standard error is the standard deviation of ``n_boot`` bootstrap
    resamples of the paired mean difference (seeded, so reproducible).
    """
    x, y = _finite(a, "paired_difference"), _finite(b, "paired_difference")
    if x.shape != y.shape:
        raise ValueError(f"paired values need equal lengths, got {x.size} and {y.size}")
    d = y - x
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    return Verdict(float(d.mean()), float(means.std(ddof=1)), f"bootstrap over {d.size} images")


def pair_verdict(per_seed: pd.DataFrame, base: str, other: str, metric: str = "CMC@1") -> Verdict:
    """:func:`seed_difference` of ``metric`` between two variants of a per-seed table.

    ``per_seed`` is indexed by variant name with one row per training seed
    (as ``studies.compare_over_seeds`` returns); the verdict is on
    ``other - base``.
    """
    return seed_difference(per_seed.loc[[base], metric], per_seed.loc[[other], metric])


def seed_spread(per_seed: pd.DataFrame, variants: Sequence[str], metric: str = "CMC@1") -> float:
    """The seed spread of one training: the pooled sample standard deviation of
    ``metric`` over seeds within each of ``variants`` (NaN with fewer than two seeds)."""
    variances, weights = [], []
    for name in variants:
        x = np.asarray(per_seed.loc[[name], metric], dtype=np.float64)
        if x.size > 1:
            variances.append(x.var(ddof=1))
            weights.append(x.size - 1)
    if not weights:
        return float("nan")
    return float(math.sqrt(np.average(variances, weights=weights)))


@dataclass(frozen=True)
class Ordering:
    """How the ordering of variants in a reference table (the paper's) holds in ours.

    Every pair the reference orders is ``held`` (ours agrees beyond the noise),
    ``reversed`` (ours disagrees beyond the noise) or ``unresolved``; ``spearman``
    is the rank correlation of the two columns; ``margin`` the threshold a gap
    must exceed.
    """

    held: tuple[str, ...]
    reversed: tuple[str, ...]
    unresolved: tuple[str, ...]
    spearman: float
    margin: float

    @property
    def n_pairs(self) -> int:
        """How many pairs the reference orders."""
        return len(self.held) + len(self.reversed) + len(self.unresolved)


def ordering_against(
    reference: pd.Series, ours: pd.Series, reference_sd: float | None, n_seeds: int = 1
) -> Ordering:
    """Compare the order of ``ours`` (a Series by variant) with ``reference``'s.

    Each of our values is a mean over ``n_seeds`` trainings, one training
    having the seed spread ``reference_sd``; a gap is read as an ordering when
    its :func:`seed_difference` verdict is beyond the noise (more than two
    standard errors: ``2 * sqrt(2 / n_seeds) * reference_sd``). Pairs the
    reference ties are left out.
    """
    if reference_sd is not None:
        reference_sd = reference_sd / math.sqrt(n_seeds)  # the spread of a mean over seeds
    names = [n for n in reference.index if n in ours.index]
    held, reversed_, unresolved = [], [], []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if reference[a] == reference[b]:
                continue
            hi, lo = (a, b) if reference[a] > reference[b] else (b, a)
            v = seed_difference([ours[lo]], [ours[hi]], reference_sd)
            if not v.beyond:
                unresolved.append(f"{hi} vs {lo}")
            elif v.difference > 0:
                held.append(f"{hi} > {lo}")
            else:
                reversed_.append(f"{lo} > {hi}")
    ranks = np.array([[reference[n], ours[n]] for n in names], dtype=np.float64)
    rho = float("nan")
    if len(names) > 1:
        rho = float(pd.DataFrame(ranks).rank().corr().iloc[0, 1])
    margin = seed_difference([0.0], [0.0], reference_sd).margin
    return Ordering(tuple(held), tuple(reversed_), tuple(unresolved), rho, margin)
