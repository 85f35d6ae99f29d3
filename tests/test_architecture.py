"""The house of prreid_lib: which module may import which.

Every module has a rank; a module imports only modules of its own rank or
below, and the imports form no cycle. Imports inside functions count as much
as those at the top of a file. Read :data:`RANK` from the bottom up:

0. leaves that know nothing of the method: configuration, errors, the cache
   layer, seeding, distributed helpers, statistics, tables, plots;
1. the data sets, the SynthVeh generator, the training tensor pipeline, the
   parts, the model, the losses, the metrics and the training recipes;
2. what puts those together into one job: training and the run store,
   pretraining, evaluation, the part detector, feature extraction, export,
   CAMs and part annotation;
3. the experiments the chapters share (the ``studies`` package: their data, the
   model's variants, near-duplicates);
4. the chapters and the command line.

Within rank 1 a few pairs are kept apart on purpose (:data:`FORBIDDEN`): the
pipeline and the model do not know each other, and the loaders know neither.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "prreid_lib"

RANK: dict[str, int] = {
    # 0: leaves
    "prreid_lib": 0,
    "prreid_lib.argcheck": 0,
    "prreid_lib.book_timing": 0,
    "prreid_lib.glued": 0,
    "prreid_lib.cpu_share": 0,
    "prreid_lib.heap": 0,
    "prreid_lib.memory": 0,
    "prreid_lib.cache": 0,
    "prreid_lib.config": 0,
    "prreid_lib.distributed": 0,
    "prreid_lib.errors": 0,
    "prreid_lib.imagenet": 0,
    "prreid_lib.images": 0,
    "prreid_lib.paper_tables": 0,
    "prreid_lib.paths": 0,
    "prreid_lib.reranking": 0,
    "prreid_lib.results": 0,
    "prreid_lib.seeding": 0,
    "prreid_lib.synthveh_files": 0,
    "prreid_lib.uncertainty": 0,
    "prreid_lib.viz": 0,
    # 1: data, method, measures
    "prreid_lib.datasets": 1,
    "prreid_lib.synthveh": 1,
    "prreid_lib.pipeline": 1,
    "prreid_lib.parts": 1,
    "prreid_lib.model": 1,
    "prreid_lib.losses": 1,
    "prreid_lib.metrics": 1,
    "prreid_lib.recipes": 1,
    "prreid_lib.precision": 1,
    # 2: one job each
    "prreid_lib.runs": 2,
    "prreid_lib.train": 2,
    "prreid_lib.pretrain": 2,
    "prreid_lib.evaluate": 2,
    "prreid_lib.yolo_env": 2,
    "prreid_lib.detector": 2,
    "prreid_lib.extract": 2,
    "prreid_lib.export": 2,
    "prreid_lib.search": 2,
    "prreid_lib.cam": 2,
    "prreid_lib.annotate": 2,
    # 3: shared experiments
    "prreid_lib.studies": 3,
    # 4: entry points
    "prreid_lib.chapters": 4,
    "prreid_lib.chapter_parameters": 4,
    "prreid_lib.handout": 4,
    "prreid_lib.cli": 4,
}
"""Rank of every module; a subpackage's modules take the rank of the subpackage."""

FORBIDDEN: list[tuple[str, str, str]] = [
    ("prreid_lib.pipeline", "prreid_lib.model", "the pipeline feeds the model, it does not use it"),
    ("prreid_lib.model", "prreid_lib.pipeline", "the model takes tensors, not the pipeline"),
    ("prreid_lib.datasets", "prreid_lib.pipeline", "loaders read files into tables only"),
    ("prreid_lib.datasets", "prreid_lib.model", "loaders read files into tables only"),
    ("prreid_lib.datasets", "prreid_lib.synthveh", "loaders read any data set, not only SynthVeh"),
    ("prreid_lib.parts", "prreid_lib.annotate", "parts is the method's geometry, below annotation"),
    ("prreid_lib.runs", "prreid_lib.train", "the run store keeps runs, it trains nothing"),
]
"""(importer, imported, why): imports the ranks allow but the house does not."""


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file of every module of the package (``__init__`` is its package)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file (functions included).

    ``from pkg import sub`` counts as an import of the module ``pkg.sub`` when
    there is one, else of ``pkg``.
    """
    mods = module_names(package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            else:
                continue
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def rank_of(module: str) -> int | None:
    """The rank of ``module``: its own entry, else its closest package's."""
    name = module
    while name:
        if name in RANK and (name != "prreid_lib" or module == "prreid_lib"):
            return RANK[name]
        name = name.rpartition(".")[0]
    return None


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """One message per module without a rank, upward import or forbidden import."""
    problems = []
    for module in sorted(graph):
        if rank_of(module) is None:
            problems.append(f"{module} has no rank: add it to RANK in tests/test_architecture.py")
    for module in sorted(graph):
        for target in sorted(graph[module]):
            mine, theirs = rank_of(module), rank_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(
                    f"{module} (rank {mine}) imports {target} (rank {theirs}): an upward "
                    "import; move the shared code down or the caller up"
                )
            for importer, imported, why in FORBIDDEN:
                if _within(module, importer) and _within(target, imported):
                    problems.append(f"{module} imports {target}: {why}")
    return problems


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_library_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_import_goes_down_or_sideways():
    problems = layering_violations(import_graph())
    assert not problems, "\n".join(problems)


