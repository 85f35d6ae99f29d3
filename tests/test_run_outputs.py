"""What a training run leaves: log.txt, evaluation during training, the checkpoint at the end;
and the quiet kernel of the book's chapters."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prreid_lib import runs, train
from prreid_lib.cli import main
from prreid_lib.runs import load_trained
from tests.test_train import TINY, make_tiny_vehicleid


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A VehicleID-layout folder (6 training vehicles, 3 test vehicles) and its part boxes."""
    root = tmp_path_factory.mktemp("outputs") / "VehicleID"
    frame, boxes = make_tiny_vehicleid(root)
    frame.to_csv(root / "train.csv", index=False)
    boxes.to_csv(root / "boxes.csv", index=False)
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _train(data: Path, out: Path, *extra: str, epochs: int = 2) -> list[str]:
    """``prreid train`` arguments of a tiny run on ``data`` into ``out``."""
    return ["train", "--profile", "smoke", "--data-root", str(data), "--parts",
            str(data / "boxes.csv"), "--output-dir", str(out), "--device", "cpu",
            "--set", f"epochs={epochs}", "--set", "input_size=32", "--set", "batch_size=4",
            "--set", "feat_dim=16", *extra]  # fmt: skip


def _epoch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("epoch ")]


def _one_run(out: Path) -> Path:
    (run_dir,) = out.glob("run-*")
    return run_dir


# ----------------------------------------------------------------------------- log.txt


@pytest.mark.slow  # one training of two epochs, interrupted and resumed (~15 s)
def test_log_txt_holds_the_printed_lines_and_a_resumed_run_appends(
    tiny_data, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "runs"
    real_epoch = train._Trainer.epoch

    def ctrl_c_in_epoch_2(self, epoch, progress):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, epoch, progress)

    monkeypatch.setattr(train._Trainer, "epoch", ctrl_c_in_epoch_2)
    assert main(_train(tiny_data, out)) == 130
    first = _epoch_lines(capsys.readouterr().out)
    run_dir = _one_run(out)
    assert [line.split(" | ")[0] for line in first] == ["epoch 1/2"]
    assert (run_dir / "log.txt").read_text().splitlines() == first
    assert (run_dir / "checkpoint.pt").is_file()  # unfinished: kept for the resume

    monkeypatch.setattr(train._Trainer, "epoch", real_epoch)
    assert main(_train(tiny_data, out)) == 0
    second = _epoch_lines(capsys.readouterr().out)
    assert [line.split(" | ")[0] for line in second] == ["epoch 2/2"]
    assert (run_dir / "log.txt").read_text().splitlines() == first + second
    assert pd.read_csv(run_dir / "metrics.csv")["epoch"].tolist() == [1, 2]


# ----------------------------------------------------------------------------- --eval-every


@pytest.mark.slow  # two trainings of two epochs and one evaluation (~20 s)
def test_eval_every_adds_the_protocol_figures_and_leaves_the_weights_alone(
    tiny_data, tmp_path, capsys
):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from prreid_lib.datasets import load_vehicleid
    from prreid_lib.evaluate import evaluate_vehicleid

    board = tmp_path / "board"
    evaluated = ["--eval-every", "2", "--tensorboard", str(board)]
    assert main(_train(tiny_data, tmp_path / "a", *evaluated)) == 0
    lines = _epoch_lines(capsys.readouterr().out)
    assert main(_train(tiny_data, tmp_path / "b")) == 0
    a, b = _one_run(tmp_path / "a"), _one_run(tmp_path / "b")
    assert a.name == b.name  # the same run key: evaluating is not part of the run

    history = pd.read_csv(a / "metrics.csv")
    columns = ["eval_CMC@1", "eval_CMC@5", "eval_mAP"]
    assert set(columns) <= set(history.columns)
    assert history[columns].isna().all(axis=1).tolist() == [True, False]  # epoch 2 only
    assert ((history.loc[1:, columns] >= 0) & (history.loc[1:, columns] <= 1)).all().all()
    assert ["eval_mAP" in line for line in lines] == [False, True]
    assert (a / "log.txt").read_text().splitlines() == lines

    # the last epoch's figures are those of the finished model under the same protocol
    test = load_vehicleid(tiny_data).test
    final = evaluate_vehicleid(load_trained(a), test, n_trials=train.EVAL_TRIALS)
    assert history["eval_CMC@1"].iloc[-1] == pytest.approx(final.cmc_mean[0], abs=1e-9)
    assert history["eval_mAP"].iloc[-1] == pytest.approx(final.mAP_mean, abs=1e-9)

    # the weights and the training figures are those of the run without evaluation
    wa, wb = load_trained(a).state_dict(), load_trained(b).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    plain = pd.read_csv(b / "metrics.csv")
    shared = [c for c in plain.columns if c != "seconds"]
    pd.testing.assert_frame_equal(history[shared], plain[shared])

    acc = EventAccumulator(str(board))
    acc.Reload()
    assert [e.step for e in acc.Scalars("eval/mAP")] == [2]
    assert "train/loss" in acc.Tags()["scalars"]


