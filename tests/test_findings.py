"""The findings page: sentences whose words follow the chapters' numbers."""

from __future__ import annotations

import pytest

from prreid_lib.studies import findings


def _ch04(base: float, full: float, margin: float | None, seeds: int = 3) -> dict:
    glued = {"ch04_base_cmc1": base, "ch04_pr_cmc1": full, "ch04_gain_cmc1": full - base,
             "ch04_n_seeds": seeds}  # fmt: skip
    return glued | ({"ch04_gain_margin": margin} if margin is not None else {})


def test_the_headline_reads_the_noise_as_chapter_4_glued_it():
    verdict = findings.headline_verdict(_ch04(0.229, 0.199, 0.024))
    assert verdict.difference == pytest.approx(-0.030)
    assert verdict.se == pytest.approx(0.012)  # the margin is two standard errors
    assert verdict.ratio == pytest.approx(2.5)
    assert verdict.beyond


@pytest.mark.parametrize(
    ("base", "full", "lead"),
    [
        (0.233, 0.198, "The part-regularized model lost against the baseline"),
        (0.198, 0.233, "The part-regularized model beat the baseline"),
        (0.233, 0.230, "did not differ beyond the noise"),
    ],
)
def test_the_headline_words_follow_sign_and_noise(base, full, lead):
    text, _ = findings.headline_sentence(_ch04(base, full, 0.017))
    assert lead in text
    assert f"{full:.3f} against {base:.3f}" in text


def test_one_seed_leaves_the_noise_unknown_and_says_so():
    text, verdict = findings.headline_sentence(_ch04(0.233, 0.198, None, seeds=1))
    assert not verdict.known
    assert "did not differ" not in text and "lost" not in text
    assert "cannot be compared with the noise" in text


def test_a_chapter_that_did_not_run_is_named():
    found = findings.book_findings({})
    assert "0.645" in found.paper and "0.742" in found.paper
    for text in (found.headline, found.ordering, found.cam, found.locality, found.training):
        assert text.startswith("Chapter ") and "has not run" in text
    assert found.headline_verdict is None


def test_ordering_and_cam_sentences_quote_their_chapters():
    ch06 = {"ch06_n_pairs": 21, "ch06_n_held": 2, "ch06_n_reversed": 5, "ch06_n_unresolved": 14,
            "ch06_spearman": -0.25}  # fmt: skip
    text = findings.ordering_sentence(ch06)
    assert "21 pairs" in text and "reverse it beyond the noise in 5" in text and "-0.250" in text
    ch08 = {"ch08_share_base": 0.301, "ch08_share_pr": 0.300, "ch08_area_share": 0.271,
            "ch08_share_diff": -0.001}  # fmt: skip
    text = findings.cam_sentence(ch08)
    assert "0.301" in text and "0.271" in text and "-0.001" in text


def test_locality_sentence_gives_the_cells_over_box_ratio():
    ch07 = {"ch07_loc_size": 64, "ch07_loc_grid": 4}
    for part, box, cells in (("window", 0.15, 0.54), ("light", 0.10, 0.42), ("brand", 0.02, 0.2)):
        ch07 |= {f"ch07_loc_{part}_box": box, f"ch07_loc_{part}_cells": cells,
                 f"ch07_loc_{part}_erf": 0.1}  # fmt: skip
    text = findings.locality_sentence(ch07)
    assert "4 x 4 grid" in text and "3.6 to 10.0 times" in text
