"""The run store: a training run is identified by the hash of what determines it.

A run's key is the SHA-1 of its training config, its recipe options, the
identity of its training data (the content of its image files,
identities, part boxes), the seed and the number of processes. Its folder
``<root>/<name>-<key[:12]>/`` holds::

    config.json     what the key was computed from
    checkpoint.pt   the last finished epoch (model, optimizer, RNG states, history);
                    written atomically, so a killed run resumes from it; removed once
                    model.pt and final.json are written, unless kept (keep_checkpoint)
    log.txt         one line per finished epoch, as printed (a resumed run appends)
    metrics.csv     one row per finished epoch (also metrics.json); with an evaluation
                    during training, its figures in eval_* columns
    model.pt        final weights and what is needed to rebuild the model
    final.json      the "done" marker: final metrics, times, environment

A finished run is read from model.pt, metrics.csv and final.json alone.

This module is the run store: keys, the files of a run folder and how they
are read back. It trains nothing; :func:`prreid_lib.train.run_or_load`
reuses a finished run, resumes an unfinished one or trains a missing one.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from prreid_lib.cache import atomic_write, config_digest, file_digest
from prreid_lib.model import PartRegularizedReID, check_model_record

CHECKPOINT, MODEL, FINAL, CONFIG = "checkpoint.pt", "model.pt", "final.json", "config.json"
METRICS_CSV, METRICS_JSON = "metrics.csv", "metrics.json"
LOG = "log.txt"
KEY_VERSION = "3"
"""Version of :func:`run_key` (3: images decoded in full, without JPEG draft mode, and
turned upright by their EXIF orientation; runs trained on the older decode are retrained)."""


@dataclass
class TrainResult:
    """A finished (or reused) run: folder, per-epoch history, final model and bookkeeping.

    ``history`` has one row per epoch: ``epoch`` (1-based), ``loss``,
    ``global_ce``, ``triplet``, ``global_acc``, ``acc_<part>`` and
    ``ce_<part>`` per part branch, ``lr``, ``seconds`` (and ``eval_*`` figures of the
    epochs evaluated during training). ``checkpoint`` is the run's ``checkpoint.pt``
    when it was kept, else ``None``. ``reused`` is True when the run was loaded from
    the cache instead of trained.
    """

    run_dir: Path
    key: str
    history: pd.DataFrame
    model: PartRegularizedReID
    checkpoint: Path | None
    info: dict[str, Any]
    reused: bool = False

    @property
    def seconds(self) -> float:
        """Training wall time summed over epochs (of the run that trained it)."""
        return float(self.history["seconds"].sum()) if len(self.history) else 0.0


def data_identity(
    train_df: pd.DataFrame, part_boxes: pd.DataFrame | None, parts: Sequence[str]
) -> str:
    """SHA-1 of a set of images by content: each image's bytes, its identity, and the
    used part boxes (keyed by image content, not path).

    The data part of a run's key (and of an evaluation's,
    :func:`prreid_lib.studies.variants.evaluation_key`). Moving the data, regenerating
    identical SynthVeh or copying ``runs/`` to another machine keeps the key,
    so a finished run is reused there.
    """
    digest = hashlib.sha1()
    paths = [str(p) for p in train_df["path"]]
    contents = {p: file_digest(p) for p in paths}
    digest.update("\n".join(contents[p] for p in paths).encode())
    digest.update(train_df["pid"].to_numpy(dtype="int64").tobytes())
    if part_boxes is not None and parts:
        cols = [
            c
            for c in ("path", "part", "x1", "y1", "x2", "y2", "img_w", "img_h", "score")
            if c in part_boxes.columns
        ]
        rows = part_boxes[part_boxes["path"].astype(str).isin(set(paths))]
        rows = rows[rows["part"].isin(list(parts))][cols].astype({"path": str})
        rows = rows.assign(path=rows["path"].map(contents))
        rows = rows.sort_values(cols, kind="stable").reset_index(drop=True)
        digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def run_key(config: Any, options: Any, data_id: str, seed: int, world_size: int = 1) -> str:
    """SHA-1 of (config, options, data identity, seed, world size): the identity of a run."""
    payload = {
        "version": KEY_VERSION,
        "config": config,
        "options": options,
        "data": data_id,
        "seed": int(seed),
        "world_size": int(world_size),
    }
    return config_digest(payload)


def run_dir_for(root: str | Path, key: str, name: str | None = None) -> Path:
    """The folder of the run ``key`` under ``root``: ``<name or 'run'>-<key[:12]>``."""
    return Path(root) / f"{name or 'run'}-{key[:12]}"


def is_done(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` finished (its ``final.json`` marker exists)."""
    return (Path(run_dir) / FINAL).is_file()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename, so a kill never leaves half a file."""
    buffer = io.BytesIO()  # serialised first: torch reports a failed file write as RuntimeError
    torch.save(obj, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def _legacy_numpy_globals() -> list:
    """numpy's array and scalar builders (data, not code): files written before plain saves."""
    return [
        np.zeros(0).__reduce__()[0],
        np.float64(0).__reduce__()[0],
        np.ndarray,
        np.dtype,
        *(type(np.dtype(code)) for code in "?bBhHiIlLqQefd"),
    ]


