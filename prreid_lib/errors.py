"""The project's own failure type (beside ``ValueError`` and ``FileNotFoundError``).

:class:`PrreidError` marks a failure that prreid detects and explains itself
(a book build that failed, a YOLO run that left no weights). The console
script prints it as one line; a ``RuntimeError`` from a library (torch,
ultralytics) keeps its traceback, since it is not the user's to fix.
"""

from __future__ import annotations


class PrreidError(RuntimeError):
    """A failure prreid detected itself; the message names the culprit and the fix."""
