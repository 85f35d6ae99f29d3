"""The one spelling of a data path: how images, data roots and label folders are named.

Image paths are the keys that join part boxes to images, so every table
prreid builds or reads names an image the same way, however the user reached
it: a relative root with ``..``, a root behind a symbolic link, ``~``, or
folder names with spaces, ``#``, ``:`` or non-ASCII letters.
:func:`canonical_path` (one path) and :func:`canonical_paths` (many, fast)
are that spelling; :func:`yaml_data_root` resolves the ``path`` entry of a
YOLO ``data.yaml`` against the yaml's own folder.

The rule: ``~`` is expanded, the path made absolute and every folder on the
way resolved (links followed, ``.`` and ``..`` removed). A final component
that is a folder is resolved as well; one that is a file keeps its own name,
even when it is a link: an image linked into a data set (git-annex, DVC, a
folder of links) is listed under its name in the data set, not under the name
of the file it points to, and two links to one file stay two images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["canonical_path", "canonical_paths", "yaml_data_root"]


def _canonical(text: str, folders: dict[str, str]) -> str:
    """The canonical spelling of ``text`` (already user-expanded); ``folders`` caches
    resolved folders."""
    if os.path.isdir(text):
        return os.path.realpath(text)
    if not os.path.isabs(text):  # not os.path.abspath: it drops ``link/..`` unresolved
        text = os.path.join(os.getcwd(), text)
    head, name = os.path.split(text)
    if name in {"", ".", ".."}:
        return os.path.realpath(text)
    if head not in folders:
        folders[head] = os.path.realpath(head)
    return os.path.join(folders[head], name)


def canonical_path(p: str | os.PathLike[str]) -> Path:
    """``p`` in the one spelling prreid uses for data paths (see the module's rule).

    ``~`` expanded, absolute, folders resolved (``strict=False``: missing parts
    are kept as written); a file's own name is kept, a folder is resolved.
    """
    return Path(_canonical(os.path.expanduser(os.fspath(p)), {}))


def canonical_paths(paths: Iterable[Any]) -> list[str]:
    """:func:`canonical_path` of many paths, as strings; each folder is resolved once,
    so it is fast for the hundreds of thousands of images of a data set."""
    folders: dict[str, str] = {}
    done: dict[str, str] = {}
    out = []
    for p in paths:
        text = os.fspath(p) if isinstance(p, os.PathLike) else str(p)
        if text not in done:
            done[text] = _canonical(os.path.expanduser(text), folders)
        out.append(done[text])
    return out


def yaml_data_root(data_yaml: str | os.PathLike[str], path_value: Any = None) -> Path:
    """The folder a YOLO ``data.yaml`` names with its ``path`` entry, canonical.

    A relative ``path`` (``.``, ``../parts``) is relative to the yaml's own
    folder, an absent one means that folder: a label folder copied or moved
    elsewhere names itself, not the folder it was copied from.
    """
    folder = Path(os.fspath(data_yaml)).expanduser().absolute().parent
    if path_value is None or str(path_value).strip() == "":
        return canonical_path(folder)
    base = Path(os.path.expanduser(str(path_value)))
    return canonical_path(base if base.is_absolute() else folder / base)
