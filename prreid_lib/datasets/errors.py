"""The loaders' error type, :class:`prreid_lib.errors.DatasetFormatError`, under its older name."""

from __future__ import annotations

from prreid_lib.errors import DatasetFormatError

__all__ = ["DatasetFormatError"]
