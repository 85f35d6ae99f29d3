"""Result tables of a book build, and the archive that keeps them with their provenance.

The chapters save their main tables with :func:`save_table` under
``<output_dir>/tables/``. Runs that cannot be repeated on a laptop (the
``paper`` profile on a GPU, the real data sets) are kept in git with
:func:`archive_tables` (``prreid archive --profile paper``): the tables are
copied to ``results/<profile>/`` next to a ``provenance.json`` (commit, date,
hardware, versions). The appendix shows every archived profile beside the
tables of the current build (:func:`archived_profiles`, :func:`load_archive`).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TABLES_DIR = "tables"
"""Folder under a build's ``output_dir`` that holds its result tables."""
RESULTS_ROOT = Path(__file__).resolve().parents[1] / "results"
"""The archive in the repository: ``results/<profile>/*.csv`` and ``provenance.json``.

:meta hide-value:
"""
PROVENANCE_FILE = "provenance.json"


@dataclass
class ArchivedResults:
    """The tables of one archived profile, by name, and where they came from."""

    profile: str
    tables: dict[str, pd.DataFrame]
    provenance: dict


def save_table(table: pd.DataFrame, output_dir: str | Path, name: str) -> Path:
    """Write ``table`` (index included) to ``<output_dir>/tables/<name>.csv``; return the path."""
    if not name or any(c in name for c in "/\\. "):
        raise ValueError(f"table name {name!r}: use letters, digits, '-' or '_' only")
    path = Path(output_dir) / TABLES_DIR / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path)
    return path


def load_tables(output_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The tables a build saved with :func:`save_table`, by name (empty when none)."""
    return _read_tables(Path(output_dir) / TABLES_DIR)


def provenance(profile: str, output_dir: str | Path) -> dict:
    """Where results come from: profile, commit, date, hardware and library versions."""
    import torch

    hardware = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    return {
        "profile": profile,
        "output_dir": str(output_dir),
        "commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "hardware": hardware,
        "gpus": torch.cuda.device_count(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def archive_tables(
    profile: str, output_dir: str | Path, results_root: str | Path = RESULTS_ROOT
) -> Path:
    """Copy a build's tables to ``<results_root>/<profile>/`` with a ``provenance.json``.

    An existing archive of that profile is replaced as a whole, so tables of an
    older build never mix with a newer one. Raises ``FileNotFoundError`` naming
    the folder when the build saved no tables.
    """
    source = Path(output_dir) / TABLES_DIR
    tables = sorted(source.glob("*.csv"))
    if not tables:
        raise FileNotFoundError(
            f"{source}: no result tables; run the chapters first "
            f"(prreid book --profile {profile} --output-dir {output_dir})"
        )
    dest = Path(results_root) / profile
    tmp = dest.with_name(f".{profile}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for table in tables:
        shutil.copy2(table, tmp / table.name)
    record = provenance(profile, output_dir) | {"tables": [t.stem for t in tables]}
    (tmp / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def archived_profiles(results_root: str | Path = RESULTS_ROOT) -> list[str]:
    """Profiles with an archive (a folder holding ``provenance.json``) under ``results_root``."""
    return sorted(p.name for p in _dirs(Path(results_root)))


def load_archive(profile: str, results_root: str | Path = RESULTS_ROOT) -> ArchivedResults:
    """The archived tables of ``profile`` and their provenance; a clear error when absent."""
    folder = Path(results_root) / profile
    record = folder / PROVENANCE_FILE
    if not record.is_file():
        raise FileNotFoundError(
            f"{record}: no archived results for profile {profile!r}; create them with "
            f"`prreid archive --profile {profile}` after `make book PROFILE={profile}`"
        )
    try:
        info = json.loads(record.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{record}: not valid JSON ({err}); archive the profile again") from None
    return ArchivedResults(profile, _read_tables(folder), info)


def _dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if (p / PROVENANCE_FILE).is_file()] if root.is_dir() else []


def _read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Every ``*.csv`` table in ``folder``, by file stem (empty when the folder has none)."""
    return {p.stem: _read(p) for p in sorted(folder.glob("*.csv"))}


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable result table ({err})") from None


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=RESULTS_ROOT.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
