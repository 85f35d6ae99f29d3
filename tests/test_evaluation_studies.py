"""Chapter 5's study functions and figure, on hand-made rankings and tables (no training)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from prreid_lib import evaluate
from prreid_lib.metrics import ReIDResult
from prreid_lib.paper_tables import LABELS, PAPER_LABEL
from prreid_lib.studies import evaluation as ev
from prreid_lib.studies import rank_lists as rl
from prreid_lib.studies import veri_evaluation as ve
from prreid_lib.studies.variants import BASELINE, FULL
from prreid_lib.viz.evaluation import paired_rank_list_figure

OURS = "ours (SynthVeh, smoke)"


def result(cmc: list[float], mAP: float, mINP: float = 0.5) -> ReIDResult:
    return ReIDResult(np.array(cmc), mAP, mINP, num_valid=2, num_query=2)


# ----------------------------------------------------------------------------- worked example


def test_worked_example_table_gives_the_hand_computed_figures():
    distmat = np.array(
        [[0.40, 0.10, 0.20, 0.30, 0.50, 0.60, 0.90], [0.70, 0.20, 0.80, 0.50, 0.60, 0.30, 0.90]]
    )
    g_pids, g_cams = np.array([1, 2, 1, 3, 1, 4, 1]), np.array([1, 1, 0, 2, 2, 1, 1])
    toy = ev.evaluate_ranking(distmat, np.array([1, 4]), g_pids, np.array([0, 2]), g_cams, 5)
    track = ev.evaluate_tracks(
        np.array([[0.8, 0.3, 0.2, 0.9, 0.1, 0.1]]),
        np.array([1]),
        np.array([0]),
        np.array([1, 1, 2, 2, 1, 1]),
        np.array([1, 1, 1, 1, 0, 0]),
        [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])],
        max_rank=2,
    )
    table = ev.worked_example_table(toy, track)
    image, tracks = table["image-to-image (A, B)"], table["image-to-track"]
    assert list(table.index) == ["CMC@1", "CMC@2", "CMC@3", "mAP", "mINP"]
    assert image.tolist() == pytest.approx([0.0, 0.5, 1.0, (4 / 9 + 1 / 2) / 2, 0.5])
    assert tracks[["CMC@1", "CMC@2", "mAP"]].tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert tracks[["CMC@3", "mINP"]].isna().all()


def test_the_chapter_names_are_the_library_functions():
    from prreid_lib import metrics

    assert ev.evaluate_ranking is metrics.evaluate_ranking
    assert ev.evaluate_tracks is metrics.evaluate_tracks
    assert ev.evaluate_veri is evaluate.evaluate_veri
    assert set(ev.__all__) <= set(dir(ev))


# ----------------------------------------------------------------------------- VehicleID


def vid_results(base: float, full: float) -> pd.DataFrame:
    rows = [
        {"test set": name, "identities": n, "CMC@1": base + i / 10, "CMC@5": full + i / 10}
        for i, (name, n) in enumerate([("small", 6), ("medium", 8)])
    ]
    return pd.DataFrame(rows).set_index("test set")


def test_vehicleid_table_sets_each_test_set_beside_the_paper():
    results = {BASELINE: vid_results(0.1, 0.5), FULL: vid_results(0.2, 0.6)}
    table = ev.vehicleid_table(results, ours=OURS, paper=PAPER_LABEL)
    assert list(table.index) == [
        ("small", "CMC@1"),
        ("small", "CMC@5"),
        ("medium", "CMC@1"),
        ("medium", "CMC@5"),
    ]
    assert list(table.columns) == [
        "identities (ours)",
        f"{PAPER_LABEL}: part-regularized",
        f"{OURS}: baseline",
        f"{OURS}: part-regularized",
    ]
    assert table["identities (ours)"].tolist() == [6, 6, 8, 8]
    assert table[f"{PAPER_LABEL}: part-regularized"].tolist() == [0.784, 0.923, 0.75, 0.883]
    assert table.loc[("medium", "CMC@1"), f"{OURS}: baseline"] == pytest.approx(0.2)
    assert table.loc[("medium", "CMC@5"), f"{OURS}: part-regularized"] == pytest.approx(0.7)


def cmc1(value: float) -> pd.DataFrame:
    return pd.DataFrame({"CMC@1": [0.9, value]}, index=pd.Index(["small", "large"]))


@pytest.mark.parametrize(
    ("noise", "words"),
    [
        (0.02, "is 2.1 times its standard error (two single trainings, each with a seed spread "
         "of 0.020): beyond the noise"),
        (0.05, "is 0.8 times its standard error (two single trainings, each with a seed spread "
         "of 0.050): within the noise"),
        (float("nan"), "cannot be compared with the noise"),
    ],
)  # fmt: skip
def test_vehicleid_verdict_reads_the_difference_against_chapter_4s_seed_spread(noise, words):
    verdict = ev.vehicleid_verdict({BASELINE: cmc1(0.30), FULL: cmc1(0.36)}, noise=noise)
    assert verdict.difference == pytest.approx(0.06)  # on the large set, not the small one
    reading = ev.vehicleid_reading(verdict)
    assert reading.startswith("Part-regularized minus baseline is +0.060, which ")
    assert words in reading


def test_expected_sign_follows_the_verdict():
    from prreid_lib.uncertainty import Verdict

    change = "with training seed 1"
    assert "keep its sign with training seed 1" in ev.expected_sign(
        Verdict(-0.1, 0.01, "b"), change
    )
    assert "either way" in ev.expected_sign(Verdict(0.01, 0.01, "b"), change)
    assert "predicts nothing" in ev.expected_sign(Verdict(0.1, float("nan"), "b"), change)


# ----------------------------------------------------------------------------- VeRi-776


def veri_results(mAP: float, with_tracks: bool = True) -> dict[str, ReIDResult]:
    out = {"image": result([0.25, 0.5, 0.5, 0.75, 1.0], mAP)}
    if with_tracks:
        out["track"] = result([0.5, 0.5, 0.75, 0.75, 0.9], mAP + 0.1)
    return out


def test_veri_table_puts_the_papers_map_under_the_track_protocol():
    table = ve.veri_table(
        {BASELINE: veri_results(0.2), FULL: veri_results(0.3)}, ours=OURS, paper=PAPER_LABEL
    )
    paper = table[f"{PAPER_LABEL}: part-regularized"]
    assert paper.iloc[:2].isna().all()
    assert paper["mAP (image-to-track)"] == 0.743 and paper["HIT@5"] == 0.987
    full = table[f"{OURS}: part-regularized"]
    assert full["mAP (image-to-image)"] == pytest.approx(0.3)
    assert full["mAP (image-to-track)"] == pytest.approx(0.4)
    assert (full["HIT@1"], full["HIT@5"]) == (0.5, 0.9)
    assert table.loc["CMC@1 (image-to-image)", f"{OURS}: baseline"] == 0.25


def test_veri_table_without_tracks_leaves_our_track_figures_empty():
    results = {BASELINE: veri_results(0.2, False), FULL: veri_results(0.3, False)}
    table = ve.veri_table(results, ours=OURS, paper=PAPER_LABEL)
    assert table.loc[["HIT@1", "HIT@5"], f"{OURS}: baseline"].isna().all()
    assert table.loc["mAP (image-to-image)", f"{OURS}: part-regularized"] == pytest.approx(0.3)


def test_veri_title_says_when_the_test_is_cross_set():
    assert "VehicleID training set (a cross-set test)**" in ve.veri_title("vehicleid")
    own = ve.veri_title("veri776")
    assert "VeRi-776 training set**" in own and "cross-set" not in own


def veri_stand_in(veri_train: str = "vehicleid", veri: object = "test set") -> SimpleNamespace:
    """What veri_comparison reads of a StudyData."""
    profile = SimpleNamespace(study=SimpleNamespace(veri_train=veri_train))
    return SimpleNamespace(veri=veri, profile=profile, label=OURS)


def test_veri_comparison_without_veri776_skips_and_says_so(monkeypatch):
    monkeypatch.setattr(ve, "train_variants", lambda *a, **k: pytest.fail("trained"))
    assert ve.veri_comparison(veri_stand_in(veri=None)) is None
    assert ve.veri_map(None, FULL) == "n/a"
    assert "skipped" in ve.VERI_SKIPPED


@pytest.mark.parametrize(("train_on", "expected"), [(None, "vehicleid"), ("veri776", "veri776")])
def test_veri_comparison_trains_on_the_chosen_set(monkeypatch, train_on, expected):
    trained = []

    def fake_train(data, variants, **kwargs):
        trained.append(kwargs["dataset"])
        return {name: SimpleNamespace(model=name) for name in variants}

    maps = {BASELINE: 0.2, FULL: 0.3}
    monkeypatch.setattr(ve, "train_variants", fake_train)
    monkeypatch.setattr(ve, "evaluate_veri", lambda model, veri: veri_results(maps[model]))
    veri = ve.veri_comparison(veri_stand_in(), train_on=train_on)
    assert trained == [expected] and veri.train_on == expected
    assert list(veri.runs) == [BASELINE, FULL]
    assert ve.veri_map(veri, FULL) == pytest.approx(0.3)
    assert veri.table.loc["mAP (image-to-image)", f"{OURS}: baseline"] == pytest.approx(0.2)
    assert ("cross-set" in veri.title) == (expected == "vehicleid")


def comparison_of(table: pd.DataFrame) -> ve.VeriComparison:
    return ve.VeriComparison(
        runs={}, results={}, test=None, train_on="vehicleid", ours=OURS, table=table
    )


def test_veri_reading_says_both_differences_cannot_be_compared_with_the_noise():
    results = {BASELINE: veri_results(0.25), FULL: veri_results(0.2)}
    table = ve.veri_table(results, ours=OURS, paper=PAPER_LABEL)
    reading = ve.veri_reading(comparison_of(table))
    assert reading.startswith(
        "Part-regularized minus baseline is -0.050 in image-to-image mAP and -0.050 in "
        "image-to-track mAP; each cannot be compared with the noise ("
    )
    assert ve.VERI_NOISE_BASIS in reading
    no_tracks = {BASELINE: veri_results(0.25, False), FULL: veri_results(0.2, False)}
    alone = ve.veri_reading(comparison_of(ve.veri_table(no_tracks, ours=OURS, paper=PAPER_LABEL)))
    assert "image-to-track" not in alone and "; it cannot be compared" in alone
    assert "no VeRi-776 test set" in ve.veri_reading(None)


# ----------------------------------------------------------------------------- rank lists


def test_top_matches_leaves_out_same_camera_images_of_the_query_vehicle():
    query = pd.DataFrame({"pid": [1, 2], "camid": [0, 0]})
    gallery = pd.DataFrame({"pid": [1, 1, 3, 2, 1], "camid": [0, 1, 1, 1, 2]})
    distmat = np.array([[0.1, 0.5, 0.3, 0.3, 0.9], [0.2, 0.2, 0.2, 0.1, 0.2]])
    ranked, is_match = rl.top_matches(distmat, query, gallery, 3)
    # query 0: item 0 is junk (vehicle 1, camera 0); ties (2, 3) by gallery index
    assert ranked.tolist() == [[2, 3, 1], [3, 0, 1]]
    assert is_match.tolist() == [[False, False, True], [True, False, False]]
    assert distmat[0, 0] == 0.1  # the caller's distances are left as they were


def rank_list_setup(monkeypatch, root: Path) -> tuple[dict, SimpleNamespace]:
    """Two models ranking three gallery images for the queries q0 (vehicle 1), q1 (2)."""
    feats = {
        "a": torch.tensor([[0.0], [5.0], [9.0], [1.0], [2.0], [4.0]]),
        "b": torch.tensor([[0.0], [5.0], [9.0], [4.0], [1.0], [2.0]]),
    }
    monkeypatch.setattr(rl, "image_features", lambda model, frame: feats[model][frame.index])
    query = pd.DataFrame({"path": ["q0", "q1", "q2"], "pid": [1, 2, 3], "camid": [0, 0, 0]})
    gallery = pd.DataFrame(
        {"path": ["g0", "g1", "g2"], "pid": [1, 2, 1], "camid": [1, 1, 0]}, index=[3, 4, 5]
    )
    runs = {"a": SimpleNamespace(model="a"), "b": SimpleNamespace(model="b")}
    return runs, SimpleNamespace(query=query, gallery=gallery, root=root)


def test_rank_lists_rank_the_first_queries_by_each_model(monkeypatch, tmp_path):
    runs, test = rank_list_setup(monkeypatch, tmp_path)  # no identities file: real data
    lists = rl.rank_lists(runs, test, n_queries=2, k=10)
    assert lists.query_paths == ["q0", "q1"] and lists.gallery_paths == ["g0", "g1", "g2"]
    assert list(lists.ranked) == ["a", "b"]
    assert lists.ranked["a"].tolist() == [[0, 1, 2], [2, 1, 0]]  # g2 junk for q0: last
    assert lists.ranked["b"].tolist() == [[1, 0, 2], [0, 2, 1]]
    assert lists.is_match["b"].tolist() == [[False, True, True], [False, False, True]]
    assert lists.near_duplicate is None and lists.total_queries == 3


def test_rank_lists_mark_wrong_images_of_the_querys_group_as_near_duplicates(monkeypatch, tmp_path):
    from prreid_lib.synthveh_files import IDENTITIES_FILE

    (tmp_path / IDENTITIES_FILE).write_text("pid,make,group\n1,X,7\n2,X,7\n3,Y,9\n")
    runs, test = rank_list_setup(monkeypatch, tmp_path)
    lists = rl.rank_lists(runs, test, n_queries=2, k=3)
    # vehicles 1 and 2 share group 7: every wrong image is a near-duplicate, no match is
    assert lists.near_duplicate["a"].tolist() == [[False, True, False], [True, False, True]]
    assert lists.near_duplicate["b"].tolist() == [[True, False, False], [True, True, False]]
    (tmp_path / IDENTITIES_FILE).write_text("pid,make,group\n1,X,7\n2,X,8\n3,Y,9\n")
    apart = rl.rank_lists(runs, test, n_queries=2, k=3)
    assert not any(flags.any() for flags in apart.near_duplicate.values())


def shown_lists(swap: bool = False, groups: bool = True) -> rl.RankLists:
    """Two queries, three ranks; the part-regularized model's lists are the better ones."""
    T, F = True, False
    match = {BASELINE: np.array([[F, T, F], [F, F, F]]), FULL: np.array([[T, F, F], [F, F, T]])}
    near = {BASELINE: np.array([[T, F, F], [F, T, F]]), FULL: np.array([[F, T, F], [T, F, F]])}
    if swap:
        match = {BASELINE: match[FULL], FULL: match[BASELINE]}
        near = {BASELINE: near[FULL], FULL: near[BASELINE]}
    ranked = {name: np.zeros((2, 3), dtype=int) for name in match}
    return rl.RankLists(
        query_paths=["q0", "q1"],
        gallery_paths=["g0"],
        ranked=ranked,
        is_match=match,
        near_duplicate=near if groups else None,
        total_queries=10,
    )


