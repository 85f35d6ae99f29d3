"""Check a chapter's parameters right after papermill injects them.

Papermill only warns about a parameter that a notebook does not declare, and it
injects whatever type the command line gave; a chapter would then run with a
misspelt name ignored (``-p data_rot X`` generates SynthVeh and exits 0) or with a
seed list that repeats a seed. The hidden cell after every chapter's
``parameters`` cell calls :func:`checked_parameters`, which stops the chapter with
one line naming the parameter, what it expects and what it got.

The chapter's own ``parameters`` cell (``notebooks/<chapter>.ipynb``) declares the
names and their defaults; :data:`KINDS` says what each name holds besides its
default ``None``. A name without an entry takes the type of its default.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prreid_lib.chapters import NOTEBOOK_DIR, as_list, output_dir_for
from prreid_lib.config import PROFILES
from prreid_lib.glued import record_glued

INJECTED_HEADER = "# Parameters"
"""The comment papermill writes atop the cell of the parameters it injects."""

MAX_SEED = 2**32 - 1
"""The largest seed numpy accepts."""


class ChapterParameterError(ValueError):
    """A chapter parameter that is unknown, of the wrong type or out of range (one line)."""


class _Mismatch(Exception):
    """A value outside a kind; the argument, if any, says why beyond the kind itself."""


@dataclass(frozen=True)
class Kind:
    """What a parameter holds: ``expected`` in words, ``convert`` to its normal form."""

    expected: str
    convert: Callable[[Any], Any]
    """The value in its normal form; raises :class:`_Mismatch` when it does not fit."""
    text: bool = False
    """Whether the value is text (papermill's ``-p`` turns ``2024`` into a number)."""


def _literal(value: Any) -> Any:
    """A string as the Python literal it spells (``-r seed 1`` gives ``"1"``), else itself."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


def _int_kind(low: int | None = None, high: int | None = None) -> Kind:
    def convert(value: Any) -> int:
        value = _literal(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Mismatch
        if (low is not None and value < low) or (high is not None and value > high):
            raise _Mismatch
        return value

    if low is None:
        return Kind("an int", convert)
    words = f"an int from {low} to {high}" if high is not None else f"an int >= {low}"
    return Kind(words, convert)


def _float_kind(low: float, high: float) -> Kind:
    def convert(value: Any) -> float:
        value = _literal(value)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Mismatch
        if not (math.isfinite(value) and low <= value <= high):
            raise _Mismatch
        return float(value)

    return Kind(f"a number from {low:g} to {high:g}", convert)


def _bool(value: Any) -> bool:
    value = _literal(value)
    if not isinstance(value, bool):
        raise _Mismatch
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Mismatch
    return value


def _choice_kind(options: tuple[str, ...]) -> Kind:
    def convert(value: Any) -> str:
        if value not in options or not isinstance(value, str):
            raise _Mismatch
        return value

    return Kind(f"one of {', '.join(options)}", convert, text=True)


def _device(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise _Mismatch
    return value


def _path_kind(folder: bool) -> Kind:
    what = "folder" if folder else "file"

    def convert(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _Mismatch
        path = Path(value).expanduser()
        if not (path.is_dir() if folder else path.is_file()):
            raise _Mismatch(f"no such {what}: {path.resolve()}")
        return value

    return Kind(f"an existing {what}", convert, text=True)


def _list_kind(item: Kind, words: str) -> Kind:
    """A non-empty list of distinct items of kind ``item``; ``words`` say so with an example."""

    def convert(value: Any) -> list:
        try:
            items = as_list(value)
        except ValueError:
            raise _Mismatch from None
        if not items:
            raise _Mismatch("the list is empty")
        normal = []
        for v in items:
            try:
                normal.append(item.convert(v))
            except _Mismatch:
                raise _Mismatch(f"{v!r} is not {item.expected}") from None
        repeated = sorted({v for v in normal if normal.count(v) > 1})
        if repeated:
            raise _Mismatch(f"{', '.join(map(str, repeated))} repeated; the items must differ")
        return normal

    return Kind(words, convert)


_SEED = _int_kind(0, MAX_SEED)

KINDS: dict[str, Kind] = {
    "profile": _choice_kind(tuple(sorted(PROFILES))),
    "data_root": _path_kind(folder=True),
    "seed": _SEED,
    "data_seed": _SEED,
    "device": Kind("auto, cpu, cuda, cuda:<index> or mps", _device, text=True),
    "output_dir": Kind("a folder path", _text, text=True),
    "part_source": _choice_kind(("auto", "detected", "ground_truth")),
    "seeds": _list_kind(_SEED, 'a list of distinct seeds such as "[0, 1, 2]"'),
    "train_epochs": _int_kind(1),
    "n_rank_queries": _int_kind(1),
    "distance": _choice_kind(("euclidean", "cosine")),
    "veri_train": _choice_kind(("veri776", "vehicleid")),
    "input_sizes": _list_kind(_int_kind(32), 'a list of distinct sizes such as "[128, 256]"'),
    "outside_cue_shares": _list_kind(
        _float_kind(0.0, 1.0), 'a list of distinct shares such as "[0.0, 0.5, 1.0]"'
    ),
    "cue_strength": _float_kind(0.0, 5.0),
    "random_start": Kind("True or False", _bool),
    "n_pairs": _int_kind(1),
    "parts_yaml": _path_kind(folder=False),
    "interactive": Kind("True or False", _bool),
    "n_annotate": _int_kind(0),
    "results_root": _path_kind(folder=True),
}
"""What each chapter parameter holds; ``None`` is allowed where the chapter's default is."""

_KIND_OF_DEFAULT: dict[type, Kind] = {
    bool: Kind("True or False", _bool),
    int: _int_kind(),
    float: Kind("a number", _float_kind(-math.inf, math.inf).convert),
    str: Kind("a string", _text, text=True),
}


def checked_parameters(chapter: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The chapter's parameters from ``namespace`` (the notebook's ``globals()``), checked
    and in normal form: list strings parsed, ``output_dir`` resolved by
    :func:`~prreid_lib.chapters.output_dir_for`.

    Raises :class:`ChapterParameterError` (one line) for a name papermill injected that
    the chapter's ``parameters`` cell does not declare, and for a value that its kind
    (:data:`KINDS`) refuses: wrong type, unknown profile, repeated seeds, missing folder.
    """
    defaults = declared_parameters(chapter)
    unknown = [name for name in injected_names(namespace, chapter) if name not in defaults]
    if unknown:
        raise ChapterParameterError(_unknown_message(chapter, unknown, list(defaults)))
    values: dict[str, Any] = {}
    for name, default in defaults.items():
        value = namespace.get(name, default)
        if value is None and default is None:
            values[name] = None
            continue
        kind = kind_of(name, default)
        try:
            values[name] = kind.convert(value)
        except _Mismatch as why:
            raise ChapterParameterError(
                _value_message(chapter, name, value, kind, default, str(why))
            ) from None
    values["output_dir"] = output_dir_for(values["profile"], values.get("output_dir"))
    record_glued(values["output_dir"], chapter)  # for the findings page
    return values


def kind_of(name: str, default: Any) -> Kind:
    """The kind of parameter ``name``: its :data:`KINDS` entry, else its default's type."""
    if name in KINDS:
        return KINDS[name]
    if type(default) in _KIND_OF_DEFAULT:
        return _KIND_OF_DEFAULT[type(default)]
    raise ChapterParameterError(
        f"parameter {name} (default {default!r}) has no kind: add it to "
        "prreid_lib.chapter_parameters.KINDS"
    )


def chapter_notebook(chapter: str) -> Path:
    """The source notebook of ``chapter`` (``"04_training"``) in the repository."""
    return NOTEBOOK_DIR / f"{chapter}.ipynb"


def declared_parameters(chapter: str) -> dict[str, Any]:
    """Name -> default of every parameter in the chapter's ``parameters`` cell, in order."""
    path = chapter_notebook(chapter)
    if not path.is_file():
        raise ChapterParameterError(
            f"no notebook {path} for chapter {chapter!r}: the chapter's parameters are read from "
            "its parameters cell; run the chapters of a prreid checkout"
        )
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ChapterParameterError(f"{path}: expected one cell tagged 'parameters'")
    return _assignments("".join(tagged[0]["source"]), str(path))


def _assignments(source: str, where: str) -> dict[str, Any]:
    """Name -> literal value of each ``name = literal`` line of ``source``."""
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            raise ChapterParameterError(f"{where}: line {node.lineno} is no `name = value` line")
        try:
            found[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ChapterParameterError(
                f"{where}: line {node.lineno} assigns no literal value"
            ) from None
    return found


def injected_names(namespace: Mapping[str, Any], chapter: str) -> list[str]:
    """Names papermill injected: those of its latest ``# Parameters`` cell in the kernel's
    input history (IPython's ``In``). Outside IPython: every plain-data global that no
    cell of the chapter assigns."""
    history = namespace.get("In")
    if isinstance(history, list):
        for source in reversed(history):
            if isinstance(source, str) and source.lstrip().startswith(INJECTED_HEADER):
                return _assigned_names(source)
        return []
    notebook_names = _notebook_names(chapter)
    return [
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in notebook_names
        and isinstance(value, str | int | float | bool | list | tuple | dict | type(None))
    ]


def _assigned_names(source: str) -> list[str]:
    """Names a cell assigns at its top level (in order; none when it does not parse)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    names = []
    for node in body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _notebook_names(chapter: str) -> set[str]:
    """Every name any code cell of the chapter binds (assignments, imports, definitions)."""
    cells = json.loads(chapter_notebook(chapter).read_text(encoding="utf-8"))["cells"]
    names: set[str] = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
    return names


def _unknown_message(chapter: str, unknown: list[str], valid: list[str]) -> str:
    hints = [
        f"{name!r} (did you mean {match[0]}?)" if match else repr(name)
        for name in unknown
        for match in [difflib.get_close_matches(name, valid, n=1)]
    ]
    noun = "parameter" if len(unknown) == 1 else "parameters"
    return f"unknown {noun} {', '.join(hints)} for chapter {chapter}; valid: {', '.join(valid)}"


def _value_message(chapter: str, name: str, value: Any, kind: Kind, default: Any, why: str) -> str:
    expected = kind.expected + (" (or None, the default)" if default is None else "")
    message = (
        f"parameter {name} of chapter {chapter} must be {expected}; "
        f"got {value!r} ({type(value).__name__})"
    )
    if why:
        message += f": {why}"
    if isinstance(value, int | float) and not isinstance(value, bool) and kind.text:
        message += f"; papermill reads -p {name} {value} as a number, pass text with -r"
    return message
