"""SynthVeh: the procedural near-duplicate vehicle benchmark.

The world of makes, models, colours and identities (:mod:`~prreid_lib.synthveh.world`),
their shapes and part art (:mod:`~prreid_lib.synthveh.shapes`,
:mod:`~prreid_lib.synthveh.part_art`), the renderer and camera scenes
(:mod:`~prreid_lib.synthveh.render`, :mod:`~prreid_lib.synthveh.scene`), the
split plans (:mod:`~prreid_lib.synthveh.plan`) and the writers of the official
layouts (:mod:`~prreid_lib.synthveh.export`). :func:`generate_synthveh`,
:func:`ensure_synthveh` and :func:`load_synthveh_parts` live in
:mod:`~prreid_lib.synthveh.generator`.
"""

from __future__ import annotations

from prreid_lib.synthveh.generator import ensure_synthveh, generate_synthveh, load_synthveh_parts

__all__ = ["ensure_synthveh", "generate_synthveh", "load_synthveh_parts"]
