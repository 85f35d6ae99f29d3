"""SynthVeh's own files, by name, and the one test of whether a folder is SynthVeh.

A SynthVeh root holds the manifest :data:`MANIFEST` and four layout folders
(``VeRi-776/``, ``VehicleID/``, ``parts/``, ``pretrain/``). Each layout folder
holds, beside the official files of its layout, the ground-truth part boxes
:data:`PARTS_FILE` and (not ``parts/``) the identities' make, model, colour and
near-duplicate group :data:`IDENTITIES_FILE`. Real data sets have none of these.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "synthveh.json"
"""At a SynthVeh root: the config, seed and format version it was generated with, and its files."""
PARTS_FILE = "synthveh_parts.csv"
"""In each layout folder: one row per part box of each image (``image``, ``part``, ``side``,
the box, ``visible``, the image size, ``view``)."""
IDENTITIES_FILE = "synthveh_identities.csv"
"""In ``VeRi-776/``, ``VehicleID/`` and ``pretrain/``: one row per identity (``pid``,
``make``, ``model``, ``colour``, ``group``)."""


def is_synthveh(folder: str | Path) -> bool:
    """Whether ``folder`` is SynthVeh rather than real data.

    ``folder`` may be a SynthVeh root (it holds :data:`MANIFEST`) or one of its
    layout folders, e.g. ``VehicleID/`` or ``parts/`` (it holds :data:`PARTS_FILE`).
    """
    folder = Path(folder)
    return (folder / MANIFEST).is_file() or (folder / PARTS_FILE).is_file()
