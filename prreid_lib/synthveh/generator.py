"""SynthVeh: the procedural near-duplicate vehicle benchmark, exported in official layouts.

The world is a hierarchy make -> model -> colour -> identity
(:mod:`prreid_lib.synthveh.world`). Within each split, at least
``near_duplicate_share`` of the identities share make, model and colour with
another identity: near-duplicates that differ by small personal cues, mostly
inside the paper's parts (window, lights, brand; Sec. 3.2), with
``outside_cue_share`` of the cue moved outside them. :func:`generate_synthveh`
renders traffic-camera crops (:mod:`prreid_lib.synthveh.scene`) and writes
``VeRi-776/`` (several fixed cameras, front/rear tracks), ``VehicleID/`` (front
or rear shots, nested test lists) and ``parts/`` (a YOLO data set of the
"hand-annotated" subset, drawn from the VehicleID training identities as in
the paper), each with ground-truth part boxes in ``synthveh_parts.csv``.
Every image is seeded from (seed, data set, index), so files are
byte-identical across runs and worker counts.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from io import BytesIO
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
import pandas as pd

from prreid_lib.config import Profile, SynthConfig, get_profile
from prreid_lib.synthveh.export import read_yaml_path, write_data_yaml
from prreid_lib.synthveh.plan import (
    DS_PRETRAIN,
    DS_VERI,
    DS_VID,
    layouts_complete,
    plan_parts,
    plan_pretrain,
    plan_vehicleid,
    plan_veri,
)
from prreid_lib.synthveh.scene import Camera, render_image, sample_scene
from prreid_lib.synthveh.world import COLOURS, Identity, ModelSpec, sample_model

FORMAT_VERSION = 3
"""Bumped whenever the generator's output changes; part of ``synthveh.json``."""
JPEG_QUALITY = 90


def validate_config(cfg: SynthConfig) -> None:
    """Raise ``ValueError`` naming the first ``SynthConfig`` field with a bad value."""
    minimum = {
        "n_makes": 1,
        "models_per_make": 1,
        "n_colours": 1,
        "veri_train_ids": 1,
        "veri_test_ids": 1,
        "veri_cameras": 2,
        "veri_images_per_id": 2,
        "vehicleid_train_ids": 1,
        "vehicleid_images_per_id": 2,
        "n_annotated": 0,
        "n_part_val": 0,
        "pretrain_ids": 0,
        "pretrain_images_per_id": 1,
        "vehicleid_train_sites_per_id": 0,
        "image_size": 32,
    }
    for name, low in minimum.items():
        value = getattr(cfg, name)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"SynthConfig.{name} must be an integer >= {low}, got {value!r}")
    if cfg.n_colours > len(COLOURS):
        raise ValueError(f"SynthConfig.n_colours must be <= {len(COLOURS)}, got {cfg.n_colours}")
    if cfg.veri_train_ids + cfg.veri_test_ids > 9999 or cfg.veri_cameras > 999:
        raise ValueError(
            "SynthConfig.veri_train_ids + veri_test_ids must be <= 9999 and "
            "veri_cameras <= 999 (4-digit ids, 3-digit cameras in VeRi names)"
        )
    sizes = cfg.vehicleid_test_sizes
    if len(sizes) != 3 or any(int(s) < 1 for s in sizes) or list(sizes) != sorted(sizes):
        raise ValueError(
            "SynthConfig.vehicleid_test_sizes must be three positive, "
            f"non-decreasing integers (small, medium, large), got {sizes!r}"
        )
    for name in ("outside_cue_share", "near_duplicate_share"):
        value = getattr(cfg, name)
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"SynthConfig.{name} must lie in [0, 1], got {value!r}")
    if not 0.0 <= float(cfg.cue_strength) <= 5.0:
        raise ValueError(f"SynthConfig.cue_strength must lie in [0, 5], got {cfg.cue_strength!r}")


def build_models(cfg: SynthConfig, seed: int) -> list[list[ModelSpec]]:
    """``models[make][model]``: each model seeded by (seed, make, model)."""
    return [
        [
            sample_model(np.random.default_rng([seed, 0, mk, j]), mk)
            for j in range(cfg.models_per_make)
        ]
        for mk in range(cfg.n_makes)
    ]


# ----------------------------------------------------------------------------- rendering
_CTX: dict = {}


def _init_worker(ctx: dict) -> None:
    global _CTX
    _CTX = ctx


