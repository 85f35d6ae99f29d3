"""Bad input is refused in one line naming the file or value and the fix; nothing is deleted."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from prreid_lib.cli import main
from prreid_lib.synthveh import generator as S
from tests.test_synthetic import TINY

TINY_SYNTH = TINY


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
    added = tmp_path / "VeRi-776" / "added.txt"  # the user's, inside a data-set folder
    added.write_text("old")
    replaced = tmp_path / "VeRi-776" / "gt_index.txt"
    replaced.write_text("edited")  # prreid's: replaced
    S.generate_synthveh(TINY_SYNTH, tmp_path, seed=1, workers=1)
    assert added.read_text() == "old" and (tmp_path / "notes.txt").read_text() == "mine"
    assert replaced.read_text() != "edited"
    assert '"seed": 1' in (tmp_path / "synthveh.json").read_text()
    assert not list(tmp_path.glob(".synthveh.tmp-*"))
    yaml = (tmp_path / "parts" / "data.yaml").read_text().splitlines()[0]
    assert yaml == "train: images/train"  # no `path`: its own folder, never the temporary one


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


# ----------------------------------------------------------------- training parameters

BAD_SETTINGS = [
    ("epochs=-1", "epochs must be an integer >= 1"),
    ("epochs=0", "epochs must be an integer >= 1"),
    ("epochs=1.5", "epochs must be an integer >= 1"),
    ("batch_size=0", "batch_size must be an integer >= 1"),
    ("lr=abc", "lr must be a positive number, got 'abc'"),
    ("lr=0", "lr must be a positive number"),
    ("lr=NaN", "lr must be a positive number"),
    ("lr_gamma=1.5", "lr_gamma must be a number in (0, 1]"),
    ("lr_gamma=0", "lr_gamma must be a number in (0, 1]"),
    ("lambda_p.window=-1", "lambda_p.window must be a number >= 0"),
    ("lambda_p.window=abc", "lambda_p.window must be a number >= 0"),
    ("lambda_p.wheel=1", "lambda_p.wheel must be a part among"),
    ("input_size=50", "input_size must be an integer multiple of 16"),
    ("input_size=0", "input_size must be an integer multiple of 16"),
    ("momentum=-0.1", "momentum must be a number >= 0"),
    ("weight_decay=-1", "weight_decay must be a number >= 0"),
    ("feat_dim=0", "feat_dim must be an integer >= 1"),
    ("use_global=yes", "use_global must be true or false"),
    ("bnneck=1", "bnneck must be true or false"),
    ("recipe=fancy", "recipe must be one of paper, strong"),
    ("optimizer=rmsprop", "optimizer must be one of sgd, adam"),
    ("scheduler=step", "scheduler must be one of exp, cosine"),
    ("sampler=pq", "sampler must be one of random, pk"),
    ("arch=vgg", "arch must be one of"),
]


@pytest.mark.parametrize(("item", "message"), BAD_SETTINGS)
def test_overrides_refuse_bad_values(item: str, message: str) -> None:
    from prreid_lib.config import TrainConfig
    from prreid_lib.recipes import apply_overrides, recipe_options

    cfg = TrainConfig()
    with pytest.raises(ValueError) as exc:
        apply_overrides(cfg, recipe_options(cfg), [item])
    assert str(exc.value).startswith(f"--set {item}: {message}"), str(exc.value)


def test_pk_sampler_needs_a_batch_of_at_least_k() -> None:
    from prreid_lib.config import TrainConfig
    from prreid_lib.recipes import apply_overrides, recipe_options

    cfg = TrainConfig(recipe="strong", num_instances=4)
    with pytest.raises(ValueError, match=r"--set batch_size=2: batch_size must be >= num_inst"):
        apply_overrides(cfg, recipe_options(cfg), ["batch_size=2"])


@pytest.mark.parametrize(("item", "message"), BAD_SETTINGS[:6])
def test_cli_train_refuses_before_writing(tmp_path: Path, capsys, item, message) -> None:
    out = tmp_path / "runs"
    code = main(["train", "--profile", "smoke", "--output-dir", str(out), "--set", item])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"prreid train: error: --set {item}: {message}")
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [({"epochs": -1}, "epochs must be"), ({"batch_size": 0}, "batch_size must be")],
)
def test_train_reid_refuses_before_creating_the_run_folder(tmp_path: Path, change, message):
    import dataclasses

    import pandas as pd

    from prreid_lib.config import TrainConfig
    from prreid_lib.train import train_reid

    cfg = dataclasses.replace(TrainConfig(input_size=32), **change)
    frame = pd.DataFrame({"path": ["a.jpg"], "pid": [1]})
    with pytest.raises(ValueError, match=message):
        train_reid(cfg, frame, None, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------- loading never runs code


class _Payload:
    """Stands for any pickled object (unpickling one may run code)."""


def _tiny_run(tmp_path: Path) -> Path:
    """A finished 1-epoch run on 8 tiny images (shared by the loading tests of a module)."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    from prreid_lib.config import TrainConfig
    from prreid_lib.train import train_reid

    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        path = tmp_path / "img" / f"{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        rows.append({"path": str(path), "pid": 10 + i // 4})
    cfg = TrainConfig(input_size=32, feat_dim=8, epochs=1, batch_size=4, lambda_p={"window": 0.0})
    run = tmp_path / "run"
    frame = pd.DataFrame(rows)
    train_reid(
        cfg, frame, None, run, progress=False, cache_dir=tmp_path / "c", keep_checkpoint=True
    )
    return run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return _tiny_run(tmp_path_factory.mktemp("run"))