def _load_failure(err: BaseException) -> str:
    if isinstance(err, EOFError):
        return "the file is empty or cut short"
    if isinstance(err, pickle.UnpicklingError) and "Weights only" in str(err):
        return "it holds Python objects, not only tensors and plain data"
    text = str(err).strip().splitlines()
    return text[0].split(". ")[0][:120] if text else type(err).__name__


def load_torch_file(path: str | Path, fix: str) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data only, never code.

    A file that holds other pickled objects, or is empty or damaged, raises
    ``ValueError`` naming ``path``, the cause and ``fix``.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_legacy_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # every way a foreign or damaged file fails to unpickle
        raise ValueError(
            f"{path} was not written by prreid or is damaged ({_load_failure(err)}); {fix}"
        ) from None


def load_info(run_dir: str | Path) -> dict[str, Any]:
    """The ``final.json`` record of a finished run (key, config, final metrics, times).

    A damaged record raises ``ValueError`` naming the file and the fix.
    """
    path = Path(run_dir) / FINAL
    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        info, why = None, str(err)
    else:
        why = "not a JSON object"
    if not isinstance(info, dict):
        raise ValueError(
            f"{path} is damaged ({why}); delete the run folder {Path(run_dir)} to retrain"
        )
    return info


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu") -> PartRegularizedReID:
    """The final model of a finished run, in eval mode on ``device``.

    The model carries ``input_size`` (training image size) and ``pid_values``
    (original identity of each class) as attributes.
    """
    path = Path(run_dir) / MODEL
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {run_dir} is not a finished training run "
            "(train it with prreid_lib.train.train_reid or prreid_lib.train.run_or_load)"
        )
    fix = f"delete the run folder {Path(run_dir)} to retrain"
    state = load_torch_file(path, fix)
    needed = {"kwargs", "state_dict", "input_size", "pid_values"}
    if not isinstance(state, dict) or not needed <= set(state):
        raise ValueError(f"{path} was not written by prreid or is damaged (no model record); {fix}")
    check_model_record(state, path, fix)  # sizes in bounds before anything is allocated
    try:
        model = PartRegularizedReID(**state["kwargs"])
        model.load_state_dict(state["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path} was not written by prreid or is damaged ({first}); {fix}"
        ) from None
    model.input_size = int(state["input_size"])
    values = state["pid_values"]
    values = values.numpy() if isinstance(values, torch.Tensor) else values
    model.pid_values = np.asarray(values, dtype=np.int64)
    return model.to(device).eval()


def load_result(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainResult:
    """A finished run as a :class:`TrainResult` (``reused=True``)."""
    run_dir = Path(run_dir)
    info = load_info(run_dir)
    history = pd.read_csv(run_dir / METRICS_CSV)
    model = load_trained(run_dir, device)
    return TrainResult(run_dir, info["key"], history, model, kept_checkpoint(run_dir), info, True)


def kept_checkpoint(run_dir: str | Path) -> Path | None:
    """The ``checkpoint.pt`` of ``run_dir`` if it is there (kept, or a run not finished)."""
    path = Path(run_dir) / CHECKPOINT
    return path if path.is_file() else None
