"""Loaders of the real data sets in their official layouts: VeRi-776 and VehicleID.

``load_veri776`` and ``load_vehicleid`` read a data set (or a SynthVeh export
in the same layout) into pandas DataFrames. Both give one interface, as
fast-reid and torchreid do: ``train``, and query/gallery splits
(``VeRi776.query`` / ``.gallery``; ``VehicleID.splits(n_trials, seed)``, one
random gallery image per identity in each trial). Every problem found on
disk raises :class:`DatasetFormatError` naming the file and the fix.
"""

from __future__ import annotations

from prreid_lib.datasets.vehicleid import VehicleID, load_vehicleid
from prreid_lib.datasets.veri776 import VeRi776, load_veri776, read_veri_index
from prreid_lib.errors import DatasetFormatError

__all__ = [
    "DatasetFormatError",
    "VeRi776",
    "VehicleID",
    "load_veri776",
    "load_vehicleid",
    "read_veri_index",
]
