"""An offline, project-local environment for ultralytics.

Ultralytics reads its settings directory (``YOLO_CONFIG_DIR``) and its
online flag (``YOLO_OFFLINE``) once, when it is first imported; it downloads
the ``Arial.ttf`` font for its plots and ``yolo26n.pt`` for its AMP check when
they are missing. :func:`configure_offline` sets all of that up *before* the
first import: a settings directory inside the repository (``<repo>/.yolo``,
git-ignored), the font copied from matplotlib (DejaVu Sans, under the names
ultralytics asks for), no settings sync, no requirement auto-install. Every
function of :mod:`prreid_lib.detector` calls it and imports ultralytics lazily.

:func:`prepare_dataset` turns a part dataset into what ultralytics trains on:
validated labels, light boxes extended to the vehicle's bottom, and a
writable folder for ultralytics' label caches.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import yaml

from prreid_lib.cache import tree_digest
from prreid_lib.config import PART_NAMES
from prreid_lib.errors import DatasetFormatError, PrreidError
from prreid_lib.paths import yaml_data_root
from prreid_lib.synthveh_files import PARTS_FILE

__all__ = [
    "FONT_NAMES",
    "configure_offline",
    "default_config_dir",
    "prepare_dataset",
    "training_precision",
]

FONT_NAMES: tuple[str, ...] = ("Arial.ttf", "Arial.Unicode.ttf")
"""Font files ultralytics' plotting asks for; both get a local copy of DejaVu Sans."""

_OFFLINE_SETTINGS: dict[str, bool] = {
    key: False
    for key in ("sync", "clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
}


def default_config_dir() -> Path:
    """The settings directory: ``$PRREID_YOLO_DIR``, else ``<repo>/.yolo``, else ``./.yolo``.

    ``<repo>`` is the checkout holding this package (found by its ``pyproject.toml``);
    an installed, non-editable package falls back to the working directory.
    """
    if env := os.environ.get("PRREID_YOLO_DIR"):
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file() and os.access(repo, os.W_OK):
        return repo / ".yolo"
    return Path.cwd().resolve() / ".yolo"


def configure_offline(config_dir: str | Path | None = None) -> Path:
    """Prepare ultralytics to run with no network; return its settings directory.

    Sets ``YOLO_OFFLINE=1``, ``YOLO_CONFIG_DIR`` (``config_dir`` or
    :func:`default_config_dir`; an existing ``YOLO_CONFIG_DIR`` is kept),
    ``ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS=1`` and, unless set, ``YOLO_VERBOSE=False``;
    copies matplotlib's ``DejaVuSans.ttf`` to
    ``$YOLO_CONFIG_DIR/Ultralytics/{Arial,Arial.Unicode}.ttf`` and writes
    settings with sync and all loggers off. Idempotent. When
    ultralytics was already imported (by code outside this package), the fonts
    go to the directory it actually uses, and a ``RuntimeError`` is raised if it
    believes it is online, since it could then try downloads.
    """
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")  # no per-batch progress bars in notebooks
    os.environ["ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS"] = "1"
    if config_dir is not None:
        os.environ["YOLO_CONFIG_DIR"] = str(Path(config_dir).resolve())
    os.environ.setdefault("YOLO_CONFIG_DIR", str(default_config_dir()))
    user_dir = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    already = sys.modules.get("ultralytics.utils")
    if already is not None:
        user_dir = Path(already.USER_CONFIG_DIR)
        if already.ONLINE:
            raise PrreidError(
                "ultralytics was imported before prreid_lib.yolo_env.configure_offline() and "
                "believes it is online; set YOLO_OFFLINE=1 in the environment or import "
                "prreid_lib.detector before ultralytics"
            )
    user_dir.mkdir(parents=True, exist_ok=True)
    _place_fonts(user_dir)
    _write_settings(user_dir / "settings.json")
    if already is not None:
        already.SETTINGS.update(
            {k: v for k, v in _OFFLINE_SETTINGS.items() if k in already.SETTINGS}
        )
    return user_dir


def training_precision(device: str) -> bool | str:
    """The ``amp`` argument for ultralytics training on ``device`` that downloads nothing.

    ``amp=True`` makes ultralytics load ``yolo26n.pt`` (a download) for its AMP
    check, so: ``False`` on CPU/MPS, ``"bf16"`` (no check) on a CUDA GPU that
    supports bfloat16, ``False`` on older GPUs.
    """
    if device in {"cpu", "mps"}:
        return False
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return False


def _place_fonts(user_dir: Path) -> None:
    from matplotlib import font_manager

    source = Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))
    for name in FONT_NAMES:
        target = user_dir / name
        if not target.is_file():
            shutil.copyfile(source, target)


def _write_settings(path: Path) -> None:
    settings: dict[str, object] = {}
    if path.is_file():
        try:
            settings = json.loads(path.read_text())
        except json.JSONDecodeError:
            settings = {}
    if all(settings.get(k) == v for k, v in _OFFLINE_SETTINGS.items()):
        return
    settings.update(_OFFLINE_SETTINGS)
    path.write_text(json.dumps(settings, indent=2))