def test_rank_list_counts_count_what_each_model_shows():
    counts = rl.rank_list_counts(shown_lists())
    base, full = counts[BASELINE], counts[FULL]
    assert (base.queries, base.ranks, base.first, base.found) == (2, 3, 0, 1)
    assert (base.wrong, base.near_duplicates, base.ahead) == (5, 2, 0)  # q0: dup at 1, match 2
    assert (full.first, full.found, full.wrong, full.near_duplicates) == (1, 2, 4, 2)
    assert full.ahead == 1  # q0: match first; q1: a near-duplicate before the match
    plain = rl.rank_list_counts(shown_lists(groups=False))[FULL]
    assert plain.near_duplicates is None and plain.ahead is None and plain.first == 1


def test_rank_list_answer_follows_the_counts():
    answer = rl.rank_list_answer(shown_lists())
    assert "rank 1 for 0 and the part-regularized model for 1" in answer
    assert "2 of 5 (baseline) and 2 of 4 (part-regularized) are near-duplicates" in answer
    assert "for 0 (baseline) and 1 (part-regularized) of the 2 queries" in answer
    assert "above the near-duplicates more often than the baseline" in answer
    assert "2 of 10 queries illustrate" in answer
    assert "less often than the baseline" in rl.rank_list_answer(shown_lists(swap=True))
    plain = rl.rank_list_answer(shown_lists(groups=False))
    assert "near-duplicate" not in plain and "first more often than the baseline" in plain
    assert "no rank lists" in rl.rank_list_answer(None)


