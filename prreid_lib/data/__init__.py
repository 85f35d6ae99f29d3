"""Data sets: loaders of the official VeRi-776 and VehicleID layouts, and SynthVeh.

``load_veri776`` and ``load_vehicleid`` read the real data sets (or a SynthVeh
export in the same layout) into pandas DataFrames. The SynthVeh functions
(``generate_synthveh``, ``ensure_synthveh``, ``load_synthveh_parts``) come
from :mod:`prreid_lib.data.synthetic` and are imported on first use, so the
loaders work without it.
"""

from __future__ import annotations

import importlib
from typing import Any

from prreid_lib.data.errors import DatasetFormatError
from prreid_lib.data.vehicleid import VehicleID, load_vehicleid
from prreid_lib.data.veri776 import VeRi776, load_veri776, read_veri_index

_SYNTHETIC = ("generate_synthveh", "ensure_synthveh", "load_synthveh_parts")

__all__ = [
    "DatasetFormatError",
    "VeRi776",
    "VehicleID",
    "load_veri776",
    "load_vehicleid",
    "read_veri_index",
    *_SYNTHETIC,
]


def __getattr__(name: str) -> Any:
    """Import the SynthVeh functions lazily from :mod:`prreid_lib.data.synthetic`."""
    if name in _SYNTHETIC:
        return getattr(importlib.import_module("prreid_lib.data.synthetic"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