def prepare_dataset(
    data_yaml: str | Path, work_dir: str | Path, extend_lights: bool = True
) -> tuple[Path, str]:
    """The part dataset as YOLO trains on it, in ``work_dir``; returns (data.yaml, content key).

    Labels are validated first (:func:`prreid_lib.annotate.validate`; any
    problem but an image without label file raises). With ``extend_lights``
    (the paper's light definition, Sec. 3.2) the detector is trained on light
    boxes stretched down to the vehicle's bottom: the ``vehicle`` box of a
    SynthVeh ``synthveh_parts.csv`` next to the labels, else the image's bottom
    (a vehicle crop); the labels are rewritten into ``work_dir/dataset`` and the
    images linked there. Without it, a dataset whose ``labels`` folder is not
    writable (ultralytics caches labels next to it) is mirrored by links. The
    content key (:func:`prreid_lib.cache.tree_digest`) hashes every image and
    label file by its name relative to the data set and its bytes, so a copied
    data set trains the same detector run. The ``path`` of ``data_yaml`` is relative
    to its own folder (none: that folder); the ``data.yaml`` written for ultralytics
    names the folder absolutely, since ultralytics reads a relative ``path``
    against the working directory.
    """
    from prreid_lib.annotate import labels_dir_for, validate

    data_yaml = Path(data_yaml)
    if not data_yaml.is_file():
        raise FileNotFoundError(f"part dataset {data_yaml} does not exist; expected a data.yaml")
    cfg = yaml.safe_load(data_yaml.read_text())
    if not isinstance(cfg, dict):
        raise ValueError(
            f"{data_yaml}: expected a YOLO data.yaml mapping (train, val, names), found "
            f"{type(cfg).__name__}; write it as ultralytics documents"
        )
    names = cfg.get("names")
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names or [])
    if names != list(PART_NAMES):
        raise ValueError(
            f"{data_yaml}: names must be {dict(enumerate(PART_NAMES))}, found {names}; "
            "relabel the classes in that order"
        )
    base = yaml_data_root(data_yaml, cfg.get("path"))  # relative: to the yaml's folder
    splits = {k: cfg[k] for k in ("train", "val", "test") if cfg.get(k)}
    problems = validate(data_yaml, raise_errors=False)
    bad = problems[problems["rule"] != "missing_label"]
    if len(bad):
        first = bad.iloc[0]
        line = None if pd.isna(first["line"]) else int(first["line"])
        raise DatasetFormatError(
            first["file"],
            f"valid part labels ({first['rule']})",
            f"{first['found']} ({len(bad)} problems in all)",
            first["fix"],
            line=line,
        )
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    files = [p for sub in ("images", "labels") for p in (base / sub).rglob("*") if p.is_file()]
    files += [base / PARTS_FILE] if (base / PARTS_FILE).is_file() else []
    digest = tree_digest(base, [p for p in files if p.suffix != ".cache"], salt=f"{extend_lights}")
    if extend_lights or not os.access(base / "labels", os.W_OK):
        mirror = work_dir / "dataset"
        for key, rel in splits.items():
            name = Path(rel).name
            _link_files(mirror / "images" / name, base / rel)
            labels = labels_dir_for(base / rel)
            if extend_lights:
                _write_extended_labels(labels, mirror / "labels" / name, base, rel)
            else:
                _link(mirror / "labels" / name, labels)
            splits[key] = f"images/{name}"
        base = mirror
    out = {"path": str(base), "names": dict(enumerate(PART_NAMES)), **splits}
    target = work_dir / "data.yaml"
    target.write_text(yaml.safe_dump(out, sort_keys=False))
    return target, digest


def _link(link: Path, target: Path) -> None:
    """``link`` -> ``target``, replacing a link that points elsewhere."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() != target.resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(target.resolve(), target_is_directory=target.is_dir())


def _link_files(folder: Path, source: Path) -> None:
    """A real ``folder`` with one link per file of ``source``: ultralytics resolves a
    linked folder to its target, and would then look for labels next to the original."""
    if folder.is_symlink():  # left by an older layout: never look inside it
        folder.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {p.name for p in source.iterdir() if p.is_file()}
    for stale in folder.iterdir():
        if stale.is_symlink() and stale.name not in wanted:
            stale.unlink()
    for name in wanted:
        _link(folder / name, source / name)


def _write_extended_labels(src: Path, dst: Path, base: Path, rel: str) -> None:
    """Copy YOLO label files, light boxes (class 1) extended to the vehicle's bottom."""
    bottoms: dict[str, float] = {}
    parts_csv = base / PARTS_FILE
    if parts_csv.is_file():
        gt = pd.read_csv(parts_csv, usecols=["image", "part", "y2", "img_h"])
        veh = gt[gt["part"] == "vehicle"]
        keys = [str(Path(i).with_suffix("")) for i in veh["image"]]
        bottoms = dict(zip(keys, veh["y2"] / veh["img_h"], strict=True))
    dst.mkdir(parents=True, exist_ok=True)
    light = PART_NAMES.index("light")
    for label in src.glob("*.txt"):
        bottom = bottoms.get(str(Path(rel) / label.stem), 1.0)
        lines = []
        for raw in label.read_text().splitlines():
            fields = raw.split()
            if len(fields) == 5 and int(float(fields[0])) == light:
                xc, yc, w, h = (float(v) for v in fields[1:])
                y1, y2 = yc - h / 2, max(yc + h / 2, min(bottom, 1.0))
                raw = f"{light} {xc:.6f} {(y1 + y2) / 2:.6f} {w:.6f} {y2 - y1:.6f}"
            lines.append(raw)
        out = dst / label.name
        text = "".join(line + "\n" for line in lines)
        if not out.is_file() or out.read_text() != text:
            out.write_text(text)