def test_an_evaluation_puts_back_every_random_state():
    def greedy(model):
        torch.rand(5), np.random.rand(5), random.random()  # draws from every global stream
        model.train()
        return {"mAP": 0.25}

    model = torch.nn.Linear(2, 2).eval()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    figures = train._evaluate(model, greedy, 32)
    assert figures == {"eval_mAP": 0.25} and not model.training and model.input_size == 32
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_evaluated_epochs_are_every_nth_and_the_last():
    assert [e for e in range(1, 8) if train.evaluates(e, 7, 3)] == [3, 6, 7]
    assert [e for e in range(1, 4) if train.evaluates(e, 3, 5)] == [3]
    assert not any(train.evaluates(e, 3, 0) for e in range(1, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eval_every": 2}, "eval_every=2 needs evaluator="),
        ({"evaluator": lambda m: {}}, "eval_every is 0, so it would never run"),
        ({"eval_every": -1, "evaluator": lambda m: {}}, "eval_every must be a whole number"),
    ],
)
def test_train_reid_refuses_half_an_evaluation_before_writing(tmp_path, kwargs, message):
    frame = pd.DataFrame({"path": ["a.jpg"], "pid": [1]})
    with pytest.raises(ValueError, match=message):
        train.train_reid(TINY, frame, None, tmp_path / "run", progress=False, **kwargs)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--eval-every", "0"], "--eval-every 0: expected an integer from 1 to 1000000"),
        (
            ["--eval-every", "2", "--set", "use_global=false"],
            "--eval-every 2: evaluates the global feature, and this run trains no global branch",
        ),
    ],
)
def test_the_cli_refuses_an_eval_every_it_cannot_do(tiny_data, tmp_path, capsys, extra, message):
    assert main(_train(tiny_data, tmp_path / "runs", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"prreid train: error: {message}")
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- checkpoint.pt


def test_a_finished_run_keeps_its_log_drops_its_checkpoint_and_is_reused(
    tiny_data, tmp_path, capsys
):
    out = tmp_path / "runs"
    assert main(_train(tiny_data, out, "--no-progress", epochs=1)) == 0
    assert _epoch_lines(capsys.readouterr().out) == []  # nothing printed, all logged
    run_dir = _one_run(out)
    (line,) = (run_dir / "log.txt").read_text().splitlines()
    assert line.startswith("epoch 1/1 | loss ") and " img/s | elapsed " in line
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "final.json", "log.txt", "metrics.csv", "metrics.json", "model.pt",
    ]  # fmt: skip
    assert main(_train(tiny_data, out, "--no-progress", "--eval-every", "1", epochs=1)) == 0
    captured = capsys.readouterr()
    assert f"run {run_dir} (reused)" in captured.out
    assert "had finished, so --eval-every evaluated nothing now" in captured.err
    assert (run_dir / "log.txt").read_text().splitlines() == [line]  # nothing trained
    result = runs.load_result(run_dir)
    assert result.checkpoint is None and result.model.input_size == 32


def test_keep_checkpoint_keeps_a_loadable_checkpoint(tiny_data, tmp_path):
    out = tmp_path / "runs"
    assert main(_train(tiny_data, out, "--no-progress", "--keep-checkpoint", epochs=1)) == 0
    run_dir = _one_run(out)
    ckpt = runs.load_torch_file(run_dir / "checkpoint.pt", "")
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    assert runs.load_result(run_dir).checkpoint == run_dir / "checkpoint.pt"


