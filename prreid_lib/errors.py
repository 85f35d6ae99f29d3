"""The project's own failure types (beside ``ValueError`` and ``FileNotFoundError``).

:class:`PrreidError` marks a failure that prreid detects and explains itself
(a book build that failed, a YOLO run that left no weights). The console
script prints it as one line; a ``RuntimeError`` from a library (torch,
ultralytics) keeps its traceback, since it is not the user's to fix.

:class:`DatasetFormatError` is the one error of data on disk: every problem
a loader, the image pipeline, the part annotation or feature extraction
finds in a data set (a missing folder, a list file with a bad line, XML that
does not parse, an image that is listed but absent) is raised as one, whose
message names the file (and line), what was expected, what was found, and
how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class PrreidError(RuntimeError):
    """A failure prreid detected itself; the message names the culprit and the fix."""


class DatasetFormatError(ValueError):
    """A data set on disk does not have the expected official layout or format.

    ``path`` is the file or folder at fault, ``line`` the 1-based line number
    when there is one; ``expected``, ``found`` and ``fix`` are short phrases
    that the message puts together as "expected ...; found ...; fix: ...".
    """

    def __init__(
        self,
        path: str | Path,
        expected: str,
        found: str,
        fix: str,
        line: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.expected = expected
        self.found = found
        self.fix = fix
        self.line = line
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: expected {expected}; found {found}. Fix: {fix}")

    def __reduce__(self):  # keeps the error picklable (multiprocessing data loaders)
        return (type(self), (self.path, self.expected, self.found, self.fix, self.line))