def render_identity(
    ident: Identity,
    models: list[list[ModelSpec]],
    view: str,
    scene,
    cue_strength: float,
    outside_share: float,
):
    """Render ``ident`` in ``scene``: (PIL image, boxes, visible) as in ``render_image``."""
    m = models[ident.make][ident.model]
    return render_image(
        m, COLOURS[ident.colour][2], ident.cues, view, scene, cue_strength, outside_share
    )


def _render_job(job: tuple) -> list[tuple]:
    ds, index, id_ds, pid, cam_ds, cam_idx, view, track, rel, path = job
    ctx = _CTX
    seed = ctx["seed"]
    cam: Camera = ctx["cams"][cam_ds][cam_idx]
    trng = np.random.default_rng([seed, ds, 7, *track]) if track else None
    scene = sample_scene(
        cam, (seed, cam_ds, 5, cam_idx), np.random.default_rng([seed, ds, index]), trng
    )
    img, boxes, vis = render_identity(
        ctx["ids"][id_ds][pid], ctx["models"], view, scene, ctx["cue_strength"], ctx["outside"]
    )
    buf = BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY)
    Path(path).write_bytes(buf.getvalue())
    w, h = img.size
    rows = []
    for key, b in boxes.items():
        part, _, side = key.partition("_")
        rows.append((rel, part, side, *(f"{v:.2f}" for v in b), vis[key], w, h, view))
    return rows


def _run_jobs(jobs: list[tuple], ctx: dict, workers: int) -> list[list[tuple]]:
    if workers <= 1 or len(jobs) < 64:
        _init_worker(ctx)
        return [_render_job(j) for j in jobs]
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        workers, mp_context=get_context(method), initializer=_init_worker, initargs=(ctx,)
    ) as ex:
        return list(ex.map(_render_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))))


# ----------------------------------------------------------------------------- public API
SUBFOLDERS = ("VeRi-776", "VehicleID", "parts", "pretrain")
"""The folders :func:`generate_synthveh` writes (and replaces) under its ``out`` folder."""
MANIFEST = "synthveh.json"


def generate_synthveh(
    cfg: SynthConfig, out: Path, seed: int = 0, workers: int | None = None
) -> Path:
    """Render SynthVeh under ``out`` (``VeRi-776/``, ``VehicleID/``, ``parts/``) and return it.

    The folders follow the official VeRi-776 and VehicleID layouts and the
    ultralytics YOLO layout (plans and lists: :mod:`prreid_lib.synthveh.plan`),
    each with ``synthveh_parts.csv``. They are rendered into a temporary folder
    inside ``out`` and renamed into place, so an interrupted run leaves no half
    data set. Copies of these folders already in ``out`` are replaced only when
    ``out/synthveh.json`` shows that prreid wrote them; otherwise (folders that
    someone else put there) this raises ``ValueError`` and deletes nothing.
    ``workers`` processes render in parallel (default: the CPU count, at most
    8); the files do not depend on it. ``synthveh.json`` (config, seed, format
    version) is written last. Bad config values, a negative ``seed``, an
    ``out`` that is a file or cannot be written raise ``ValueError`` naming the
    field or path.
    """
    validate_config(cfg)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out).absolute()
    _check_target(out)
    tmp = out / f".synthveh.tmp-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        _render(cfg, tmp, seed, workers)
        (out / MANIFEST).unlink(missing_ok=True)  # no manifest while the folders change
        for sub in SUBFOLDERS:
            target = out / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if (tmp / sub).exists():
                (tmp / sub).rename(target)
        write_data_yaml(out / "parts")
        (out / MANIFEST).write_text(json.dumps(_manifest(cfg, seed), indent=1) + "\n")
    except OSError as err:
        raise ValueError(
            f"{out}: cannot write SynthVeh there ({err.strerror or err}); "
            "choose a writable folder with free disk space"
        ) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _written_by_prreid(out: Path) -> bool:
    """Whether ``out/synthveh.json`` is a manifest that :func:`generate_synthveh` wrote."""
    try:
        man = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(man, dict) and {"format_version", "seed", "config"} <= set(man)


