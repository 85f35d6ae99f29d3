"""Bad input is refused in one line naming the file or value and the fix; nothing is deleted."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from prreid_lib.cli import main
from prreid_lib.config import SynthConfig
from prreid_lib.data import synthetic as S

TINY_SYNTH = SynthConfig(
    n_makes=2,
    models_per_make=1,
    n_colours=2,
    veri_train_ids=4,
    veri_test_ids=3,
    veri_cameras=3,
    veri_images_per_id=3,
    vehicleid_train_ids=4,
    vehicleid_test_sizes=(2, 3, 4),
    vehicleid_images_per_id=2,
    n_annotated=4,
    n_part_val=2,
    image_size=48,
)


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# ----------------------------------------------------------------- never delete foreign folders


@pytest.mark.parametrize("sub", ["VeRi-776", "VehicleID", "parts", "pretrain"])
def test_synth_refuses_folders_it_did_not_write(tmp_path: Path, sub: str) -> None:
    mine = tmp_path / sub / "precious.txt"
    mine.parent.mkdir()
    mine.write_text("keep me")
    with pytest.raises(ValueError, match="choose an empty folder or remove it yourself") as exc:
        S.generate_synthveh(TINY_SYNTH, tmp_path, seed=0, workers=1)
    assert str(tmp_path) in str(exc.value) and sub in str(exc.value)
    assert mine.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [sub]  # nothing written either


def test_synth_replaces_what_it_wrote_and_keeps_the_rest(tmp_path: Path) -> None:
    S.generate_synthveh(TINY_SYNTH, tmp_path, seed=0, workers=1)
    (tmp_path / "notes.txt").write_text("mine")
    stale = tmp_path / "VeRi-776" / "stale.txt"
    stale.write_text("old")
    S.generate_synthveh(TINY_SYNTH, tmp_path, seed=1, workers=1)
    assert not stale.exists() and (tmp_path / "notes.txt").read_text() == "mine"
    assert '"seed": 1' in (tmp_path / "synthveh.json").read_text()
    assert not list(tmp_path.glob(".synthveh.tmp-*"))
    yaml = (tmp_path / "parts" / "data.yaml").read_text().splitlines()[0]
    assert yaml == f"path: {tmp_path / 'parts'}"


def test_ensure_refuses_a_foreign_root(tmp_path: Path) -> None:
    from prreid_lib.config import get_profile

    root = tmp_path / "mine"
    root.mkdir()
    (root / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="remove it yourself"):
        S.ensure_synthveh(get_profile("smoke"), root=root)
    assert (root / "thesis.tex").read_text() == "x"


def test_cli_synth_onto_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    target = tmp_path / "data.txt"
    target.write_text("not a folder")
    assert main(["synth", "--profile", "smoke", "--out", str(target)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("prreid synth: error:") and str(target) in line
    assert target.read_text() == "not a folder"


def test_cli_synth_read_only_target_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    real_mkdir = Path.mkdir

    def refuse(self, *args, **kwargs):
        if self == tmp_path / "ro" or tmp_path / "ro" in self.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["synth", "--profile", "smoke", "--out", str(tmp_path / "ro")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(tmp_path / "ro") in line and "Permission denied" in line
    assert "choose a writable folder" in line
