"""Parsing helpers shared by the VeRi-776 and VehicleID loaders.

The official list files are plain text written on different systems, so the
helpers tolerate what real copies contain: a UTF-8 byte-order mark, CRLF or CR
line ends, trailing spaces or tabs, blank lines and a missing or empty last
line. Everything else that is wrong raises :class:`DatasetFormatError` with the
file and line at fault.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from prreid_lib.errors import DatasetFormatError
from prreid_lib.paths import canonical_path, canonical_paths

MAX_LISTED = 5
"""How many offending items (paths, names) an error message lists before '...'."""
_XML_ENCODING_RE = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_GB_ALIASES = {"gb2312", "gb_2312-80", "gb2312-80", "gb_2312", "euc-cn", "gbk", "cp936"}


def short_list(items: Sequence[str], n: int = MAX_LISTED) -> str:
    """The first ``n`` items, comma separated, with '...' when there are more."""
    head = ", ".join(str(x) for x in items[:n])
    return head + (", ..." if len(items) > n else "")


def find_dataset_root(
    root: str | Path, marker: str, subdirs: Sequence[str], dataset: str, fix: str
) -> Path:
    """Return the folder that holds ``marker``: ``root`` itself or ``root/<one of subdirs>``.

    Users may pass either the data set's own folder (e.g. ``VehicleID_V1.0``) or
    the folder above it; ``subdirs`` lists the usual names of the data set's
    own folder. The folder comes back canonical
    (:func:`prreid_lib.paths.canonical_path`: a relative root, ``..`` or a link
    name the same folder as its resolved path). A missing root, or one holding
    neither, raises :class:`DatasetFormatError` that lists what the folder does
    contain.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        found = "a file, not a folder" if root.exists() else "nothing (the path does not exist)"
        raise DatasetFormatError(root, f"the {dataset} root folder", found, fix)
    if (root / marker).exists():
        return canonical_path(root)
    for sub in subdirs:
        if (root / sub / marker).exists():
            return canonical_path(root / sub)
    entries = sorted(p.name for p in root.iterdir())
    found = f"entries [{short_list(entries, 10)}]" if entries else "an empty folder"
    candidates = " or ".join(f"{sub}/{marker}" for sub in subdirs)
    raise DatasetFormatError(
        root, f"a {dataset} folder holding {marker} (or {candidates})", found, fix
    )


def image_paths(folder: Path, names: Iterable[str]) -> list[str]:
    """The canonical paths of the images ``names`` in ``folder``
    (:func:`prreid_lib.paths.canonical_paths`): the keys part boxes are joined on."""
    return canonical_paths(folder / name for name in names)


def require_file(path: Path, what: str, fix: str) -> Path:
    """Return ``path`` if it is a file, else raise :class:`DatasetFormatError`."""
    if not path.is_file():
        found = "a folder" if path.is_dir() else "no such file"
        raise DatasetFormatError(path, what, found, fix)
    return path