# ----------------------------------------------------------------------------- re-ranking


def test_map_change_table_labels_the_variants_and_subtracts():
    table = ve.map_change_table({BASELINE: 0.5, FULL: 0.4}, {BASELINE: 0.6, FULL: 0.3}, ours=OURS)
    assert list(table.index) == [LABELS[BASELINE], LABELS[FULL]]
    assert table.index.name == f"{OURS}, VeRi-776 image-to-image"
    assert table["change"].tolist() == pytest.approx([0.1, -0.1])
    assert list(table.columns) == ["mAP", "mAP re-ranked", "change"]


def test_rerank_comparison_evaluates_each_model_again_re_ranked(monkeypatch):
    feats = torch.tensor([[0.0, 0], [1, 0], [0, 1], [0.1, 0], [1, 0.1], [0, 1.2], [3, 3]])
    monkeypatch.setattr(evaluate, "image_features", lambda m, frame, *a, **k: feats[frame.index])
    query = pd.DataFrame({"pid": [1, 2, 3], "camid": [0, 0, 0]}, index=[0, 1, 2])
    gallery = pd.DataFrame({"pid": [1, 2, 3, 4], "camid": [1, 1, 1, 1]}, index=[3, 4, 5, 6])
    test = SimpleNamespace(query=query, gallery=gallery, tracks=[[0], [1], [2], [3]])
    reranked = evaluate.evaluate_veri(None, test, rerank={})["image"].mAP
    veri = ve.VeriComparison(
        runs={BASELINE: SimpleNamespace(model=None), FULL: SimpleNamespace(model=None)},
        results={BASELINE: veri_results(0.2), FULL: veri_results(0.3)},
        test=test,
        train_on="vehicleid",
        ours=OURS,
        table=pd.DataFrame(),
    )
    table = ve.rerank_comparison(veri)
    assert table["mAP"].tolist() == pytest.approx([0.2, 0.3])
    assert table["mAP re-ranked"].tolist() == pytest.approx([reranked, reranked])
    assert table["change"].tolist() == pytest.approx([reranked - 0.2, reranked - 0.3])


