"""The `prreid` console script: synth writes the layouts; user errors are one clear line."""

from __future__ import annotations

import pytest

from prreid_lib.cli import main
from prreid_lib.config import get_profile


def test_synth_writes_the_official_layouts(tmp_path, capsys):
    assert main(["synth", "--profile", "smoke", "--seed", "3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "VeRi-776" / "name_train.txt").is_file()
    assert (tmp_path / "VehicleID" / "train_test_split" / "train_list.txt").is_file()
    assert (tmp_path / "parts" / "data.yaml").is_file()
    assert "written to" in capsys.readouterr().out


def test_unknown_profile_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--profile", "huge", "--out", "x"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_evaluate_with_missing_run_is_one_line_error(tmp_path, capsys):
    missing = tmp_path / "no-such-run"
    code = main(["evaluate", "--run", str(missing), "--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(missing) in err
    assert "Traceback" not in err


def test_get_profile_names_the_valid_profiles():
    with pytest.raises(ValueError, match="smoke"):
        get_profile("nope")
    assert get_profile("paper").train.arch == "resnet50"
    assert get_profile("quick").train.input_size == 64
