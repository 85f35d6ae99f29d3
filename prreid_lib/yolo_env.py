"""An offline, project-local environment for ultralytics.

Ultralytics reads its settings directory (``YOLO_CONFIG_DIR``) and its
online flag (``YOLO_OFFLINE``) once, when it is first imported; it downloads
the ``Arial.ttf`` font for its plots and ``yolo26n.pt`` for its AMP check when
they are missing. :func:`configure_offline` sets all of that up *before* the
first import: a settings directory inside the repository (``<repo>/.yolo``,
git-ignored), the font copied from matplotlib (DejaVu Sans, under the names
ultralytics asks for), no settings sync, no requirement auto-install. Every
function of :mod:`prreid_lib.detector` calls it and imports ultralytics lazily.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

__all__ = ["FONT_NAMES", "configure_offline", "default_config_dir", "training_precision"]

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
            raise RuntimeError(
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