def test_rerank_answer_says_which_models_map_moves_more():
    table = ve.map_change_table({BASELINE: 0.5, FULL: 0.4}, {BASELINE: 0.6, FULL: 0.35}, ours=OURS)
    answer = ve.rerank_answer(table)
    assert answer.startswith(
        "Re-ranking raises the baseline's image-to-image mAP by 0.100 and lowers the "
        "part-regularized model's image-to-image mAP by 0.050: the baseline's moves more."
    )
    assert "goes from -0.100 to -0.250; that change of -0.150 cannot be compared" in answer
    other = ve.map_change_table({BASELINE: 0.5, FULL: 0.4}, {BASELINE: 0.5, FULL: 0.5}, ours=OURS)
    assert "leaves the baseline's image-to-image mAP unchanged" in ve.rerank_answer(other)
    assert "the part-regularized model's moves more" in ve.rerank_answer(other)
    assert "nothing to re-rank" in ve.rerank_answer(None)


# ----------------------------------------------------------------------------- the figure


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    paths = []
    for i in range(5):
        path = tmp_path / f"im{i}.png"
        Image.new("RGB", (8, 6), (40 * i, 0, 0)).save(path)
        paths.append(str(path))
    return paths


def test_paired_rank_list_figure_interleaves_the_models_query_by_query(images):
    ranked = {BASELINE: np.array([[0, 1], [2, 0]]), FULL: np.array([[1, 0], [0, 2]])}
    is_match = {BASELINE: np.array([[True, False], [False, False]]), FULL: ranked[FULL] == 0}
    titles = {BASELINE: "baseline", FULL: "part-reg."}
    fig = paired_rank_list_figure(images[3:], images[:3], ranked, is_match, row_titles=titles)
    axes = np.array(fig.axes).reshape(4, 3)  # (2 queries x 2 models) rows, query + top 2
    assert [ax.get_title() for ax in axes[:, 0]] == ["query 1", "", "query 2", ""]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["baseline", "part-reg."] * 2
    assert [ax.get_title() for ax in axes[0, 1:]] == ["1: match", "2: other"]
    green = mcolors.to_rgba("#2ca02c")
    framed = [[ax.spines["top"].get_edgecolor() == green for ax in row[1:]] for row in axes]
    assert framed == [[True, False], [False, True], [False, False], [True, False]]
    plt.close(fig)