def test_saved_files_load_weights_only(finished_run: Path) -> None:
    import torch

    from prreid_lib.runs import load_trained

    for name in ("model.pt", "checkpoint.pt"):
        torch.load(finished_run / name, map_location="cpu", weights_only=True)
    model = load_trained(finished_run)
    assert model.pid_values.tolist() == [10, 11]


@pytest.mark.parametrize("name", ["model.pt", "checkpoint.pt"])
@pytest.mark.parametrize("content", ["object", "empty", "garbage"])
def test_foreign_or_damaged_torch_files_are_refused(finished_run, tmp_path, name, content):
    import shutil

    import torch

    from prreid_lib.runs import load_trained

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    if name == "checkpoint.pt":
        (run / "final.json").unlink()  # unfinished: the next train_reid resumes
    target = run / name
    if content == "object":
        torch.save({"key": "x", "history": [], "model": _Payload()}, target)
    else:
        target.write_bytes(b"" if content == "empty" else b"\x80\x02garbage")
    with pytest.raises(ValueError) as exc:
        if name == "model.pt":
            load_trained(run)
        else:
            from prreid_lib.train import _read_checkpoint

            _read_checkpoint(run, "key")
    message = str(exc.value)
    assert "\n" not in message and str(target) in message
    assert "was not written by prreid or is damaged" in message
    fix = "delete it to restart the run" if name == "checkpoint.pt" else "delete the run folder"
    assert fix in message
    assert target.exists()  # reported, not deleted


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", "\udcff"])
def test_damaged_final_json_is_one_line(finished_run, tmp_path, text):
    import shutil

    from prreid_lib.runs import load_info

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    (run / "final.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError) as exc:
        load_info(run)
    message = str(exc.value)
    assert "\n" not in message and str(run / "final.json") in message
    assert "delete the run folder" in message


def test_model_files_with_numpy_arrays_still_load(finished_run, tmp_path):
    import shutil

    import numpy as np
    import torch

    from prreid_lib.runs import load_trained

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    state = torch.load(run / "model.pt", weights_only=True)
    torch.save(state | {"pid_values": np.array([10, 11])}, run / "model.pt")  # older format
    assert load_trained(run).pid_values.tolist() == [10, 11]


# ----------------------------------------------------------------- a full disk


@pytest.mark.parametrize("how", ["bytes", "torch"])
def test_full_disk_removes_the_temporary_file(tmp_path: Path, monkeypatch, how: str) -> None:
    import os

    import torch

    from prreid_lib import cache, runs

    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"previous")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache.os, "fsync", full)
    with pytest.raises(OSError) as exc:
        if how == "bytes":
            cache.atomic_write_bytes(target, b"new")
        else:
            runs.atomic_torch_save({"w": torch.zeros(3)}, target)
    message = str(exc.value)
    assert exc.value.errno == errno.ENOSPC and str(target) in message
    assert "free disk space" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert target.read_bytes() == b"previous"


