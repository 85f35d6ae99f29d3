"""The regime map: a log of baseline / part-regularized pairs read into a verdict per setting."""

from __future__ import annotations

import pandas as pd
import pytest

from prreid_lib.studies.regime_map import regime_counts, regime_map, regime_reading


def _log(path, cells: dict[tuple[int, str, str], tuple[list[float], list[float]]]) -> None:
    """Write a log of rows as bench_science.py does: (pretrain epochs, cue, arch) -> CMC@1s."""
    rows = []
    for (epochs, cue, arch), (base, part) in cells.items():
        for lam, values in ((0.0, base), (1.0, part)):
            for seed, value in enumerate(values):
                rows.append({"label": "M1", "synth": f"cue_strength={cue}",
                             "pretrain_epochs": epochs, "lambda_p": lam, "seed": seed,
                             "cmc1": value, "arch": arch})  # fmt: skip
    rows.append({**rows[0], "label": "M0", "cmc1": 0.9})  # another batch: left out
    pd.DataFrame(rows).to_csv(path, index=False)


def test_each_setting_gets_its_difference_and_verdict(tmp_path):
    path = tmp_path / "map.csv"
    _log(path, {
        (12, "3.2", "resnet18"): ([0.20, 0.22, 0.21], [0.15, 0.16, 0.17]),  # a clear loss
        (12, "3.2", "resnet18_l3"): ([0.20, 0.24], [0.21, 0.25]),  # +.01, spread .028
        (0, "1.6", "resnet18"): ([0.10, 0.11], [0.20, 0.21]),  # a clear gain
    })  # fmt: skip
    table = regime_map(path).set_index(["start", "grid"])
    loss = table.loc[("pretrained", "4 x 4")]
    assert loss["verdict"] == "loss" and loss["seeds"] == 3
    assert loss["difference"] == pytest.approx(-0.05)
    assert table.loc[("pretrained", "8 x 8"), "verdict"] == "within noise"
    assert table.loc[("random", "4 x 4"), "verdict"] == "gain"
    assert regime_counts(table.reset_index()) == {"gain": 1, "loss": 1, "within noise": 1}
    reading = regime_reading(table.reset_index())
    assert reading.startswith("The part losses raise CMC@1 beyond the noise in 1 of 3")
    assert "random start, cue 1.6, grid 4 x 4" in reading


def test_a_missing_log_names_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_map.csv.*bench_science.py with --label M1"):
        regime_map(tmp_path / "no_map.csv")


def test_a_setting_with_one_seed_is_read_against_the_pooled_seed_spread(tmp_path):
    path = tmp_path / "map.csv"
    _log(path, {
        (12, "3.2", "resnet18"): ([0.20, 0.22], [0.20, 0.22]),  # spread .0141 in both models
        (12, "2.4", "resnet18"): ([0.20], [0.23]),  # +.03 = 1.5 times sqrt(2) x .0141
        (12, "1.6", "resnet18"): ([0.20], [0.25]),  # +.05 = 2.5 times
    })  # fmt: skip
    table = regime_map(path).set_index("cue strength")
    assert table.loc[2.4, "difference / SE"] == pytest.approx(1.5, rel=1e-3)
    assert table.loc[2.4, "verdict"] == "within noise"
    assert table.loc[1.6, "verdict"] == "gain"
