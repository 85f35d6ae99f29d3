"""Near-duplicates: identities that share make, model and colour, and the floor they set.

Chapter 8 draws pairs of near-duplicate identities (:func:`near_duplicate_pairs`,
the paper's Fig. 5); chapters 4 and 7 measure a model against the figures of
a feature that knows each vehicle's make, model and colour and nothing else
(:func:`group_oracle`, read by :func:`floor_verdict` for CMC@1 and by
:func:`floor_reading` for CMC@1, CMC@5 and mAP together).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from prreid_lib.studies.data import StudyData, chosen_test_set
from prreid_lib.synthveh_files import IDENTITIES_FILE
from prreid_lib.uncertainty import Verdict, difference_from_value


def identity_groups(data: StudyData, frame: pd.DataFrame) -> pd.Series:
    """The near-duplicate group of each row of a VehicleID ``frame``, as strings.

    SynthVeh: the make-model-colour ``group`` of its identity; real VehicleID:
    ``"<model_id>-<colour_id>"`` where both are annotated. Rows without a group
    (no such labels) are missing (``NaN``).
    """
    if data.synthetic:
        identities = pd.read_csv(data.vehicleid.root / IDENTITIES_FILE)
        return frame["pid"].map(identities.set_index("pid")["group"]).astype(str)
    if {"model_id", "colour_id"} <= set(frame.columns):
        known = frame["model_id"].notna() & frame["colour_id"].notna()
        label = frame["model_id"].astype(str) + "-" + frame["colour_id"].astype(str)
        return label.where(known)
    return pd.Series(np.nan, index=frame.index, dtype=object)


def group_oracle(data: StudyData, *, test_set: str = "large") -> dict[str, float] | None:
    """VehicleID figures of a feature that knows each vehicle's make, model and colour
    exactly and nothing else: the floor above which a model has learnt something of
    the individual vehicle.

    Such a feature ranks the gallery images of the query's group first, in random
    order. With one gallery image per identity the true match then sits at a
    uniform rank among the ``m`` identities of the group, so the expected
    figures are exact: CMC@k = min(k, m) / m and AP = H_m / m (H the harmonic
    number), averaged over the queries (``n - 1`` per identity of ``n`` images) of
    ``test_set``. ``None`` when some test image has no group (real data without
    attributes).
    """
    test = data.tests[chosen_test_set(data, test_set)]
    groups = identity_groups(data, test)
    if groups.isna().any():
        return None
    per_id = (
        test.assign(group=groups).groupby("pid").agg(group=("group", "first"), n=("pid", "size"))
    )
    m = per_id["group"].map(per_id["group"].value_counts()).to_numpy(dtype=float)
    queries = per_id["n"].to_numpy(dtype=float) - 1
    harmonic = np.array([np.sum(1.0 / np.arange(1, int(k) + 1)) for k in m])

    def mean(values: np.ndarray) -> float:
        return float(np.sum(values * queries) / np.sum(queries))

    return {
        "identities": len(per_id),
        "groups": int(per_id["group"].nunique()),
        "CMC@1": mean(1 / m),
        "CMC@5": mean(np.minimum(5, m) / m),
        "mAP": mean(harmonic / m),
    }


FLOOR_METRICS: tuple[str, ...] = ("CMC@1", "CMC@5", "mAP")
"""The figures by which a model is read against the :func:`group_oracle`'s floor."""
NO_FLOOR = "This test set has no make, model and colour labels, so the floor cannot be computed."


def floor_verdict(cmc1: Sequence[float], floor: float | None) -> str:
    """How a model's CMC@1 (one value per training seed) stands against the
    :func:`group_oracle`'s ``floor``, in words, by the book's one rule
    (:func:`~prreid_lib.uncertainty.difference_from_value`: beyond two standard errors)."""
    if floor is None:
        return NO_FLOOR
    verdict = difference_from_value(cmc1, floor)
    if not verdict.known:
        return (
            f"With one training seed the baseline's distance to this floor "
            f"({verdict.difference:+.3f}) cannot be compared with the noise."
        )
    if verdict.beyond and verdict.difference > 0:
        return (
            f"The baseline lies above this floor ({verdict.difference:+.3f}, which "
            f"{verdict.words()}): it has learnt cues of the individual vehicle, not only of "
            "its group."
        )
    if verdict.beyond:
        return (
            f"The baseline lies below this floor ({verdict.difference:+.3f}, which "
            f"{verdict.words()}): it does not yet tell every group apart, let alone the "
            "vehicles within one."
        )
    return (
        f"The baseline sits at this floor ({verdict.difference:+.3f}, which {verdict.words()}): "
        "what it has learnt tells the groups apart, not the vehicles within a group."
    )


