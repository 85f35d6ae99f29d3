"""Near-duplicates: identities that share make, model and colour, and the floor they set.

Chapter 8 draws pairs of near-duplicate identities (:func:`near_duplicate_pairs`,
the paper's Fig. 5); chapters 4 and 7 measure a model against the figures of
a feature that knows each vehicle's make, model and colour and nothing else
(:func:`group_oracle`, read by :func:`floor_verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from prreid_lib.studies.data import StudyData, chosen_test_set
from prreid_lib.synthveh_files import IDENTITIES_FILE
from prreid_lib.uncertainty import difference_from_value


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


def floor_verdict(cmc1: Sequence[float], floor: float | None) -> str:
    """How a model's CMC@1 (one value per training seed) stands against the
    :func:`group_oracle`'s ``floor``, in words, by the book's one rule
    (:func:`~prreid_lib.uncertainty.difference_from_value`: beyond two standard errors)."""
    if floor is None:
        return (
            "This test set has no make, model and colour labels, so the floor cannot be computed."
        )
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
