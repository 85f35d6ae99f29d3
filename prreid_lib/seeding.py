"""Seeds and random-number states of a training run (what makes a resumed run identical).

:func:`seed_everything` seeds python, numpy and torch; :func:`rng_state` and
:func:`set_rng_state` save and restore all of them in a checkpoint;
:func:`augment_generator` gives each (seed, epoch, rank) its own augmentation stream.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) random states, for a checkpoint.

    Only tensors and plain Python values, so the checkpoint loads with
    ``torch.load(..., weights_only=True)``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    if isinstance(saved, dict):
        keys = np.asarray(saved["keys"].numpy(), dtype=np.uint32)
        saved = (saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"])
    np.random.set_state(saved)  # a tuple: checkpoints written before the plain format
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def augment_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """A fresh CPU generator per (seed, epoch, rank): augmentation is a function of these."""
    value = int(np.random.SeedSequence([seed, epoch, rank, 7]).generate_state(1)[0])
    return torch.Generator().manual_seed(value)