# ----------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("argv", "unknown"),
    [
        (["synth", "--sead", "3", "--out", "OUT"], "--sead 3"),
        (["book", "--no-bulid"], "--no-bulid"),
        (["archive", "--profile", "smoke", "--bogus", "1"], "--bogus 1"),
    ],
)
def test_cli_refuses_unknown_options(tmp_path, capsys, monkeypatch, argv, unknown) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"prreid {argv[0]}: error: unrecognized arguments: {unknown}")
    assert list(tmp_path.iterdir()) == []  # nothing ran


@pytest.mark.parametrize("command", ["train", "detect", "evaluate"])
def test_delegated_commands_refuse_unknown_options(command, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--run", "r", "--data-root", "d", "--bogus"])
    assert exc.value.code == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    assert line.startswith(f"prreid {command}: error: unrecognized arguments:")
    assert line.endswith("--bogus")


def test_cli_version(capsys) -> None:
    from prreid_lib.cli import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"prreid {version()}"
    assert version()[0].isdigit()


def test_cli_debug_shows_the_traceback(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["synth", "--profile", "smoke", "--out", str(target)]) == 2
    with pytest.raises(ValueError, match="is a file, not a folder"):
        main(["synth", "--profile", "smoke", "--out", str(target), "--debug"])


def test_library_runtime_errors_are_not_user_errors(monkeypatch) -> None:
    from prreid_lib import cli
    from prreid_lib.errors import PrreidError

    assert RuntimeError not in cli.USER_ERRORS and PrreidError in cli.USER_ERRORS

    def boom(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr("prreid_lib.synthveh.generate_synthveh", boom)
    with pytest.raises(RuntimeError, match="device-side"):
        main(["synth", "--profile", "smoke", "--out", "unused"])


# ----------------------------------------------------------------- label files


@pytest.fixture
def one_label(tmp_path: Path) -> tuple[Path, Path]:
    from PIL import Image

    img, lab = tmp_path / "images" / "train", tmp_path / "labels" / "train"
    img.mkdir(parents=True)
    lab.mkdir(parents=True)
    Image.new("RGB", (100, 50)).save(img / "a.jpg")
    return img, lab / "a.txt"


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"0 nan 0.5 0.2 0.2\n", "not a finite number"),
        (b"0 0.5 inf 0.2 0.2\n", "not a finite number"),
        (b"nan 0.5 0.5 0.2 0.2\n", "not a finite number"),
        (b"inf 0.5 0.5 0.2 0.2\n", "not a finite number"),
        (b"\xff\xfe 0.5 0.5 0.2 0.2\n", "not UTF-8 text"),
    ],
)
def test_bad_numbers_and_bytes_in_labels_are_problems(one_label, content, found) -> None:
    from prreid_lib import annotate
    from prreid_lib.errors import DatasetFormatError

    images, label = one_label
    label.write_bytes(b"1 0.1 0.8 0.1 0.2\n" + content)
    problems = annotate.validate(images, raise_errors=False)
    assert problems["rule"].tolist() == ["malformed"]
    assert problems["file"].iloc[0] == str(label) and problems["line"].iloc[0] == 2
    assert found in problems["found"].iloc[0]
    with pytest.raises(DatasetFormatError, match=r"a\.txt, line 2: ") as exc:
        annotate.validate(images)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("bbox", ["[NaN, 1, 2, 3]", '["1", 1, 2, 3]', "[1, null, 2, 3]"])
