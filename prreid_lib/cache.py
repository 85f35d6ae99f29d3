"""The one cache layer: content keys, atomic writes and cached JSON records.

Every cache of prreid (training runs, detector runs and their predictions,
evaluations, decoded image tensors) is keyed by *content*, never by where a
file lies or when it was written: :func:`file_digest` hashes a file's bytes,
:func:`files_digest` a list of files, :func:`tree_digest` a folder by its
relative names and contents, :func:`config_digest` a JSON-able configuration.
A run folder or data set copied to another checkout or machine therefore
keeps its keys and is reused there.

Everything a cache writes goes through a temporary file in the same folder
and ``os.replace`` (:func:`atomic_write` and its forms for bytes, text, JSON
and writers that need a file name), so a killed process never leaves half a
file. :func:`cached_json` reads a record if it is present and valid, else
computes and writes it.

A leaf module: it uses the standard library and numpy only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "cached_json",
    "config_digest",
    "file_digest",
    "files_digest",
    "plain",
    "read_json",
    "tree_digest",
    "write_json",
]

_BLOCK = 1 << 20
_DIGESTS: dict[tuple[str, int, int], str] = {}


# --------------------------------------------------------------------------- content keys


def file_digest(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (read in 1 MiB blocks).

    Remembered for the process while the file's size and modification time
    stay the same (the time only tells when to hash again; it is never part
    of a key). A missing file raises ``FileNotFoundError`` naming it and the fix.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist; it is listed as an input of a cached result: "
            "check the data root or regenerate the data set"
        ) from None
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        digest = hashlib.sha1()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """SHA-1 of the contents of ``paths`` in the given order (names and folders do not count)."""
    digest = hashlib.sha1()
    for path in paths:
        digest.update(f"{file_digest(path)}\n".encode())
    return digest.hexdigest()


def tree_digest(root: str | os.PathLike, files: Iterable[str | os.PathLike], salt: str = "") -> str:
    """SHA-1 of ``files`` under ``root`` by their names relative to ``root`` and contents.

    The folder itself (its absolute location) is not part of the key, so a
    copied data set keeps it. ``salt`` adds settings that change what the
    files mean (for example how labels are rewritten).
    """
    root = Path(root)
    rows = sorted((Path(f).relative_to(root).as_posix(), file_digest(f)) for f in files)
    return config_digest({"files": rows, "salt": salt})


def plain(value: Any) -> Any:
    """A JSON-able version of dataclasses, mappings, tuples, paths and numpy scalars.

    Mappings get sorted string keys, so equal values give equal JSON.
    """
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def config_digest(config: Any) -> str:
    """SHA-1 of the canonical JSON (sorted keys) of a JSON-able configuration."""
    return hashlib.sha1(json.dumps(plain(config), sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- atomic writes


def _write_failure(path: Path, err: OSError) -> OSError:
    return OSError(
        err.errno,
        f"cannot write {path} ({err.strerror or err}); free disk space or make the "
        "folder writable, then run again",
    )


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file name next to ``path``; renamed over ``path`` when the block succeeds.

    For writers that need a file name (``np.save`` to a memory map, an
    exporter). On failure the temporary file is removed and ``path`` keeps
    its old content; an ``OSError`` names ``path`` and the fix.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename not in (None, str(tmp), str(path)):
            raise  # about another file (an input the writer read), not this write
        raise _write_failure(path, err) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(handle)`` on a temporary file next to ``path``, fsync, rename over ``path``.

    The callback form serves ``torch.save``, ``np.save`` and any other writer
    of an open binary file.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` (through :func:`plain`) as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(plain(obj), indent=2) + "\n")


# --------------------------------------------------------------------------- cached records


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path``, or ``None`` when the file is missing or damaged."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def cached_json(
    path: str | os.PathLike,
    compute: Callable[[], dict[str, Any]],
    required: Iterable[str] = (),
) -> dict[str, Any]:
    """The JSON object stored in ``path`` if it is there, valid and has the ``required`` keys;
    else ``compute()``, written atomically to ``path`` (its folder is created) and returned.

    A damaged record is recomputed and overwritten.
    """
    path = Path(path)
    stored = read_json(path)
    if isinstance(stored, dict) and set(required) <= set(stored):
        return stored
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, value)
    return plain(value)