def floor_verdicts(
    values: Mapping[str, Sequence[float]] | pd.DataFrame, oracle: Mapping[str, float]
) -> dict[str, Verdict]:
    """For each of :data:`FLOOR_METRICS`: the model's mean (``values[metric]``, one value
    per training seed) minus the oracle's figure, as a
    :func:`~prreid_lib.uncertainty.difference_from_value` verdict."""
    return {m: difference_from_value(values[m], oracle[m]) for m in FLOOR_METRICS}


def floor_position(verdict: Verdict) -> str:
    """Where a model lies against the floor by the book's one rule: ``"above"`` or
    ``"below"`` (beyond two standard errors), ``"at"`` (within them) or ``"unknown"``
    (the noise is unknown, e.g. one seed)."""
    if not verdict.known:
        return "unknown"
    if not verdict.beyond:
        return "at"
    return "above" if verdict.difference > 0 else "below"


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _by_position(verdicts: Mapping[str, Verdict], describe: Callable[[str], str]) -> str:
    """ "above the floor at CMC@1, but below it at CMC@5 and mAP": the metrics grouped by
    :func:`floor_position` in the order they first appear, each told by ``describe``."""
    groups: dict[str, list[str]] = {}
    for metric, verdict in verdicts.items():
        groups.setdefault(floor_position(verdict), []).append(describe(metric))
    words = {"above": "above", "below": "below", "at": "level with"}
    phrases = [
        f"{words[pos]} {'the floor' if i == 0 else 'it'} at {_and(items)}"
        for i, (pos, items) in enumerate(groups.items())
    ]
    return f"{phrases[0]}, but {phrases[1]}" if len(phrases) == 2 else _and(phrases)


def _floor_meaning(positions: Mapping[str, str]) -> str:
    """What a pattern of :func:`floor_position` values says about what a model learnt."""
    found = set(positions.values())
    rest = [p for m, p in positions.items() if m != "CMC@1"]
    if found == {"above"}:
        return "It has learnt cues of the individual vehicle, not only of its group."
    if "above" not in found and "below" in found:
        return (
            "It does not yet reach what exact knowledge of make, model and colour gives, "
            "let alone tell the vehicles within a group apart."
        )
    if "above" not in found:
        return "What it has learnt tells the groups apart, not the vehicles within a group."
    first = "It ranks the right vehicle first more often than knowledge of the group alone would"
    if positions.get("CMC@1") == "above" and "below" in rest:
        return (
            f"{first}, but orders the rest of the gallery worse: it has learnt some cues of "
            "the individual vehicle, yet lets vehicles of other groups into the top ranks "
            "more often than exact knowledge of make, model and colour would."
        )
    if positions.get("CMC@1") == "above":
        return (
            f"{first}, and orders the rest of the gallery no worse: it has learnt cues of "
            "the individual vehicle."
        )
    above = [m for m, p in positions.items() if p == "above"]
    return (
        "It does not rank the right vehicle first more often than knowledge of the group "
        f"alone would, though it lies above the floor at {_and(above)}: mixed evidence of "
        "cues beyond the group."
    )


