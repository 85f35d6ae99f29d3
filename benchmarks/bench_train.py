"""Training throughput on the CPU: full steps against model-only steps (not a test).

Measures images per second of one SGD step of a backbone (``--arch``, ResNet-18 by
default) at 64 px (the quick profile) in four variants, interleaved over several
rounds (the median is reported, so a busy shared machine blurs less):

- ``model_only_global``: forward + backward + SGD on random float tensors, no part branches;
- ``model_only_parts``: the same with the three part branches and random part masks;
- ``full_step_global`` / ``full_step_parts``: the real step of
  :mod:`prreid_lib.train`: batch gathered from the uint8 image cache, flip and
  pad-crop with boxes, normalisation, grid masks, Eq. 3 loss, SGD.

Overheads are relative to ``model_only_global``: the input pipeline is
``full_step_global`` against it (and ``pipeline_only_parts``, the gather,
augmentation and masks alone, as a share of it), the part branches
``model_only_parts`` against it. Goal: each below 10 %. On a shared machine
the best round of each variant (``overhead_best_vs_best``) is the steadier
figure. Also times decoding the images once and
reloading them from the ``.npy`` cache. Appends to
``benchmarks/results/train_throughput.csv``.

Model-only steps use the trainer's precision (bfloat16 autocast and
channels-last memory on a CPU with native bfloat16, else float32).

Usage: ``python benchmarks/bench_train.py [--rounds 5] [--steps 6] [--threads 2]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from prreid_lib.config import PART_NAMES, TrainConfig
from prreid_lib.model import PartRegularizedReID
from prreid_lib.parts import boxes_to_masks
from prreid_lib.pipeline.imageset import ReIDImageSet
from prreid_lib.pipeline.transforms import augment_batch
from prreid_lib.precision import autocast_dtype, float32_outputs
from prreid_lib.recipes import recipe_options
from prreid_lib.train import RunPlan, _Trainer

RESULTS = Path(__file__).resolve().parent / "results"


def make_images(
    root: Path, n_ids: int, per_id: int, size: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random JPEGs with part boxes at fixed places (content does not matter for speed)."""
    rng = np.random.default_rng(0)
    rows, boxes = [], []
    for pid in range(n_ids):
        for k in range(per_id):
            path = root / f"{pid:05d}_{k}.jpg"
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
            rows.append({"path": str(path), "pid": pid})
            for part, (x1, y1, x2, y2) in zip(
                ("window", "light", "light", "brand"),
                ((0.2, 0.1, 0.8, 0.4), (0.05, 0.5, 0.3, 1.0), (0.7, 0.5, 0.95, 1.0),
                 (0.4, 0.55, 0.6, 0.7)),
                strict=True,
            ):  # fmt: skip
                box = {"x1": x1 * size, "y1": y1 * size, "x2": x2 * size, "y2": y2 * size}
                boxes.append(box | {"path": str(path), "part": part, "img_w": size, "img_h": size})
    return pd.DataFrame(rows), pd.DataFrame(boxes)


def model_only_step(
    cfg: TrainConfig,
    parts: tuple[str, ...],
    num_classes: int,
    dtype: torch.dtype | None,
    compiled: bool = False,
):
    """A closure doing one forward/backward/SGD step on random tensors of the training size
    (``compiled``: the model wrapped in ``torch.compile``, its first call compiles)."""
    model = PartRegularizedReID(num_classes, cfg.arch, cfg.last_stride, cfg.feat_dim, parts)
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    b, s = cfg.batch_size, model.grid_size(cfg.input_size)
    images = torch.randn(b, 3, cfg.input_size, cfg.input_size)
    labels = torch.randint(0, num_classes, (b,))
    masks = (torch.rand(b, len(parts), s, s) > 0.5).float() if parts else None

    if dtype is not None:  # the same precision and memory format as the trainer
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = forward(images, masks)
        out = float32_outputs(out)
        loss = torch.nn.functional.cross_entropy(out["global_logits"], labels)
        if parts:
            logits = out["part_logits"].flatten(0, 1)
            loss = loss + torch.nn.functional.cross_entropy(
                logits, labels.repeat_interleave(len(parts))
            )
        optim.zero_grad()
        loss.backward()
        optim.step()

    return step


def full_step(cfg: TrainConfig, data: ReIDImageSet, parts: tuple[str, ...]):
    """A closure doing one real training step of :mod:`prreid_lib.train` on the cached images."""
    plan = RunPlan(recipe_options(cfg), parts, "bench")
    trainer = _Trainer(cfg, plan, data, 0, torch.device("cpu"))
    trainer.model.train()
    batches = trainer.sampler.batches(0)
    gen = torch.Generator().manual_seed(0)
    state = {"i": 0}

    def step() -> None:
        idx = batches[state["i"] % len(batches)]
        state["i"] += 1
        trainer.step(idx, 0, state["i"], len(batches), gen)

    return step