def test_paired_rank_list_figure_fits_the_page_and_names_near_duplicates(images):
    from prreid_lib.viz.evaluation import CELL_INCHES, NEAR_DUPLICATE_COLOUR, TITLE_POINTS

    ranked = {BASELINE: np.array([[0, 1, 2]]), FULL: np.array([[2, 1, 0]])}
    is_match = {BASELINE: np.array([[False, False, True]]), FULL: np.array([[True, False, False]])}
    near = {BASELINE: np.array([[True, False, False]]), FULL: np.array([[False, True, False]])}
    fig = paired_rank_list_figure(images[4:], images[:3], ranked, is_match, near_duplicate=near)
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[0, 1:]] == ["1: near-dup.", "2: other", "3: match"]
    assert axes[1, 2].spines["top"].get_edgecolor() == mcolors.to_rgba(NEAR_DUPLICATE_COLOUR)
    assert {ax.title.get_fontsize() for ax in axes.ravel()} == {TITLE_POINTS} and TITLE_POINTS >= 10
    assert fig.get_size_inches()[0] == pytest.approx(4 * CELL_INCHES)
    assert 6 * CELL_INCHES <= 7.5  # a query and five ranks fit the page's width
    with pytest.raises(ValueError, match="near_duplicate"):
        paired_rank_list_figure(
            images[4:], images[:3], ranked, is_match, near_duplicate={BASELINE: near[BASELINE]}
        )
    plt.close(fig)


def test_paired_rank_list_figure_refuses_lists_of_another_shape(images):
    ranked = {BASELINE: np.array([[0, 1]]), FULL: np.array([[1, 0]])}
    with pytest.raises(ValueError, match=r"expected \(2, k\) arrays"):
        paired_rank_list_figure(images[3:], images[:3], ranked, ranked)
    with pytest.raises(ValueError, match="is_match: expected the models"):
        paired_rank_list_figure(images[4:], images[:3], ranked, {FULL: ranked[FULL]})
