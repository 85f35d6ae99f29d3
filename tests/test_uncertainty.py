"""Bootstrap intervals: known means, widths that follow the spread, paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from prreid_lib.uncertainty import bootstrap_mean, bootstrap_paired_difference


def test_constant_values_give_a_zero_width_interval_at_their_mean():
    ci = bootstrap_mean([0.25] * 50)  # exactly representable
    assert (ci.mean, ci.low, ci.high) == pytest.approx((0.25, 0.25, 0.25))
    assert not ci.excludes(0.25) and ci.excludes(0.26)


def test_interval_covers_the_mean_and_shrinks_with_more_values():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.5, 0.1, 30), rng.normal(0.5, 0.1, 3000)
    a, b = bootstrap_mean(small, seed=2), bootstrap_mean(large, seed=2)
    assert a.low < small.mean() < a.high and b.low < large.mean() < b.high
    assert (b.high - b.low) < (a.high - a.low) / 5  # width ~ 1/sqrt(n): 10x more, ~1/10
    assert bootstrap_mean(small, seed=2) == a  # reproducible by seed


def test_paired_difference_sees_a_small_shift_that_unpaired_noise_would_hide():
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 1, 200)  # large spread between images
    shifted = base + 0.01 + rng.normal(0, 0.001, 200)  # the same images, shifted a little
    diff = bootstrap_paired_difference(base, shifted)
    assert diff.mean == pytest.approx(0.01, abs=1e-3) and diff.excludes(0.0)
    assert bootstrap_mean(base).high > bootstrap_mean(shifted).low  # the two means overlap


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        bootstrap_mean([0.1, float("nan")])
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean([1.0, 2.0], level=1.5)