def test_bad_coco_boxes_are_problems(one_label, bbox) -> None:
    from prreid_lib import annotate

    images, _ = one_label
    coco = images / "parts.json"
    coco.write_text(
        '{"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}], '
        '"categories": [{"id": 0, "name": "window"}], '
        f'"annotations": [{{"id": 5, "image_id": 1, "category_id": 0, "bbox": {bbox}}}]}}'
    )
    problems = annotate.validate(coco, images, raise_errors=False)
    assert problems["rule"].tolist() == ["malformed"] and problems["line"].tolist() == [1]


# ----------------------------------------------------------------- broken images


@pytest.mark.parametrize("hooked", [False, True], ids=["plain PIL", "after ultralytics"])
@pytest.mark.parametrize("damage", ["truncated", "text", "empty"])
def test_broken_image_names_the_file(tmp_path: Path, damage: str, hooked: bool) -> None:
    """Also once ultralytics is imported: it hooks PIL's open to retry unidentified files
    through an optional HEIF package, which must not turn a bad file into an ImportError."""
    import io

    if hooked:
        from prreid_lib.yolo_env import configure_offline

        configure_offline()
        import ultralytics.utils.patches  # noqa: F401 - installs the hook on PIL.Image.open

    import numpy as np
    from PIL import Image

    from prreid_lib.pipeline.imageset import decode_images

    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    good.write_bytes(buf.getvalue())
    data = {"truncated": buf.getvalue()[:400], "text": b"not an image\n", "empty": b""}
    bad.write_bytes(data[damage])
    with pytest.raises(ValueError) as exc:
        decode_images([str(good), str(bad)], 32, cache_dir=tmp_path / "cache")
    message = str(exc.value)
    assert message.startswith(f"{bad}: ") and "\n" not in message
    assert "regenerate the image or remove it from the list" in message
    assert not (tmp_path / "cache").exists()  # nothing cached from a failed decode


# ----------------------------------------------------------------- VeRi-776 optional files


@pytest.fixture
def veri_without_optional_files(tmp_path: Path) -> Path:
    from tests.test_loaders import make_veri

    root = make_veri(tmp_path / "VeRi")
    for name in ("test_track.txt", "gt_index.txt", "jk_index.txt"):
        (root / name).unlink()
    return root


def _fake_features(monkeypatch) -> None:
    import torch

    from prreid_lib import evaluate

    def features(model, frame, *args, **kwargs):
        return torch.randn(len(frame), 4, generator=torch.Generator().manual_seed(len(frame)))

    monkeypatch.setattr(evaluate, "image_features", features)


def test_missing_track_file_is_a_warning_naming_it(veri_without_optional_files, monkeypatch):
    from prreid_lib.datasets import load_veri776
    from prreid_lib.datasets.veri776 import missing_file_notes
    from prreid_lib.evaluate import evaluate_veri

    root = veri_without_optional_files.resolve()
    veri = load_veri776(root)
    assert veri.missing == ("test_track.txt", "gt_index.txt", "jk_index.txt")
    notes = missing_file_notes(veri)
    assert [n.split(" not found")[0] for n in notes] == [str(root / f) for f in veri.missing]
    _fake_features(monkeypatch)
    with pytest.warns(UserWarning, match=r"test_track\.txt not found: the image-to-track"):
        result = evaluate_veri(None, veri)
    assert set(result) == {"image"}


def test_cli_evaluate_names_missing_veri_files(veri_without_optional_files, monkeypatch, capsys):
    import warnings

    from prreid_lib import runs

    _fake_features(monkeypatch)
    monkeypatch.setattr(runs, "load_trained", lambda *a, **k: None)
    root = veri_without_optional_files.resolve()
    run = root.parent / "run"  # --run must be a run folder (holds model.pt) when parsed
    run.mkdir()
    (run / "model.pt").write_bytes(b"")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CLI says it in its own lines, not a warning
        code = main(
            ["evaluate", "--run", str(run), "--data-root", str(root), "--dataset", "veri776"]
        )
    assert code == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert [line.split(" not found")[0] for line in lines] == [
        f"prreid evaluate: warning: {root / name}"
        for name in ("test_track.txt", "gt_index.txt", "jk_index.txt")
    ]
    assert "VeRi-776 image-to-image:" in captured.out
    assert "VeRi-776 image-to-track" not in captured.out
