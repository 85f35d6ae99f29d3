"""Training pipeline: boxes under flip/crop, image set, PK sampler, run cache, resume, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from prreid_lib.config import TrainConfig
from prreid_lib.errors import PrreidError
from prreid_lib.pipeline.imageset import ReIDImageSet
from prreid_lib.pipeline.sampler import PKSampler, RandomBatchSampler
from prreid_lib.pipeline.transforms import AugmentConfig, augment_batch, hflip, pad_crop
from prreid_lib.recipes import apply_overrides, learning_rate, recipe_options
from prreid_lib.runs import load_trained
from prreid_lib.train import run_or_load

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[1]
TINY = TrainConfig(arch="resnet18", input_size=32, feat_dim=32, epochs=1, batch_size=8)


def make_tiny_vehicleid(root: Path, n_ids: int = 6, per_id: int = 4, size: int = 40):
    """A VehicleID-layout folder of noisy coloured images + a part-box table (pixels).

    The test list holds three more vehicles, unseen in training."""
    (root / "image").mkdir(parents=True)
    (root / "train_test_split").mkdir()
    rng = np.random.default_rng(0)
    rows, boxes, test = [], [], []
    for pid in range(n_ids + 3):
        colour = rng.integers(0, 256, 3)
        for k in range(per_id):
            name = f"{pid * per_id + k:07d}"
            img = np.clip(colour + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            path = root / "image" / f"{name}.jpg"
            Image.fromarray(img).save(path)
            if pid >= n_ids:
                test.append(f"{name} {10 + pid}\n")
                continue
            rows.append({"path": str(path), "name": name, "pid": 10 + pid})
            parts = {"window": [(8, 4, 32, 16)], "light": [(2, 22, 12, 38), (28, 22, 38, 38)]}
            if k:  # the first image of every vehicle has no brand box
                parts["brand"] = [(16, 26, 24, 32)]
            for part, bxs in parts.items():
                for x1, y1, x2, y2 in bxs:
                    box = {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "img_w": size, "img_h": size}
                    boxes.append(box | {"path": str(path), "part": part, "score": 1.0})
    frame = pd.DataFrame(rows)
    lines = "".join(f"{r.name} {r.pid}\n" for r in frame.itertuples())
    (root / "train_test_split" / "train_list.txt").write_text(lines)
    (root / "train_test_split" / "test_list_800.txt").write_text("".join(test))
    return frame[["path", "pid"]], pd.DataFrame(boxes)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "VehicleID"
    frame, boxes = make_tiny_vehicleid(root)
    frame.to_csv(root / "train.csv", index=False)
    boxes.to_csv(root / "boxes.csv", index=False)
    return root, frame, boxes


# ----------------------------------------------------------------- boxes move with the image


def test_flip_moves_boxes_by_hand():
    img = torch.arange(4, dtype=torch.uint8).repeat(1, 3, 4, 1)  # pixel value = column
    boxes = torch.tensor([[[[0.25, 0.0, 0.5, 0.5]]]])  # covers column 1
    out, moved = hflip(img, boxes, torch.tensor([True]))
    assert out[0, 0, 0].tolist() == [3, 2, 1, 0]
    assert moved.tolist() == [[[[0.5, 0.0, 0.75, 0.5]]]]  # column 2 after the flip
    same, kept = hflip(img, boxes, torch.tensor([False]))
    assert torch.equal(same, img) and torch.equal(kept, boxes)


def test_pad_crop_moves_and_clips_boxes_by_hand():
    img = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8).repeat(1, 3, 1, 1) + 1
    boxes = torch.tensor([[[[0.5, 0.125, 0.875, 0.5], [0.0, 0.0, 0.25, 0.25]]]])
    valid = torch.tensor([[[True, True]]])
    # pad 2, crop offset (ox, oy) = (0, 4): output (y, x) = input (y + 2, x - 2)
    out, moved, ok = pad_crop(img, boxes, valid, 2, torch.tensor([[0, 4]]))
    assert out[0, 0, 0, 2].item() == img[0, 0, 2, 0].item()
    assert out[0, 0, 5, 7].item() == img[0, 0, 7, 5].item()
    assert out[0, 0, :, :2].sum() == 0 and out[0, 0, 6:].sum() == 0  # padding
    # x + 2/8, y - 2/8, clipped: the second box is pushed out of the image
    torch.testing.assert_close(moved[0, 0, 0], torch.tensor([0.75, 0.0, 1.0, 0.25]))
    assert ok.tolist() == [[[True, False]]]


def test_random_augmentation_keeps_a_marked_square_inside_its_box():
    img = torch.zeros(16, 3, 32, 32, dtype=torch.uint8)
    img[:, :, 8:14, 20:28] = 255  # the "part"
    boxes = torch.tensor([20 / 32, 8 / 32, 28 / 32, 14 / 32]).repeat(16, 1, 1, 1)
    valid = torch.ones(16, 1, 1, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    out, moved, ok = augment_batch(img, boxes, valid, AugmentConfig(0.5, 6), gen)
    bright = out[:, 0] > 0  # normalised: the white square is positive, zeros negative
    for i in range(16):
        ys, xs = torch.nonzero(bright[i], as_tuple=True)
        x1, y1, x2, y2 = (moved[i, 0, 0] * 32).tolist()
        assert ok[i, 0, 0] and len(xs) > 0
        assert xs.min() >= x1 - 1e-4 and xs.max() + 1 <= x2 + 1e-4
        assert ys.min() >= y1 - 1e-4 and ys.max() + 1 <= y2 + 1e-4
        assert (x2 - x1) * (y2 - y1) == pytest.approx(len(xs), abs=1e-3)  # never clipped here


# ----------------------------------------------------------------- image set and samplers


def test_image_set_boxes_labels_and_cache(tmp_path):
    paths = []
    for i, size in enumerate([(40, 20), (40, 20), (30, 30)]):
        p = tmp_path / f"im{i}.png"
        Image.new("RGB", size, (10 * i, 0, 0)).save(p)
        paths.append(str(p))
    frame = pd.DataFrame({"path": paths, "pid": [7, 3, 7]})
    table = pd.DataFrame(
        [
            (paths[0], "window", 10, 5, 30, 15, 0.9),
            (paths[0], "light", 30, 10, 40, 20, 0.8),
            (paths[0], "light", 0, 10, 10, 20, 0.7),
            (paths[0], "light", 15, 10, 25, 20, 0.1),  # third light, lowest score: dropped
            (paths[1], "window", 10, 5, 10, 15, 1.0),  # empty box: invalid
            (paths[1], "brand", 0, 0, 80, 40, 1.0),  # outside the image: clipped to it
        ],
        columns=["path", "part", "x1", "y1", "x2", "y2", "score"],
    ).assign(img_w=40, img_h=20)
    cache = tmp_path / "cache"
    data = ReIDImageSet(frame, table, input_size=16, cache_dir=cache)
    assert data.images.shape == (3, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [1, 0, 1] and data.num_classes == 2
    assert data.pid_values.tolist() == [3, 7]
    torch.testing.assert_close(data.boxes[0, 0, 0], torch.tensor([0.25, 0.25, 0.75, 0.75]))
    torch.testing.assert_close(
        data.boxes[0, 1], torch.tensor([[0, 0.5, 0.25, 1], [0.75, 0.5, 1, 1]])
    )
    assert data.box_valid[0].tolist() == [[True, False], [True, True], [False, False]]
    assert data.box_valid[1].tolist() == [[False, False], [False, False], [True, False]]
    torch.testing.assert_close(data.boxes[1, 2, 0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert not data.box_valid[2].any()
    assert data.part_coverage()["window"] == pytest.approx(1 / 3)
    assert len(list(cache.glob("images-*.npy"))) == 2  # images + original sizes
    again = ReIDImageSet(frame, table, input_size=16, cache_dir=cache)
    assert torch.equal(again.images, data.images)
    Image.new("RGB", (40, 20), (0, 200, 0)).save(paths[1])  # changed file -> new cache key
    os.utime(paths[1], ns=(1, 1))
    changed = ReIDImageSet(frame, table, input_size=16, cache_dir=cache)
    assert changed.images[1, 1].float().mean() > 150 and len(list(cache.glob("*.npy"))) == 4


def test_pk_sampler_batches_are_p_by_k_seeded_and_split_across_ranks():
    labels = np.repeat(np.arange(5), [4, 4, 4, 2, 6])
    sampler = PKSampler(labels, num_identities=2, num_instances=2, seed=1)
    batches = sampler.batches(0)
    assert len(batches) >= 4
    for b in batches:
        ids, counts = np.unique(labels[b], return_counts=True)
        assert len(ids) == 2 and counts.tolist() == [2, 2]
    assert [b.tolist() for b in PKSampler(labels, 2, 2, seed=1).batches(0)] == [
        b.tolist() for b in batches
    ]
    assert [b.tolist() for b in sampler.batches(1)] != [b.tolist() for b in batches]
    ranks = [PKSampler(labels, 2, 2, seed=1, rank=r, world_size=2).batches(0) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(batches) // 2
    usable = 2 * len(ranks[0])
    for r in (0, 1):  # rank r takes global batches r, r + 2, ...
        assert [b.tolist() for b in ranks[r]] == [b.tolist() for b in batches[r:usable:2]]
    rb = RandomBatchSampler(10, 3, seed=0, rank=1, world_size=2)
    assert len(rb) == 1 and len(RandomBatchSampler(10, 3, seed=0)) == 3
    with pytest.raises(ValueError, match="fewer than P=6"):
        PKSampler(labels, 6, 2)


def test_schedules_and_overrides():
    cfg = replace(TINY, epochs=4, lr=0.01, lr_gamma=0.5)
    paper = recipe_options(cfg)
    assert learning_rate(cfg, paper, 2, 5, 10) == pytest.approx(0.0025)  # 0.01 * 0.5**2
    strong = recipe_options(replace(cfg, recipe="strong"))
    assert strong.bnneck and strong.sampler == "pk" and strong.triplet_weight > 0
    assert learning_rate(cfg, strong, 0, 0, 10) == pytest.approx(0.001)  # warm-up start
    assert learning_rate(cfg, strong, 1, 0, 10) == pytest.approx(0.01)  # cosine start
    assert learning_rate(cfg, strong, 2, 5, 10) == pytest.approx(0.005)  # halfway
    new_cfg, opts = apply_overrides(cfg, paper, ["lambda_p.window=0", "epochs=3", "bnneck=true"])
    assert new_cfg.lambda_p["window"] == 0.0 and new_cfg.epochs == 3 and opts.bnneck
    _, opts = apply_overrides(cfg, paper, ['recipe="strong"', "triplet_weight=0"])
    assert opts.sampler == "pk" and opts.triplet_weight == 0
    with pytest.raises(ValueError, match="unknown field"):
        apply_overrides(cfg, paper, ["learning_rate=1"])


def test_head_learns_at_its_multiple_of_the_backbone_rate(tiny, tmp_path):
    _, frame, boxes = tiny
    cfg = replace(TINY, lr=0.02, lr_gamma=0.5, epochs=2)
    options = replace(recipe_options(cfg), head_lr_mult=10.0)
    result = run_or_load(
        cfg, frame, boxes, tmp_path, progress=False, options=options, keep_checkpoint=True
    )
    ckpt = torch.load(result.run_dir / "checkpoint.pt", weights_only=False)
    groups = ckpt["optimizer"]["param_groups"]
    assert [g["lr_mult"] for g in groups] == [1.0, 10.0]
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.1])  # epoch 1: 0.02 * 0.5
    n_backbone = sum(1 for n, _ in result.model.named_parameters() if n.startswith("backbone."))
    assert len(groups[0]["params"]) == n_backbone and len(groups[1]["params"]) > 0
    with pytest.raises(ValueError, match="head_lr_mult"):
        apply_overrides(cfg, options, ["head_lr_mult=0"])


def test_a_diverging_training_stops_with_a_clear_error_and_keeps_no_run(tiny, tmp_path):
    _, frame, boxes = tiny
    cfg = replace(TINY, lr=1e6, epochs=3)  # far too high: the loss overflows to NaN
    with pytest.raises(PrreidError, match=r"diverged in epoch \d .*lower TrainConfig.lr"):
        run_or_load(cfg, frame, boxes, tmp_path, progress=False)
    assert not list(tmp_path.glob("*/final.json")) and not list(tmp_path.glob("*/model.pt"))


# ----------------------------------------------------------------- runs: cache, resume, DDP


def test_run_cache_reuses_finished_runs(tiny, tmp_path):
    _, frame, boxes = tiny
    cache = tmp_path / "cache"
    first = run_or_load(TINY, frame, boxes, tmp_path / "runs", progress=False, cache_dir=cache)
    assert not first.reused and len(first.history) == 1
    assert {"acc_window", "acc_light", "acc_brand", "global_acc", "lr"} <= set(first.history)
    again = run_or_load(TINY, frame, boxes, tmp_path / "runs", progress=False, cache_dir=cache)
    assert again.reused and again.run_dir == first.run_dir
    twin = run_or_load(
        TINY, frame, boxes, tmp_path / "runs", progress=False, cache_dir=cache, name="same-model"
    )
    assert twin.reused and twin.run_dir == first.run_dir  # same key, another label: reused
    pd.testing.assert_frame_equal(again.history, first.history, check_exact=False)
    base = replace(TINY, lambda_p={"window": 0.0, "light": 0.0, "brand": 0.0})
    baseline = run_or_load(base, frame, None, tmp_path / "runs", progress=False, cache_dir=cache)
    assert baseline.run_dir != first.run_dir and baseline.model.parts == ()
    model = load_trained(first.run_dir)
    assert model.parts == ("window", "light", "brand") and model.input_size == 32
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    from prreid_lib.model import extract_features

    torch.testing.assert_close(extract_features(model, x), extract_features(first.model, x))
    with pytest.raises(ValueError, match="part_boxes is None"):
        run_or_load(TINY, frame, None, tmp_path / "runs", progress=False)


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import pandas as pd, torch
    torch.set_num_threads(1)
    from prreid_lib.config import TrainConfig
    from prreid_lib.train import train_reid
    data, out, kill_epoch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    cfg = TrainConfig(arch="resnet18", input_size=32, feat_dim=32, epochs=4, batch_size=8,
                      recipe="strong", num_instances=4)
    def hook(row):
        if row["epoch"] == kill_epoch:
            (out / "KILL_ME").touch()
    train_reid(cfg, pd.read_csv(data / "train.csv"), pd.read_csv(data / "boxes.csv"), out,
               seed=3, device="cpu", progress=False, cache_dir=data / "cache", on_epoch_end=hook)
    """
)


