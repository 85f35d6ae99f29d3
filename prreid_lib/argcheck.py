"""Checks of command-line options, run right after parsing, before anything is read or written.

Every check raises :class:`OptionError` (a ``ValueError``) whose one-line
message starts with the option and its value, then says what is wrong and the
fix: ``--cache-dir /x/y: is a file, not a folder; pass a folder``. The
console script prints it as ``prreid <cmd>: error: <message>`` and exits with
status 2. :class:`Parser` is an ``argparse`` parser whose own errors (an
unknown option, a value that is not a number) are one line too.
:class:`Interrupted` carries what an interrupted command kept and how to
resume it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

SEED_MAX = 2**32 - 1
"""Largest seed numpy's generators accept."""
RUN_FILES = (
    "model.pt",
    "checkpoint.pt",
    "final.json",
    "config.json",
    "metrics.csv",
    "metrics.json",
    "log.txt",
)
"""The files of a run folder that prreid reads back (:mod:`prreid_lib.runs`), and its
training log; never an --out."""


class OptionError(ValueError):
    """A bad command-line option: ``"<option> <value>: <problem>; <fix>"``."""

    def __init__(self, option: str, value: Any, problem: str, fix: str) -> None:
        self.option = option
        shown = value if str(value) else "''"
        super().__init__(f"{option} {shown}: {problem}; {fix}")

    def __reduce__(self):
        return (ValueError, (str(self),))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) with one line: what the command kept and how to resume."""


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` ends each option's text with ``(default: X)``.

    Left out where the text already says ``default: ...`` (an option whose
    default is filled in after parsing says it itself), for flags, and for
    defaults ``None`` or empty.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default == [] or default == ""
        if "default:" in text or empty or default == argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``prog: error: message`` (no usage).

    ``--help`` shows every option's default (:class:`DefaultsHelpFormatter`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def flag(name: str) -> str:
    """The option of an ``argparse`` attribute: ``n_trials`` -> ``--n-trials``."""
    return "--" + name.replace("_", "-")


def only_with(args: argparse.Namespace, defaults: dict[str, Any], applies: bool, when: str) -> None:
    """Refuse each option of ``defaults`` given on the line unless ``applies``; then fill defaults.

    The parser's default of these options is ``None``, so a given option is
    told apart from an omitted one; ``when`` completes "applies only ...",
    e.g. ``"with --rerank"``.
    """
    for name, default in defaults.items():
        value = getattr(args, name)
        if value is not None and not applies:
            option = flag(name)
            raise OptionError(option, value, f"applies only {when}", f"leave {option} out")
        if value is None:
            setattr(args, name, default)


def int_in(option: str, value: int, low: int, high: int, why: str = "") -> int:
    """``value`` when ``low <= value <= high``, else :class:`OptionError` (``why``: the reason)."""
    if not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise OptionError(
            option, value, f"expected an integer from {low} to {high}{reason}", "pass one in it"
        )
    return value


def float_in(option: str, value: float, low: float, high: float) -> float:
    """``value`` when ``low <= value <= high`` (NaN refused); else :class:`OptionError`."""
    if not low <= value <= high:
        raise OptionError(
            option, value, f"expected a number from {low:g} to {high:g}", "pass one in it"
        )
    return value


def seed(option: str, value: int) -> int:
    """A seed numpy and torch accept: 0 to 2**32 - 1."""
    return int_in(option, value, 0, SEED_MAX, "the range numpy's generators accept")


def name_part(option: str, value: str) -> str:
    """A name used as part of a file name: not empty, no folder separator, not ``.``/``..``."""
    seps = [s for s in (os.sep, os.altsep, "/") if s]
    if not value or value in (".", "..") or any(s in value for s in seps):
        raise OptionError(
            option, value, "expected a plain name (no folder)", "pass a name such as baseline"
        )
    return value


def data_source(args: argparse.Namespace) -> None:
    """Check ``--data-root`` (a folder), or that ``--profile`` can generate its data.

    ``--data-seed`` (when the parser has it) applies only to the generated
    SynthVeh, so it is refused beside ``--data-root`` and defaults to 0.
    """
    from prreid_lib.config import get_profile

    if args.data_root is not None:
        input_folder("--data-root", args.data_root, "pass a SynthVeh, VehicleID or VeRi-776 folder")
    else:
        real = get_profile(args.profile).real_data
        if real is not None:
            raise OptionError(
                "--profile", args.profile, f"trains on the real {real} data", "pass --data-root"
            )
    if hasattr(args, "data_seed"):
        when = "without --data-root (it seeds the generated SynthVeh)"
        only_with(args, {"data_seed": 0}, args.data_root is None, when)
        seed("--data-seed", args.data_seed)


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _writable_folder(option: str, value: Any, folder: Path, fix: str) -> None:
    """Refuse ``folder`` (for the option's ``value``) unless it is or can be a writable folder."""
    found = _nearest_existing(folder)
    if not found.is_dir():
        kind = "is a file" if found.exists() else "is a broken link"
        where = kind if found == Path(value) else f"{found} {kind}"
        raise OptionError(option, value, f"{where}, not a folder", fix)
    if not os.access(found, os.W_OK | os.X_OK):
        where = "is not writable" if found == Path(value) else f"{found} is not writable"
        raise OptionError(option, value, where, f"{fix} where you may write")


def output_folder(option: str, value: str | os.PathLike, fix: str = "pass a folder") -> Path:
    """A folder to write in: an existing writable folder, or one that can be made there.

    Nothing is created; a path that is (or runs through) a file, or whose
    nearest existing folder is not writable, raises :class:`OptionError`.
    """
    if not os.fspath(value):
        raise OptionError(option, value, "empty path, expected a folder", fix)
    path = Path(value)
    _writable_folder(option, value, path, fix)
    return path


def input_folder(option: str, value: str | os.PathLike, fix: str) -> Path:
    """An existing, readable folder (``fix``: what to pass instead)."""
    path = Path(value)
    if not str(value):
        raise OptionError(option, value, "empty path, expected a folder", fix)
    if not path.exists():
        problem = "is a broken link" if path.is_symlink() else "not found"
        raise OptionError(option, value, problem, fix)
    if not path.is_dir():
        raise OptionError(option, value, "is a file, not a folder", fix)
    if not os.access(path, os.R_OK | os.X_OK):
        raise OptionError(option, value, "is not readable", fix)
    return path


def input_file(option: str, value: str | os.PathLike, fix: str) -> Path:
    """An existing, readable file (``fix``: what to pass instead)."""
    path = Path(value)
    if not str(value) or not path.exists():
        raise OptionError(option, value, "not found", fix)
    if path.is_dir():
        raise OptionError(option, value, "is a folder, expected a file", fix)
    if not os.access(path, os.R_OK):
        raise OptionError(option, value, "is not readable", fix)
    return path


def run_folder(option: str, value: str | os.PathLike, marker: str = "model.pt") -> Path:
    """A finished run folder: an existing folder holding ``marker``."""
    fix = "pass the run folder that prreid train printed (OUTPUT_DIR/<name>-<key>)"
    path = input_folder(option, value, fix)
    if not (path / marker).is_file():
        raise OptionError(
            option, value, f"not a finished run folder (no {marker})", f"{fix}, after it finished"
        )
    return path


def run_files(run: str | os.PathLike) -> list[Path]:
    """The :data:`RUN_FILES` of the run folder ``run`` (to pass as ``protected``)."""
    return [Path(run) / name for name in RUN_FILES]


def output_file(
    option: str,
    value: str | os.PathLike,
    default_name: str,
    protected: Iterable[str | os.PathLike] = (),
) -> Path:
    """The file an ``--out`` option names; a folder (existing, or ``DIR/``) gets ``default_name``.

    Missing parent folders are made by the writer; a parent that is a file, an
    unwritable folder, a target that is a folder, or one of ``protected``
    (files prreid itself reads, e.g. a run's ``model.pt``) raise
    :class:`OptionError`. Nothing is written here.
    """
    text = os.fspath(value)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / default_name
    check_output_file(option, value, path, protected)
    return path


def check_output_file(
    option: str,
    value: str | os.PathLike,
    path: Path,
    protected: Iterable[str | os.PathLike] = (),
) -> None:
    """Refuse writing ``path`` (given as ``value``): see :func:`output_file`."""
    if not os.fspath(value):
        raise OptionError(option, value, "empty path, expected a file name", "pass a file name")
    if path.is_dir():
        raise OptionError(option, value, f"{path} is a folder", "pass another file name")
    _writable_folder(option, value, path.parent, "pass a file in a folder")
    mine = {os.path.realpath(p) for p in protected}
    if os.path.realpath(path) in mine:
        raise OptionError(
            option, value, f"{path} is a file prreid reads back", "pass another file name"
        )


def device(option: str, value: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` that torch parses and this machine has."""
    if value == "auto":
        return value
    import torch

    fix = "pass auto, cpu, cuda or cuda:N"
    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise OptionError(option, value, "not a device name", fix) from None
    if dev.type == "cpu":
        return value
    if dev.type != "cuda":
        raise OptionError(option, value, f"{dev.type} devices are not supported", fix)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise OptionError(option, value, "no CUDA device is visible here", "pass cpu or auto")
    if dev.index is not None and dev.index >= count:
        raise OptionError(
            option, value, f"this machine has {count} CUDA device(s): cuda:0 to {count - 1}", fix
        )
    return value
