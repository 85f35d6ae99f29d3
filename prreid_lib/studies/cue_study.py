"""Chapter 7's cue study: part-regularized minus baseline as the identity cue leaves the parts.

The share of each identity's cue outside the parts is a knob only SynthVeh has: the
headline pair is trained on the data set of each share (:func:`cue_outside_gains`),
the differences are read against the noise of two differences
(:func:`cue_gain_summary`, :func:`gain_change_verdict`) and put in words, with the
conclusion the numbers support (:func:`cue_study_words`), what a straight line through
them predicts for one more share (:func:`linearity_answer`) and the regime map's cells
of the chapter's start (:func:`map_cue_reading`). Verdicts follow the book's one rule
(:func:`~prreid_lib.uncertainty.seed_difference`); a "gain" in a column name is
part-regularized minus baseline, whatever its sign.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from prreid_lib.model import grid_size
from prreid_lib.studies.data import StudyData, synthveh_variant
from prreid_lib.studies.resolution import UNKNOWN_NOISE, single_training_difference
from prreid_lib.studies.variants import (
    BASELINE,
    FULL,
    HEADLINE_PAIR,
    compare_variants,
)
from prreid_lib.uncertainty import MARGIN_SE, Verdict, seed_difference

__all__ = [
    "GAIN_COLUMNS",
    "cue_conclusion",
    "cue_gain_summary",
    "cue_outside_gains",
    "cue_study_words",
    "gain_change",
    "gain_change_verdict",
    "gain_margin",
    "linearity_answer",
    "map_cue_reading",
    "outside_cue_data",
]

GAIN_COLUMNS = [
    "baseline CMC@1",
    "part-regularized CMC@1",
    "gain CMC@1",
    "gain mAP",
]
"""Columns of :func:`cue_outside_gains` (indexed by ``outside_cue_share``)."""
NO_CUE_KNOB = "the real data sets have no cue knob: study skipped"
"""Printed when the cue study meets real data."""


def outside_cue_data(
    data: StudyData,
    share: float,
    *,
    data_seed: int = 0,
    output_dir: str | Path = "runs",
    device: str = "auto",
) -> StudyData | None:
    """The data set with ``share`` of each identity's cue outside the parts: ``data`` at
    its profile's own share, else SynthVeh generated again (or reused) under
    ``output_dir/synthveh-cues/outside<share>``; ``None`` on real data (no such knob)."""
    if share == data.profile.synth.outside_cue_share:
        return data
    if not data.synthetic:
        return None
    return synthveh_variant(
        data,
        f"{data.profile.name}-outside{share:g}",
        Path(output_dir) / "synthveh-cues" / f"outside{share:g}",
        data_seed=data_seed,
        output_dir=output_dir,
        device=device,
        outside_cue_share=share,
    )


def _gain_row(share: float, table: pd.DataFrame) -> dict[str, float]:
    """One row of :func:`cue_outside_gains` from a baseline / part-regularized table."""
    return {
        "outside_cue_share": share,
        "baseline CMC@1": table.loc[BASELINE, "CMC@1"],
        "part-regularized CMC@1": table.loc[FULL, "CMC@1"],
        "gain CMC@1": table.loc[FULL, "CMC@1"] - table.loc[BASELINE, "CMC@1"],
        "gain mAP": table.loc[FULL, "mAP"] - table.loc[BASELINE, "mAP"],
    }


def cue_outside_gains(
    data: StudyData,
    shares: Sequence[float],
    *,
    output_dir: str | Path = "runs",
    seed: int = 0,
    data_seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """The headline pair trained on the data set of each outside-cue share; one row per
    share (index ``outside_cue_share``, columns :data:`GAIN_COLUMNS`).

    ``data_seed`` seeds the generated data sets and the gallery splits. On real
    data only the profile's own share can be measured: the study prints
    ``NO_CUE_KNOB`` and stops at the first other share.
    """
    rows = []
    for share in shares:
        d = outside_cue_data(data, share, data_seed=data_seed, output_dir=output_dir, device=device)
        if d is None:
            print(NO_CUE_KNOB)
            break
        table = compare_variants(
            d, HEADLINE_PAIR, output_dir=output_dir, seed=seed, device=device, eval_seed=data_seed
        )
        rows.append(_gain_row(share, table))
    if not rows:
        return pd.DataFrame(columns=GAIN_COLUMNS, index=pd.Index([], name="outside_cue_share"))
    return pd.DataFrame(rows).set_index("outside_cue_share")


def gain_margin(noise: float) -> float:
    """Two standard errors of one part-regularized minus baseline difference (two single
    trainings, each with the seed spread ``noise``): its error bar."""
    return seed_difference([0.0], [0.0], noise).margin


def gain_change(gains: pd.DataFrame, noise: float) -> Verdict:
    """Verdict on the change of part-regularized minus baseline (``gain CMC@1``) from the
    first share of ``gains`` to the last; each difference has the noise of two trainings
    (``sqrt(2) * noise``)."""
    first, last = float(gains["gain CMC@1"].iloc[0]), float(gains["gain CMC@1"].iloc[-1])
    if not math.isfinite(noise):
        return Verdict(last - first, float("nan"), UNKNOWN_NOISE)
    v = seed_difference([first], [last], math.sqrt(2) * noise)
    basis = f"two differences, each of two single trainings with a seed spread of {noise:.3f}"
    return Verdict(v.difference, v.se, basis)


def gain_change_verdict(change: Verdict) -> str:
    """The sentence that ends "The gain with the cues outside is ...": smaller or larger
    when ``change`` lies beyond the noise (the book's one rule), else about the same;
    without a known noise, that it cannot be compared."""
    if not change.known:
        return "not comparable with the noise: the seed spread is unknown (one training seed)"
    if change.beyond and change.difference < 0:
        return "smaller, as expected: part-regularized minus baseline falls once the cue leaves"
    if change.beyond:
        return (
            "larger, against our expectation; the baselines differ too (the two data sets "
            "are not equally hard), so compare the differences with the seed spread before "
            "concluding"
        )
    return "about the same: the change lies within the noise of two differences"


def cue_gain_summary(gains: pd.DataFrame, noise: float) -> dict[str, float | str]:
    """What chapter 7 says of the cue study: ``gain_inside`` and ``gain_outside`` (the gains
    of CMC@1 at the first and last share), ``gain_margin`` (two standard errors of their
    change) and ``gain_verdict`` (:func:`gain_change_verdict`); NaN and "not measured"
    without two shares."""
    if len(gains) < 2:
        why = "no cue knob on real data" if len(gains) == 0 else "one level of the cue only"
        nan = float("nan")
        return {
            "gain_inside": nan,
            "gain_outside": nan,
            "gain_margin": nan,
            "gain_verdict": f"not measured ({why})",
        }
    change = gain_change(gains, noise)
    return {
        "gain_inside": float(gains["gain CMC@1"].iloc[0]),
        "gain_outside": float(gains["gain CMC@1"].iloc[-1]),
        "gain_margin": float(change.margin),
        "gain_verdict": gain_change_verdict(change),
    }


def _cue_level(share: float) -> str:
    """A level of the cue study in words."""
    if share == 0:
        return "every cue inside the parts"
    if share == 1:
        return "every cue outside the parts"
    return f"{share:g} of the cue outside the parts"


def cue_conclusion(
    inside: Verdict, change: Verdict, level: str = "every cue inside the parts"
) -> str:
    """The conclusion the cue study supports, from the verdict on part-regularized minus
    baseline at its first ``level`` (``inside``) and on that difference's change once the
    cue leaves the parts (``change``, :func:`gain_change`): the book's one rule decides
    every clause, so a loss is never read as help."""
    if not (inside.known and change.known):
        return (
            "With one training seed the seed spread is unknown: the study cannot say whether "
            "part regularization helps with the cue in the parts, nor whether moving it out "
            "changes that."
        )
    moved = "raises" if change.difference > 0 else "lowers"
    if inside.beyond and inside.difference > 0:
        if not change.beyond:
            return (
                f"Part regularization helps with {level}, but moving the cue out changes "
                "that by no more than the noise: the study cannot tie the help to the parts."
            )
        if change.difference < 0:
            return (
                f"Part regularization helps with {level} and helps less once the cue "
                "leaves the parts, as the method expects."
            )
        return (
            f"Part regularization helps with {level} and more once the cue leaves the "
            "parts, against the method's expectation."
        )
    effect = "lowers CMC@1" if inside.beyond else "does not change CMC@1"
    after = (
        f"{moved} the difference beyond the noise"
        if change.beyond
        else "leaves the difference within the noise"
    )
    return (
        "The study does not find the condition under which part regularization helps: even "
        f"with {level} it {effect} beyond the noise, and moving the cue out of the parts "
        f"{after}."
    )


def cue_study_words(gains: pd.DataFrame, noise: float) -> dict[str, str]:
    """Chapter 7's cue study in words, built from the numbers of :func:`cue_outside_gains`.

    ``reading``: part-regularized minus baseline CMC@1 at the first and the last share,
    each with its verdict (two single trainings with the seed spread ``noise``), and the
    change between them (:func:`gain_change`); ``conclusion``: what they support
    (:func:`cue_conclusion`). Without two shares both say the study was not measured.
    """
    if len(gains) < 2:
        why = "no cue knob on real data" if len(gains) == 0 else "one level of the cue only"
        return {
            "reading": f"The cue study was not measured ({why}).",
            "conclusion": "Without two levels of the cue this build draws no conclusion on it.",
        }
    first, last = gains.iloc[0], gains.iloc[-1]
    at = [_cue_level(float(s)) for s in (gains.index[0], gains.index[-1])]
    inside, outside = (
        single_training_difference(row["baseline CMC@1"], row["part-regularized CMC@1"], noise)
        for row in (first, last)
    )
    change = gain_change(gains, noise)
    reading = (
        f"With {at[0]}, part-regularized minus baseline CMC@1 is {inside.difference:+.3f}, "
        f"which {inside.words()}; with {at[1]}, it is {outside.difference:+.3f}, which "
        f"{outside.words()}. From the first level to the last the difference changes by "
        f"{change.difference:+.3f}, which {change.words()}."
    )
    return {"reading": reading, "conclusion": cue_conclusion(inside, change, at[0])}


def linearity_answer(gains: pd.DataFrame, noise: float, share: float = 0.25) -> str:
    """What this page predicts for one more level ``share`` of the cue study: the value a
    straight line through its first and last level gives, and how far a single training
    there must lie from it (two standard errors of its distance from the line: its own
    two trainings and the line's two ends, each with the seed spread ``noise``)."""
    if len(gains) < 2 or gains.index[0] == gains.index[-1]:
        return f"The cue study was not measured at two levels here: no prediction for {share:g}."
    s0, s1 = float(gains.index[0]), float(gains.index[-1])
    g0, g1 = float(gains["gain CMC@1"].iloc[0]), float(gains["gain CMC@1"].iloc[-1])
    w = (share - s0) / (s1 - s0)
    line = (
        f"A straight line through the two measured levels ({g0:+.3f} at {s0:g}, {g1:+.3f} "
        f"at {s1:g}) predicts part-regularized minus baseline {g0 + w * (g1 - g0):+.3f} at "
        f"{share:g}"
    )
    if not math.isfinite(noise):
        return f"{line}; with one training seed no distance from that line reads as a bend."
    margin = MARGIN_SE * math.sqrt(2) * noise * math.sqrt(1 + (1 - w) ** 2 + w**2)
    return (
        f"{line}; a single training of the pair there shows that the difference is not "
        f"linear in the share only if it lies more than {margin:.3f} from that value (two "
        "standard errors of its distance from the line)."
    )


def map_cue_reading(regime: pd.DataFrame, data: StudyData) -> str:
    """The regime map's cells (:func:`~prreid_lib.studies.regime_map.regime_map`) with
    ``data``'s start (pretrained or random) and its backbone's grid at 64 px, in words:
    part-regularized minus baseline CMC@1 at each cue strength, with its verdict."""
    train = data.profile.train
    side = grid_size(64, train.last_stride, train.arch)
    start = "pretrained" if data.pretrained is not None else "random"
    cells = regime[(regime["start"] == start) & (regime["grid"] == f"{side} x {side}")]
    where = f"the {start} start and the {side} x {side} grid"
    if cells.empty:
        return f"The map has no setting with {where}."
    parts = []
    for row in cells.sort_values("cue strength").to_dict("records"):
        n = int(row["seeds"])
        basis = f"seed spread over {n} and {n} seeds" if n > 1 else "one seed, pooled spread"
        noise = "within the noise" if row["verdict"] == "within noise" else "beyond the noise"
        ratio = row["difference / SE"]
        said = (
            f"{ratio:.1f} times its standard error ({basis}): {noise}"
            if math.isfinite(ratio)
            else f"not comparable with the noise ({basis})"
        )
        parts.append(f"{row['difference']:+.3f} at cue strength {row['cue strength']:g} ({said})")
    return f"On the map, with {where}, part-regularized minus baseline CMC@1 is " + (
        "; ".join(parts) + "."
    )
