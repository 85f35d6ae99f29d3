"""Chapter 7's study functions and figures, on hand-made tables (no training)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer

from prreid_lib.config import get_profile
from prreid_lib.studies import baseline_strength as bs
from prreid_lib.studies import cue_study as cs
from prreid_lib.studies import resolution as rs
from prreid_lib.studies.variants import BASELINE, FULL
from prreid_lib.viz.resolution import gain_by_cue_figure, gain_vs_strength_figure

SMOKE = get_profile("smoke")


def stand_in(*, synthetic: bool = True, pretrained: str | None = "start.pt") -> SimpleNamespace:
    """What the study functions read of a StudyData: its profile, kind and start."""
    return SimpleNamespace(profile=SMOKE, synthetic=synthetic, pretrained=pretrained)


def gains_table(values: dict[float, float], base: float = 0.5) -> pd.DataFrame:
    """A cue_outside_gains table: share -> gain of CMC@1 (mAP gain half of it)."""
    rows = [
        {
            "outside_cue_share": share,
            "baseline CMC@1": base,
            "part-regularized CMC@1": base + gain,
            "gain CMC@1": gain,
            "gain mAP": gain / 2,
        }
        for share, gain in values.items()
    ]
    return pd.DataFrame(rows).set_index("outside_cue_share")


def pair_table(base: float, full: float) -> pd.DataFrame:
    """A compare_variants table of the headline pair."""
    rows = [
        {"variant": BASELINE, "CMC@1": base, "CMC@5": 0.9, "mAP": base},
        {"variant": FULL, "CMC@1": full, "CMC@5": 0.9, "mAP": full + 0.1},
    ]
    return pd.DataFrame(rows).set_index("variant")


# ------------------------------------------------------------- the verdict on the change of gain


@pytest.mark.parametrize(
    ("inside", "outside", "noise", "starts"),
    [
        (0.20, 0.00, 0.01, "smaller, as expected"),  # 0.2 >> 2 se = 2 * sqrt(2) * 0.01 * sqrt(2)
        (0.00, 0.20, 0.01, "larger, against our expectation"),
        (0.10, 0.08, 0.01, "about the same"),  # 0.02 < 2 se = 0.04
        (0.10, 0.05, 0.01, "smaller"),  # 0.05 > 0.04: just beyond
        (0.10, 0.07, 0.01, "about the same"),  # 0.03 < 0.04: just within
    ],
)
def test_the_gain_verdict_follows_the_one_rule(inside, outside, noise, starts):
    cue = cs.cue_gain_summary(gains_table({0.0: inside, 1.0: outside}), noise)
    assert cue["gain_verdict"].startswith(starts)
    assert cue["gain_inside"] == pytest.approx(inside)
    assert cue["gain_outside"] == pytest.approx(outside)
    # each gain: two trainings (sqrt(2) noise); their change: sqrt(2) more; the margin: two se
    assert cue["gain_margin"] == pytest.approx(2 * math.sqrt(2) * math.sqrt(2) * noise)


def test_the_gain_verdict_agrees_with_seed_difference():
    change = cs.gain_change(gains_table({0.0: 0.1, 0.5: 0.3, 1.0: 0.0}), 0.01)
    assert change.difference == pytest.approx(-0.1)  # first share to last, not the middle
    assert change.beyond
    assert cs.gain_change_verdict(change).startswith("smaller")


def test_an_unknown_noise_is_not_called_about_the_same():
    cue = cs.cue_gain_summary(gains_table({0.0: 0.2, 1.0: 0.0}), float("nan"))
    assert cue["gain_verdict"].startswith("not comparable with the noise")
    assert math.isnan(cue["gain_margin"])


def test_without_two_levels_the_gain_is_not_measured():
    no_level = cs.cue_outside_gains(stand_in(synthetic=False), [1.0])  # real data: no knob
    for gains, why in (
        (no_level, "no cue knob on real data"),
        (gains_table({0.0: 0.1}), "one level of the cue only"),
    ):
        cue = cs.cue_gain_summary(gains, 0.01)
        assert cue["gain_verdict"] == f"not measured ({why})"
        assert all(math.isnan(cue[k]) for k in ("gain_inside", "gain_outside", "gain_margin"))


def test_resolution_change_and_gain_margin():
    res = pd.DataFrame({"CMC@1": [0.30, 0.35, 0.50]}, index=["48 px", "56 px", "64 px"])
    change = rs.resolution_change(res, 0.05)
    assert change.difference == pytest.approx(0.20)
    assert change.se == pytest.approx(math.sqrt(2) * 0.05)
    assert "beyond the noise" in change.words()
    assert "within the noise" in rs.resolution_change(res, 0.1).words()
    assert cs.gain_margin(0.05) == pytest.approx(2 * math.sqrt(2) * 0.05)
    assert math.isnan(cs.gain_margin(float("nan")))


# ------------------------------------------------------------------- the study's levels and data


def test_study_levels_default_to_the_profile():
    assert rs.study_levels(stand_in()) == ([48, 64], [0.0, 1.0])
    assert rs.study_levels(stand_in(), [32, 96], [0.25]) == ([32, 96], [0.25])


def test_real_data_keep_their_cues():
    real = stand_in(synthetic=False)
    assert rs.with_cue_strength(real, 1.6) is real
    assert rs.with_cue_strength(stand_in(), None) is not None
    assert cs.outside_cue_data(real, SMOKE.synth.outside_cue_share) is real
    assert cs.outside_cue_data(real, 1.0) is None


def test_the_cue_study_stops_at_the_first_share_real_data_lack(monkeypatch, capsys):
    calls = []

    def fake_compare(d, variants, **kwargs):
        calls.append((d, sorted(variants), kwargs["eval_seed"]))
        return pair_table(0.4, 0.5)

    monkeypatch.setattr(cs, "compare_variants", fake_compare)
    real = stand_in(synthetic=False)
    gains = cs.cue_outside_gains(real, [0.0, 1.0, 0.0], data_seed=3)
    assert capsys.readouterr().out.strip() == cs.NO_CUE_KNOB
    assert calls == [(real, sorted([BASELINE, FULL]), 3)]
    assert list(gains.index) == [0.0] and gains.index.name == "outside_cue_share"
    assert list(gains.columns) == cs.GAIN_COLUMNS
    assert gains.loc[0.0, "gain CMC@1"] == pytest.approx(0.1)
    assert gains.loc[0.0, "gain mAP"] == pytest.approx(0.2)
    empty = cs.cue_outside_gains(real, [1.0])
    assert empty.empty and list(empty.columns) == cs.GAIN_COLUMNS


def test_the_resolution_table_trains_the_full_model_at_each_size(monkeypatch):
    def fake_compare(d, variants, **kwargs):
        assert [v["input_size"] for v in variants.values()] == [48, 64]
        assert all(
            v["lambda_p"] == rs.ABLATION_VARIANTS[FULL]["lambda_p"] for v in variants.values()
        )
        return pd.DataFrame(
            {"CMC@1": [0.2, 0.3], "train seconds": [10.0, 20.0]}, index=list(variants)
        )

    monkeypatch.setattr(rs, "compare_variants", fake_compare)
    res = rs.resolution_table(stand_in(), [48, 64])
    assert list(res.index) == ["48 px", "64 px"]
    epochs = SMOKE.train.epochs
    assert list(res["seconds per epoch"]) == [10.0 / epochs, 20.0 / epochs]


def test_the_paper_table_joins_tables_5_and_6():
    paper = rs.paper_resolution_table()
    assert list(paper.index) == [128, 256, 512]
    assert list(paper.columns) == ["CMC@1", "CMC@5", "mAP", "HIT@1", "HIT@5"]
    assert paper.loc[128, "CMC@1"] == pytest.approx(0.661)
    assert paper.loc[256, "CMC@1"] == pytest.approx(0.742)
    assert np.isnan(paper.loc[512, "CMC@1"])  # Table 5 has no 512 px


# ------------------------------------------------------------ the gain against the baseline


@pytest.mark.parametrize(
    ("pretrained", "random_start", "has_random"),
    [
        ("start.pt", None, True),  # the smoke profile's default: with the random start
        ("start.pt", False, False),
        (None, True, False),  # the start is random already
    ],
)
def test_the_settings_train_the_random_start_only_when_it_differs(
    pretrained, random_start, has_random
):
    settings = bs.strength_settings(
        stand_in(pretrained=pretrained), [0, 1], seed=5, random_start=random_start
    )
    assert ("random start" in settings) == has_random
    assert list(settings)[0] == "pretrained start (chapter 4)"
    assert list(settings)[-1] == "strong recipe (chapter 6)"
    assert settings["pretrained start (chapter 4)"][1] == [0, 1]
    strong, seeds = settings["strong recipe (chapter 6)"]
    assert seeds == [5] and all(v["recipe"] == "strong" for v in strong.values())
    if has_random:
        assert all(v["pretrained"] is None for v in settings["random start"][0].values())


def test_gain_vs_strength_has_a_row_per_setting(monkeypatch):
    def fake_over_seeds(d, variants, seeds, **kwargs):
        frames = [pair_table(0.30 + 0.02 * s, 0.40 + 0.01 * s).assign(seed=s) for s in seeds]
        return pd.concat(frames)

    monkeypatch.setattr(bs, "compare_over_seeds", fake_over_seeds)
    gains = gains_table({0.0: 0.1, 1.0: -0.05}, base=0.2)
    strength = bs.gain_vs_strength(stand_in(), gains, [0, 1], seed=0, random_start=False)
    assert list(strength.index) == [
        "pretrained start (chapter 4)",
        "strong recipe (chapter 6)",
        "cues outside the parts (1)",
    ]
    assert list(strength.columns) == bs.STRENGTH_COLUMNS
    first = strength.iloc[0]
    assert first["baseline CMC@1"] == pytest.approx(0.31)
    assert first["gain CMC@1"] == pytest.approx(0.405 - 0.31)
    assert first["seed std"] > 0 and first["seeds"] == 2
    assert np.isnan(strength.iloc[1]["seed std"]) and strength.iloc[1]["seeds"] == 1
    assert strength.iloc[2]["gain CMC@1"] == pytest.approx(-0.05)
    one_level = bs.gain_vs_strength(stand_in(), gains.iloc[:1], [0], random_start=False)
    assert len(one_level) == 2  # no cue row without a second level


def test_strength_noise_and_extremes():
    strength = pd.DataFrame(
        {
            "baseline CMC@1": [0.5, 0.2, 0.8],
            "gain CMC@1": [0.01, 0.10, -0.02],
            "seed std": [0.03, np.nan, np.nan],
            "seeds": [3, 1, 1],
        },
        index=pd.Index(["a", "b", "c"], name="setting"),
    )
    assert bs.strength_noise(strength) == pytest.approx(0.03)
    assert bs.strength_noise(strength.assign(**{"seed std": np.nan})) == 0.0
    ends = bs.strength_extremes(strength)
    assert ends == {
        "weak_setting": "b",
        "weak_base": pytest.approx(0.2),
        "weak_gain": pytest.approx(0.10),
        "strong_setting": "c",
        "strong_base": pytest.approx(0.8),
        "strong_gain": pytest.approx(-0.02),
    }


# ------------------------------------------------------------------------------- the figures


def test_gain_by_cue_figure_draws_two_bars_per_share():
    gains = gains_table({0.0: 0.1, 0.5: 0.05, 1.0: -0.02})
    fig = gain_by_cue_figure(gains, 0.04, 3)
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert len(ax.patches) == 6
    heights = [p.get_height() for p in ax.patches]
    assert heights[:3] == pytest.approx([0.1, 0.05, -0.02])  # CMC@1
    assert heights[3:] == pytest.approx([0.05, 0.025, -0.01])  # mAP
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.5", "1"]
    assert "3 seeds" in ax.get_legend().get_title().get_text()
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer) and c.errorbar]
    (segments,) = bars.errorbar.lines[2]
    assert all(s[1, 1] - s[0, 1] == pytest.approx(0.08) for s in segments.get_segments())
    plt.close(fig)


def test_gain_by_cue_figure_draws_no_error_bar_for_an_unknown_noise():
    fig = gain_by_cue_figure(gains_table({0.0: 0.1, 1.0: 0.0}), float("nan"), 1)
    (bars,) = [c for c in fig.axes[0].containers if isinstance(c, BarContainer) and c.errorbar]
    (segments,) = bars.errorbar.lines[2]
    assert all(s[1, 1] == s[0, 1] for s in segments.get_segments())
    plt.close(fig)


def test_gain_vs_strength_figure_draws_a_point_per_setting():
    strength = pd.DataFrame(
        {
            "baseline CMC@1": [0.3, 0.6],
            "gain CMC@1": [0.05, -0.01],
            "seed std": [0.02, np.nan],
            "seeds": [3, 1],
        },
        index=pd.Index(["pretrained", "strong"], name="setting"),
    )
    fig = gain_vs_strength_figure(strength, 0.02, {"CMC@1": 0.25})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["make-model-colour oracle", "pretrained (3 seeds)", "strong (1 seed)"]
    points = [line.get_xydata()[0].tolist() for line in ax.lines if line.get_marker() == "o"]
    assert points == [[0.3, 0.05], [0.6, -0.01]]
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(bars) == 2
    assert all(
        seg[1, 1] - seg[0, 1] == pytest.approx(0.04) for b in bars for seg in b.get_segments()
    )
    plt.close(fig)
    fig = gain_vs_strength_figure(strength, 0.02, None)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "make-model-colour oracle" not in labels
    plt.close(fig)


# ----------------------------------------------------------- the tables and the words shown


def test_display_table_shows_a_dash_never_nan():
    shown = rs.display_table(rs.paper_resolution_table())
    assert shown.loc[512, "CMC@1"] == rs.MISSING  # Table 5 has no 512 px
    assert shown.loc[128, "CMC@1"] == "0.661" and shown.loc[512, "mAP"] == "0.743"
    assert "nan" not in shown.to_string().lower()
    strength = pd.DataFrame(
        {"gain CMC@1": [0.1, -0.02], "seed std": [0.0123, np.nan], "seeds": [3, 1]},
        index=["a", "b"],
    )
    shown = rs.display_table(strength)
    assert list(shown.columns) == ["difference CMC@1", "seed std", "seeds"]
    assert list(shown["seed std"]) == ["0.012", rs.MISSING]
    assert list(shown["difference CMC@1"]) == ["0.100", "-0.020"]
    assert list(shown["seeds"]) == [3, 1]  # integers as they are
    gone = rs.display_table(strength.assign(**{"seed std": np.nan}))
    assert "seed std" not in gone.columns  # no value at all: left out
    kept = rs.display_table(pd.DataFrame({"cue strength": [1.6, 3.2]}), keep=["cue strength"])
    assert list(kept["cue strength"]) == [1.6, 3.2]
    empty = rs.display_table(pd.DataFrame(columns=cs.GAIN_COLUMNS))
    assert list(empty.columns) == ["baseline CMC@1", "part-regularized CMC@1",
                                   "difference CMC@1", "difference mAP"]  # fmt: skip


def test_an_unknown_seed_spread_is_said_in_words_not_as_nan():
    known = rs.single_training_difference(0.3, 0.5, 0.05)
    assert known.difference == pytest.approx(0.2) and known.se == pytest.approx(0.05 * 2**0.5)
    unknown = rs.single_training_difference(0.3, 0.5, float("nan"))
    assert unknown.difference == pytest.approx(0.2) and not unknown.known
    assert unknown.words() == f"cannot be compared with the noise ({rs.UNKNOWN_NOISE})"
    res = pd.DataFrame({"CMC@1": [0.30, 0.50]}, index=["48 px", "64 px"])
    assert "nan" not in rs.resolution_change(res, float("nan")).words()
    change = cs.gain_change(gains_table({0.0: 0.1, 1.0: 0.0}), 0.01)
    assert "two differences" in change.basis and change.beyond


@pytest.mark.parametrize(
    ("inside", "outside", "conclusion"),
    [
        (0.20, 0.00, "Part regularization helps with every cue inside the parts and helps less"),
        (0.20, 0.18, "Part regularization helps with every cue inside the parts, but moving"),
        (0.20, 0.40, "Part regularization helps with every cue inside the parts and more once"),
        (
            -0.10,
            -0.10,
            "The study does not find the condition under which part regularization helps: even "
            "with every cue inside the parts it lowers CMC@1 beyond the noise, and moving the "
            "cue out of the parts leaves the difference within the noise.",
        ),
        (
            0.01,
            -0.10,
            "The study does not find the condition under which part regularization helps: even "
            "with every cue inside the parts it does not change CMC@1 beyond the noise, and "
            "moving the cue out of the parts lowers the difference beyond the noise.",
        ),
    ],
)
def test_the_cue_study_concludes_what_its_verdicts_support(inside, outside, conclusion):
    # noise 0.01: one difference has se 0.014 (margin 0.028), their change se 0.02 (0.04)
    words = cs.cue_study_words(gains_table({0.0: inside, 1.0: outside}), 0.01)
    assert words["conclusion"].startswith(conclusion)
    reading = words["reading"]
    assert reading.startswith(
        f"With every cue inside the parts, part-regularized minus baseline CMC@1 is {inside:+.3f}"
    )
    assert f"with every cue outside the parts, it is {outside:+.3f}" in reading
    assert f"changes by {outside - inside:+.3f}" in reading
    assert reading.count("times its standard error") == 3
    if inside < 0:  # a loss is never read as help
        assert not words["conclusion"].startswith("Part regularization helps")


def test_the_cue_study_words_without_noise_or_levels():
    words = cs.cue_study_words(gains_table({0.0: -0.1, 0.5: 0.0}), float("nan"))
    assert words["conclusion"].startswith("With one training seed the seed spread is unknown")
    assert "with 0.5 of the cue outside the parts" in words["reading"]
    assert "nan" not in words["reading"].lower()
    none = cs.cue_study_words(gains_table({0.0: 0.1}), 0.01)
    assert none["reading"] == "The cue study was not measured (one level of the cue only)."


def test_the_linearity_answer_predicts_from_the_line_and_its_noise():
    gains = gains_table({0.0: 0.1, 1.0: -0.1})
    answer = cs.linearity_answer(gains, 0.01)
    assert "(+0.100 at 0, -0.100 at 1)" in answer
    assert "predicts part-regularized minus baseline +0.050 at 0.25" in answer
    # 2 se of (new point - line): sqrt(2) * 0.01 * sqrt(1 + 0.75**2 + 0.25**2) = 0.018
    assert "more than 0.036 from that value" in answer
    assert "no distance" in cs.linearity_answer(gains, float("nan"))
    assert "not measured" in cs.linearity_answer(gains.iloc[:1], 0.01)


def test_the_map_is_read_for_the_profiles_start_and_grid():
    regime = pd.DataFrame(
        {
            "start": ["pretrained", "pretrained", "pretrained", "random"],
            "cue strength": [3.2, 1.6, 1.6, 3.2],
            "grid": ["4 x 4", "4 x 4", "8 x 8", "4 x 4"],
            "seeds": [2, 1, 1, 2],
            "difference": [-0.058, -0.032, -0.010, 0.001],
            "difference / SE": [3.1, 1.2, 0.4, 0.1],
            "verdict": ["loss", "within noise", "within noise", "within noise"],
        }
    )
    assert cs.map_cue_reading(regime, stand_in()) == (
        "On the map, with the pretrained start and the 4 x 4 grid, part-regularized minus "
        "baseline CMC@1 is -0.032 at cue strength 1.6 (1.2 times its standard error (one "
        "seed, pooled spread): within the noise); -0.058 at cue strength 3.2 (3.1 times its "
        "standard error (seed spread over 2 and 2 seeds): beyond the noise)."
    )
    assert "+0.001 at cue strength 3.2" in cs.map_cue_reading(regime, stand_in(pretrained=None))
    none = cs.map_cue_reading(regime.iloc[:0], stand_in())
    assert none == "The map has no setting with the pretrained start and the 4 x 4 grid."
