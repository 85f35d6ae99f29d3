"""Training loop of the part-regularized re-id model (paper Sec. 3.3, Eq. 3).

:func:`train_reid` trains one run with the recipe of
:mod:`prreid_lib.recipes` (the paper's SGD + exponential decay, or the strong
baseline). On CUDA it uses mixed precision and channels-last memory. Each
epoch ends with an atomic checkpoint (model, optimizer, AMP scaler, history,
RNG states; the sampler's state is its seed and epoch); a run killed at any
moment and restarted with the same arguments resumes from the last checkpoint
and ends with the same weights as an uninterrupted run. Each epoch's line goes
to the run's ``log.txt``; an optional evaluation every N epochs adds its figures
to that epoch's row of ``metrics.csv`` without touching the training's random
streams. A finished run drops its checkpoint unless asked to keep it. Under ``torchrun
--nproc-per-node N`` the same entry point runs DistributedDataParallel with
rank-sliced batches; rank 0 writes the files. :func:`run_or_load` reuses a
finished run of the run store (:mod:`prreid_lib.runs`), resumes an unfinished
one or trains a missing one. :func:`main` is the command line
(``python -m prreid_lib.train``, ``prreid train``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel

from prreid_lib import argcheck, runs
from prreid_lib import distributed as dist
from prreid_lib.cache import atomic_write_text, file_digest, write_json
from prreid_lib.config import PART_NAMES, TrainConfig
from prreid_lib.errors import PrreidError
from prreid_lib.heap import keep_freed_memory
from prreid_lib.losses import ReIDLoss
from prreid_lib.model import PartRegularizedReID
from prreid_lib.parts import boxes_to_masks, read_part_boxes
from prreid_lib.paths import canonical_path, canonical_paths
from prreid_lib.pipeline.imageset import ReIDImageSet, default_cache_dir
from prreid_lib.pipeline.sampler import PKSampler, RandomBatchSampler
from prreid_lib.pipeline.transforms import AugmentConfig, augment_batch
from prreid_lib.precision import autocast_dtype, float32_outputs
from prreid_lib.recipes import (
    RecipeOptions,
    active_parts,
    apply_overrides,
    learning_rate,
    recipe_options,
    validate_train_config,
)
from prreid_lib.seeding import augment_generator, rng_state, seed_everything, set_rng_state
from prreid_lib.synthveh_files import is_synthveh

__all__ = [
    "RecipeOptions",
    "RunPlan",
    "apply_overrides",
    "epoch_line",
    "main",
    "plan_run",
    "protocol_evaluator",
    "recipe_options",
    "train_reid",
]


MIN_PART_COVERAGE = 0.5
"""The least share of training images with a box of a part a run trains (``lambda_p``
> 0); below it :func:`train_reid` stops before training. Part boxes with missing parts
imputed by identity, as the paper does and :func:`prreid_lib.parts.impute_missing_parts`
and :func:`prreid_lib.parts.ground_truth_part_boxes` give them, cover nearly every image
(SynthVeh ground truth: 1.0); a share below one half means the boxes name other images
(another data root, a moved copy) or a detector that found almost nothing, and the run
would be a baseline saved under a part-regularized name."""


Evaluator = Callable[[PartRegularizedReID], Mapping[str, float]]
"""``evaluator(model) -> {figure name: value}``: a test protocol run during training."""


@dataclass(frozen=True)
class RunPlan:
    """What a run trains: recipe options, active part branches, and the run key."""

    options: RecipeOptions
    parts: tuple[str, ...]
    key: str


def plan_run(
    cfg: TrainConfig,
    train_df: pd.DataFrame,
    part_boxes: pd.DataFrame | None,
    seed: int = 0,
    options: RecipeOptions | None = None,
) -> RunPlan:
    """Resolve options and parts and compute the run key (:func:`prreid_lib.runs.run_key`).

    Bad parameters raise :class:`~prreid_lib.recipes.TrainConfigError` (a
    ``ValueError``) naming the field, before anything is written.
    """
    validate_train_config(cfg)
    options = options or recipe_options(cfg)
    validate_train_config(cfg, options)
    parts = active_parts(cfg)
    if not cfg.use_global and not parts:
        raise ValueError("use_global=False needs at least one part with lambda_p > 0")
    if parts and part_boxes is None:
        raise ValueError(
            f"lambda_p > 0 for {', '.join(parts)} but part_boxes is None: pass the part boxes "
            "table (ground truth or detected), or set lambda_p to 0 for a baseline"
        )
    data_id = runs.data_identity(train_df, part_boxes, parts)
    start = cfg.pretrained
    if start is not None and Path(start).is_file():  # the weights' content, not their path
        cfg = replace(cfg, pretrained=f"sha1:{file_digest(start)}")
    key = runs.run_key(cfg, options, data_id, seed, dist.world_size())
    return RunPlan(options, parts, key)


def _canonical_inputs(
    train_df: pd.DataFrame, part_boxes: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``train_df`` and ``part_boxes`` with canonical ``path`` columns
    (:func:`prreid_lib.paths.canonical_paths`), so the run key and the image set join
    the same boxes to the same images, however the data root was spelled."""
    if "path" in train_df.columns:
        train_df = train_df.assign(path=canonical_paths(train_df["path"]))
    if part_boxes is not None and "path" in part_boxes.columns:
        part_boxes = part_boxes.assign(path=canonical_paths(part_boxes["path"]))
    return train_df, part_boxes