def floor_reading(
    values: Mapping[str, Sequence[float]] | pd.DataFrame,
    oracle: Mapping[str, float] | None,
    who: str = "the baseline",
) -> str:
    """A model's CMC@1, CMC@5 and mAP (``values``: one value per training seed each, e.g.
    the model's rows of a per-seed table) against the :func:`group_oracle`'s, in words:
    for each figure the model's mean, the floor's, the difference and its
    ``Verdict.words()``, grouped by :func:`floor_position`,
    then what that pattern says (individual cues, group cues only, or mixed)."""
    if oracle is None:
        return NO_FLOOR
    verdicts = floor_verdicts(values, oracle)
    if not all(v.known for v in verdicts.values()):
        distances = ", ".join(f"{m} {v.difference:+.3f}" for m, v in verdicts.items())
        return (
            f"With one training seed {who}'s distances to this floor ({distances}) "
            "cannot be compared with the noise."
        )

    def describe(m: str) -> str:
        v = verdicts[m]
        mean = oracle[m] + v.difference
        return f"{m} ({mean:.3f} against {oracle[m]:.3f}; {v.difference:+.3f}, which {v.words()})"

    positions = {m: floor_position(v) for m, v in verdicts.items()}
    lead = f"{who[:1].upper()}{who[1:]} lies {_by_position(verdicts, describe)}."
    return f"{lead} {_floor_meaning(positions)}"


def floor_summary(
    values: Mapping[str, Sequence[float]] | pd.DataFrame,
    oracle: Mapping[str, float] | None,
    who: str = "the baseline",
) -> str:
    """One short sentence of :func:`floor_reading`'s pattern, without the figures:
    e.g. "The baseline lies above the floor at CMC@1, but below it at CMC@5 and mAP."."""
    if oracle is None:
        return NO_FLOOR
    verdicts = floor_verdicts(values, oracle)
    if not all(v.known for v in verdicts.values()):
        return (
            f"With one training seed {who}'s distances to the floor cannot be compared "
            "with the noise."
        )
    return f"{who[:1].upper()}{who[1:]} lies {_by_position(verdicts, str)}."


def near_duplicate_images(data: StudyData) -> pd.DataFrame:
    """The VehicleID training images with a near-duplicate ``group`` column.

    SynthVeh: the make-model-colour group of each identity, front views only
    (when there are any); real VehicleID: model and colour ids where annotated.
    Without such labels every image is in one group ``"all"``.
    """
    train = data.vehicleid.train
    frame = train.assign(group=identity_groups(data, train)).dropna(subset=["group"])
    if data.synthetic:
        from prreid_lib.synthveh import load_synthveh_parts

        views = load_synthveh_parts(data.vehicleid.root).drop_duplicates("path")
        frame["view"] = frame["path"].map(views.set_index("path")["view"])
        if (frame["view"] == "front").any():
            frame = frame[frame["view"] == "front"]
    if frame.empty or not (frame.groupby("group")["pid"].nunique() >= 2).any():
        frame = train.assign(group="all")  # no attributes: any two identities
    return frame


def sample_pairs(frame: pd.DataFrame, n_pairs: int, *, seed: int = 0) -> pd.DataFrame:
    """Up to ``n_pairs`` pairs of different identities of one ``group``, one image each.

    ``frame`` has ``pid`` and ``group`` (and any other columns, kept). Rows
    ``2k`` and ``2k + 1`` are pair ``k``. Groups are visited in a random order
    (``seed``), one pair per group first, then further pairs from the groups
    again; no identity appears twice.
    """
    rng = np.random.default_rng(seed)
    sizes = frame.groupby("group")["pid"].nunique()
    groups = [g for g in rng.permutation(sizes.index.to_numpy()) if sizes[g] >= 2]
    rows: list[dict[str, Any]] = []
    for g in groups * n_pairs:
        if len(rows) >= 2 * n_pairs:
            break
        used = {r["pid"] for r in rows}
        pids = [p for p in frame.loc[frame["group"] == g, "pid"].unique() if p not in used]
        for pid in rng.permutation(pids)[:2] if len(pids) >= 2 else []:
            images = frame[frame["pid"] == pid]
            rows.append(images.iloc[int(rng.integers(len(images)))].to_dict())
    return pd.DataFrame(rows).reset_index(drop=True)


def near_duplicate_pairs(data: StudyData, n_pairs: int, *, seed: int = 0) -> pd.DataFrame:
    """Pairs of near-duplicate identities of the VehicleID training set, one image each
    (the paper's Fig. 5): :func:`sample_pairs` of :func:`near_duplicate_images`."""
    return sample_pairs(near_duplicate_images(data), n_pairs, seed=seed)
