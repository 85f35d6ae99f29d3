"""Who is shot where: the SynthVeh plans of VeRi-776, VehicleID and the part data set.

A :class:`Plan` lists one render job per image (identity, camera, view, track,
file) and knows how to write its data set's lists once the images exist.
VeRi-776: identities on 2 or more fixed cameras, one track (one view, consecutive
frames) per camera, one query per test track. VehicleID: front or rear shots
from random camera sites, test identities drawn in three nested chunks so the
800/1600/2400-style lists are each near-duplicate rich. Parts: shots of
VehicleID training identities (the paper annotated VehicleID images).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prreid_lib.config import SynthConfig
from prreid_lib.synthveh.export import (
    IDENTITY_COLUMNS,
    PARTS_COLUMNS,
    veri_indices,
    veri_tracks,
    write_csv,
    write_data_yaml,
    write_lines,
    write_veri_xml,
    yolo_lines,
)
from prreid_lib.synthveh.scene import Camera, sample_camera
from prreid_lib.synthveh.world import COLOURS, MAKE_NAMES, TYPE_NAMES, Identity, ModelSpec
from prreid_lib.synthveh.world import sample_identities as _sample_identities
from prreid_lib.synthveh_files import IDENTITIES_FILE, PARTS_FILE

DS_VERI, DS_VID, DS_PARTS, DS_PRETRAIN = 1, 2, 3, 4
"""Data-set codes in the per-image seeds (seed, code, index)."""
N_VID_SITES = 24
"""VehicleID shots come from this many camera sites (viewpoint + background)."""
Writer = Callable[[list[list[tuple]], SynthConfig, list[list[ModelSpec]]], None]


@dataclass
class Plan:
    """Render jobs of one data set and the writer of its lists.

    A job is (ds, index, identity ds, pid, camera ds, camera index, view,
    track key, image path relative to ``root``, absolute image path); the
    writer gets the synthveh_parts rows each job returned, in job order.
    """

    root: Path
    jobs: list[tuple]
    identities: dict[int, Identity] = field(default_factory=dict)
    cameras: list[Camera] = field(default_factory=list)
    write: Writer = lambda rows, cfg, models: None


def make_name(make: int) -> str:
    """Fictional name of make ``make``."""
    base = MAKE_NAMES[make % len(MAKE_NAMES)]
    return base + (str(make // len(MAKE_NAMES)) if make >= len(MAKE_NAMES) else "")


def _identity_rows(idents, cfg: SynthConfig, models) -> list[tuple]:
    rows = []
    for i in sorted(idents, key=lambda i: i.pid):
        name, veri_colour, _ = COLOURS[i.colour]
        t = models[i.make][i.model].type_id
        rows.append(
            (
                i.pid,
                make_name(i.make),
                f"{make_name(i.make)}-{i.model + 1}",
                veri_colour,
                name,
                t,
                i.group,
                i.split,
                i.make,
                i.make * cfg.models_per_make + i.model,
                TYPE_NAMES[t - 1],
            )
        )
    return rows


def _identities(cfg: SynthConfig, pids, split: str, rng: np.random.Generator) -> list[Identity]:
    return _sample_identities(
        cfg.n_makes,
        cfg.models_per_make,
        cfg.n_colours,
        cfg.near_duplicate_share,
        sorted(int(p) for p in pids),
        split,
        rng,
    )


def _flat(rows: list[list[tuple]]) -> list[tuple]:
    return [r for rs in rows for r in rs]


def plan_veri(cfg: SynthConfig, seed: int, root: Path) -> Plan:
    """VeRi-776 plan: ids on 2+ of ``veri_cameras`` cameras, one track per camera."""
    rng = np.random.default_rng([seed, DS_VERI, 1])
    n_tr, n_te, n_cam, ipi = (
        cfg.veri_train_ids,
        cfg.veri_test_ids,
        cfg.veri_cameras,
        cfg.veri_images_per_id,
    )
    pids = rng.permutation(np.arange(1, n_tr + n_te + 1))
    idents = _identities(cfg, pids[:n_tr], "train", rng) + _identities(
        cfg, pids[n_tr:], "test", rng
    )
    cams = [
        sample_camera(np.random.default_rng([seed, DS_VERI, 2, c]), c + 1, cfg.image_size, "veri")
        for c in range(n_cam)
    ]
    images, queries = [], []
    k_max = min(n_cam, max(2, ipi // 2))
    for ident in idents:
        k = int(rng.integers(2, k_max + 1))
        chosen = np.sort(rng.choice(n_cam, size=k, replace=False)).tolist()
        counts = (1 + rng.multinomial(ipi - k, np.full(k, 1.0 / k))).tolist()
        for c, cnt in zip(chosen, counts, strict=True):
            view = "front" if rng.random() < cams[c].p_front else "rear"
            f0, step = int(rng.integers(0, 90_000_000)), int(rng.integers(5, 40))
            names = [f"{ident.pid:04d}_c{c + 1:03d}_{f0 + j * step:08d}_0.jpg" for j in range(cnt)]
            images += [(ident.split, n, ident.pid, c, view) for n in names]
            if ident.split == "test":
                queries.append(names[int(rng.integers(cnt))])
    images.sort()
    jobs = [
        (
            DS_VERI,
            i,
            DS_VERI,
            pid,
            DS_VERI,
            c,
            view,
            (pid, c),
            f"image_{sp}/{n}",
            str(root / f"image_{sp}" / n),
        )
        for i, (sp, n, pid, c, view) in enumerate(images)
    ]
    by_id = {i.pid: i for i in idents}

    def write(rows: list[list[tuple]], cfg: SynthConfig, models) -> None:
        names = {sp: [n for s, n, *_ in images if s == sp] for sp in ("train", "test")}
        names["query"] = sorted(queries)
        for sp, ns in names.items():
            write_lines(root / f"name_{sp}.txt", ns)
        (root / "image_query").mkdir(exist_ok=True)
        for n in names["query"]:
            shutil.copyfile(root / "image_test" / n, root / "image_query" / n)

        def meta(n: str) -> tuple[str, int, int]:
            return n, int(n[:4]), int(n[6:9])

        for sp, tag in (("train", "TrainingImages"), ("test", "TestImages")):
            items = []
            for n in names[sp]:
                ident = by_id[int(n[:4])]
                items.append(
                    {
                        "imageName": n,
                        "vehicleID": n[:4],
                        "cameraID": n[5:9],
                        "colorID": COLOURS[ident.colour][1],
                        "typeID": models[ident.make][ident.model].type_id,
                    }
                )
            write_veri_xml(root / f"{sp}_label.xml", tag, items)
        test = [meta(n) for n in names["test"]]
        gt, jk = veri_indices([meta(n) for n in names["query"]], test)
        write_lines(root / "gt_index.txt", gt)
        write_lines(root / "jk_index.txt", jk)
        write_lines(root / "test_track.txt", veri_tracks(test))
        parts = _flat(rows)
        qset = set(names["query"])
        parts += [
            (f"image_query/{r[0][11:]}", *r[1:])
            for r in parts
            if r[0].startswith("image_test/") and r[0][11:] in qset
        ]
        write_csv(root / PARTS_FILE, PARTS_COLUMNS, sorted(parts, key=_key))
        write_csv(
            root / IDENTITIES_FILE,
            IDENTITY_COLUMNS,
            _identity_rows(idents, cfg, models),
        )

    return Plan(root, jobs, by_id, cams, write)


_PART_ORDER = {"vehicle": 0, "window": 1, "light": 2, "brand": 3}


def _key(row: Sequence[Any]) -> tuple[Any, ...]:
    return row[0], _PART_ORDER[row[1]], row[2]


def plan_vehicleid(cfg: SynthConfig, seed: int, root: Path) -> Plan:
    """VehicleID plan: front/rear shots from random sites; nested test chunks."""
    rng = np.random.default_rng([seed, DS_VID, 1])
    n_tr, sizes = cfg.vehicleid_train_ids, [int(s) for s in cfg.vehicleid_test_sizes]
    pids = rng.permutation(np.arange(1, n_tr + sizes[-1] + 1))
    train = _identities(cfg, pids[:n_tr], "train", rng)
    test: list[Identity] = []
    for a, b in zip([0, *sizes[:-1]], sizes, strict=True):
        if b > a:  # each chunk is near-duplicate rich on its own
            test += _identities(cfg, pids[n_tr + a : n_tr + b], "test", rng)
    sites = [
        sample_camera(np.random.default_rng([seed, DS_VID, 2, c]), c, cfg.image_size, "vehicleid")
        for c in range(N_VID_SITES)
    ]
    shots = [
        (i.pid, "front" if rng.random() < 0.5 else "rear", int(rng.integers(N_VID_SITES)))
        for i in train + test
        for _ in range(cfg.vehicleid_images_per_id)
    ]
    if cfg.vehicleid_train_sites_per_id > 0:
        shots = _home_sites(shots, {i.pid for i in train}, cfg.vehicleid_train_sites_per_id, seed)
    img_ids = np.empty(len(shots), dtype=np.int64)
    img_ids[rng.permutation(len(shots))] = 1 + np.cumsum(rng.integers(1, 4, len(shots)))
    order = np.argsort(img_ids)
    jobs = []
    for i, k in enumerate(order.tolist()):
        pid, view, site = shots[k]
        name = f"{img_ids[k]:07d}.jpg"
        jobs.append(
            (
                DS_VID,
                i,
                DS_VID,
                pid,
                DS_VID,
                site,
                view,
                (),
                f"image/{name}",
                str(root / "image" / name),
            )
        )
    with_attr = {i.pid for i in train + test if rng.random() < 0.7}
    by_id = {i.pid: i for i in train + test}

    def write(rows: list[list[tuple]], cfg: SynthConfig, models) -> None:
        pairs = sorted((j[3], j[8][6:13]) for j in jobs)  # (vid, image id)
        split = root / "train_test_split"
        train_ids = {i.pid for i in train}
        write_lines(split / "train_list.txt", [f"{n} {v}" for v, n in pairs if v in train_ids])
        for size, label in zip(sizes, ("800", "1600", "2400"), strict=True):
            ids = {i.pid for i in test[:size]}
            write_lines(
                split / f"test_list_{label}.txt", [f"{n} {v}" for v, n in pairs if v in ids]
            )
        attr = root / "attribute"
        write_lines(attr / "img2vid.txt", [f"{j[8][6:13]} {j[3]}" for j in jobs])
        keep = sorted(with_attr)
        write_lines(
            attr / "model_attr.txt",
            [f"{v} {by_id[v].make * cfg.models_per_make + by_id[v].model}" for v in keep],
        )
        write_lines(attr / "color_attr.txt", [f"{v} {by_id[v].colour}" for v in keep])
        write_csv(root / PARTS_FILE, PARTS_COLUMNS, sorted(_flat(rows), key=_key))
        write_csv(
            root / IDENTITIES_FILE,
            IDENTITY_COLUMNS,
            _identity_rows(train + test, cfg, models),
        )

    return Plan(root, jobs, by_id, sites, write)


def _home_sites(shots: list[tuple], train_ids: set[int], k: int, seed: int) -> list[tuple]:
    """Shots of training identities moved to ``k`` home sites of their own (a nuisance:
    in training, an identity comes with its sites' background and light; test shots keep
    random sites, so the site does not carry to test). Drawn from a stream of its own."""
    rng = np.random.default_rng([seed, DS_VID, 3])
    homes = {
        pid: rng.choice(N_VID_SITES, size=min(k, N_VID_SITES), replace=False)
        for pid in sorted(train_ids)
    }
    return [
        (pid, view, int(homes[pid][rng.integers(len(homes[pid]))]) if pid in homes else site)
        for pid, view, site in shots
    ]


def plan_pretrain(cfg: SynthConfig, seed: int, root: Path) -> Plan:
    """Pretraining set: ``pretrain_ids`` identities of their own (disjoint from every re-id
    split) x ``pretrain_images_per_id`` shots from ``veri_cameras`` traffic cameras of its
    own (VeRi-776-like: varied yaw, light and occlusion; front or rear by camera), labelled
    with make, model and colour only (the stand-in for an ImageNet-style start)."""
    rng = np.random.default_rng([seed, DS_PRETRAIN, 1])
    pids = np.arange(1, cfg.pretrain_ids + 1)
    # every identity in a shared group, so that all make-model-colour groups appear
    idents = _sample_identities(
        cfg.n_makes, cfg.models_per_make, cfg.n_colours, 1.0, pids.tolist(), "pretrain", rng
    )
    cams = [
        sample_camera(np.random.default_rng([seed, DS_PRETRAIN, 2, c]), c + 1, cfg.image_size)
        for c in range(cfg.veri_cameras)
    ]
    jobs: list[tuple] = []
    for ident in idents:
        for j in range(cfg.pretrain_images_per_id):
            c = int(rng.integers(len(cams)))
            view = "front" if rng.random() < cams[c].p_front else "rear"
            name = f"{ident.pid:05d}_{j:02d}.jpg"
            rel = f"image/{name}"
            jobs.append(
                (DS_PRETRAIN, len(jobs), DS_PRETRAIN, ident.pid, DS_PRETRAIN, c, view, (), rel,
                 str(root / rel))
            )  # fmt: skip
    by_id = {i.pid: i for i in idents}

    def write(rows: list[list[tuple]], cfg: SynthConfig, models) -> None:
        write_csv(root / PARTS_FILE, PARTS_COLUMNS, sorted(_flat(rows), key=_key))
        write_csv(
            root / IDENTITIES_FILE,
            IDENTITY_COLUMNS,
            _identity_rows(idents, cfg, models),
        )
        write_lines(root / "image_list.txt", [f"{j[8]} {j[3]}" for j in jobs])

    return Plan(root, jobs, by_id, cams, write)


def plan_parts(cfg: SynthConfig, seed: int, root: Path, vid: Plan) -> Plan:
    """Part data set plan: ``n_annotated`` train + ``n_part_val`` val shots of VehicleID
    training identities at the VehicleID sites (new shots, seeded apart)."""
    rng = np.random.default_rng([seed, DS_PARTS, 1])
    pool = sorted(p for p, i in vid.identities.items() if i.split == "train")
    n = cfg.n_annotated + cfg.n_part_val
    jobs = []
    for i, pid in enumerate(rng.choice(pool, size=n).tolist()):
        sp = "train" if i < cfg.n_annotated else "val"
        view = "front" if rng.random() < 0.5 else "rear"
        name = f"{i + 1:06d}.jpg"
        jobs.append(
            (
                DS_PARTS,
                i,
                DS_VID,
                pid,
                DS_VID,
                int(rng.integers(N_VID_SITES)),
                view,
                (),
                f"images/{sp}/{name}",
                str(root / "images" / sp / name),
            )
        )

    def write(rows: list[list[tuple]], cfg: SynthConfig, models) -> None:
        for sp in ("train", "val"):
            (root / "images" / sp).mkdir(parents=True, exist_ok=True)
            (root / "labels" / sp).mkdir(parents=True, exist_ok=True)
        for job, rs in zip(jobs, rows, strict=True):
            label = root / job[8].replace("images/", "labels/", 1).replace(".jpg", ".txt")
            write_lines(label, yolo_lines(rs))
        write_data_yaml(root)
        write_csv(root / PARTS_FILE, PARTS_COLUMNS, sorted(_flat(rows), key=_key))

    return Plan(root, jobs, write=write)


def _count(folder: Path) -> int:
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else -1


def _n_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else -2


def layouts_complete(root: Path, pretrain: bool = False) -> bool:
    """Whether ``root`` holds complete VeRi-776, VehicleID and parts layouts (and the
    pretraining set when ``pretrain``): files present, image folders as long as their lists."""
    veri, vid, parts = root / "VeRi-776", root / "VehicleID", root / "parts"
    files = [
        veri / f
        for f in (
            "train_label.xml",
            "test_label.xml",
            "gt_index.txt",
            "jk_index.txt",
            "test_track.txt",
            PARTS_FILE,
            IDENTITIES_FILE,
        )
    ]
    files += [
        vid / "train_test_split" / f"{f}.txt"
        for f in ("train_list", "test_list_800", "test_list_1600", "test_list_2400")
    ]
    files += [vid / "attribute" / f"{f}.txt" for f in ("model_attr", "color_attr")]
    files += [vid / PARTS_FILE, parts / "data.yaml", parts / PARTS_FILE]
    if pretrain:
        files += [root / "pretrain" / f for f in (IDENTITIES_FILE, "image_list.txt")]
    if not all(f.is_file() for f in files):
        return False
    counts = [
        (_count(veri / f"image_{s}"), _n_lines(veri / f"name_{s}.txt"))
        for s in ("train", "test", "query")
    ]
    counts.append((_count(vid / "image"), _n_lines(vid / "attribute" / "img2vid.txt")))
    counts += [
        (_count(parts / "images" / s), _count(parts / "labels" / s)) for s in ("train", "val")
    ]
    if pretrain:
        counts.append(
            (_count(root / "pretrain" / "image"), _n_lines(root / "pretrain" / "image_list.txt"))
        )
    return all(a == b for a, b in counts)