def check_part_coverage(data: ReIDImageSet, part_boxes: pd.DataFrame | None) -> None:
    """Raise ``ValueError`` when a part of ``data`` has a box in fewer than
    :data:`MIN_PART_COVERAGE` of its images.

    The message gives the coverage of every part, the folder of the training
    images and an image the part boxes name, so a table of another data root (or
    of a moved copy) shows itself, and the fix.
    """
    coverage = data.part_coverage()
    low = [part for part, share in coverage.items() if share < MIN_PART_COVERAGE]
    if not low:
        return
    n = len(data)
    shares = ", ".join(f"{p} {c:.0%} ({round(c * n)} of {n})" for p, c in coverage.items())
    folders = sorted({os.path.dirname(p) for p in data.paths})
    where = os.path.commonpath(folders) if folders else "(no images)"
    named = [] if part_boxes is None else list(dict.fromkeys(part_boxes["path"].astype(str)))
    known = set(data.paths)
    hits = sum(1 for p in named if p in known)
    example = f"e.g. {named[0]}" if named else "no image at all"
    raise ValueError(
        f"part boxes cover too few training images: {shares}; a part with lambda_p > 0 needs "
        f"a box in at least {MIN_PART_COVERAGE:.0%} of them. The training images are under "
        f"{where}; the part boxes name {len(named)} images ({example}), {hits} of them "
        "training images. Pass the part boxes of these images (ground truth of the same data "
        "root, or a part-box CSV detected on it), or set lambda_p of "
        f"{', '.join(low)} to 0 for a run without {'it' if len(low) == 1 else 'them'}"
    )


def _read_checkpoint(out_dir: Path, key: str) -> dict | None:
    """The checkpoint in ``out_dir`` if it belongs to run ``key`` (error if another run's)."""
    path = out_dir / runs.CHECKPOINT
    if not path.is_file():
        return None
    fix = "delete it to restart the run from its first epoch"
    ckpt = runs.load_torch_file(path, fix)
    if not isinstance(ckpt, dict) or not {"key", "history", "model"} <= set(ckpt):
        raise ValueError(f"{path} was not written by prreid or is damaged (no checkpoint); {fix}")
    if ckpt.get("key") != key:
        raise ValueError(
            f"{path} belongs to another run (key {str(ckpt.get('key'))[:12]}, this run "
            f"{key[:12]}): use another output folder or delete {out_dir}"
        )
    return ckpt


