"""Descriptive statistics of re-id splits and of near-duplicate groups (chapter 1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def split_statistics(splits: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per split: images, identities, cameras and views where the columns exist.

    ``splits`` maps a split name (``"VeRi-776 train"``) to a loader DataFrame with
    at least ``pid``; ``camid`` and ``view`` are counted when present.
    """
    if not splits:
        raise ValueError("split_statistics needs at least one split; none was given")
    rows = []
    for name, df in splits.items():
        if "pid" not in df.columns:
            raise ValueError(f"split {name!r} has no 'pid' column; columns are {list(df.columns)}")
        row: dict[str, object] = {
            "split": name,
            "images": len(df),
            "identities": df["pid"].nunique(),
            "images per identity": round(len(df) / max(df["pid"].nunique(), 1), 1),
        }
        if "camid" in df.columns:
            row["cameras"] = df["camid"].nunique()
        if "view" in df.columns:
            for view, count in df["view"].value_counts().sort_index().items():
                row[f"{view} views"] = int(count)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("split")
    counts = [c for c in table.columns if c == "cameras" or c.endswith(" views")]
    # a split without cameras or a view leaves a gap: whole numbers stay whole (not 8.0, NaN)
    return table.astype(dict.fromkeys(counts, "Int64"))


def near_duplicate_groups(
    identities: pd.DataFrame, keys: Sequence[str] = ("make", "model", "colour")
) -> pd.DataFrame:
    """Group identities that share ``keys`` (make, model, colour): one row per group.

    Columns: the keys, ``group_size`` (identities in the group) and ``pids``.
    Rows with a missing key (unknown model or colour) are left out.
    """
    missing = [k for k in (*keys, "pid") if k not in identities.columns]
    if missing:
        have = list(identities.columns)
        raise ValueError(f"identities table lacks columns {missing}; it has {have}")
    known = identities.dropna(subset=list(keys)).drop_duplicates("pid")
    grouped = known.groupby(list(keys), sort=True)["pid"]
    table = grouped.agg(group_size="nunique", pids=lambda s: sorted(s.unique().tolist()))
    return table.reset_index().sort_values("group_size", ascending=False, kind="stable")


def near_duplicate_share(groups: pd.DataFrame) -> float:
    """Share of identities that have at least one near-duplicate (a group of 2 or more)."""
    total = groups["group_size"].sum()
    if total == 0:
        raise ValueError("no identity with known keys: cannot compute a near-duplicate share")
    return float(groups.loc[groups["group_size"] >= 2, "group_size"].sum() / total)
