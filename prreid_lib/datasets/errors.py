"""The one error type of the data loaders.

Every problem a loader finds in a data set on disk (a missing folder, a list
file with a bad line, XML that does not parse, an image that is listed but
absent) is raised as :class:`DatasetFormatError`, whose message names the file
(and line), what the loader expected, what it found, and how to fix it.
"""

from __future__ import annotations

from pathlib import Path


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
