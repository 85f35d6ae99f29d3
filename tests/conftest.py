"""Shared fixtures: one SynthVeh smoke export and one smoke run of every chapter per session."""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SynthVeh export of the smoke profile (generated once per test session)."""
    from prreid_lib.synthveh import ensure_synthveh

    return ensure_synthveh("smoke", root=tmp_path_factory.mktemp("data") / "synthveh", seed=0)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch re-id run on a tiny VehicleID layout (one per test module that
    uses it, so a module may write into its run folder)."""
    from prreid_lib.train import run_or_load
    from tests.test_train import TINY, make_tiny_vehicleid

    root = tmp_path_factory.mktemp("tiny-run")
    frame, boxes = make_tiny_vehicleid(root / "VehicleID")
    result = run_or_load(TINY, frame, boxes, root / "runs", progress=False, cache_dir=root / "c")
    return result.run_dir


@dataclass
class ExecutedChapter:
    """One chapter executed by papermill: its output notebook and the error, if any."""

    name: str
    output: Path
    error: str | None
    new_runs: tuple[str, ...] = ()
    """Training run folders (relative to the runs folder) that this chapter created."""


def run_folders(runs: Path) -> set[str]:
    """Every training run folder under ``runs`` (a folder holding a run's config.json)."""
    return {str(p.parent.relative_to(runs)) for p in runs.rglob("config.json")}


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``output_dir`` of the chapters' smoke runs (models, tables, timings)."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def executed_chapters(
    smoke_data: Path, smoke_runs: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ExecutedChapter]:
    """Every chapter executed with the smoke profile into a temporary book/_generated."""
    from prreid_lib.chapters import ChapterFailed, ChapterParameters, list_chapters, run_chapter

    book = tmp_path_factory.mktemp("book")
    generated = book / "book" / "_generated"
    params = ChapterParameters("smoke", str(smoke_data), 0, "cpu", str(smoke_runs))
    results: dict[str, ExecutedChapter] = {}
    for notebook in list_chapters():
        output = generated / notebook.name
        before = run_folders(smoke_runs)
        try:
            run_chapter(notebook, output, params, cwd=ROOT)
            error = None
        except ChapterFailed as err:
            error = str(err)
        created = tuple(sorted(run_folders(smoke_runs) - before))
        results[notebook.stem] = ExecutedChapter(notebook.stem, output, error, created)
    return results


def read_glue(notebook: Path) -> dict[str, object]:
    """Values glued with ``myst_nb.glue`` in an executed notebook (parsed from text/plain)."""
    nb = json.loads(notebook.read_text())
    values: dict[str, object] = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            data = out.get("data", {})
            text = data.get(meta.get("mime_prefix", "") + "text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            try:
                values[meta["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[meta["name"]] = text
    return values