def test_every_rank_names_a_module():
    mods = module_names()
    stale = [name for name in RANK if name not in mods]
    assert not stale, f"RANK names modules that do not exist: {stale}"


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path: Path):
    lib = tmp_path / "prreid_lib"
    (lib / "pipeline").mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "config.py").write_text("def f():\n    from prreid_lib.model import Net\n")
    (lib / "model.py").write_text("from prreid_lib import config\n")
    (lib / "pipeline" / "__init__.py").write_text("")
    (lib / "pipeline" / "transforms.py").write_text("from prreid_lib.model import Net\n")
    graph = import_graph(lib)
    assert graph["prreid_lib.config"] == {"prreid_lib.model"}  # found inside a function
    problems = layering_violations(graph)
    assert any(
        "prreid_lib.config (rank 0) imports prreid_lib.model (rank 1)" in p for p in problems
    )
    assert any(
        p.startswith("prreid_lib.pipeline.transforms imports prreid_lib.model") for p in problems
    )
    assert find_cycle(graph) == ["prreid_lib.config", "prreid_lib.model", "prreid_lib.config"]


@pytest.mark.parametrize(
    "leaf", ["prreid_lib.cache", "prreid_lib.imagenet", "prreid_lib.synthveh_files"]
)
def test_leaf_modules_import_nothing_of_the_library(leaf: str):
    assert import_graph()[leaf] <= {"prreid_lib.errors"}


# ----------------------------------------------------------------- the chapters' imports

NOTEBOOKS = PACKAGE.parent / "notebooks"
CHAPTER_IMPORTS = (
    "prreid_lib.studies",
    "prreid_lib.viz",
    "prreid_lib.chapter_parameters",
    "prreid_lib.book_timing",
    "prreid_lib.glued",
)
"""What a chapter may import from the library: the study layer and the figures, plus the
cells every chapter shares (the parameter check, the chapter's stated time and the glued
numbers)."""


def chapter_imports(notebook: Path) -> set[str]:
    """Every ``prreid_lib`` module a notebook's code cells import (``from X import y``
    counts as ``X.y`` when ``X`` is the package itself)."""
    import json

    found: set[str] = set()
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "prreid_lib":
                    found |= {f"prreid_lib.{a.name}" for a in node.names}
                elif node.module.startswith("prreid_lib."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("prreid_lib")}
    return found


def chapter_import_violations(notebooks: list[Path]) -> list[str]:
    """``chapter: module`` for every import outside :data:`CHAPTER_IMPORTS`."""
    return [
        f"{nb.stem}: {module}"
        for nb in notebooks
        for module in sorted(chapter_imports(nb))
        if not any(_within(module, allowed) for allowed in CHAPTER_IMPORTS)
    ]


def test_chapters_import_only_the_study_layer_and_the_figures():
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert len(notebooks) >= 9
    assert chapter_import_violations(notebooks) == []


def test_the_chapter_check_catches_a_direct_import(tmp_path: Path):
    import json

    source = ["from prreid_lib import metrics\n", "from prreid_lib.viz import image_grid\n"]
    cells = [{"cell_type": "code", "source": source}]
    (tmp_path / "99_x.ipynb").write_text(json.dumps({"cells": cells}))
    assert chapter_import_violations([tmp_path / "99_x.ipynb"]) == ["99_x: prreid_lib.metrics"]
