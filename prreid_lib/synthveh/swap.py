"""Crash-safe replacement of the SynthVeh folders inside a data-set root.

:func:`~prreid_lib.synthveh.generator.generate_synthveh` renders a data set into
a temporary folder ``<out>/.synthveh.tmp-<pid>-<token>/new`` (with its manifest
``synthveh.json``) and puts it in place with :func:`swap_in`. Each manifest
lists, per data-set folder, every file prreid wrote there; anything else inside
those folders (a run folder, notes, an extra image) is the user's: it is moved
whole into the new tree, never deleted, and a clash with a name of the new data
set is refused before anything changes.

The swap is a series of renames announced by a journal (``<out>/.synthveh.swap``);
the atomic replacement of ``synthveh.json`` commits it. Until then an interruption
(Ctrl-C, SIGTERM, an error) rolls it back at once, and the swap of a killed
process is rolled back by the next run (:func:`recover`), so at every instant the
old data set with its manifest or the new one is whole. The next run also removes
the temporary folders of dead processes; those of live ones are kept. Swaps and
recoveries of one root take turns under an exclusive ``flock`` of the root folder.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prreid_lib.cache import atomic_write_text, read_json
from prreid_lib.synthveh_files import MANIFEST

try:
    import fcntl
except ImportError:  # pragma: no cover - platforms without flock
    fcntl = None  # type: ignore[assignment]

JOURNAL = ".synthveh.swap"
TMP_PREFIX = ".synthveh.tmp-"
OWNER = "owner.json"
_TMP_NAME = re.compile(r"\.synthveh\.tmp-(\d+)(?:-[0-9a-f]+)?")
_ACTIVE: set[Path] = set()
"""Temporary folders this process is using (its others are leftovers of interrupted calls)."""


@dataclass(frozen=True)
class Owned:
    """What prreid wrote inside one data-set folder.

    ``files``: paths relative to the folder ('/'-separated); ``whole``: top-level
    entries that are prreid's with all they hold (manifests without file lists).
    """

    files: frozenset[str] = frozenset()
    whole: frozenset[str] = frozenset()


def listed_files(manifest: object) -> dict[str, list[str]] | None:
    """The ``files`` table of a manifest (folder -> relative file paths), or ``None``."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, list) for v in files.values()):
        return None
    return files


def list_files(root: Path, subfolders: Iterable[str]) -> dict[str, list[str]]:
    """Every file under ``root/<sub>`` by its '/'-separated path relative to that folder."""
    table = {}
    for sub in subfolders:
        if (root / sub).is_dir():
            table[sub] = sorted(
                p.relative_to(root / sub).as_posix()
                for p in (root / sub).rglob("*")
                if p.is_symlink() or not p.is_dir()
            )
    return table