def _python(script: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PRREID_CACHE_DIR=str(script.parent / "cache"))
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env, cwd=ROOT)


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny, tmp_path):
    data, _, _ = tiny
    script = tmp_path / "train_script.py"
    script.write_text(RESUME_SCRIPT)
    full, killed = tmp_path / "full", tmp_path / "killed"
    uninterrupted = _python(script, data, full, 0)  # runs alongside (1 thread each)
    proc = _python(script, data, killed, 1)
    deadline = time.time() + 120
    while not (killed / "KILL_ME").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before epoch 1"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and not (killed / "final.json").exists()
    done = len(pd.read_csv(killed / "metrics.csv"))
    assert 1 <= done < 4  # killed after epoch 1's checkpoint, before the end
    assert _python(script, data, killed, 0).wait(timeout=120) == 0
    assert uninterrupted.wait(timeout=120) == 0
    a, b = load_trained(full).state_dict(), load_trained(killed).state_dict()
    assert a.keys() == b.keys()
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].numel())
    assert worst <= 1e-6
    ha, hb = (pd.read_csv(d / "metrics.csv").drop(columns="seconds") for d in (full, killed))
    pd.testing.assert_frame_equal(ha, hb, check_exact=False, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_ddp_two_processes_on_gloo(tiny, tmp_path):
    data, _, _ = tiny
    out = tmp_path / "runs"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "prreid_lib.train", "--profile", "smoke", "--data-root", str(data),
        "--parts", str(data / "boxes.csv"), "--output-dir", str(out), "--device", "cpu",
        "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--seed", "0",
        "--set", "epochs=2", "--set", "input_size=32", "--set", "batch_size=4",
        "--set", "feat_dim=32",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = out.iterdir()
    history = pd.read_csv(run_dir / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2] and np.isfinite(history["loss"]).all()
    info = json.loads((run_dir / "final.json").read_text())
    assert info["world_size"] == 2 and info["num_images"] == 24
    assert load_trained(run_dir).parts == ("window", "light", "brand")
    assert "trained in" in proc.stdout


# ----------------------------------------------------------------- precision and evaluation cache


def test_mixed_precision_follows_device_and_options(monkeypatch):
    from prreid_lib import precision
    from prreid_lib.recipes import RecipeOptions

    opts = RecipeOptions()
    assert precision.autocast_dtype(torch.device("cuda"), opts) == torch.float16
    assert precision.autocast_dtype(torch.device("cuda"), replace(opts, amp=False)) is None
    assert precision.autocast_dtype(torch.device("cpu"), replace(opts, cpu_bf16=False)) is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.autocast_dtype(torch.device("cpu"), opts) == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.autocast_dtype(torch.device("cpu"), opts) is None


def test_evaluate_variant_stores_each_test_set_in_the_run(tiny, tmp_path, monkeypatch):
    from prreid_lib import evaluate, studies
    from prreid_lib.config import get_profile

    _, frame, boxes = tiny
    run = run_or_load(TINY, frame, boxes, tmp_path / "runs", progress=False, cache_dir=tmp_path)
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path / "cache"))
    tests = {"small": frame.iloc[:12], "large": frame}
    data = studies.StudyData(
        profile=get_profile("smoke"),
        root=tmp_path,
        synthetic=True,
        vehicleid=None,
        tests=tests,
        part_boxes=boxes,
        test_part_boxes=boxes,
        part_source="gt",
    )
    first = studies.evaluate_variant(run, data, n_trials=2, test_sets=["large"])
    assert list(first.index) == ["large"] and first.loc["large", "identities"] == 6
    assert len(list((run.run_dir / "evaluations").glob("vehicleid-*.json"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a stored evaluation")

    monkeypatch.setattr(evaluate, "evaluate_vehicleid", fail)
    again = studies.evaluate_variant(run, data, n_trials=2, test_sets=["large"])
    pd.testing.assert_frame_equal(again, first)
    with pytest.raises(AssertionError, match="recomputed"):  # other trials: a new evaluation
        studies.evaluate_variant(run, data, n_trials=3, test_sets=["large"])
    with pytest.raises(ValueError, match="unknown test sets"):
        studies.evaluate_variant(run, data, test_sets=["huge"])


def test_run_key_follows_content_not_location(tiny, tmp_path):
    """A copy of the data elsewhere (another checkout, another machine) has the same key;
    one changed image, or another pretrained start, changes it."""
    import shutil

    from prreid_lib.train import plan_run

    root, frame, boxes = tiny
    copy = tmp_path / "moved"
    shutil.copytree(root, copy)
    moved = frame.assign(path=[str(copy / Path(p).relative_to(root)) for p in frame["path"]])
    moved_boxes = boxes.assign(path=[str(copy / Path(p).relative_to(root)) for p in boxes["path"]])
    key = plan_run(TINY, frame, boxes).key
    assert plan_run(TINY, moved, moved_boxes).key == key
    first = Path(moved["path"].iloc[0])
    os.utime(first, ns=(1, 1))  # a new modification time alone changes nothing
    assert plan_run(TINY, moved, moved_boxes).key == key
    first.write_bytes(first.read_bytes() + b"\0")
    assert plan_run(TINY, moved, moved_boxes).key != key

    start = tmp_path / "start.pt"
    torch.save({"w": torch.zeros(1)}, start)
    with_start = plan_run(replace(TINY, pretrained=str(start)), frame, boxes).key
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(start, tmp_path / "elsewhere" / "start.pt")
    same = replace(TINY, pretrained=str(tmp_path / "elsewhere" / "start.pt"))
    assert plan_run(same, frame, boxes).key == with_start != key
    torch.save({"w": torch.ones(1)}, start)
    assert plan_run(replace(TINY, pretrained=str(start)), frame, boxes).key != with_start


def test_bfloat16_only_where_the_cpu_computes_it_natively(tmp_path):
    from prreid_lib import precision

    avx512 = tmp_path / "avx512"
    avx512.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    native = tmp_path / "native"
    native.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert "avx512_vnni" in precision.cpu_flags(avx512)
    assert not precision.cpu_has_native_bf16(avx512)  # oneDNN would emulate it: slower
    assert precision.cpu_has_native_bf16(native) == bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    assert not precision.cpu_has_native_bf16(tmp_path / "no_such_file")