def pipeline_only(cfg: TrainConfig, data: ReIDImageSet, parts: tuple[str, ...]):
    """A closure running only the input pipeline of a step: gather, augment, grid masks."""
    plan = RunPlan(recipe_options(cfg), parts, "bench")
    trainer = _Trainer(cfg, plan, data, 0, torch.device("cpu"))
    batches = trainer.sampler.batches(0)
    gen = torch.Generator().manual_seed(0)
    state = {"i": 0}

    def step() -> None:
        batch = data.batch(batches[state["i"] % len(batches)])
        state["i"] += 1
        images, boxes, valid = augment_batch(
            batch["images"], batch["boxes"], batch["box_valid"], trainer.augment, gen
        )
        if parts:
            boxes_to_masks(boxes, valid, trainer.grid)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--arch", default="resnet18", help="backbone (prreid_lib.model.ARCHS)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=str(RESULTS / "train_throughput.csv"), help="appended")
    parser.add_argument(
        "--compile", action="store_true", help="also time the part model under torch.compile"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(arch=args.arch, input_size=args.input_size, batch_size=args.batch_size)
    dtype = autocast_dtype(torch.device("cpu"), recipe_options(cfg))  # the trainer's choice
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        frame, boxes = make_images(Path(tmp), 64, 8, 128)
        tic = time.perf_counter()
        ReIDImageSet(frame, boxes, cfg.input_size, PART_NAMES, Path(tmp) / "cache")
        decode = time.perf_counter() - tic
        tic = time.perf_counter()
        data_parts = ReIDImageSet(frame, boxes, cfg.input_size, PART_NAMES, Path(tmp) / "cache")
        reload = time.perf_counter() - tic
        data_global = ReIDImageSet(frame, None, cfg.input_size, (), Path(tmp) / "cache")
        n = len(frame)
        rows += [
            {"variant": "decode_128px_jpeg_to_cache", "images": n, "seconds": decode,
             "img_per_s": n / decode},
            {"variant": "reload_from_npy_cache", "images": n, "seconds": reload,
             "img_per_s": n / reload},
        ]  # fmt: skip
        variants = {
            "model_only_global": model_only_step(cfg, (), data_global.num_classes, dtype),
            "model_only_parts": model_only_step(cfg, PART_NAMES, data_global.num_classes, dtype),
            "full_step_global": full_step(cfg, data_global, ()),
            "full_step_parts": full_step(cfg, data_parts, PART_NAMES),
            "pipeline_only_parts": pipeline_only(cfg, data_parts, PART_NAMES),
        }
        if args.compile:
            variants["model_only_parts_compiled"] = model_only_step(
                cfg, PART_NAMES, data_global.num_classes, dtype, compiled=True
            )
        times: dict[str, list[float]] = {k: [] for k in variants}
        first: dict[str, float] = {}
        for name, step in variants.items():  # warm-up (for the compiled model: compiling)
            tic = time.perf_counter()
            step()
            first[name] = time.perf_counter() - tic
        for _ in range(args.rounds):
            for name, step in variants.items():
                tic = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[name].append((time.perf_counter() - tic) / args.steps)
    base = statistics.median(times["model_only_global"])
    base_min = min(times["model_only_global"])
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(
            {
                "variant": name,
                "images": args.batch_size,
                "seconds": med,
                "img_per_s": args.batch_size / med,
                "overhead_vs_model_only_global": med / base - 1,
                "min_s": min(ts),
                "max_s": max(ts),
                "img_per_s_best": args.batch_size / min(ts),
                "overhead_best_vs_best": min(ts) / base_min - 1,
                "first_step_s": first[name],
            }
        )
    table = pd.DataFrame(rows).assign(
        arch=cfg.arch,
        input_size=cfg.input_size,
        last_stride=cfg.last_stride,
        batch_size=args.batch_size,
        threads=args.threads,
        precision=str(dtype or torch.float32).removeprefix("torch."),
        load_avg_1min=os.getloadavg()[0],
        cpu=platform.processor() or platform.machine(),
        torch=torch.__version__,
    )
    table.insert(0, "date", time.strftime("%Y-%m-%d %H:%M"))
    out = Path(args.out)
    out.parent.mkdir(exist_ok=True)
    if out.exists():  # earlier rows keep their columns; rows before the precision column: float32
        earlier = pd.read_csv(out)
        if "precision" not in earlier:
            earlier.insert(earlier.columns.get_loc("threads") + 1, "precision", "float32")
        pd.concat([earlier, table], ignore_index=True).to_csv(out, index=False, float_format="%.4g")
    else:
        table.to_csv(out, index=False, float_format="%.4g")
    shown = ["variant", "seconds", "img_per_s", "img_per_s_best", "overhead_best_vs_best"]
    print(table[shown].to_string(index=False))
    best = {r["variant"]: r.get("overhead_best_vs_best") for r in rows}
    print(
        f"best-of-rounds, relative to the model-only global step: input pipeline alone "
        f"{1 + best['pipeline_only_parts']:.1%} of it; overheads: full global step "
        f"{best['full_step_global']:+.1%}, "
        f"part branches {best['model_only_parts']:+.1%}, "
        f"full part-regularized step {best['full_step_parts']:+.1%}"
    )


if __name__ == "__main__":
    main()
