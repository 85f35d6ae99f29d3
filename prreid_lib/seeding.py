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
    """The python, numpy, torch (and CUDA) random states, for a checkpoint."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def augment_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """A fresh CPU generator per (seed, epoch, rank): augmentation is a function of these."""
    value = int(np.random.SeedSequence([seed, epoch, rank, 7]).generate_state(1)[0])
    return torch.Generator().manual_seed(value)
