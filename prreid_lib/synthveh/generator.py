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

from prreid_lib.cache import atomic_write_text, read_json
from prreid_lib.config import Profile, SynthConfig, get_profile
from prreid_lib.paths import canonical_path, canonical_paths
from prreid_lib.synthveh.export import data_yaml_is_current, write_data_yaml
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
from prreid_lib.synthveh.swap import (
    MANIFEST,
    Owned,
    list_files,
    listed_files,
    locked,
    make_temp,
    own_entry,
    pid_alive,
    recover,
    recover_locked,
    release,
    signals_deferred,
    sigterm_as_interrupt,
    swap_in,
)
from prreid_lib.synthveh.world import COLOURS, Identity, ModelSpec, sample_model
from prreid_lib.synthveh_files import IDENTITIES_FILE, PARTS_FILE

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
    ex = ProcessPoolExecutor(
        workers, mp_context=get_context(method), initializer=_init_worker, initargs=(ctx,)
    )
    try:
        return list(ex.map(_render_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    finally:  # on Ctrl-C or SIGTERM: drop the queued chunks, wait only for running ones
        ex.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------------- public API
SUBFOLDERS = ("VeRi-776", "VehicleID", "parts", "pretrain")
"""The folders :func:`generate_synthveh` writes (and replaces) under its ``out`` folder."""
LAYOUT_NAMES = {
    "VeRi-776": (
        "image_train", "image_test", "image_query", "name_train.txt", "name_test.txt",
        "name_query.txt", "train_label.xml", "test_label.xml", "gt_index.txt", "jk_index.txt",
        "test_track.txt", PARTS_FILE, IDENTITIES_FILE,
    ),
    "VehicleID": (
        "image", "attribute", "train_test_split", PARTS_FILE, IDENTITIES_FILE
    ),
    "parts": ("images", "labels", "data.yaml", PARTS_FILE),
    "pretrain": ("image", "image_list.txt", PARTS_FILE, IDENTITIES_FILE),
}  # fmt: skip
"""Top-level names of each folder: prreid's whole, for manifests written before file lists."""


def generate_synthveh(
    cfg: SynthConfig,
    out: Path,
    seed: int = 0,
    workers: int | None = None,
    *,
    profile: str | None = None,
    keep_complete: bool = False,
) -> Path:
    """Render SynthVeh under ``out`` (``VeRi-776/``, ``VehicleID/``, ``parts/``) and return it.

    The folders follow the official VeRi-776 and VehicleID layouts and the
    ultralytics YOLO layout (plans and lists: :mod:`prreid_lib.synthveh.plan`),
    each with ``synthveh_parts.csv``. ``synthveh.json`` (config, seed, format
    version and every file written) is the manifest. The data set is rendered
    into a temporary folder inside ``out`` and swapped in
    (``prreid_lib.synthveh.swap``): a second run replaces only the files the
    manifest lists and keeps whatever else the user put in ``out`` or inside the
    data-set folders; an interrupted or killed run leaves the previous data set
    whole, and the next run rolls a killed swap back and removes the temporary
    folders of dead processes. SIGTERM stops it like Ctrl-C. Data-set folders
    without a prreid manifest raise ``ValueError`` and nothing is deleted; so
    does a file of the user where the new data set writes one. ``workers``
    processes render in parallel (default: the CPU count, at most 8); the files
    do not depend on it. ``profile`` is recorded in the manifest; with
    ``keep_complete`` a whole data set of the same config and seed that is in
    ``out`` when the rendering ends (another process finished first) is kept.
    Bad config values, a negative ``seed``, an ``out`` that is a file or cannot
    be written raise ``ValueError`` naming the field or path.
    """
    out = Path(out).absolute()
    validate_config(cfg)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        with sigterm_as_interrupt():
            _check_target(out)
            out.mkdir(parents=True, exist_ok=True)
            recover(out)
            _check_target(out)
            tmp = None
            try:
                with signals_deferred():  # a Ctrl-C now lands after tmp is known
                    tmp = make_temp(out)
                _render_new(cfg, tmp / "new", seed, workers, profile)
                with locked(out):
                    recover_locked(out)  # a swap killed while this one rendered
                    if not (keep_complete and _is_complete(out, _manifest(cfg, seed))):
                        _check_target(out)
                        swap_in(out, tmp, SUBFOLDERS, _owned(out, tmp / "new"))
            finally:
                if tmp is not None:
                    release(out, tmp)
    except OSError as err:
        raise ValueError(
            f"{out}: cannot write SynthVeh there ({err.strerror or err}); "
            "choose a writable folder with free disk space"
        ) from err
    return out


def _render_new(
    cfg: SynthConfig, new: Path, seed: int, workers: int | None, profile: str | None
) -> None:
    """Render the data set into ``new`` with its manifest, which lists every file."""
    _render(cfg, new, seed, workers)
    man = _manifest(cfg, seed, profile)
    man["files"] = list_files(new, SUBFOLDERS)
    atomic_write_text(new / MANIFEST, json.dumps(man, indent=1) + "\n")


def _written_by_prreid(out: Path) -> bool:
    """Whether ``out/synthveh.json`` is a manifest that :func:`generate_synthveh` wrote."""
    man = read_json(out / MANIFEST)
    return isinstance(man, dict) and {"format_version", "seed", "config"} <= set(man)


def _check_target(out: Path) -> None:
    """Refuse an ``out`` that is a file, or holds SynthVeh folders prreid did not write."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder; choose a folder for SynthVeh")
    present = [sub for sub in SUBFOLDERS if os.path.lexists(out / sub)]
    odd = [sub for sub in present if (out / sub).is_symlink() or not (out / sub).is_dir()]
    if odd:
        raise ValueError(
            f"{out / odd[0]} is a file or a link, not a folder that prreid wrote; "
            f"move it out of {out} or choose another folder"
        )
    if present and not _written_by_prreid(out):
        raise ValueError(
            f"{out} already holds {', '.join(present)} without the {MANIFEST} that prreid "
            "writes, so prreid did not write them; choose an empty folder or remove it yourself"
        )


def _owned(out: Path, new: Path) -> dict[str, Owned]:
    """What prreid wrote in each folder of ``out``, from its manifest's file lists (older
    manifests: the layout's top-level names and those of the ``new`` tree, owned whole)."""
    man = read_json(out / MANIFEST)
    files = listed_files(man)
    if files is not None:
        return {sub: Owned(frozenset(map(str, files.get(sub, [])))) for sub in SUBFOLDERS}
    config = man.get("config") if isinstance(man, dict) else None
    had_pretrain = isinstance(config, dict) and bool(config.get("pretrain_ids"))
    owned = {}
    for sub in SUBFOLDERS:
        names = set(LAYOUT_NAMES[sub])
        if (new / sub).is_dir():
            names |= {p.name for p in (new / sub).iterdir()}
        owned[sub] = Owned(whole=frozenset(names if sub != "pretrain" or had_pretrain else ()))
    return owned


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
    have = read_json(root / MANIFEST)
    keys = ("format_version", "seed", "config")
    if not isinstance(have, dict) or any(have.get(k) != want[k] for k in keys):
        return False
    return layouts_complete(root, pretrain=want["config"]["pretrain_ids"] > 0)


def ensure_synthveh(
    profile: str | Profile, root: Path | None = None, seed: int = 0, workers: int | None = None
) -> Path:
    """Return the SynthVeh root of ``profile`` and ``seed``, generating it when needed.

    The default root is ``data/synthveh/<profile>-seed<seed>`` under the current
    directory. An existing root is reused when its ``synthveh.json`` matches
    (config, seed, format version) and its layouts are complete; otherwise the
    data set is generated in place as by :func:`generate_synthveh`: an interrupted
    run never leaves a half data set, a killed one is rolled back by the next
    run, and files of the user inside the root are kept. A non-empty ``root``
    without a prreid ``synthveh.json`` raises ``ValueError`` (nothing is deleted).
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    root = Path(root) if root is not None else Path("data/synthveh") / f"{prof.name}-seed{seed}"
    root = root.absolute()
    want = _manifest(prof.synth, seed)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} is a file, not a folder; choose a folder for SynthVeh")
    try:
        recover(root)
        _remove_dead_siblings(root)
    except OSError as err:
        raise ValueError(
            f"{root}: cannot clean up after an interrupted SynthVeh run ({err.strerror or err}); "
            "make the folder writable and run again"
        ) from err
    if not _is_complete(root, want):
        users = [p.name for p in root.iterdir() if not own_entry(p.name)] if root.is_dir() else []
        if users and not _written_by_prreid(root):
            raise ValueError(
                f"{root} is not empty and has no {MANIFEST}, so prreid did not write it; "
                "choose an empty folder or remove it yourself"
            )
        generate_synthveh(prof.synth, root, seed, workers, profile=prof.name, keep_complete=True)
    if not data_yaml_is_current(root / "parts"):  # e.g. an older one naming a fixed folder
        write_data_yaml(root / "parts")
    return root


def _remove_dead_siblings(root: Path) -> None:
    """Remove ``.<root>.tmp-<pid>`` folders that earlier versions generated beside ``root``
    when their process is dead and they hold only SynthVeh folders."""
    if not root.parent.is_dir():
        return
    for tmp in root.parent.glob(f".{root.name}.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if not pid.isdigit() or not tmp.is_dir() or tmp.is_symlink() or pid_alive(int(pid)):
            continue
        names = {p.name for p in tmp.iterdir()}
        if all(n in SUBFOLDERS or n == MANIFEST or own_entry(n) for n in names):
            shutil.rmtree(tmp, ignore_errors=True)


def load_synthveh_parts(root: str | Path) -> pd.DataFrame:
    """Read ``root/synthveh_parts.csv`` (root: ``VeRi-776/``, ``VehicleID/`` or ``parts/``)
    and add ``path``, the canonical image path (:func:`prreid_lib.paths.canonical_paths`,
    as the loaders give it), as the first column."""
    root = canonical_path(root)
    f = root / PARTS_FILE
    if not f.is_file():
        raise FileNotFoundError(
            f"{f}: no {PARTS_FILE}; pass a SynthVeh data set folder (VeRi-776, VehicleID "
            "or parts under the root returned by ensure_synthveh)"
        )
    df = pd.read_csv(
        f, dtype={"side": str, "image": str, "part": str, "view": str}, keep_default_na=False
    )
    df.insert(0, "path", canonical_paths(root / p for p in df["image"]))
    return df