# ----------------------------------------------------------------------------- quiet kernel


def _kernel_filter() -> type[logging.Filter]:
    """The log filter class that the chapters' kernel configuration installs."""
    from types import SimpleNamespace

    from prreid_lib.chapters import KERNEL_CONFIG

    c = SimpleNamespace(IPKernelApp=SimpleNamespace())
    exec(compile(KERNEL_CONFIG, "kernel_config.py", "exec"), {"c": c})
    config = c.IPKernelApp.logging_config
    (spec,) = config["filters"].values()
    assert config["handlers"]["console"]["filters"] == list(config["filters"])
    return spec["()"]


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("IPKernelApp", level, "kernelapp.py", 1, message, None, None)


def test_the_kernel_log_filter_drops_only_the_transport_warning():
    quiet = _kernel_filter()()
    transport = (
        "Kernel is running over TCP without encryption. All communication (including code "
        "and outputs) is sent in plain text and is susceptible to eavesdropping."
    )
    assert not quiet.filter(_record(logging.WARNING, transport))
    assert quiet.filter(_record(logging.WARNING, "Unknown message type: 'foo'"))
    assert quiet.filter(_record(logging.ERROR, "Failed to load connection file: 'x.json'"))


def test_run_chapter_starts_the_kernel_with_the_quiet_configuration(tmp_path, monkeypatch):
    import papermill

    from prreid_lib.chapters import KERNEL_CONFIG, ChapterParameters, run_chapter

    seen = {}

    def execute(input_path, output_path, **kwargs):
        (argument,) = kwargs["extra_arguments"]
        seen["config"] = Path(argument.removeprefix("--config=")).read_text()
        seen["file"] = Path(argument.removeprefix("--config="))

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    run_chapter(tmp_path / "01_x.ipynb", tmp_path / "out" / "01_x.ipynb", ChapterParameters())
    assert seen["config"] == KERNEL_CONFIG
    assert not seen["file"].exists()  # a temporary file, removed after the chapter


KERNEL_LOGS = (
    "from ipykernel.kernelapp import IPKernelApp\n"
    "IPKernelApp.instance().log.warning('a kernel warning the user must see')"
)

RUN_CHAPTER = """
import sys
from pathlib import Path
from prreid_lib.chapters import ChapterParameters, run_chapter
notebook, quiet = Path(sys.argv[1]), sys.argv[2] == "quiet"
if quiet:
    run_chapter(notebook, notebook.with_name("out.ipynb"), ChapterParameters(), cwd=notebook.parent)
else:
    import papermill
    papermill.execute_notebook(str(notebook), str(notebook.with_name("raw.ipynb")),
                               kernel_name="python3", progress_bar=False)
"""


def _notebook(path: Path, code: str) -> Path:
    """A two-cell notebook: the chapters' ``parameters`` cell, then ``code``."""
    import json

    from prreid_lib.chapters import ChapterParameters

    def cell(source: str, tags: list[str]) -> dict:
        meta = {"tags": tags}
        return {"id": f"cell-{len(source)}", "cell_type": "code", "metadata": meta,
                "source": source, "outputs": [], "execution_count": None}  # fmt: skip

    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = "\n".join(f"{k} = {v!r}" for k, v in ChapterParameters().as_dict().items())
    notebook = {
        "cells": [cell(parameters, ["parameters"]), cell(code, [])],
        "metadata": {"kernelspec": kernel, "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path


@pytest.mark.slow  # two notebooks executed by papermill in fresh processes (~15 s)
def test_a_chapter_run_shows_kernel_warnings_but_not_the_transport_one(tmp_path):
    import subprocess
    import sys

    from prreid_lib.chapters import KERNEL_WARNING

    notebook = _notebook(tmp_path / "01_logs.ipynb", KERNEL_LOGS)
    root = Path(__file__).resolve().parents[1]

    def stderr_of(mode: str) -> str:
        argv = [sys.executable, "-c", RUN_CHAPTER, str(notebook), mode]
        proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stderr

    quiet, raw = stderr_of("quiet"), stderr_of("raw")
    assert KERNEL_WARNING in raw  # papermill's kernel alone logs it
    assert KERNEL_WARNING not in quiet
    assert quiet.splitlines() == ["[IPKernelApp] WARNING | a kernel warning the user must see"]
