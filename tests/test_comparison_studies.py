"""Chapter 4's headline comparison and chapter 6's ablation table, on hand-made tables;
their figures (learning curves, pretraining curve, changes over the baseline)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer

from prreid_lib.studies import (
    ABLATION_VARIANTS,
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    LABELS,
    PAPER_LABEL,
    Variant,
    ablation,
    comparison,
)
from prreid_lib.studies.variants import loss_trend, training_state
from prreid_lib.uncertainty import Ordering, Verdict
from prreid_lib.viz.training import (
    change_over_baseline_bars,
    learning_curves,
    pretraining_curve,
)

OURS = "ours (SynthVeh, smoke)"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def per_seed_table() -> pd.DataFrame:
    """Two seeds of the baseline and the full model, as ``compare_over_seeds`` returns."""
    rows = [
        (BASELINE, 0, 0.30, 0.50, 0.40, 0.90, 0.60),
        (BASELINE, 1, 0.34, 0.54, 0.44, 0.80, 0.60),
        (FULL, 0, 0.50, 0.70, 0.55, 0.95, 0.70),
        (FULL, 1, 0.60, 0.80, 0.65, 0.85, 0.70),
    ]
    columns = ["variant", "seed", "CMC@1", "CMC@5", "mAP", "train accuracy", "identities"]
    return pd.DataFrame(rows, columns=columns).set_index("variant")


def history(parts: tuple[str, ...] = ("window", "light", "brand"), epochs: int = 3):
    h = pd.DataFrame({"epoch": range(1, epochs + 1), "global_ce": [3.0, 2.0, 1.5]})
    h["global_acc"] = [0.2, 0.5, 0.7]
    h["seconds"] = [1.2, 1.1, 1.0]
    for i, part in enumerate(parts):
        h[f"ce_{part}"] = [2.0 + i, 1.5 + i, 1.0 + i]
        h[f"acc_{part}"] = [0.1, 0.3 + i / 10, 0.6 + i / 10]
    return h


ORACLE = {"identities": 12, "groups": 4, "CMC@1": 0.25, "CMC@5": 1.0, "mAP": 0.52}


# ----------------------------------------------------------------- chapter 4


def test_training_seeds_take_the_given_seeds_or_the_profiles_count_from_the_first():
    profile = SimpleNamespace(n_seeds=3)
    assert comparison.training_seeds(profile, None, first=5) == [5, 6, 7]
    assert comparison.training_seeds(profile, [], first=2) == [2, 3, 4]
    assert comparison.training_seeds(profile, [9, 4], first=0) == [9, 4]


def test_headline_pair_sets_the_epochs_of_both_models_without_touching_the_pair():
    assert comparison.headline_pair(None) == HEADLINE_PAIR
    longer = comparison.headline_pair(14)
    assert list(longer) == [BASELINE, FULL]
    assert all(v["epochs"] == 14 for v in longer.values())
    assert longer[FULL]["lambda_p"] == HEADLINE_PAIR[FULL]["lambda_p"]
    assert all("epochs" not in v for v in HEADLINE_PAIR.values())


def test_describe_training_data_counts_images_and_identities():
    train = pd.DataFrame({"pid": [1, 1, 2, 3, 3, 3]})
    data = SimpleNamespace(vehicleid=SimpleNamespace(train=train), part_source="ground truth")
    text = comparison.describe_training_data(data)
    assert text.splitlines() == [
        "part boxes for training: ground truth",
        "train: 6 images of 3 identities",
    ]


def test_pretraining_summary_reads_the_start_or_names_what_the_models_start_from():
    h = history(parts=())
    result = SimpleNamespace(history=h, info={"num_images": 240, "num_classes": 8})
    start = comparison.pretraining_summary(SimpleNamespace(start=SimpleNamespace(result=result)))
    assert start.text == "240 images, 8 groups, 3 epochs in 3 s"
    assert start.accuracy == pytest.approx(0.7)
    assert start.groups == 8
    none = comparison.pretraining_summary(SimpleNamespace(start=None, pretrained=None))
    assert none.text == "start: random initialisation"
    assert math.isnan(none.accuracy) and none.groups == 0
    given = comparison.pretraining_summary(SimpleNamespace(start=None, pretrained="r50.pth"))
    assert given.text == "start: r50.pth"


def test_headline_table_keeps_the_chapter_columns_and_names_rows_as_the_paper():
    summary = comparison.seed_summary(per_seed_table())
    table = comparison.headline_table(summary)
    assert list(table.columns) == ["CMC@1", "CMC@5", "mAP", "CMC@1 std over seeds", "seeds"]
    assert list(table.index) == [LABELS[BASELINE], LABELS[FULL]]
    assert table.loc[LABELS[FULL], "CMC@1"] == pytest.approx(0.55)


def test_headline_caption_adds_the_oracle_line_only_when_there_is_an_oracle():
    data = SimpleNamespace(label=OURS, tests={"small": None, "large": None})
    lines = comparison.headline_caption(data, per_seed_table(), [0, 1], ORACLE).splitlines()
    assert lines[0] == (
        f"{OURS}, VehicleID protocol, test set 'large' (0 identities), means over seeds [0, 1]"
    )
    assert lines[1] == (
        "make-model-colour oracle (exact expectation): CMC@1 0.250, CMC@5 1.000, "
        "mAP 0.520 (4 groups)"
    )
    assert len(comparison.headline_caption(data, per_seed_table(), [0, 1], None).splitlines()) == 1


def test_headline_numbers_read_the_gain_against_the_seed_spread():
    per_seed = per_seed_table()
    full_run = SimpleNamespace(history=history())
    numbers = comparison.headline_numbers(per_seed, full_run, ORACLE)
    assert numbers.base_cmc1 == pytest.approx(0.32)
    assert numbers.pr_cmc1 == pytest.approx(0.55)
    assert numbers.gain_cmc1 == pytest.approx(0.23)
    assert numbers.gain_map == pytest.approx(0.60 - 0.42)
    assert numbers.noise_cmc1 == pytest.approx(0.05)  # population std of 0.50, 0.60
    assert numbers.base_train_acc == pytest.approx(0.85)
    assert numbers.pr_train_acc == pytest.approx(0.90)
    assert numbers.pr_window_acc == pytest.approx(0.6)
    # the standard error of a difference of two means over two seeds each
    se = math.sqrt(np.var([0.30, 0.34], ddof=1) / 2 + np.var([0.5, 0.6], ddof=1) / 2)
    assert numbers.verdict == (
        f"is {0.23 / se:.1f} times its standard error (seed spread over 2 and 2 seeds): "
        "beyond the noise"
    )
    assert numbers.margin_cmc1 == pytest.approx(2 * se)
    assert numbers.outlook.startswith(f"At {0.23 / se:.1f} times its standard error")
    assert "(the part-regularized model above the baseline)" in numbers.outlook
    assert numbers.floor_text.startswith(
        "On this test set (4 groups) its expected figures are CMC@1 0.250, CMC@5 1.000, mAP 0.520"
    )
    # the baseline's seeds: CMC@1 .30/.34 (+.07 over .25), CMC@5 .50/.54 (-.48 under 1.0),
    # mAP .40/.44 (-.10 under .52); each with a standard error of .02
    assert "The baseline lies above the floor at CMC@1 (0.320 against 0.250; +0.070" in (
        numbers.floor_text
    )
    assert "but below it at CMC@5 (0.520 against 1.000; -0.480" in numbers.floor_text
    assert "and mAP (0.420 against 0.520; -0.100, which is 5.0 times" in numbers.floor_text
    assert "orders the rest of the gallery worse" in numbers.floor_text
    assert numbers.floor_summary == (
        "The baseline lies above the floor at CMC@1, but below it at CMC@5 and mAP."
    )
    assert all(isinstance(v, float) for v in (numbers.gain_cmc1, numbers.noise_cmc1))


def test_rerun_outlook_follows_the_verdict_sign_and_noise():
    loss = comparison.rerun_outlook(Verdict(-0.035, 0.006, "seeds"))
    assert loss.startswith("At 5.8 times its standard error the difference is beyond the noise")
    assert "(the part-regularized model below the baseline)" in loss
    assert f"about {math.sqrt(2) * 0.006:.3f}" in loss
    within = comparison.rerun_outlook(Verdict(0.005, 0.006, "seeds"))
    assert "within the noise: other seeds may give either sign" in within
    assert "beyond 2 standard errors (0.012 here)" in within
    unknown = comparison.rerun_outlook(Verdict(0.005, float("nan"), "one seed"))
    assert unknown.startswith("With one seed the noise is unknown")


def run_with(loss: list[float], acc: list[float]) -> SimpleNamespace:
    return SimpleNamespace(history=pd.DataFrame({"global_ce": loss, "global_acc": acc}))


def test_training_state_reads_the_last_epoch_of_each_run_and_the_seed_mean_accuracy():
    runs = {BASELINE: run_with([3.0, 2.5, 2.0], [0.2, 0.3, 0.4]), FULL: run_with([2.0], [0.1])}
    state = training_state(per_seed_table(), runs)
    assert list(state.index) == [BASELINE, FULL]
    assert state.loc[BASELINE].tolist() == pytest.approx([0.85, 2.0, 0.2, 0.1])
    assert state.loc[FULL, "train accuracy (mean over seeds)"] == pytest.approx(0.90)
    assert state.loc[FULL, "last-epoch loss"] == 2.0
    assert math.isnan(state.loc[FULL, "last-epoch loss drop"])  # one epoch: no change
    assert math.isnan(state.loc[FULL, "last-epoch accuracy change"])


def test_loss_trend_names_falling_flat_rising_and_unknown():
    assert loss_trend(0.2) == "still falling"
    assert loss_trend(0.005) == loss_trend(-0.005) == "flat"
    assert loss_trend(-0.05) == "rising"
    assert loss_trend(float("nan")) == "unknown"


def test_train_accuracy_text_sets_the_baseline_against_the_target():
    state = training_state(
        per_seed_table(), {BASELINE: run_with([2.0], [0.1]), FULL: run_with([2.0], [0.1])}
    )
    text = comparison.train_accuracy_text(state, target=0.80)
    assert text == (
        "Training accuracy of the global classifier at the last epoch (mean over seeds): "
        "0.850 for the baseline and 0.900 for the part-regularized model; the baseline "
        "reaches the 0.800 the book sets as a quality target for it with the quick profile."
    )
    assert "the baseline stays below the 0.900" in comparison.train_accuracy_text(state, 0.9)


def test_learning_curve_text_says_whether_each_loss_still_falls():
    falling = {BASELINE: run_with([3.0, 2.0], [0.1, 0.2]), FULL: run_with([2.0, 1.5], [0.1, 0.2])}
    text = comparison.learning_curve_text(training_state(per_seed_table(), falling))
    assert text == (
        "In the last epoch (first seed) the global identity loss dropped 33.3 % for the "
        "baseline (still falling) and dropped 25.0 % for the part-regularized model (still "
        "falling): neither model had finished learning when training stopped."
    )
    mixed = {BASELINE: run_with([2.0, 2.01], [0.1, 0.2]), FULL: run_with([2.0, 2.2], [0.1, 0.1])}
    text = comparison.learning_curve_text(training_state(per_seed_table(), mixed))
    assert "rose 0.5 % for the baseline (flat)" in text
    assert "rose 10.0 % for the part-regularized model (rising)." in text
    single = {BASELINE: run_with([2.0], [0.1]), FULL: run_with([2.0], [0.1])}
    assert "no last-epoch change" in comparison.learning_curve_text(
        training_state(per_seed_table(), single)
    )


def test_floor_text_without_an_oracle_says_the_floor_cannot_be_computed():
    text = comparison.floor_text([0.3, 0.34], None)
    assert text.startswith("This test set has no make, model and colour labels")


def test_labelled_histories_name_each_run_by_its_label():
    runs = {BASELINE: SimpleNamespace(history=history(())), "mine": SimpleNamespace(history=1)}
    assert list(comparison.labelled_histories(runs)) == [LABELS[BASELINE], "mine"]


# ----------------------------------------------------------------- chapter 6


def test_ablation_variants_leave_out_the_parts_only_row_without_test_part_boxes():
    assert ablation.ablation_variants(SimpleNamespace(test_part_boxes=pd.DataFrame())) == (
        ABLATION_VARIANTS
    )
    without = ablation.ablation_variants(SimpleNamespace(test_part_boxes=None))
    assert Variant.PARTS_ONLY not in without and len(without) == len(ABLATION_VARIANTS) - 1


def ours_summary() -> pd.DataFrame:
    ours = pd.DataFrame(
        {"CMC@1": [0.40, 0.30, 0.25], "CMC@5": [0.6, 0.5, 0.45], "mAP": [0.5, 0.4, 0.35]},
        index=[FULL, Variant.GLOBAL_WINDOW, BASELINE],
    )
    return ours


def test_ablation_table_joins_ours_to_the_papers_rows_by_key_in_our_order():
    variants = [FULL, Variant.GLOBAL_WINDOW, BASELINE]
    table = ablation.ablation_table(ours_summary(), variants, OURS)
    assert list(table.index) == variants
    assert list(table.columns) == [
        f"{PAPER_LABEL} CMC@1",
        f"{PAPER_LABEL} CMC@5",
        f"{OURS} CMC@1",
        f"{OURS} CMC@5",
        f"{OURS} mAP",
        f"{OURS} change of CMC@1 over the baseline",
        f"{PAPER_LABEL} change of CMC@1 over the baseline",
    ]
    assert table.loc[Variant.GLOBAL_WINDOW, f"{PAPER_LABEL} CMC@1"] == pytest.approx(0.707)
    paper_change = table[f"{PAPER_LABEL} change of CMC@1 over the baseline"]
    assert paper_change[FULL] == pytest.approx(0.742 - 0.645)
    assert table[f"{OURS} change of CMC@1 over the baseline"].tolist() == pytest.approx(
        [0.15, 0.05, 0.0]
    )


def test_changes_over_baseline_drop_the_baseline_and_name_rows_as_the_paper():
    variants = [FULL, Variant.GLOBAL_WINDOW, BASELINE]
    table = ablation.ablation_table(ours_summary(), variants, OURS)
    changes = ablation.changes_over_baseline(table, OURS)
    assert list(changes.columns) == [PAPER_LABEL, OURS]
    assert list(changes.index) == [LABELS[FULL], LABELS[Variant.GLOBAL_WINDOW]]
    assert changes[OURS].tolist() == pytest.approx([0.15, 0.05])


def test_headline_noise_pools_chapter_4s_seeds_of_the_pair(monkeypatch):
    calls = {}

    def fake_compare(data, variants, seeds, **kw):
        calls.update(variants=variants, seeds=list(seeds), **kw)
        return per_seed_table()

    monkeypatch.setattr(comparison, "compare_over_seeds", fake_compare)
    data = SimpleNamespace(profile=SimpleNamespace(n_seeds=2))
    noise, n = comparison.headline_noise(data, first=3, eval_seed=7)
    assert calls["variants"] == HEADLINE_PAIR and calls["seeds"] == [3, 4]
    assert calls["eval_seed"] == 7 and n == 2
    pooled = math.sqrt((np.var([0.30, 0.34], ddof=1) + np.var([0.5, 0.6], ddof=1)) / 2)
    assert noise == pytest.approx(pooled)


def recipes_table() -> pd.DataFrame:
    return pd.DataFrame(
        {"CMC@1": [0.30, 0.34, 0.20, 0.40]},
        index=[BASELINE, FULL, "strong baseline", "strong + parts"],
    )


def test_recipe_comparison_sets_the_chosen_seeds_pair_beside_the_strong_one(monkeypatch):
    strong = pd.DataFrame(
        {c: [0.2, 0.4] for c in ablation.RECIPE_COLUMNS}, index=list(ablation.STRONG_PAIR)
    )
    seen = {}

    def fake_compare(data, variants, **kw):
        seen.update(variants=variants, **kw)
        return strong

    monkeypatch.setattr(ablation, "compare_variants", fake_compare)
    runs = pd.concat([per_seed_table(), per_seed_table()]).assign(**{"train seconds": 5.0})
    runs["seed"] = [0, 1, 0, 1, 2, 3, 2, 3]
    recipes = ablation.recipe_comparison(SimpleNamespace(), runs, seed=1, eval_seed=4)
    assert all(v["recipe"] == "strong" for v in seen["variants"].values())
    assert seen["seed"] == 1 and seen["eval_seed"] == 4
    assert list(recipes.index) == [BASELINE, FULL, "strong baseline", "strong + parts"]
    assert list(recipes.columns) == ablation.RECIPE_COLUMNS
    assert recipes["CMC@1"].tolist()[:2] == [0.34, 0.60]  # seed 1's rows


def test_recipe_verdicts_read_each_gain_against_the_paper_recipes_spread():
    v = ablation.recipe_verdicts(recipes_table(), noise=0.02)  # se: sqrt(2) * 0.02
    assert v.paper_gain == pytest.approx(0.04)
    assert v.strong_gain == pytest.approx(0.20)
    assert v.strong_vs_plain == "below"
    assert v.paper_verdict.endswith("within the noise")  # 1.4 standard errors
    assert v.strong_verdict.endswith("beyond the noise")  # 7.1 standard errors
    unknown = ablation.recipe_verdicts(recipes_table(), noise=float("nan"))
    assert unknown.paper_verdict.startswith("cannot be compared with the noise")


def test_variant_verdict_takes_the_seed_spread_of_one_training_for_single_seeds():
    one_seed = pd.DataFrame({"CMC@1": [0.20, 0.26]}, index=[BASELINE, Variant.GLOBAL_WINDOW])
    v = ablation.variant_verdict(one_seed, Variant.GLOBAL_WINDOW, noise=0.01)
    assert v.difference == pytest.approx(0.06)
    assert v.se == pytest.approx(math.sqrt(2) * 0.01)
    assert v.beyond and "two single trainings" in v.basis
    unknown = ablation.variant_verdict(one_seed, Variant.GLOBAL_WINDOW, noise=float("nan"))
    assert not unknown.known
    two_seeds = ablation.variant_verdict(per_seed_table(), FULL, noise=1.0)  # own spread
    assert two_seeds.basis == "seed spread over 2 and 2 seeds"
    assert two_seeds.difference == pytest.approx(0.23)


def test_ordering_text_states_the_correlation_the_counts_and_what_they_say():
    order = Ordering(("a > b",), ("c > d", "e > f"), ("g vs h",) * 3, 0.4312, 0.02)
    text = ablation.ordering_text(order)
    assert text.startswith(
        "The Spearman rank correlation of our CMC@1 with the paper's Table 4 is 0.431 "
    )
    assert (
        "Of the 6 pairs of variants the paper orders, 1 holds beyond the noise, 2 are "
        "reversed beyond it and 3 are unresolved (their gap lies within 0.020)"
    ) in text
    assert text.endswith(
        "more of the resolved orderings contradict the paper's than agree with it."
    )
    agree = ablation.ordering_text(Ordering(("a > b", "c > d"), (), ("e vs f",), 0.9, 0.02))
    assert agree.endswith("every ordering this data resolves agrees with the paper's.")
    assert "1 is unresolved" in agree
    none = ablation.ordering_text(Ordering((), (), ("a vs b",), float("nan"), float("nan")))
    assert "cannot be computed" in none and "(the noise is unknown)" in none
    assert none.endswith("this data neither confirms nor contradicts any of them.")


# ----------------------------------------------------------------- figures


def test_pretraining_curve_draws_one_accuracy_line_on_a_unit_scale():
    fig = pretraining_curve(history(()))
    (ax,) = fig.axes
    assert len(ax.lines) == 1
    assert ax.get_title() == "pretraining: make-model-colour group"
    assert ax.get_ylim() == (0, 1)


def test_learning_curves_draw_global_and_part_curves_on_three_of_four_axes():
    histories = {"Baseline": history(()), "Part-reg.": history()}
    fig = learning_curves(histories, part_history=history(("window", "light")))
    losses, accuracy, parts, empty = fig.axes
    assert len(losses.lines) == 2 + 2  # two global losses, two part losses
    assert [ln.get_label() for ln in losses.lines][-1] == "part-reg.: light"
    assert len(accuracy.lines) == 2 and len(parts.lines) == 2
    assert [ln.get_label() for ln in parts.lines] == ["window", "light"]
    assert not empty.axison
    assert losses.get_title() == "identity losses"
    assert parts.get_title() == "part branches: training accuracy"


def test_change_bars_draw_two_bars_per_row_and_error_bars_only_with_a_margin():
    changes = pd.DataFrame(
        {PAPER_LABEL: [0.1, 0.06], OURS: [0.02, -0.01]}, index=["Global+All", "Global+Window"]
    )
    fig = change_over_baseline_bars(changes, margin=0.05)
    (ax,) = fig.axes
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Global+All", "Global+Window"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        f"{PAPER_LABEL}: VehicleID large",
        f"{OURS}, bars: ±2 standard errors of a difference",
    ]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert bars[0].errorbar is None and bars[1].errorbar is not None  # ours only
    plain = change_over_baseline_bars(changes, margin=float("nan")).axes[0]
    assert [c.errorbar for c in plain.containers if isinstance(c, BarContainer)] == [None, None]


def test_change_bars_refuse_a_table_without_exactly_two_columns():
    with pytest.raises(ValueError, match="two columns"):
        change_over_baseline_bars(pd.DataFrame({"a": [1.0], "b": [1.0], "c": [1.0]}), 0.1)
