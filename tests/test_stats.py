"""Chapter 1 statistics on hand-made tables."""

import pandas as pd
import pytest

from prreid_lib.datasets.stats import near_duplicate_groups, near_duplicate_share, split_statistics


def test_split_statistics_counts_images_ids_cameras_views():
    df = pd.DataFrame(
        {"pid": [1, 1, 2, 3], "camid": [1, 2, 2, 2], "view": ["front", "rear", "front", "front"]}
    )
    table = split_statistics({"train": df})
    row = table.loc["train"]
    assert row["images"] == 4
    assert row["identities"] == 3
    assert row["cameras"] == 2
    assert row["front views"] == 3 and row["rear views"] == 1


def test_split_statistics_keeps_counts_whole_where_a_split_lacks_a_column():
    with_cams = pd.DataFrame({"pid": [1, 2], "camid": [1, 8], "view": ["front", "rear"]})
    without = pd.DataFrame({"pid": [1, 1, 2], "view": ["front", "front", "front"]})
    table = split_statistics({"veri": with_cams, "vehicleid": without})
    assert str(table["cameras"].dtype) == "Int64" and table.loc["veri", "cameras"] == 2
    assert table["cameras"].isna().tolist() == [False, True]
    assert str(table["rear views"].dtype) == "Int64"


def test_near_duplicate_groups_and_share():
    ids = pd.DataFrame(
        {
            "pid": [1, 2, 3, 4, 5],
            "make": ["a", "a", "a", "b", "b"],
            "model": ["x", "x", "y", "z", "z"],
            "colour": ["red", "red", "red", "blue", None],
        }
    )
    groups = near_duplicate_groups(ids)
    # groups: (a,x,red)={1,2}, (a,y,red)={3}, (b,z,blue)={4}; pid 5 has no colour -> left out
    assert groups["group_size"].tolist() == [2, 1, 1]
    assert groups.iloc[0]["pids"] == [1, 2]
    assert near_duplicate_share(groups) == pytest.approx(2 / 4)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="make"):
        near_duplicate_groups(pd.DataFrame({"pid": [1]}))
