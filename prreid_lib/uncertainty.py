"""How sure is a number? Percentile-bootstrap intervals for means and paired differences.

The book shows each of its figures beside its noise. Across training seeds the
noise is the standard deviation over seeds (:func:`prreid_lib.studies.seed_summary`);
over the images of one model (chapter 8's share of activation inside the parts)
it is a bootstrap interval: resample the images with replacement, recompute the
mean, and read the 2.5th and 97.5th percentiles of the resampled means
(Efron and Tibshirani, 1993). For a difference between two models measured on
the same images, resample the images once for both (a paired bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