def _check_target(out: Path) -> None:
    """Refuse an ``out`` that is a file, or holds SynthVeh folders prreid did not write."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder; choose a folder for SynthVeh")
    present = [sub for sub in SUBFOLDERS if (out / sub).exists()]
    if present and not _written_by_prreid(out):
        raise ValueError(
            f"{out} already holds {', '.join(present)} without the {MANIFEST} that prreid "
            "writes, so prreid did not write them; choose an empty folder or remove it yourself"
        )


def _render(cfg: SynthConfig, out: Path, seed: int, workers: int | None) -> None:
    """Render every plan of ``cfg`` into the fresh folder ``out``."""
    models = build_models(cfg, seed)
    plans = [
        plan_veri(cfg, seed, out / "VeRi-776"),
        plan_vehicleid(cfg, seed, out / "VehicleID"),
    ]
    plans.append(plan_parts(cfg, seed, out / "parts", plans[1]))
    if cfg.pretrain_ids > 0:
        plans.append(plan_pretrain(cfg, seed, out / "pretrain"))
    jobs = [j for p in plans for j in p.jobs]
    for folder in sorted({str(Path(j[-1]).parent) for j in jobs}):
        Path(folder).mkdir(parents=True, exist_ok=True)
    ctx = {
        "seed": seed,
        "models": models,
        "cue_strength": float(cfg.cue_strength),
        "outside": float(cfg.outside_cue_share),
        "ids": {
            DS_VERI: plans[0].identities,
            DS_VID: plans[1].identities,
            DS_PRETRAIN: plans[3].identities if len(plans) > 3 else {},
        },
        "cams": {
            DS_VERI: plans[0].cameras,
            DS_VID: plans[1].cameras,
            DS_PRETRAIN: plans[3].cameras if len(plans) > 3 else [],
        },
    }
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    rows = _run_jobs(jobs, ctx, workers)
    start = 0
    for plan in plans:
        n = len(plan.jobs)
        plan.write(rows[start : start + n], cfg, models)
        start += n


def _manifest(cfg: SynthConfig, seed: int, profile: str | None = None) -> dict:
    man = {"format_version": FORMAT_VERSION, "seed": int(seed), "config": asdict(cfg)}
    if profile is not None:
        man["profile"] = profile
    return json.loads(json.dumps(man))


def _is_complete(root: Path, want: dict) -> bool:
    try:
        have = json.loads((root / "synthveh.json").read_text())
    except (OSError, ValueError):
        return False
    if any(have.get(k) != want[k] for k in ("format_version", "seed", "config")):
        return False
    return layouts_complete(root, pretrain=want["config"]["pretrain_ids"] > 0)


def ensure_synthveh(
    profile: str | Profile, root: Path | None = None, seed: int = 0, workers: int | None = None
) -> Path:
    """Return the SynthVeh root of ``profile`` and ``seed``, generating it when needed.

    The default root is ``data/synthveh/<profile>-seed<seed>`` under the current
    directory. An existing root is reused when its ``synthveh.json`` matches
    (config, seed, format version) and its layouts are complete; otherwise the
    data set is generated into a temporary sibling folder that is renamed into
    place, so an interrupted run never leaves a half data set that looks complete.
    A non-empty ``root`` without a prreid ``synthveh.json`` raises ``ValueError``
    (nothing is deleted).
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    root = Path(root) if root is not None else Path("data/synthveh") / f"{prof.name}-seed{seed}"
    root = root.absolute()
    want = _manifest(prof.synth, seed)
    if not _is_complete(root, want):
        if root.is_dir() and any(root.iterdir()) and not _written_by_prreid(root):
            raise ValueError(
                f"{root} is not empty and has no {MANIFEST}, so prreid did not write it; "
                "choose an empty folder or remove it yourself"
            )
        if root.exists() and not root.is_dir():
            raise ValueError(f"{root} is a file, not a folder; choose a folder for SynthVeh")
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        generate_synthveh(prof.synth, tmp, seed, workers)
        man = _manifest(prof.synth, seed, prof.name)
        (tmp / "synthveh.json").write_text(json.dumps(man, indent=1) + "\n")
        if _is_complete(root, want):  # another process finished first
            shutil.rmtree(tmp)
        else:
            if root.exists():
                shutil.rmtree(root)
            tmp.rename(root)
    if read_yaml_path(root / "parts") != str(root / "parts"):
        write_data_yaml(root / "parts")
    return root


def load_synthveh_parts(root: str | Path) -> pd.DataFrame:
    """Read ``root/synthveh_parts.csv`` (root: ``VeRi-776/``, ``VehicleID/`` or ``parts/``)
    and add ``path``, the absolute image path, as the first column."""
    root = Path(root).absolute()
    f = root / "synthveh_parts.csv"
    if not f.is_file():
        raise FileNotFoundError(
            f"{f}: no synthveh_parts.csv; pass a SynthVeh data set folder (VeRi-776, VehicleID "
            "or parts under the root returned by ensure_synthveh)"
        )
    df = pd.read_csv(
        f, dtype={"side": str, "image": str, "part": str, "view": str}, keep_default_na=False
    )
    df.insert(0, "path", [str(root / p) for p in df["image"]])
    return df