# ----------------------------------------------------------------------------- signals and lock


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises ``KeyboardInterrupt``, so it stops as cleanly as Ctrl-C.

    Only in the main thread and only while SIGTERM has its default action.
    """
    if not _main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def stop(signum, frame) -> None:
        raise KeyboardInterrupt("stopped by SIGTERM")

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs, then deliver the first one that came."""
    if not _main_thread():
        yield
        return
    caught: list[int] = []
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in saved:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    if caught:
        signal.raise_signal(caught[0])


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` of the folder ``out`` itself (no lock file is left)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:  # a file system without flock: go on unlocked
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- temporary folders


def make_temp(out: Path) -> Path:
    """A fresh temporary folder in ``out`` that records its owner (pid and host)."""
    tmp = out / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    _ACTIVE.add(tmp)
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    atomic_write_text(tmp / OWNER, json.dumps(owner) + "\n")
    return tmp


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine may be running (unknown counts as running)."""
    if pid <= 0 or pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _owner_alive(tmp: Path) -> bool:
    match = _TMP_NAME.fullmatch(tmp.name)
    if match is None:
        return True
    owner = read_json(tmp / OWNER)
    pid, host = int(match.group(1)), None
    if isinstance(owner, dict) and isinstance(owner.get("pid"), int):
        pid, host = owner["pid"], owner.get("host")
    if host not in (None, socket.gethostname()):
        return True  # another machine's process: its state cannot be checked from here
    if pid == os.getpid():
        return tmp in _ACTIVE
    return pid_alive(pid)


def release(out: Path, tmp: Path) -> None:
    """Remove ``tmp`` unless a pending swap's journal still needs it."""
    if _journal_tmp(out) != tmp:
        shutil.rmtree(tmp, ignore_errors=True)
        _ACTIVE.discard(tmp)


def _journal_tmp(out: Path) -> Path | None:
    record = read_json(out / JOURNAL)
    name = record.get("tmp") if isinstance(record, dict) else None
    if not isinstance(name, str) or _TMP_NAME.fullmatch(name) is None:
        return None
    return out / name


def _leftovers(out: Path) -> bool:
    try:
        names = [e.name for e in os.scandir(out)]
    except OSError:
        return False
    return any(n == JOURNAL or _TMP_NAME.fullmatch(n) for n in names)


def own_entry(name: str) -> bool:
    """Whether ``name`` (in a data-set root) is a journal or temporary folder of the swap."""
    return name == JOURNAL or _TMP_NAME.fullmatch(name) is not None


def recover(out: Path) -> None:
    """Roll back a swap that a killed process left in ``out`` and remove the temporary
    folders of dead processes. Takes the root's lock; returns at once when there are none."""
    if out.is_dir() and _leftovers(out):
        with locked(out):
            recover_locked(out)


def recover_locked(out: Path) -> None:
    """:func:`recover` for a caller that holds the lock of ``out``."""
    with signals_deferred():
        if (out / JOURNAL).exists():
            tmp = _journal_tmp(out)
            if tmp is not None and tmp.is_dir():
                _roll_back(out, tmp)
            (out / JOURNAL).unlink()
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    for entry in out.iterdir():
        if _TMP_NAME.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            if not _owner_alive(entry):
                shutil.rmtree(entry, ignore_errors=True)


# ----------------------------------------------------------------------------- foreign entries


def foreign(folder: Path, owned: Owned) -> list[str]:
    """The top-most entries under ``folder`` that prreid did not write, as relative paths.

    A folder holding none of ``owned.files`` counts as one foreign entry; links
    are never followed.
    """
    dirs = {f.rsplit("/", k)[0] for f in owned.files for k in range(1, f.count("/") + 1)}
    found: list[str] = []

    def walk(path: str, prefix: str) -> None:
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            rel = prefix + entry.name
            if not prefix and entry.name in owned.whole:
                continue
            if entry.is_dir(follow_symlinks=False):
                if rel in dirs:
                    walk(entry.path, rel + "/")
                else:
                    found.append(rel)
            elif rel not in owned.files:
                found.append(rel)

    walk(str(folder), "")
    return found


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def clashes(src: Path, dst: Path, rel: str) -> list[str]:
    """Paths under ``rel`` that cannot move from ``src`` to ``dst`` (a name taken there)."""
    if not os.path.lexists(dst):
        return []
    if _real_dir(src) and _real_dir(dst):
        return [
            c for child in sorted(src.iterdir()) for c in
            clashes(child, dst / child.name, f"{rel}/{child.name}")
        ]  # fmt: skip
    return [rel]


def place(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, merging folders that both sides hold; a taken name raises."""
    if not os.path.lexists(dst):
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
    elif _real_dir(src) and _real_dir(dst):
        for child in sorted(src.iterdir()):
            place(child, dst / child.name)
        src.rmdir()
    else:
        raise FileExistsError(errno.EEXIST, "cannot move a foreign entry over", str(dst))


# ----------------------------------------------------------------------------- the swap


def swap_in(out: Path, tmp: Path, subfolders: Iterable[str], old: Mapping[str, Owned]) -> None:
    """Replace prreid's files in ``out/<sub>`` by ``tmp/new/<sub>`` and ``out/synthveh.json``
    by ``tmp/new/synthveh.json``; the caller holds the lock of ``out``.

    ``old[sub]`` says what prreid wrote in the present ``out/<sub>``; everything
    else there moves whole into the new folder. A name clash raises ``ValueError``
    naming the entries before anything changes. An exception before the commit
    (the manifest's replacement) rolls everything back, then propagates.
    """
    subs = list(subfolders)
    new = tmp / "new"
    present = [s for s in subs if os.path.lexists(out / s)]
    moves = {s: foreign(out / s, old.get(s, Owned())) for s in present}
    taken = [f"{s}/{c}" for s in present for r in moves[s] for c in
             clashes(out / s / r, new / s / r, r)]  # fmt: skip
    if taken:
        shown = ", ".join(taken[:4]) + (f" and {len(taken) - 4} more" if len(taken) > 4 else "")
        raise ValueError(
            f"{out}: {shown} {'is' if len(taken) == 1 else 'are'} not prreid's, and the new "
            "SynthVeh writes files of the same name; move them out of the data set and run "
            "again (nothing was changed)"
        )
    new_subs = set(listed_files(read_json(new / MANIFEST)) or {})
    for s in present:
        (new / s).mkdir(exist_ok=True)  # receives the user's entries
    (tmp / "old").mkdir(exist_ok=True)
    atomic_write_text(out / JOURNAL, json.dumps({"tmp": tmp.name, "subfolders": subs}) + "\n")
    try:
        for s in subs:
            _swap_one(out, tmp, s, moves.get(s, []), s in new_subs)
        os.replace(new / MANIFEST, out / MANIFEST)  # the commit
    except BaseException:
        with signals_deferred():
            _roll_back(out, tmp)
            (out / JOURNAL).unlink()
        raise
    (out / JOURNAL).unlink()


def _swap_one(out: Path, tmp: Path, sub: str, moves: list[str], in_new: bool) -> None:
    src, dst, parked = tmp / "new" / sub, out / sub, tmp / "old" / sub
    if os.path.lexists(dst):
        for rel in moves:
            place(dst / rel, src / rel)
        os.rename(dst, parked)
    if src.is_dir():
        if in_new or any(src.iterdir()):
            os.rename(src, dst)
        else:
            src.rmdir()


def _roll_back(out: Path, tmp: Path) -> None:
    """Undo an uncommitted swap from ``tmp`` (state-driven, so it may be repeated)."""
    new, parked_root = tmp / "new", tmp / "old"
    manifest = read_json(new / MANIFEST)
    if manifest is None and not (new / MANIFEST).exists():
        return  # committed: the new data set is whole, nothing to undo
    files = listed_files(manifest) or {}
    record = read_json(out / JOURNAL)
    subs = record.get("subfolders", []) if isinstance(record, dict) else []
    subs = [s for s in subs if isinstance(s, str) and s == Path(s).name and s not in ("", "..")]
    for sub in reversed(subs):
        src, dst, parked = new / sub, out / sub, parked_root / sub
        ours_in_place = sub in files and not os.path.lexists(src)
        if os.path.lexists(dst) and (os.path.lexists(parked) or ours_in_place):
            os.rename(dst, src)
        if os.path.lexists(parked):
            os.rename(parked, dst)
        if _real_dir(src) and _real_dir(dst):
            for rel in foreign(src, Owned(frozenset(files.get(sub, [])))):
                place(src / rel, dst / rel)