def read_lines(path: Path, what: str, keep_blank: bool = False) -> list[tuple[int, str]]:
    """Read a text list file as ``(line_number, stripped_text)`` pairs (1-based numbers).

    Decodes UTF-8 (with or without a byte-order mark), accepts any line end and
    strips surrounding whitespace. Blank lines are dropped unless ``keep_blank``
    (for files where the line position carries meaning: then every line is
    kept, trailing blank ones too, and the caller decides).
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DatasetFormatError(
            path,
            f"{what} as plain ASCII/UTF-8 text",
            f"bytes that are not UTF-8 ({data[err.start : err.start + 4]!r})",
            "re-extract the file from the official archive",
            line=line,
        ) from None
    lines = [(i, s.strip()) for i, s in enumerate(text.splitlines(), start=1)]
    if keep_blank:
        return lines
    return [(i, s) for i, s in lines if s]


def split_fields(path: Path, lineno: int, text: str, n: int, what: str, fix: str) -> list[str]:
    """Split a line on whitespace and require exactly ``n`` fields."""
    fields = text.split()
    if len(fields) != n:
        raise DatasetFormatError(
            path,
            f"{n} whitespace-separated fields ({what})",
            f"{len(fields)}: {text!r}",
            fix,
            line=lineno,
        )
    return fields


def parse_int(token: str, path: Path, lineno: int | None, what: str, fix: str) -> int:
    """``int(token)``, or :class:`DatasetFormatError` naming the file, line and field."""
    try:
        return int(token)
    except ValueError:
        raise DatasetFormatError(
            path, f"an integer {what}", repr(token), fix, line=lineno
        ) from None


def require_images(image_dir: Path, names: Iterable[str], what: str) -> None:
    """Raise :class:`DatasetFormatError` unless every name is a file in ``image_dir``.

    Lists the folder once (fast even for the 200k images of VehicleID); the
    message gives the number of missing images and the first few paths.
    """
    fix = (
        f"extract the complete {what} images from the official archive into {image_dir}, "
        "or pass check_images=False to skip this check"
    )
    if not image_dir.is_dir():
        raise DatasetFormatError(image_dir, f"a folder of {what} images", "no such folder", fix)
    present = set(os.listdir(image_dir))
    names = list(names)
    missing = [n for n in names if n not in present]
    if missing:
        paths = [str(image_dir / n) for n in missing]
        raise DatasetFormatError(
            image_dir,
            f"all {len(names)} listed {what} images",
            f"{len(missing)} missing: {short_list(paths)}",
            fix,
        )


def decode_xml(path: Path, fix: str) -> str:
    """An XML file as text, decoded with the encoding its declaration names.

    Needed for VeRi-776's gb2312 label files: expat reads no multi-byte
    encoding itself. gb2312 (and gbk) are decoded as gb18030, their superset.
    Unknown encodings and undecodable bytes raise :class:`DatasetFormatError`.
    """
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        match = _XML_ENCODING_RE.match(data)
        encoding = match.group(1).decode("ascii").lower() if match else "utf-8"
    if encoding in _GB_ALIASES:
        encoding = "gb18030"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DatasetFormatError(
            path, "an XML encoding Python knows", f"encoding={encoding!r}", fix, line=1
        ) from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise DatasetFormatError(
            path,
            f"text in the declared encoding {encoding}",
            f"undecodable bytes {data[err.start : err.start + 4]!r}",
            fix,
            line=data[: err.start].count(b"\n") + 1,
        ) from None


def require_entries(path: Path, count: int, what: str, fix: str) -> None:
    """Raise :class:`DatasetFormatError` naming ``path`` when its list has no entries.

    An empty training, test or query list would train on nothing or score nothing.
    """
    if count == 0:
        raise DatasetFormatError(path, f"at least one {what}", "an empty list (no entries)", fix)


def refuse_repeats(path: Path, entries: Sequence[tuple[int, object]], what: str, fix: str) -> None:
    """Raise unless every key of ``entries`` (``(line, key)`` pairs of ``path``) occurs once.

    The error is on the first repeated line and names each repeated key with
    its repeated and first line (a test image listed twice is its own gallery
    match and inflates the scores).
    """
    first: dict[object, int] = {}
    repeats: list[str] = []
    at: int | None = None
    for line, key in entries:
        if key in first:
            repeats.append(f"{key} on line {line} (first on line {first[key]})")
            at = line if at is None else at
        else:
            first[key] = line
    if repeats:
        raise DatasetFormatError(
            path,
            f"each {what} listed once",
            f"{len(repeats)} repeated: {short_list(repeats)}",
            fix,
            line=at,
        )


def refuse_shared(
    reference: tuple[Path, Sequence[tuple[int, object]]],
    listed: tuple[Path, Sequence[tuple[int, object]]],
    expected: str,
    label: str,
    fix: str,
) -> None:
    """Raise when a key of ``listed`` also occurs in ``reference`` (``(path, [(line, key)])``).

    For test lists that must share no image or identity with the training
    list. The error is on the first shared line of ``listed``'s file and
    names each shared key (``label``, e.g. "vehicle") with its line in both files.
    """
    ref_path, ref_entries = reference
    path, entries = listed
    ref_line: dict[object, int] = {}
    for line, key in ref_entries:
        ref_line.setdefault(key, line)
    shared: dict[object, int] = {}
    for line, key in entries:
        if key in ref_line:
            shared.setdefault(key, line)
    if shared:
        items = [
            f"{label} {key} (line {line}; {ref_path.name} line {ref_line[key]})"
            for key, line in shared.items()
        ]
        raise DatasetFormatError(
            path,
            f"{expected} (none listed in {ref_path})",
            f"{len(items)} shared: {short_list(items)}",
            fix,
            line=min(shared.values()),
        )
