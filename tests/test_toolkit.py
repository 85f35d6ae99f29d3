"""Practitioner's tools on a tiny run: extract a folder's features, export ONNX / TorchScript."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from prreid_lib.cli import main
from prreid_lib.runs import load_trained
from tests.test_train import TINY, make_tiny_vehicleid


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture()
def image_folder(tmp_path) -> Path:
    """Images of every accepted kind, in a nested folder, plus files that are not images."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "images"
    (folder / "sub" / "deeper").mkdir(parents=True)
    rgb = lambda: rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)  # noqa: E731
    Image.fromarray(rgb()).save(folder / "a.jpg")
    Image.fromarray(rgb()).save(folder / "sub" / "B.PNG")
    Image.fromarray(rgb()[..., 0]).save(folder / "sub" / "grey.png")  # mode L
    rgba = np.concatenate([rgb(), np.full((37, 45, 1), 128, np.uint8)], axis=2)
    Image.fromarray(rgba).save(folder / "sub" / "deeper" / "alpha.png")  # mode RGBA
    Image.fromarray(rgb()).save(folder / "sub" / "deeper" / "c.bmp")
    Image.fromarray(rgb()).save(folder / "sub" / "d.JPEG", format="JPEG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_extract_folder_matches_image_features(tiny_run, image_folder, tmp_path):
    from prreid_lib.evaluate import image_features
    from prreid_lib.extract import extract_folder

    feats, paths = extract_folder(tiny_run, image_folder, "cpu", batch_size=4, progress=False)
    names = [Path(p).relative_to(image_folder).as_posix() for p in paths]
    assert names == sorted(names) and len(names) == 6 and "notes.txt" not in names
    assert feats.dtype == np.float32 and feats.shape == (6, TINY.feat_dim)
    model = load_trained(tiny_run)
    frame = pd.DataFrame({"path": paths, "pid": 0})
    expected = image_features(model, frame, cache_dir=tmp_path / "cache").numpy()
    np.testing.assert_allclose(feats, expected, atol=1e-5, rtol=0)
    again, _ = extract_folder(tiny_run, image_folder, "auto", batch_size=64, progress=False)
    np.testing.assert_allclose(again, feats, atol=1e-5, rtol=0)  # batching does not matter


def test_cli_extract_writes_features_and_paths(tiny_run, image_folder, tmp_path, capsys):
    out = tmp_path / "out" / "feats.npy"
    code = main(["extract", "--run", str(tiny_run), "--images", str(image_folder)]
                + ["--out", str(out), "--batch-size", "2", "--device", "cpu"])  # fmt: skip
    assert code == 0
    feats = np.load(out)
    table = pd.read_csv(out.with_suffix(".csv"))
    assert feats.shape == (6, TINY.feat_dim) and list(table.columns) == ["path"]
    assert table["path"].tolist() == sorted(table["path"]) and len(table) == 6
    captured = capsys.readouterr()
    assert "written to" in captured.out and "extract" in captured.err  # the bar is on stderr


@pytest.mark.parametrize("problem", ["missing run", "empty folder", "bad image", "no folder"])
def test_cli_extract_errors_are_one_line(tiny_run, tmp_path, capsys, problem):
    run, folder = tiny_run, tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (20, 20)).save(folder / "ok.png")
    if problem == "missing run":
        run = tmp_path / "no-run"
        culprit = str(run)
    elif problem == "empty folder":
        (folder / "ok.png").unlink()
        culprit = str(folder)
    elif problem == "no folder":
        folder = culprit = tmp_path / "nowhere"
        culprit = str(folder)
    else:
        (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg at all")
        culprit = str(folder / "broken.jpg")
    code = main(["extract", "--run", str(run), "--images", str(folder)]
                + ["--out", str(tmp_path / "f.npy"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err
    assert len(err.splitlines()) == 1 and culprit in err
    assert not (tmp_path / "f.npy").exists()


def test_onnx_export_matches_torch(tiny_run, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    from prreid_lib.export import FeatureGraph
    from prreid_lib.model import extract_features

    out = tmp_path / "model.onnx"
    code = main(["export", "--run", str(tiny_run), "--format", "onnx", "--out", str(out)])
    assert code == 0 and out.is_file() and "written to" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["input_size"] == "32" and meta["input_range"] == "[0, 1]"
    assert json.loads(meta["normalization_mean"]) == [0.485, 0.456, 0.406]
    assert json.loads(meta["normalization_std"]) == [0.229, 0.224, 0.225]
    model = load_trained(tiny_run)
    graph = FeatureGraph(model)
    for batch in (3, 1):  # dynamic batch axis
        x = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        (got,) = session.run(None, {"images": x.numpy()})
        with torch.no_grad():
            want = graph(x).numpy()
        assert got.shape == (batch, TINY.feat_dim)
        assert np.abs(got - want).max() < 1e-4
    pixels = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    (got,) = session.run(None, {"images": (pixels.float() / 255).numpy()})
    assert np.abs(got - extract_features(model, pixels).numpy()).max() < 1e-4


def test_torchscript_export_matches_torch(tiny_run, tmp_path):
    from prreid_lib.export import EXTRA_FILE, FeatureGraph, export_run

    out, meta = export_run(tiny_run, tmp_path / "model.pt", "torchscript")
    extra = {EXTRA_FILE: ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra[EXTRA_FILE]) == meta and meta["input_size"] == "32"
    graph = FeatureGraph(load_trained(tiny_run))
    for batch in (5, 1):
        x = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            assert (loaded(x) - graph(x)).abs().max().item() < 1e-4


def test_export_refuses_unknown_format_and_missing_run(tiny_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["export", "--run", str(tiny_run), "--format", "tflite", "--out", "x"])
    missing = tmp_path / "no-run"
    assert main(["export", "--run", str(missing), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err.splitlines()[-1] and "Traceback" not in err


def test_cli_evaluate_rerank_and_json(tiny_run, capsys, tmp_path):
    data_root = tiny_run.parents[1] / "VehicleID"
    base = ["evaluate", "--run", str(tiny_run), "--data-root", str(data_root), "--n-trials", "2"]
    plain_json, same_json, rr_json = (tmp_path / f"{n}.json" for n in ("plain", "same", "rr"))
    assert main([*base, "--out", str(plain_json)]) == 0
    printed = capsys.readouterr().out
    plain = json.loads(plain_json.read_text())
    figures = plain["results"]["vehicleid"]
    assert f"CMC@1 {figures['CMC@1']:.4f}" in printed and f"mAP {figures['mAP']:.4f}" in printed
    assert f"CMC@5 {figures['CMC@5']:.4f}" in printed and plain["rerank"] is None
    assert plain["n_trials"] == 2 and plain["dataset"] == "vehicleid"
    # lambda 1 keeps only the (row-scaled) original distance: the same ranking
    rerank = ["--rerank", "--k1", "4", "--k2", "2", "--lambda-value", "1"]
    assert main([*base, *rerank, "--out", str(same_json)]) == 0
    same = json.loads(same_json.read_text())
    assert same["rerank"] == {"k1": 4, "k2": 2, "lambda_value": 1.0}
    for key in ("CMC@1", "CMC@5", "mAP"):
        assert same["results"]["vehicleid"][key] == pytest.approx(figures[key], abs=1e-9)
    assert "re-ranked k1 4 k2 2 lambda 1" in capsys.readouterr().out
    rerank[-1] = "0.3"
    assert main([*base, *rerank, "--device", "cpu", "--out", str(rr_json)]) == 0
    assert 0 <= json.loads(rr_json.read_text())["results"]["vehicleid"]["mAP"] <= 1


def test_evaluate_veri_rerank_uses_reranked_distances(monkeypatch):
    from types import SimpleNamespace

    from prreid_lib import evaluate, metrics

    feats = torch.tensor([[0.0, 0], [1, 0], [0, 1], [0.1, 0], [1, 0.1], [0, 1.2], [3, 3]])
    monkeypatch.setattr(evaluate, "image_features", lambda m, frame, *a, **k: feats[frame.index])
    query = pd.DataFrame({"pid": [1, 2, 3], "camid": [0, 0, 0]}, index=[0, 1, 2])
    gallery = pd.DataFrame({"pid": [1, 2, 3, 4], "camid": [1, 1, 1, 1]}, index=[3, 4, 5, 6])
    veri = SimpleNamespace(query=query, gallery=gallery, tracks=[[0], [1], [2], [3]])
    calls = []
    real = metrics.reranked_distance

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "reranked_distance", spy)
    plain = evaluate.evaluate_veri(None, veri)
    ranked = evaluate.evaluate_veri(None, veri, rerank={"k1": 2, "k2": 1, "lambda_value": 0.5})
    assert calls == [{"k1": 2, "k2": 1, "lambda_value": 0.5}]
    assert set(ranked) == {"image", "track"} and plain["image"].mAP == pytest.approx(1.0)
    assert 0 < ranked["image"].mAP <= 1


def _train_cli(data_root: Path, out: Path, *extra: str) -> list[str]:
    return ["--profile", "smoke", "--data-root", str(data_root), "--parts",
            str(data_root / "boxes.csv"), "--output-dir", str(out), "--device", "cpu",
            "--set", "epochs=2", "--set", "input_size=32", "--set", "batch_size=4",
            "--set", "feat_dim=32", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-train") / "VehicleID"
    frame, boxes = make_tiny_vehicleid(root)
    frame.to_csv(root / "train.csv", index=False)
    boxes.to_csv(root / "boxes.csv", index=False)
    return root


@pytest.mark.slow  # two trainings of two epochs
def test_train_prints_one_line_per_epoch_and_writes_tensorboard(tiny_data, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from prreid_lib import train

    board = tmp_path / "board"
    assert train.main(_train_cli(tiny_data, tmp_path / "runs", "--tensorboard", str(board))) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(" | ")[0] for ln in lines] == ["epoch 1/2", "epoch 2/2"]
    for word in ("loss", "global_ce", "global_acc", "acc_window", "lr", "img/s", "elapsed"):
        assert word in lines[0]
    events = list(board.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(board))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
    assert "train/acc_window" in acc.Tags()["scalars"]


@pytest.mark.slow  # two trainings of two epochs
def test_train_log_callable_and_quiet_without_progress(tiny_data, tmp_path, capsys):
    from dataclasses import replace

    from prreid_lib.train import train_reid

    frame, boxes = pd.read_csv(tiny_data / "train.csv"), pd.read_csv(tiny_data / "boxes.csv")
    cfg = replace(TINY, epochs=2)
    lines: list[str] = []
    train_reid(cfg, frame, boxes, tmp_path / "a", device="cpu", progress=False, log=lines.append)
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2 | loss ")
    train_reid(cfg, frame, boxes, tmp_path / "b", device="cpu", progress=False)
    assert "epoch" not in capsys.readouterr().out  # the chapters train quietly


def test_train_tensorboard_without_the_package_is_one_line(
    tiny_data, tmp_path, capsys, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    code = main(["train", *_train_cli(tiny_data, tmp_path / "runs", "--tensorboard", "tb")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "'.[tensorboard]'" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "command, where",
    [
        ("synth", "OUT/VeRi-776/"),
        ("train", "OUTPUT_DIR/<name>-<key>/"),
        ("detect", "OUTPUT_DIR/detector/"),
        ("evaluate", "JSON file"),
        ("extract", "FEATS.csv"),
        ("export", "FILE"),
        ("book", "_build/html/"),
        ("archive", "results/<profile>/"),
    ],
)
def test_every_help_says_what_it_writes_where(command, where, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert exc.value.code == 0 and where in out and "rite" in out


def test_decode_images_into_a_memory_mapped_cache(image_folder, tmp_path):
    from prreid_lib.extract import list_images
    from prreid_lib.pipeline.imageset import decode_images

    paths = [str(p) for p in list_images(image_folder)]
    in_memory, sizes = decode_images(paths, 24)
    cache = tmp_path / "cache"
    mapped, mapped_sizes = decode_images(paths, 24, cache)
    assert torch.equal(mapped, in_memory) and np.array_equal(mapped_sizes, sizes)
    files = sorted(f.name for f in cache.iterdir())
    assert len(files) == 2 and not any(f.endswith(".tmp") for f in files)
    stored = np.load(cache / files[0], mmap_mode="r")
    assert isinstance(stored, np.memmap) and stored.shape == (6, 3, 24, 24)
    again, _ = decode_images(paths, 24, cache)
    assert torch.equal(again, in_memory)
    empty, empty_sizes = decode_images([], 24, cache)
    assert empty.shape == (0, 3, 24, 24) and empty_sizes.shape == (0, 2)
