"""The command line says what it does: dependent options, bounds, --out, named options, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from prreid_lib import runs
from prreid_lib.cli import main
from prreid_lib.model import PartRegularizedReID
from tests.test_train import make_tiny_vehicleid

ROOT = Path(__file__).resolve().parents[1]


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _refused(capsys, argv: list[str]) -> str:
    """Run ``prreid argv``: status 2 and one line on stderr, returned without its prefix."""
    code = main(argv)
    line = _one_line(capsys.readouterr().err)
    assert code == 2, line
    prefix = f"prreid {argv[0]}: error: "
    assert line.startswith(prefix), line
    return line[len(prefix) :]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture(scope="module")
def record() -> dict:
    """A model record as train_reid writes it (untrained, resnet18, 8-d features)."""
    torch.manual_seed(0)
    model = PartRegularizedReID(num_classes=6, arch="resnet18", feat_dim=8, parts=())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return {"kwargs": model.init_kwargs(), "state_dict": state, "input_size": 32}


def _run(folder: Path, record: dict, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = record | {"pid_values": list(range(10, 16))} | changes  # make_tiny_vehicleid's
    runs.atomic_torch_save(data, folder / runs.MODEL)
    return folder


@pytest.fixture()
def run(tmp_path, record) -> Path:
    return _run(tmp_path / "runs" / "run-0123456789ab", record)


@pytest.fixture()
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture()
def data(tmp_path) -> Path:
    root = tmp_path / "VehicleID"
    _, boxes = make_tiny_vehicleid(root)
    boxes.to_csv(root / "boxes.csv", index=False)
    return root


# ----------------------------------------------------------------- options that need another


def test_dependent_options_are_refused_without_the_option_they_need(tmp_path, run, data, capsys):
    base = ["evaluate", "--run", str(run), "--data-root", str(data)]
    cases = [
        (base + ["--k1", "4"], "--k1 4: applies only with --rerank; leave --k1 out"),
        (base + ["--k2", "2"], "--k2 2: applies only with --rerank"),
        (base + ["--lambda-value", "0.5"], "--lambda-value 0.5: applies only with --rerank"),
        (base + ["--dataset", "veri776", "--n-trials", "3"], "--n-trials 3: applies only with"),
        (base + ["--dataset", "veri776", "--test-size", "1600"], "--test-size 1600: applies"),
        (
            ["export", "--run", str(run), "--format", "torchscript", "--opset", "12"]
            + ["--out", str(tmp_path / "m.pt")],
            "--opset 12: applies only with --format onnx",
        ),
        (
            ["train", "--profile", "smoke", "--data-root", str(data), "--data-seed", "1"],
            "--data-seed 1: applies only without --data-root",
        ),
        (
            ["book", "--profile", "smoke", "--data-root", str(data), "--data-seed", "1"],
            "--data-seed 1: applies only without --data-root",
        ),
        (
            ["train", "--profile", "smoke", "--data-root", str(data), "--parts", "gt"]
            + [f"--set=lambda_p.{p}=0" for p in ("window", "light", "brand")],
            "--parts gt: applies only when a part branch trains",
        ),
    ]
    for argv, message in cases:
        assert _refused(capsys, argv).startswith(message)
    assert not (tmp_path / "m.pt").exists()


def test_dependent_options_given_with_their_option_still_work(run, data):
    from prreid_lib.evaluate import parse_args

    args = parse_args(["--run", str(run), "--data-root", str(data), "--rerank", "--k2", "3"])
    assert (args.k1, args.k2, args.lambda_value) == (20, 3, 0.3)  # defaults filled in
    args = parse_args(["--run", str(run), "--data-root", str(data), "--dataset", "veri776"])
    assert args.test_size == 800 and args.n_trials == 10


# ----------------------------------------------------------------- upper bounds


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("input_size=100000", "input_size must be an integer multiple of 16"),
        ("input_size=2048", "from 32 to 1024"),
        ("epochs=100000", "epochs must be an integer >= 1 and <= 1000"),
        ("batch_size=100000", "batch_size must be an integer >= 1 and <= 4096"),
        ("feat_dim=100000", "feat_dim must be an integer >= 1 and <= 8192"),
        ("num_instances=100000", "num_instances must be an integer >= 1 and <= 4096"),
        ("pad=1000", "pad must be an integer >= 0 and <= 64 (input_size)"),
        ("warmup_epochs=5000", "warmup_epochs must be an integer >= 0 and <= 1000"),
    ],
)
def test_train_sizes_have_upper_bounds(tmp_path, data, capsys, item, message):
    cache, out = tmp_path / "cache", tmp_path / "out"
    argv = ["train", "--profile", "smoke", "--data-root", str(data), "--parts", "none"]
    argv += ["--output-dir", str(out), "--cache-dir", str(cache), "--set", item]
    line = _refused(capsys, argv)
    assert line.startswith(f"--set {item}: "), line
    assert message in line and "got" in line
    assert not cache.exists() and not out.exists()  # nothing allocated, nothing written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rerank", "--k1", "0"], "--k1 0: expected an integer from 1 to 1000"),
        (["--rerank", "--k2", "5000"], "--k2 5000: expected an integer from 1 to 1000"),
        (["--rerank", "--lambda-value", "1.5"], "--lambda-value 1.5: expected a number from 0"),
        (["--rerank", "--lambda-value", "nan"], "--lambda-value nan: expected a number"),
        (["--n-trials", "0"], "--n-trials 0: expected an integer from 1 to 1000"),
        (["--n-trials", "1000000"], "--n-trials 1000000: expected an integer from 1 to 1000"),
        (["--test-size", "-5"], "--test-size -5: expected an integer from 1"),
    ],
)
def test_evaluate_counts_have_bounds(run, data, capsys, argv, message):
    line = _refused(capsys, ["evaluate", "--run", str(run), "--data-root", str(data), *argv])
    assert line.startswith(message), line


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        ("extract", ["--batch-size", "0"], "--batch-size 0: expected an integer from 1 to 4096"),
        ("extract", ["--batch-size", "99999"], "--batch-size 99999: expected an integer from 1"),
        ("export", ["--opset", "3"], "--opset 3: expected an integer from 9 to"),
        ("export", ["--opset", "99"], "--opset 99: expected an integer from 9 to"),
        ("train", ["--seed", "-1"], "--seed -1: expected an integer from 0 to 4294967295"),
        ("synth", ["--seed", "-1"], "--seed -1: expected an integer from 0 to 4294967295"),
    ],
)
def test_other_counts_have_bounds(tmp_path, run, images, capsys, command, argv, message):
    out = tmp_path / "out" / "x"
    lines = {
        "extract": ["--run", str(run), "--images", str(images), "--out", str(out)],
        "export": ["--run", str(run), "--out", str(out)],
        "train": ["--profile", "smoke", "--output-dir", str(out)],
        "synth": ["--profile", "smoke", "--out", str(out)],
    }
    line = _refused(capsys, [command, *lines[command], *argv])
    assert line.startswith(message), line
    assert not (tmp_path / "out").exists()


def test_image_cache_larger_than_the_free_disk_is_refused_before_it_is_created(
    tmp_path, images, monkeypatch
):
    import shutil
    from collections import namedtuple

    from prreid_lib.pipeline.imageset import decode_images

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    cache = tmp_path / "cache" / "sub"
    paths = sorted(str(p) for p in images.iterdir())
    with pytest.raises(OSError) as exc:
        decode_images(paths, 1024, cache)
    message = str(exc.value)
    assert "the image cache of 3 images at 1024 x 1024 px needs 9.0 MiB" in message
    assert f"{cache} has 976.6 KiB free" in message and "--cache-dir" in message
    assert "smaller input_size" in message and not (tmp_path / "cache").exists()
    tensor, _ = decode_images(paths, 16, cache)  # 2.3 KB fits in 1 MB
    assert tensor.shape == (3, 3, 16, 16)


def test_image_cache_that_is_a_file_is_named(tmp_path, images):
    from prreid_lib.pipeline.imageset import decode_images

    blocker = tmp_path / "cache"
    blocker.write_text("mine")
    with pytest.raises(NotADirectoryError, match=f"image cache {blocker}/c is not a folder"):
        decode_images([str(p) for p in images.iterdir()], 16, blocker / "c")
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize(
    ("changes", "stored"),
    [
        ({"input_size": 100000}, "input_size 100000"),
        ({"input_size": -4}, "input_size -4"),
        ({"input_size": "64"}, "input_size '64'"),
    ],
)
@pytest.mark.parametrize("command", ["extract", "export", "evaluate"])
def test_model_file_with_out_of_bound_sizes_is_refused_on_load(
    tmp_path, record, images, data, capsys, monkeypatch, command, changes, stored
):
    from prreid_lib import evaluate, export, extract

    def never(*args, **kwargs):
        raise AssertionError("an image was decoded or a graph built with the stored size")

    monkeypatch.setattr(extract, "_read", never, raising=False)
    monkeypatch.setattr(extract, "decode_rgb", never, raising=False)
    monkeypatch.setattr(export, "export_model", never)
    monkeypatch.setattr(evaluate, "image_features", never)
    monkeypatch.setattr(evaluate, "run_training_identities", lambda run: None, raising=False)
    bad = _run(tmp_path / "bad-run", record, **changes)
    out = tmp_path / "out" / "f.npy"
    argv = {
        "extract": ["--images", str(images), "--out", str(out), "--no-progress"],
        "export": ["--out", str(out)],
        "evaluate": ["--data-root", str(data), "--out", str(out)],
    }[command]
    line = _refused(capsys, [command, "--run", str(bad), *argv])
    assert f"{bad / 'model.pt'} stores {stored}, expected an integer from 1 to 1024" in line
    assert f"delete the run folder {bad}" in line and not out.parent.exists()


def test_model_file_with_a_huge_feature_size_is_refused_before_the_model_is_built(
    tmp_path, record, images, capsys, monkeypatch
):
    import prreid_lib.runs as runs_module

    def never(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(runs_module, "PartRegularizedReID", never)
    bad = _run(tmp_path / "bad", record, kwargs=record["kwargs"] | {"feat_dim": 10**9})
    argv = ["extract", "--run", str(bad), "--images", str(images), "--out", str(tmp_path / "f")]
    line = _refused(capsys, argv)
    assert "stores feat_dim 1000000000, expected an integer from 1 to 8192" in line


# ----------------------------------------------------------------- --out


def test_extract_out_folder_gets_default_names(tmp_path, run, images, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("results").mkdir()
    argv = ["extract", "--run", str(run), "--images", "images", "--no-progress"]
    assert main([*argv, "--out", "results", "--device", "cpu"]) == 0
    assert np.load("results/features.npy").shape == (3, 8)
    assert pd.read_csv("results/features.csv")["path"].str.endswith(".png").all()
    assert "results/features.npy and results/features.csv" in capsys.readouterr().out
    assert main([*argv, "--out", "new/deeper/", "--device", "cpu"]) == 0  # DIR/: a folder
    assert Path("new/deeper/features.npy").is_file()
    assert main([*argv, "--out", "made/f"]) == 0  # missing parents are made, .npy added
    assert Path("made/f.npy").is_file() and Path("made/f.csv").is_file()


def test_export_and_evaluate_out_folder_get_default_names(tmp_path, run, data):
    from prreid_lib import evaluate, export

    folder = tmp_path / "exports"
    folder.mkdir()
    base = ["--run", str(run), "--out", str(folder)]
    assert export.parse_args(base).out == folder / "model.onnx"
    assert export.parse_args([*base, "--format", "torchscript"]).out == (
        folder / "model.torchscript.pt"
    )
    args = evaluate.parse_args(["--run", str(run), "--data-root", str(data), "--out", str(folder)])
    assert args.out == folder / "evaluation.json"
    assert export.main([*base, "--format", "torchscript"]) == 0
    assert (folder / "model.torchscript.pt").is_file() and (run / "model.pt").is_file()


@pytest.mark.parametrize("command", ["extract", "export", "evaluate", "detect"])
def test_out_under_a_file_or_onto_a_run_file_is_refused(
    tmp_path, run, images, data, capsys, command
):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    rest = {
        "extract": ["--run", str(run), "--images", str(images)],
        "export": ["--run", str(run), "--format", "torchscript"],
        "evaluate": ["--run", str(run), "--data-root", str(data)],
        "detect": ["--profile", "smoke"],
    }[command]
    line = _refused(capsys, [command, *rest, "--out", str(blocker / "f.csv")])
    assert line.startswith(f"--out {blocker}/f.csv: {blocker} is a file, not a folder")
    if command != "detect":
        target = run / ("config.json" if command == "evaluate" else "model.pt")
        if command == "extract":
            target = run / "metrics.csv"  # FEATS.csv beside FEATS.npy
            (run / "metrics.csv").write_text("epoch\n1\n")
            line = _refused(capsys, [command, *rest, "--out", str(run / "metrics")])
        else:
            line = _refused(capsys, [command, *rest, "--out", str(target)])
        assert f"{target} is a file prreid reads back; pass another file name" in line
    assert blocker.read_text() == "mine" and (run / "model.pt").stat().st_size > 1000


# ----------------------------------------------------------------- messages name the option


def test_bad_paths_are_one_line_naming_the_option(tmp_path, run, images, data, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    smoke = ["train", "--profile", "smoke", "--data-root", str(data), "--parts", "none"]
    cases = [
        (smoke + ["--cache-dir", str(afile)], f"--cache-dir {afile}: is a file, not a folder"),
        (smoke + ["--cache-dir", str(afile / "c")], f"{afile} is a file, not a folder"),
        (smoke + ["--output-dir", str(afile)], f"--output-dir {afile}: is a file"),
        (smoke + ["--tensorboard", str(afile)], f"--tensorboard {afile}: is a file"),
        (smoke + ["--name", "../up"], "--name ../up: expected a plain name"),
        (smoke + ["--parts", str(tmp_path / "no.csv")], f"--parts {tmp_path / 'no.csv'}: not f"),
        (smoke + ["--device", "gpu"], "--device gpu: not a device name; pass auto, cpu, cuda"),
        (["train", "--profile", "veri776"], "--profile veri776: trains on the real veri776 data"),
        (["evaluate", "--run", str(data), "--data-root", str(data)], f"--run {data}: not a fini"),
        (["evaluate", "--run", str(run), "--data-root", str(afile)], f"--data-root {afile}: is a"),
        (
            ["extract", "--run", str(run), "--images", str(tmp_path / "no"), "--out", "f"],
            f"--images {tmp_path / 'no'}: not found; pass a folder of images",
        ),
        (["export", "--run", str(afile), "--out", "m"], f"--run {afile}: is a file, not a folder"),
        (["synth", "--out", str(afile)], f"--out {afile}: is a file, not a folder"),
        (["detect", "--data-root", str(data)], f"--data-root {data}: has no parts/data.yaml"),
        (["book", "--chapters", "99"], "--chapters 99: no chapter name starts with it"),
        (["archive", "--profile", "smoke", "--output-dir", str(afile)], "--output-dir"),
    ]
    for argv, message in cases:
        line = _refused(capsys, argv)
        assert line.split()[0] in argv and message in line, line
    assert afile.read_text() == "x"


def test_unwritable_folder_is_named(tmp_path, data, capsys, monkeypatch):
    from prreid_lib import argcheck

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(argcheck.os, "access", lambda p, mode: real(p, mode) and Path(p) != locked)
    argv = ["train", "--profile", "smoke", "--data-root", str(data), "--parts", "none"]
    line = _refused(capsys, [*argv, "--output-dir", str(locked / "runs")])
    assert line.startswith(f"--output-dir {locked}/runs: {locked} is not writable; pass a folder")


def test_archive_refuses_a_results_folder_it_did_not_write(tmp_path, capsys):
    build = tmp_path / "build"
    (build / "tables").mkdir(parents=True)
    (build / "tables" / "t.csv").write_text("a\n1\n")
    mine = tmp_path / "home" / "smoke"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("keep")
    argv = ["archive", "--profile", "smoke", "--output-dir", str(build)]
    line = _refused(capsys, [*argv, "--results", str(tmp_path / "home")])
    assert "holds no provenance.json, so prreid archive did not write it" in line
    assert (mine / "thesis.tex").read_text() == "keep"


def test_parser_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--run", "r", "--data-root", "d", "--k1", "many"])
    line = _one_line(capsys.readouterr().err)
    assert exc.value.code == 2 and "argument --k1: invalid int value: 'many'" in line
    assert line.startswith("prreid evaluate: error:")


# ----------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize(
    ("command", "target"),
    [("extract", "extract_folder"), ("export", "export_run"), ("evaluate", "evaluate_vehicleid")],
)
def test_interrupt_is_one_line_with_status_130(
    tmp_path, run, images, data, capsys, monkeypatch, command, target
):
    import importlib

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(f"prreid_lib.{command}"), target, interrupt)
    out = tmp_path / "out" / "x"
    rest = {
        "extract": ["--run", str(run), "--images", str(images), "--out", str(out)],
        "export": ["--run", str(run), "--out", str(out)],
        "evaluate": ["--run", str(run), "--data-root", str(data), "--out", str(out)],
    }[command]
    assert main([command, *rest]) == 130
    line = _one_line(capsys.readouterr().err)
    assert line == f"prreid {command}: interrupted: nothing was written; run the same command again"
    assert not (tmp_path / "out").exists()


def test_interrupted_training_names_the_checkpoint_kept(tmp_path, data, capsys, monkeypatch):
    from prreid_lib import train

    out = tmp_path / "runs"

    def two_epochs_then_ctrl_c(*args, **kwargs):
        run_dir = out / "base-0123456789ab"
        run_dir.mkdir(parents=True)
        (run_dir / runs.CHECKPOINT).write_bytes(b"checkpoint")
        (run_dir / runs.METRICS_CSV).write_text("epoch,loss\n1,2.0\n2,1.5\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "run_or_load", two_epochs_then_ctrl_c)
    argv = ["train", "--profile", "smoke", "--data-root", str(data), "--parts", "none"]
    assert main([*argv, "--output-dir", str(out), "--name", "base"]) == 130
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"prreid train: interrupted: the checkpoint of epoch 2 in {out / 'base-0123456789ab'} "
        "was kept; run the same command again to resume"
    )


def test_sigterm_takes_the_same_path_with_status_143(tmp_path, run, images, capsys, monkeypatch):
    from prreid_lib import extract

    before = signal.getsignal(signal.SIGTERM)

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts the sleep
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(extract, "extract_folder", terminated)
    argv = ["extract", "--run", str(run), "--images", str(images), "--out", str(tmp_path / "f")]
    assert main(argv) == 143
    assert "interrupted: nothing was written" in _one_line(capsys.readouterr().err)
    assert signal.getsignal(signal.SIGTERM) == before  # put back


@pytest.mark.slow  # a real training process, interrupted after its first epoch (~20 s)
def test_ctrl_c_in_a_real_training_keeps_the_checkpoint_and_resumes(tmp_path, data):
    out, cache = tmp_path / "runs", tmp_path / "cache"
    argv = [sys.executable, "-m", "prreid_lib.cli", "train", "--profile", "smoke"]
    argv += ["--data-root", str(data), "--parts", str(data / "boxes.csv"), "--device", "cpu"]
    argv += ["--output-dir", str(out), "--cache-dir", str(cache), "--no-progress"]
    settings = ["epochs=200", "input_size=32", "batch_size=4", "feat_dim=16", "arch=resnet18"]
    argv += [arg for s in settings for arg in ("--set", s)]
    env = os.environ | {"PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(f"run-*/{runs.METRICS_CSV}")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no epoch finished in 120 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    text = err.decode()
    line = _one_line(text)
    assert proc.returncode == 130, text
    run_dir = next(out.glob("run-*"))
    assert line.startswith("prreid train: interrupted: the checkpoint of epoch ")
    assert line.endswith(f"in {run_dir} was kept; run the same command again to resume")
    assert (run_dir / runs.CHECKPOINT).is_file() and not (run_dir / runs.MODEL).exists()


def test_ctrl_c_in_a_real_synth_keeps_the_data_set_there(tmp_path):
    import json

    from prreid_lib.synthveh import generate_synthveh
    from tests.test_synthetic import TINY

    out = tmp_path / "synthveh"
    generate_synthveh(TINY, out, seed=5, workers=1)
    argv = [sys.executable, "-m", "prreid_lib.cli", "synth", "--profile", "smoke"]
    proc = subprocess.Popen(
        [*argv, "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".synthveh.tmp-*")):  # rendering has started
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "synth did not start in 60 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    line = _one_line(err.decode())
    assert proc.returncode == 130, line
    assert line == (
        f"prreid synth: interrupted: the complete data set in {out} (seed 5) was kept; "
        "run the same command again to replace it"
    )
    assert json.loads((out / "synthveh.json").read_text())["seed"] == 5
    assert not list(out.glob(".synthveh.tmp-*"))