class _Trainer:
    """Everything one run needs: data, model, optimizer, sampler, loss; one epoch at a time."""

    def __init__(self, cfg, plan, data, seed, dev) -> None:
        opt, parts = plan.options, plan.parts
        self.cfg, self.opt, self.data, self.seed, self.dev = cfg, opt, data, seed, dev
        self.rank, world = dist.rank(), dist.world_size()
        cuda = dev.type == "cuda"
        self.amp_dtype = autocast_dtype(dev, opt)
        self.channels_last = (cuda and opt.channels_last) or self.amp_dtype == torch.bfloat16
        self.use_amp = self.amp_dtype is not None
        kwargs = {"parts": parts, "bnneck": opt.bnneck, "use_global": cfg.use_global}
        self.model = PartRegularizedReID(
            data.num_classes,
            cfg.arch,
            cfg.last_stride,
            cfg.feat_dim,
            pretrained=cfg.pretrained,
            **kwargs,
        ).to(dev)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.grid = self.model.grid_size(cfg.input_size)
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        params = [  # the new layers learn at head_lr_mult times the backbone's rate
            {"params": [p for n, p in named if n.startswith("backbone.")], "lr_mult": 1.0},
            {"params": [p for n, p in named if not n.startswith("backbone.")],
             "lr_mult": float(opt.head_lr_mult)},
        ]  # fmt: skip
        if opt.optimizer == "sgd":
            self.optim: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        elif opt.optimizer == "adam":
            self.optim = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {opt.optimizer!r}")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.criterion = ReIDLoss(
            parts,
            cfg.lambda_p,
            cfg.use_global,
            opt.label_smoothing,
            opt.triplet_weight,
            opt.triplet_margin,
        )
        if opt.sampler == "pk":
            p, k = cfg.batch_size // cfg.num_instances, cfg.num_instances
            self.sampler: PKSampler | RandomBatchSampler = PKSampler(
                data.labels.numpy(), p, k, seed, self.rank, world
            )
        elif opt.sampler == "random":
            self.sampler = RandomBatchSampler(len(data), cfg.batch_size, seed, self.rank, world)
        else:
            raise ValueError(f"sampler must be 'random' or 'pk', got {opt.sampler!r}")
        self.augment = AugmentConfig(opt.flip, opt.pad, opt.color_jitter)
        self.net: torch.nn.Module = self.model
        if world > 1:
            self.net = DistributedDataParallel(
                self.model,
                device_ids=[dev.index] if cuda else None,
                find_unused_parameters=not cfg.use_global,
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optim.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optim.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.sampler.load_state_dict(ckpt["sampler"])
        set_rng_state(ckpt["rng"])

    def step(self, idx, epoch: int, step: int, steps: int, gen) -> tuple[torch.Tensor, float]:
        """One optimisation step on the batch ``idx``; returns the step's metric sums and lr."""
        cfg, opt, dev = self.cfg, self.opt, self.dev
        lr = learning_rate(cfg, opt, epoch, step, steps)
        for group in self.optim.param_groups:
            group["lr"] = lr * group["lr_mult"]
        batch = self.data.batch(idx)
        labels = batch["labels"].to(dev, non_blocking=True)
        images, boxes, valid = augment_batch(
            batch["images"].to(dev, non_blocking=True),
            batch["boxes"].to(dev),
            batch["box_valid"].to(dev),
            self.augment,
            gen,
        )
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        masks = boxes_to_masks(boxes, valid, self.grid) if self.model.parts else None
        with torch.autocast(dev.type, dtype=self.amp_dtype or torch.float32, enabled=self.use_amp):
            out = self.net(images, masks)
        if self.use_amp:
            out = float32_outputs(out)
        terms = self.criterion(out, labels)
        self.optim.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()
        self.scaler.step(self.optim)
        self.scaler.update()
        with torch.no_grad():
            b = float(labels.shape[0])
            hit = (out["global_logits"].argmax(1) == labels).sum()
            sums = [terms.total.detach() * b, terms.global_ce * b, terms.triplet * b, hit]
            sums = [torch.stack(sums).double(), torch.tensor([b], device=dev, dtype=torch.float64)]
            if self.model.parts:
                pv = out["part_valid"]
                part_hit = ((out["part_logits"].argmax(-1) == labels[:, None]) & pv).sum(0)
                sums += [terms.part_ce.double() * b, part_hit.double(), pv.sum(0).double()]
        return torch.cat(sums), lr

    def epoch(self, epoch: int, progress: bool) -> dict[str, float]:
        """Train one epoch over this rank's batches; return its metrics averaged over all ranks."""
        from tqdm import tqdm  # plain text bar: no ipywidgets warning in notebooks

        self.net.train()
        self.sampler.set_epoch(epoch)
        batches = self.sampler.batches(epoch)
        gen = augment_generator(self.seed, epoch, self.rank)
        parts, n_parts = self.model.parts, len(self.model.parts)
        sums = torch.zeros(5 + 3 * n_parts, dtype=torch.float64, device=self.dev)
        lr = self.cfg.lr
        desc = f"epoch {epoch + 1}/{self.cfg.epochs}"
        bar = tqdm(batches, desc=desc, disable=not progress, leave=False)
        for step, idx in enumerate(bar):
            step_sums, lr = self.step(idx, epoch, step, len(batches), gen)
            sums += step_sums
            if progress:
                bar.set_postfix(loss=f"{float(step_sums[0] / step_sums[4]):.3f}", lr=f"{lr:.2e}")
        total = dist.all_reduce_sum(sums).cpu().tolist()
        self.epoch_images = total[4]  # images of this epoch over all ranks
        n = max(total[4], 1.0)
        row = {
            "epoch": epoch + 1,
            "loss": total[0] / n,
            "global_ce": total[1] / n,
            "triplet": total[2] / n,
            "global_acc": total[3] / n if self.cfg.use_global else float("nan"),
        }
        for i, p in enumerate(parts):
            row[f"ce_{p}"] = total[5 + i] / n
            row[f"acc_{p}"] = total[5 + n_parts + i] / max(total[5 + 2 * n_parts + i], 1.0)
        row["lr"] = lr
        return row


def train_reid(
    cfg: TrainConfig,
    train_df: pd.DataFrame,
    part_boxes: pd.DataFrame | None,
    out_dir: str | Path,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    options: RecipeOptions | None = None,
    cache_dir: str | Path | None = None,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    log: Callable[[str], None] | None = None,
    keep_checkpoint: bool = False,
    eval_every: int = 0,
    evaluator: Evaluator | None = None,
) -> runs.TrainResult:
    """Train a re-id model with the loss of Eq. 3 on ``train_df`` (``path``, ``pid``).

    ``part_boxes`` is the part-box table (needed when a ``lambda_p`` > 0);
    ``out_dir`` the run folder (see :mod:`prreid_lib.runs`): a finished run
    there is loaded, a checkpoint of the same run resumed, a checkpoint of
    another run is an error. ``device`` "auto" picks CUDA when available.
    ``options`` defaults to :func:`~prreid_lib.recipes.recipe_options` of
    ``cfg``. Images are decoded once and cached under ``cache_dir`` (default
    :func:`~prreid_lib.pipeline.imageset.default_cache_dir`). Returns a
    :class:`~prreid_lib.runs.TrainResult` (history, model, run folder).
    ``on_epoch_end(row)`` is called on rank 0 after each epoch's checkpoint
    and line (e.g. to plot live curves). Rank 0 reports each epoch in one line
    (:func:`epoch_line`: losses, training accuracy, learning rate, images/s,
    elapsed time): to ``log(line)`` when given, else printed when
    ``progress`` is on; the line is always appended to the run's ``log.txt``.

    ``evaluator(model)`` (with ``eval_every`` N > 0) evaluates the model after
    every N-th epoch and the last, on rank 0 (e.g. :func:`protocol_evaluator`); its
    figures go to that epoch's row as ``eval_<name>`` columns. The training's
    random states are restored after it, so the weights are those of a run
    without evaluation. ``checkpoint.pt`` is deleted once ``model.pt`` and
    ``final.json`` are written, unless ``keep_checkpoint``. None of these three
    is part of the run key.
    """
    out_dir = Path(out_dir)
    check_evaluation(eval_every, evaluator)
    train_df, part_boxes = _canonical_inputs(train_df, part_boxes)
    plan = plan_run(cfg, train_df, part_boxes, seed, options)
    if runs.is_done(out_dir):
        done_key = runs.load_info(out_dir).get("key")
        if done_key != plan.key:
            raise ValueError(
                f"{out_dir} holds another finished run (key {str(done_key)[:12]}, this run "
                f"{plan.key[:12]}): use another output folder or delete it"
            )
        return runs.load_result(out_dir)
    dev = dist.local_device(device)
    if dev.type == "cpu":  # large steps: keep freed memory for the next step (prreid_lib.heap)
        keep_freed_memory(cfg.batch_size, cfg.input_size)
    seed_everything(seed)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    boxes = part_boxes if plan.parts else None
    data = ReIDImageSet(train_df, boxes, cfg.input_size, plan.parts, cache)
    if plan.parts:
        check_part_coverage(data, boxes)
    trainer = _Trainer(cfg, plan, data, seed, dev)
    rank = trainer.rank
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        record = {"key": plan.key, "config": cfg, "options": plan.options, "seed": seed}
        record["precision"] = str(trainer.amp_dtype or torch.float32).removeprefix("torch.")
        write_json(out_dir / runs.CONFIG, record | {"world_size": dist.world_size()})
    history: list[dict[str, float]] = []
    ckpt = _read_checkpoint(out_dir, plan.key)
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
        history = list(ckpt["history"])
    for epoch in range(len(history), cfg.epochs):
        tic = time.perf_counter()
        row = trainer.epoch(epoch, progress and rank == 0)
        row["seconds"] = time.perf_counter() - tic
        if not math.isfinite(row["loss"]):
            raise PrreidError(
                f"training diverged in epoch {epoch + 1} of run {out_dir.name}: the loss is "
                f"{row['loss']} (learning rate {row['lr']:.3g}). Nothing of this epoch was "
                "kept; lower TrainConfig.lr (or the recipe's head_lr_mult) and train again"
            )
        if rank == 0 and evaluator is not None and evaluates(epoch + 1, cfg.epochs, eval_every):
            row |= _evaluate(trainer.model, evaluator, cfg.input_size)
        history.append(row)
        if rank == 0:
            state = trainer.state_dict() | {"key": plan.key, "epoch": epoch + 1}
            runs.atomic_torch_save(state | {"history": history}, out_dir / runs.CHECKPOINT)
            _write_history(out_dir, history)
            speed = trainer.epoch_images / max(row["seconds"], 1e-9)
            elapsed = sum(r["seconds"] for r in history)
            line = epoch_line(row, cfg.epochs, speed, elapsed)
            append_line(out_dir / runs.LOG, line)
            if log is not None or progress:
                (log or _print_line)(line)
            if on_epoch_end is not None:
                on_epoch_end(dict(row))
        dist.barrier()
    model, frame = trainer.model, pd.DataFrame(history)
    info = {
        "key": plan.key,
        "config": asdict(cfg),
        "options": asdict(plan.options),
        "seed": seed,
        "world_size": dist.world_size(),
        "device": str(dev),
        "torch": torch.__version__,
        "num_images": len(data),
        "num_classes": data.num_classes,
        "part_coverage": data.part_coverage(),
        "pretrained": cfg.pretrained,
        "train_seconds": float(frame["seconds"].sum()) if len(frame) else 0.0,
        "final": history[-1] if history else {},
    }
    if rank == 0:
        _write_history(out_dir, history)
        weights = {"kwargs": model.init_kwargs(), "state_dict": model.state_dict()}
        pid_values = [int(v) for v in data.pid_values]  # plain data: loads weights_only
        extra = {"input_size": cfg.input_size, "pid_values": pid_values}
        runs.atomic_torch_save(weights | extra, out_dir / runs.MODEL)
        write_json(out_dir / runs.FINAL, info)
        if not keep_checkpoint:  # the run is complete without it
            (out_dir / runs.CHECKPOINT).unlink(missing_ok=True)
    dist.barrier()
    model.input_size, model.pid_values = cfg.input_size, data.pid_values
    checkpoint = runs.kept_checkpoint(out_dir)
    return runs.TrainResult(out_dir, plan.key, frame, model.eval(), checkpoint, info)


def check_evaluation(eval_every: int, evaluator: Evaluator | None) -> None:
    """Raise ``ValueError`` unless ``eval_every`` and ``evaluator`` are given together."""
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(
            f"eval_every must be a whole number of epochs >= 0, got {eval_every!r}; pass e.g. "
            "eval_every=5 (0: no evaluation during training)"
        )
    if eval_every and evaluator is None:
        raise ValueError(
            f"eval_every={eval_every} needs evaluator=: pass a function of the model returning "
            "its figures (e.g. protocol_evaluator(...)), or eval_every=0"
        )
    if evaluator is not None and not eval_every:
        raise ValueError(
            "evaluator= is given but eval_every is 0, so it would never run: pass eval_every=N "
            "(evaluate after every N-th epoch and the last)"
        )


def evaluates(epoch: int, epochs: int, eval_every: int) -> bool:
    """Whether epoch ``epoch`` (1-based) of ``epochs`` is evaluated: every N-th, and the last."""
    return eval_every > 0 and (epoch % eval_every == 0 or epoch == epochs)


def _evaluate(
    model: PartRegularizedReID, evaluator: Evaluator, input_size: int
) -> dict[str, float]:
    """``evaluator(model)`` as ``eval_<name>`` figures; every random state is put back after."""
    state = rng_state()
    was_training = model.training
    model.input_size = input_size  # the size test images are resized to
    try:
        figures = evaluator(model)
    finally:
        set_rng_state(state)
        model.train(was_training)
    return {f"eval_{name}": float(value) for name, value in figures.items()}


def append_line(path: Path, line: str) -> None:
    """Append ``line`` to the text file ``path`` in one write, flushed."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()


EVAL_TRIALS = 3
"""VehicleID gallery draws of an evaluation during training (``prreid evaluate`` uses 10)."""
EVAL_FIGURES = ("CMC@1", "CMC@5", "mAP")
"""The figures of an evaluation during training (``eval_CMC@1`` ... in ``metrics.csv``)."""


def protocol_evaluator(dataset: str, data: Any, cache_dir: str | Path | None = None) -> Evaluator:
    """The test protocol of ``data`` as an evaluator for :func:`train_reid`:
    ``evaluator(model)`` returns CMC@1, CMC@5 and mAP.

    ``dataset`` "vehicleid": ``data`` is a :class:`~prreid_lib.datasets.vehicleid.VehicleID`,
    its test list ranked over :data:`EVAL_TRIALS` gallery draws (seed 0); "veri776": a
    :class:`~prreid_lib.datasets.veri776.VeRi776`, image-to-image (query against
    gallery, same-camera matches left out). Euclidean distance, global features.
    """
    import warnings

    from prreid_lib import evaluate

    def vehicleid(model: PartRegularizedReID) -> dict[str, float]:
        res = evaluate.evaluate_vehicleid(
            model, data.test, n_trials=EVAL_TRIALS, cache_dir=cache_dir
        )
        return _figures(res.cmc_mean, res.mAP_mean)

    def veri(model: PartRegularizedReID) -> dict[str, float]:
        with warnings.catch_warnings():  # the track protocol is not used here
            warnings.filterwarnings("ignore", message=".*image-to-track protocol")
            res = evaluate.evaluate_veri(model, data, cache_dir=cache_dir)["image"]
        return _figures(res.cmc, res.mAP)

    if dataset not in ("vehicleid", "veri776"):
        raise ValueError(f"dataset must be 'vehicleid' or 'veri776', got {dataset!r}")
    return vehicleid if dataset == "vehicleid" else veri


def _figures(cmc: Any, mean_ap: float) -> dict[str, float]:
    """CMC@1, CMC@5 (NaN beyond the curve) and mAP as plain floats."""
    curve = [float(v) for v in cmc]
    at = {k: curve[k - 1] if k <= len(curve) else float("nan") for k in (1, 5)}
    return {"CMC@1": at[1], "CMC@5": at[5], "mAP": float(mean_ap)}


def run_or_load(
    cfg: Any,
    train_df: pd.DataFrame,
    part_boxes: pd.DataFrame | None,
    root: str | Path,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    name: str | None = None,
    options: Any = None,
    cache_dir: str | Path | None = None,
    on_epoch_end: Any = None,
    log: Any = None,
    keep_checkpoint: bool = False,
    eval_every: int = 0,
    evaluator: Evaluator | None = None,
) -> runs.TrainResult:
    """Reuse the finished run of this (config, options, data, seed) under ``root``, or train it.

    Arguments as :func:`train_reid` (``on_epoch_end``, ``log`` and ``evaluator``
    see only the epochs trained now); the run lives in
    ``prreid_lib.runs.run_dir_for(root, key, name)``. A finished run with the same key under
    another name (the same model trained by another chapter under its own
    label) is reused as it is. An interrupted run resumes from its last
    checkpoint.
    """
    train_df, part_boxes = _canonical_inputs(train_df, part_boxes)
    plan = plan_run(cfg, train_df, part_boxes, seed, options)
    run_dir = runs.run_dir_for(root, plan.key, name)
    if not runs.is_done(run_dir):
        run_dir = _finished_twin(Path(root), plan.key) or run_dir
    return train_reid(
        cfg,
        train_df,
        part_boxes,
        run_dir,
        seed=seed,
        device=device,
        progress=progress,
        options=plan.options,
        cache_dir=cache_dir,
        on_epoch_end=on_epoch_end,
        log=log,
        keep_checkpoint=keep_checkpoint,
        eval_every=eval_every,
        evaluator=evaluator,
    )


def _finished_twin(root: Path, key: str) -> Path | None:
    """A finished run folder under ``root`` whose key is ``key`` (any name), or ``None``."""
    for candidate in sorted(root.glob(f"*-{key[:12]}")):
        try:
            if runs.is_done(candidate) and runs.load_info(candidate).get("key") == key:
                return candidate
        except (OSError, ValueError):
            continue  # an unreadable record is not a match
    return None


def epoch_line(row: dict[str, float], epochs: int, images_per_s: float, elapsed: float) -> str:
    """One line for an epoch's ``row``: losses, training accuracies, evaluation figures
    (when evaluated), lr, images/s, elapsed."""
    parts = [f"epoch {int(row['epoch'])}/{epochs}"]
    losses = ["loss", "global_ce", "triplet"] + [k for k in row if k.startswith("ce_")]
    parts += [f"{k} {row[k]:.4f}" for k in losses if k in row]
    accs = [k for k in row if k == "global_acc" or k.startswith("acc_")]
    parts += [f"{k} {row[k]:.3f}" for k in accs if row[k] == row[k]]  # NaN: no global branch
    evals = [k for k in row if k.startswith("eval_")]
    parts += [f"{k} {row[k]:.4f}" for k in evals if row[k] == row[k]]  # NaN: not evaluated
    parts += [f"lr {row['lr']:.2e}", f"{images_per_s:.1f} img/s", f"elapsed {elapsed:.1f} s"]
    return " | ".join(parts)


def _print_line(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line)  # above a progress bar, if one is shown


def tensorboard_writer(log_dir: str | Path):
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir``; the extra named when missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise PrreidError(
            "--tensorboard needs the tensorboard package: install the tensorboard extra "
            "(.venv/bin/pip install -e '.[tensorboard]')"
        ) from None
    return SummaryWriter(log_dir=str(log_dir))


def _write_history(out_dir: Path, history: list[dict[str, float]]) -> None:
    frame = pd.DataFrame(history)
    atomic_write_text(out_dir / runs.METRICS_CSV, frame.to_csv(index=False))
    write_json(out_dir / runs.METRICS_JSON, history)


def _load_dataset(args: argparse.Namespace, profile) -> tuple[Path, Any]:
    """The folder and the loaded data set (VehicleID or VeRi776) of the CLI's options
    (SynthVeh by default)."""
    from prreid_lib.datasets import load_vehicleid, load_veri776

    root = canonical_path(args.data_root) if args.data_root else None
    if root is None:
        if profile.real_data is not None:
            raise ValueError(f"profile {profile.name!r} uses real data: pass --data-root")
        from prreid_lib.synthveh import ensure_synthveh

        root = ensure_synthveh(profile, seed=args.data_seed)
    sub = {"vehicleid": "VehicleID", "veri776": "VeRi-776"}[args.dataset]
    root = root / sub if (root / sub).is_dir() else root
    return root, load_vehicleid(root) if args.dataset == "vehicleid" else load_veri776(root)


def _load_training_data(
    args: argparse.Namespace, profile, loaded: tuple[Path, Any] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Training frame and part boxes for the CLI (SynthVeh by default); ``loaded``: the
    :func:`_load_dataset` of ``args`` when already read."""
    root, dataset = loaded or _load_dataset(args, profile)
    synthetic = is_synthveh(root)
    train = dataset.train
    if args.parts == "none":
        return train, None
    if args.parts == "gt":
        if not synthetic:
            raise ValueError(_no_ground_truth(args, root))
        from prreid_lib.parts import ground_truth_part_boxes
        from prreid_lib.synthveh import load_synthveh_parts

        return train, ground_truth_part_boxes(load_synthveh_parts(root), train)
    return train, read_part_boxes(args.parts)


def _no_ground_truth(args: argparse.Namespace, root: Path) -> str:
    """Why ``--parts gt`` cannot be read under the real data ``root``, and the detect step."""
    labels = Path(args.data_root) / "parts" / "data.yaml"
    baseline = " ".join(f"--set lambda_p.{part}=0" for part in PART_NAMES)
    return (
        f"--parts gt (the default while a part branch trains) reads SynthVeh's ground-truth "
        f"part boxes, and {root} has none (real data): detect the parts first with `prreid "
        f"detect --profile {args.profile} --data-root {args.data_root} --out part_boxes.csv` "
        f"(about 500 images labelled in {labels}) and pass --parts part_boxes.csv, or train "
        f"the baseline without part branches: {baseline}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options of ``prreid train``, checked: each bad one is refused naming it.

    Nothing is read or written here; ``--set`` values are checked by :func:`main`.
    """
    from prreid_lib.config import PROFILES

    parser = argcheck.Parser(
        prog="prreid train",
        description="Train (or reuse) one run of a profile's config with --set overrides. Writes "
        "the run folder OUTPUT_DIR/<name>-<key>/ (config.json, checkpoint.pt after every epoch, "
        "removed when the run finishes unless --keep-checkpoint; log.txt with one line per "
        "epoch; metrics.csv/.json, model.pt, final.json) and decoded images under --cache-dir; "
        "prints one line per epoch and the run folder. Works unchanged under torchrun. "
        "Interrupted (Ctrl-C), the same command resumes from the last finished epoch.",
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="quick", help="config and data profile"
    )
    parser.add_argument(
        "--data-root",
        default=None,
        help="SynthVeh root, VehicleID or VeRi-776 (default: the profile's SynthVeh, generated "
        "in data/synthveh/<profile>-seed<data-seed>/)",
    )
    parser.add_argument(
        "--dataset",
        choices=("vehicleid", "veri776"),
        default="vehicleid",
        help="the training list to use: vehicleid or veri776",
    )
    parser.add_argument(
        "--parts",
        default=None,
        help="gt (SynthVeh's part labels), none, or a part-box CSV (on real data: the one "
        "`prreid detect` writes); only when a lambda_p > 0 (default: gt, or none when every "
        "lambda_p is 0)",
    )
    parser.add_argument("--output-dir", default="runs", help="where run folders go")
    parser.add_argument("--name", default=None, help="run folder prefix (default: run)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument(
        "--data-seed", type=int, help="SynthVeh seed (default: 0; only without --data-root)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one field of the profile's config, repeatable (e.g. --set epochs=3; "
        "default: none)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="decoded images (default: $PRREID_CACHE_DIR or ~/.cache/prreid)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar and no per-epoch lines"
    )
    parser.add_argument(
        "--tensorboard",
        default=None,
        metavar="DIR",
        help="also write TensorBoard event files of the per-epoch metrics to DIR "
        "(needs the tensorboard extra; default: none)",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=None,
        metavar="N",
        help="evaluate after every N-th epoch and the last on the data set's test protocol "
        f"(vehicleid: test_list_800.txt, {EVAL_TRIALS} gallery draws; veri776: image-to-image) "
        "into eval_CMC@1, eval_CMC@5, eval_mAP of metrics.csv (default: no evaluation)",
    )
    parser.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep checkpoint.pt (optimizer and random states) in the finished run folder",
    )
    args = parser.parse_args(argv)
    argcheck.data_source(args)
    argcheck.seed("--seed", args.seed)
    if args.parts not in (None, "gt", "none"):
        argcheck.input_file("--parts", args.parts, "pass gt, none or a part-box CSV file")
    argcheck.output_folder("--output-dir", args.output_dir)
    if args.name is not None:
        argcheck.name_part("--name", args.name)
    argcheck.device("--device", args.device)
    if args.cache_dir is not None:
        fix = f"pass a folder (or leave it out for {default_cache_dir()})"
        argcheck.output_folder("--cache-dir", args.cache_dir, fix)
    if args.tensorboard is not None:
        argcheck.output_folder("--tensorboard", args.tensorboard)
    if args.eval_every is not None:
        argcheck.int_in("--eval-every", args.eval_every, 1, 10**6, "epochs between evaluations")
    return args


def _refuse_evaluation_without_global(args: argparse.Namespace, cfg: TrainConfig) -> None:
    """Refuse ``--eval-every`` for a run without the global branch (its test features
    would need part boxes of the test images)."""
    if args.eval_every is not None and not cfg.use_global:
        raise argcheck.OptionError(
            "--eval-every",
            args.eval_every,
            "evaluates the global feature, and this run trains no global branch (use_global=False)",
            "leave --eval-every out (or train with use_global=true)",
        )


def _refuse_unused_parts(args: argparse.Namespace, cfg: TrainConfig) -> None:
    """Refuse ``--parts`` (given) when no part branch trains; then default it: ``gt`` when
    a part branch trains, else ``none`` (a baseline reads no part boxes, on any data)."""
    if args.parts not in (None, "none") and not active_parts(cfg):
        raise argcheck.OptionError(
            "--parts",
            args.parts,
            "applies only when a part branch trains, and every lambda_p is 0",
            "leave --parts out",
        )
    args.parts = args.parts or ("gt" if active_parts(cfg) else "none")


def _kept_after_interrupt(root: Path, name: str | None, since: float) -> str:
    """What an interrupted ``prreid train`` kept: the newest checkpoint written since ``since``."""
    fresh = []
    for path in root.glob(f"{name or 'run'}-*/{runs.CHECKPOINT}"):
        try:
            if path.stat().st_mtime >= since:
                fresh.append(path)
        except OSError:
            continue
    if not fresh:
        return (
            "no epoch finished, so no new checkpoint was kept; run the same command again "
            "(a run interrupted earlier resumes from its last checkpoint)"
        )
    run_dir = max(fresh, key=lambda p: p.stat().st_mtime).parent
    try:
        epoch = len(pd.read_csv(run_dir / runs.METRICS_CSV))
    except (OSError, ValueError):
        epoch = None
    which = f"the checkpoint of epoch {epoch}" if epoch else "the last checkpoint"
    return f"{which} in {run_dir} was kept; run the same command again to resume"


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m prreid_lib.train --profile quick --set lambda_p.window=0 ...``.

    Trains (or reuses) one run of the profile's :class:`TrainConfig` with the
    overrides, under ``--output-dir``, and prints its folder and last epoch.
    Works unchanged under ``torchrun --nproc-per-node N``.
    """
    from prreid_lib.config import get_profile

    args = parse_args(argv)
    profile = get_profile(args.profile)
    cfg, options = apply_overrides(profile.train, recipe_options(profile.train), args.set)
    _refuse_unused_parts(args, cfg)
    _refuse_evaluation_without_global(args, cfg)
    since = time.time()
    started = dist.init_from_env(args.device)
    writer = None
    try:
        hook = None
        if args.tensorboard and dist.rank() == 0:
            writer = tensorboard_writer(args.tensorboard)

            def hook(row: dict[str, float]) -> None:
                for key, value in row.items():
                    if key != "epoch" and value == value:  # NaN: no global branch
                        tag = f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"
                        writer.add_scalar(tag, value, int(row["epoch"]))
                writer.flush()

        loaded = _load_dataset(args, profile)
        train_df, part_boxes = _load_training_data(args, profile, loaded)
        evaluator = None
        if args.eval_every is not None:
            evaluator = protocol_evaluator(args.dataset, loaded[1], args.cache_dir)
        if not active_parts(cfg):
            part_boxes = None
        result = run_or_load(
            cfg,
            train_df,
            part_boxes,
            args.output_dir,
            seed=args.seed,
            device=args.device,
            progress=not args.no_progress,
            name=args.name,
            options=options,
            cache_dir=args.cache_dir,
            on_epoch_end=hook,
            keep_checkpoint=args.keep_checkpoint,
            eval_every=args.eval_every or 0,
            evaluator=evaluator,
        )
        if dist.rank() == 0:
            last = result.history.iloc[-1].to_dict() if len(result.history) else {}
            state = "reused" if result.reused else f"trained in {result.seconds:.1f} s"
            print(
                f"run {result.run_dir} ({state}); last epoch: "
                + ", ".join(f"{k} {v:.4g}" for k, v in last.items())
            )
            if result.reused and args.eval_every is not None:
                print(
                    f"prreid train: note: {result.run_dir} had finished, so --eval-every "
                    "evaluated nothing now; evaluate it with prreid evaluate --run "
                    f"{result.run_dir} --data-root {loaded[0]} --dataset {args.dataset}",
                    file=sys.stderr,
                )
    except KeyboardInterrupt:
        kept = _kept_after_interrupt(Path(args.output_dir), args.name, since)
        raise argcheck.Interrupted(kept) from None
    finally:
        if writer is not None:
            writer.close()
        if started:
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
