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


# ----------------------------------------------------------------- the one verdict rule


def test_seed_difference_beyond_the_noise_when_seeds_agree():
    from prreid_lib.uncertainty import seed_difference

    v = seed_difference([0.230, 0.236, 0.233], [0.198, 0.202, 0.194])
    # se = sqrt(.003**2/3 + .004**2/3) = .00289; difference -.035 is 12 se
    assert v.difference == pytest.approx(-0.035)
    assert v.se == pytest.approx(np.sqrt(0.003**2 / 3 + 0.004**2 / 3))
    assert v.beyond and v.sign == "loss" and v.ratio == pytest.approx(0.035 / v.se)
    assert "beyond the noise" in v.words() and "3 and 3 seeds" in v.words()


def test_seed_difference_within_the_noise_when_seeds_scatter():
    from prreid_lib.uncertainty import seed_difference

    v = seed_difference([0.14, 0.23, 0.18], [0.20, 0.16, 0.25])  # spread .045, shift +.02
    assert not v.beyond and v.ratio < 2 and "within the noise" in v.words()


def test_the_margin_is_two_standard_errors_exactly():
    from prreid_lib.uncertainty import MARGIN_SE, Verdict

    assert MARGIN_SE == 2.0
    assert not Verdict(0.02, 0.01, "x").beyond  # exactly at the margin: not beyond
    assert Verdict(0.0201, 0.01, "x").beyond and Verdict(-0.0201, 0.01, "x").beyond
    assert Verdict(0.02, 0.01, "x").margin == pytest.approx(0.02)


def test_single_runs_need_a_reference_spread():
    from prreid_lib.uncertainty import seed_difference

    unknown = seed_difference([0.20], [0.25])
    assert not unknown.known and not unknown.beyond and "cannot be compared" in unknown.words()
    known = seed_difference([0.20], [0.25], reference_sd=0.01)  # se = sqrt(2) * .01
    assert known.se == pytest.approx(np.sqrt(2) * 0.01) and known.beyond
    assert not seed_difference([0.20], [0.22], reference_sd=0.01).beyond  # 1.4 se


def test_difference_from_an_exact_value():
    from prreid_lib.uncertainty import difference_from_value

    above = difference_from_value([0.23, 0.24, 0.235], 0.160)
    assert above.beyond and above.sign == "gain"
    at = difference_from_value([0.15, 0.17, 0.16], 0.160)
    assert at.difference == pytest.approx(0.0) and not at.beyond


def test_paired_difference_each_way():
    from prreid_lib.uncertainty import paired_difference

    rng = np.random.default_rng(4)
    base = rng.uniform(0, 1, 300)
    moved = paired_difference(base, base + 0.01 + rng.normal(0, 0.002, 300))
    assert moved.beyond and moved.difference == pytest.approx(0.01, abs=0.001)
    still = paired_difference(base, base + rng.normal(0, 0.05, 300))
    assert not still.beyond and "bootstrap over 300 images" in still.words()


def test_verdicts_refuse_bad_values():
    from prreid_lib.uncertainty import paired_difference, seed_difference

    with pytest.raises(ValueError, match="finite"):
        seed_difference([], [0.1])
    with pytest.raises(ValueError, match="finite"):
        seed_difference([np.nan], [0.1])
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([0.1, 0.2], [0.1])


def _per_seed(values: dict[str, list[float]]):
    import pandas as pd

    rows = [(name, v, s) for name, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["variant", "CMC@1", "seed"]).set_index("variant")


def test_pair_verdict_and_pooled_spread_from_a_per_seed_table():
    from prreid_lib.uncertainty import pair_verdict, seed_spread

    table = _per_seed({"base": [0.230, 0.236, 0.233], "full": [0.198, 0.202, 0.194]})
    v = pair_verdict(table, "base", "full")
    assert v.difference == pytest.approx(-0.035) and v.beyond
    pooled = np.sqrt((0.003**2 + 0.004**2) / 2)  # equal seed counts: the mean variance
    assert seed_spread(table, ["base", "full"]) == pytest.approx(pooled)
    assert np.isnan(seed_spread(_per_seed({"base": [0.2]}), ["base"]))


def test_ordering_counts_held_reversed_and_unresolved_pairs():
    import pandas as pd

    from prreid_lib.uncertainty import ordering_against

    paper = pd.Series({"a": 0.74, "b": 0.70, "c": 0.65, "d": 0.65})
    ours = pd.Series({"a": 0.30, "b": 0.20, "c": 0.29, "d": 0.10})
    o = ordering_against(paper, ours, reference_sd=0.01)  # margin 2 * sqrt(2) * .01 = .028
    assert o.margin == pytest.approx(2 * np.sqrt(2) * 0.01)
    assert o.held == ("a > b", "a > d", "b > d")  # c, d tied in the paper: left out
    assert o.reversed == ("c > b",)
    assert o.unresolved == ("a vs c",) and o.n_pairs == 5
    from scipy.stats import spearmanr

    assert o.spearman == pytest.approx(spearmanr(paper, ours[paper.index]).statistic)
    four = ordering_against(paper, ours, reference_sd=0.01, n_seeds=4)  # margin halves: .014
    assert four.margin == pytest.approx(np.sqrt(2) * 0.01) and "a > c" not in four.held
    assert (
        ordering_against(paper, ours.add(pd.Series({"c": -0.015}), fill_value=0), 0.01, 4).held[1]
        == "a > c"
    )
    unknown = ordering_against(paper, ours, reference_sd=None)
    assert unknown.held == () and len(unknown.unresolved) == 5


def test_a_ratio_next_to_the_threshold_shows_the_side_it_falls_on():
    from prreid_lib.uncertainty import Verdict

    within = Verdict(-0.0198, 0.01, "seed spread over 3 and 3 seeds")
    beyond = Verdict(0.0204, 0.01, "seed spread over 3 and 3 seeds")
    assert within.words().startswith("is 1.98 times") and within.words().endswith(
        "within the noise"
    )
    assert beyond.words().startswith("is 2.04 times") and beyond.words().endswith(
        "beyond the noise"
    )
    assert Verdict(0.031, 0.01, "x").words().startswith("is 3.1 times")
