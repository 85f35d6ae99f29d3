"""Student notebooks for a course: the chapters without solutions or outputs, and a README.

``prreid handout --out DIR`` (and ``make handout``) call :func:`write_handout`. A
chapter's solutions are the markdown blocks ``{admonition} Solution to exercise N``
(in a backtick or colon fence of any length; several may share a cell with other
text, which stays), the code cells that begin with ``# Solution to exercise N`` and
any cell tagged ``solution``. Everything else stays: the exercises, the
``parameters`` cell, the hidden set-up cells. Outputs and execution counts are
cleared. The README says which profile to use and what each chapter costs run on its
own, from the committed measurements (:data:`~prreid_lib.book_timing.QUICK_TIMING_CSV`
and :data:`ALONE_CSV`); a cost they do not hold reads "not measured".
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import prreid_lib
from prreid_lib.book_timing import QUICK_TIMING_CSV, read_timing
from prreid_lib.chapters import REPO_ROOT, list_chapters
from prreid_lib.errors import PrreidError

SOLUTION_TAG = "solution"
"""A cell with this tag is a solution, whatever it holds."""
MARKER = "prreid_handout"
"""Key of the notebook metadata that marks a notebook written by :func:`write_handout`
(with a digest of its cells' sources); the README's last line names it with a digest
of the text above. A file whose digest no longer matches was edited: never replaced."""
README_TITLE = "# Student notebooks of the prreid book"
"""First line of the handout's README.md."""
ALONE_CSV = REPO_ROOT / "benchmarks" / "results" / "handout_alone.csv"
"""Committed measurements of each handout chapter run alone in an empty folder
(``benchmarks/bench_handout.py``): ``chapter``, ``profile``, ``seconds``, the
:data:`DISK_COLUMNS`, ``cpu_count``, ``load_1min`` (the load average when it started),
``date``.

:meta hide-value:
"""
DISK_COLUMNS = ("data_mib", "runs_mib", "cache_mib")
"""MiB a chapter run alone left in ``data/`` (SynthVeh), ``runs/`` and the image cache."""
SYNTHVEH_STEP = "SynthVeh"
"""The step of the book timing table that generates the data set."""
NOT = "not measured"
"""What the README says of a cost no committed table holds."""

_OPEN = re.compile(r"^\s*(`{3,}|:{3,})\s*\{admonition\}\s*Solution to exercise\b")
_CODE_SOLUTION = re.compile(r"^\s*#\s*Solution to exercise\b")
_LEFT_OVER = re.compile(r"Solution to exercise", re.IGNORECASE)


@dataclass(frozen=True)
class Need:
    """Work of an earlier chapter that a chapter run alone does itself (the run cache
    holds it when the earlier chapter ran first)."""

    chapter: str
    whole: bool
    """True: all of that chapter's training; False: only part of it (an upper bound)."""
    what: str


NEEDS: dict[str, tuple[Need, ...]] = {
    "05_evaluation": (
        Need("04_training", True, "chapter 4's pretrained start and its pair on every seed"),
    ),
    "06_ablation": (
        Need("04_training", True, "chapter 4's pretrained start and its pair on every seed"),
    ),
    "07_resolution": (
        Need("04_training", True, "chapter 4's pretrained start and its pair on every seed"),
        Need("06_ablation", False, "chapter 6's strong-recipe pair"),
    ),
    "08_cam": (
        Need("04_training", False, "chapter 4's pretrained start and its first seed's pair"),
    ),
}
"""What each chapter trains when run alone besides its own work (read from the studies:
chapters 5 to 8 train chapter 4's pair through ``studies.train_variants``,
chapter 7 also chapter 6's strong recipe); a chapter not listed needs none."""
NO_DATA = ("09_appendix", "10_findings")
"""Chapters that do not generate SynthVeh (every other one does on first use)."""


# ----------------------------------------------------------------------------- notebooks


def strip_solutions(markdown: str) -> str:
    """``markdown`` without its ``{admonition} Solution to exercise N`` blocks.

    A block ends at the first line of only its fence character, at least as long as
    its opening fence (so a shorter nested code fence stays inside). Raises
    ``ValueError`` for a block that never closes.
    """
    kept: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines(keepends=True):
        if fence is None:
            opened = _OPEN.match(line)
            if opened:
                fence = opened.group(1)
            else:
                kept.append(line)
        elif _closes(line, fence):
            fence = None
    if fence is not None:
        raise ValueError(f"a solution block opened with {fence} is never closed")
    return _tidy("".join(kept))


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened with ``fence``."""
    text = line.strip()
    return bool(text) and set(text) == {fence[0]} and len(text) >= len(fence)


def _tidy(text: str) -> str:
    """At most one blank line in a row, none at either end."""
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text).strip("\n")


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def is_solution_cell(cell: dict[str, Any]) -> bool:
    """A cell tagged ``solution``, or a code cell that begins ``# Solution to exercise``."""
    if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
        return True
    if cell.get("cell_type") != "code":
        return False
    first = next((line for line in _source(cell).splitlines() if line.strip()), "")
    return bool(_CODE_SOLUTION.match(first))


def student_notebook(notebook: dict[str, Any], name: str = "notebook") -> dict[str, Any]:
    """A copy of ``notebook`` without solutions, outputs and execution counts.

    Raises :class:`~prreid_lib.errors.PrreidError` naming ``name`` and the cell when
    the text "Solution to exercise" would still be in it (a solution written in a form
    this module does not know).
    """
    student = copy.deepcopy(notebook)
    cells = []
    for cell in student.get("cells", []):
        if is_solution_cell(cell):
            continue
        if cell.get("cell_type") == "markdown":
            try:
                text = strip_solutions(_source(cell))
            except ValueError as err:
                raise PrreidError(f"{name}, cell {cell.get('id', '?')}: {err}") from None
            if not text.strip():
                continue
            cell["source"] = text.splitlines(keepends=True)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for key in ("execution", "papermill"):
            cell.get("metadata", {}).pop(key, None)
        cells.append(cell)
    _refuse_left_over(cells, name)
    student["cells"] = cells
    student.setdefault("metadata", {}).pop("papermill", None)
    student["metadata"][MARKER] = {
        "version": prreid_lib.__version__,
        "sources": _sources_digest(student),
    }
    return student


def _sources_digest(notebook: dict[str, Any]) -> str:
    """SHA-1 of the kinds and sources of a notebook's cells (outputs left out)."""
    cells = [(c.get("cell_type"), _source(c)) for c in notebook.get("cells", [])]
    return hashlib.sha1(json.dumps(cells).encode()).hexdigest()


def _signed(text: str) -> str:
    """``text`` with a last line naming :data:`MARKER` and the digest of ``text``."""
    return f"{text}<!-- {MARKER} {hashlib.sha1(text.encode()).hexdigest()} -->\n"


def _refuse_left_over(cells: list[dict[str, Any]], name: str) -> None:
    for cell in cells:
        if _LEFT_OVER.search(_source(cell)):
            raise PrreidError(
                f"{name}, cell {cell.get('id', '?')}: still holds 'Solution to exercise' after "
                "the solutions were removed; write it as a ```{admonition} Solution to "
                "exercise N block, or tag the cell 'solution'"
            )


# ----------------------------------------------------------------------------- folder


def write_handout(
    out_dir: str | Path,
    chapters: Sequence[Path] | None = None,
    *,
    timing_csv: str | Path = QUICK_TIMING_CSV,
    alone_csv: str | Path = ALONE_CSV,
) -> Path:
    """Write the student notebooks of ``chapters`` (default: every chapter) and a
    README.md to ``out_dir``; returns ``out_dir``.

    Only files written here before are replaced: an existing README.md or notebook
    of the same name that :func:`write_handout` did not write (the book's own
    ``notebooks/``, say) raises ``FileExistsError`` before anything is written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not a folder; pass a folder to write in")
    chapters = list(chapters) if chapters is not None else list_chapters()
    students = {nb.name: student_notebook(json.loads(nb.read_text()), nb.name) for nb in chapters}
    readme = handout_readme([nb.stem for nb in chapters], timing_csv, alone_csv)
    for name in [*students, "README.md"]:
        _refuse_foreign(out / name)
    out.mkdir(parents=True, exist_ok=True)
    for name, notebook in students.items():
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        (out / name).write_text(text, encoding="utf-8")
    (out / "README.md").write_text(_signed(readme), encoding="utf-8")
    return out


def _refuse_foreign(path: Path) -> None:
    """Raise ``FileExistsError`` when ``path`` exists and is not a file written here and
    left unchanged since (outputs of a notebook aside)."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_file() and _unchanged(path):
        return
    mine = path.is_file() and _names_marker(path)
    problem = (
        "was edited since prreid handout wrote it" if mine else "prreid handout did not write it"
    )
    raise FileExistsError(
        f"{path} exists and {problem}; move it away or pass another --out folder (the "
        "handout replaces only its own README.md and notebooks, unedited)"
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _names_marker(path: Path) -> bool:
    return MARKER in (_read(path) or "")


def _unchanged(path: Path) -> bool:
    """Whether ``path`` is a README.md or notebook written here, its text (a notebook's
    cell sources) as written."""
    text = _read(path)
    if text is None:
        return False
    if path.suffix == ".md":
        body = text.rstrip("\n").rpartition("\n")[0]
        return bool(body) and _signed(body + "\n") == text
    try:
        notebook = json.loads(text)
        written = notebook["metadata"][MARKER]["sources"]
    except (ValueError, KeyError, TypeError):
        return False
    return written == _sources_digest(notebook)


# ----------------------------------------------------------------------------- costs


def _book_seconds(path: str | Path) -> dict[str, float]:
    """Step -> seconds of the last row of each step in the committed quick build."""
    if not Path(path).is_file():
        return {}
    table = read_timing(path)
    return {str(k): float(v) for k, v in table.groupby("step")["seconds"].last().items()}


def _cpu_count(path: str | Path) -> int | None:
    if not Path(path).is_file():
        return None
    counts = read_timing(path)["cpu_count"]
    return int(counts.iloc[-1]) if len(counts) else None


def _alone_rows(path: str | Path) -> pd.DataFrame:
    """The measured runs alone (:data:`ALONE_CSV`), the last row of each chapter and profile."""
    columns = ["chapter", "profile", "seconds", *DISK_COLUMNS, "cpu_count", "date"]
    if not Path(path).is_file():
        return pd.DataFrame(columns=columns)
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing} ({', '.join(columns)})")
    return table.groupby(["chapter", "profile"], as_index=False).last()


def alone_seconds(chapter: str, book: dict[str, float]) -> tuple[float, float] | None:
    """``(low, high)`` seconds of ``chapter`` run alone with the quick profile, from the
    book's step times ``book``: its own time, SynthVeh's, and the work of :data:`NEEDS`
    (a need done only in part counts in ``high`` alone). ``None`` when a time is missing."""
    steps = [chapter] + ([] if chapter in NO_DATA else [SYNTHVEH_STEP])
    steps += [n.chapter for n in NEEDS.get(chapter, ()) if n.whole]
    partial = [n.chapter for n in NEEDS.get(chapter, ()) if not n.whole]
    if any(step not in book for step in steps + partial):
        return None
    low = sum(book[s] for s in steps)
    return low, low + sum(book[s] for s in partial)


def _minutes(seconds: float) -> str:
    return "under a minute" if seconds < 45 else f"about {max(1, round(seconds / 60))} min"


def _span(low: float, high: float) -> str:
    lo, hi = max(1, round(low / 60)), max(1, round(high / 60))
    if lo == hi:
        return _minutes(high)
    return f"under a minute to {hi} min" if low < 45 else f"{lo} to {hi} min"


def _short(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _mib(value: float) -> str:
    if value < 1:
        return "under 1 MiB"
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def _measured(rows: pd.DataFrame, chapter: str, profile: str) -> pd.Series | None:
    found = rows[(rows["chapter"] == chapter) & (rows["profile"] == profile)]
    return found.iloc[-1] if len(found) else None


def chapter_costs(
    chapters: Sequence[str],
    timing_csv: str | Path = QUICK_TIMING_CSV,
    alone_csv: str | Path = ALONE_CSV,
) -> pd.DataFrame:
    """One row per chapter: its quick time in the book, its quick time run alone, its
    smoke time and disk run alone, and its disk with quick, as the README shows them
    (``"not measured"`` where the committed tables hold nothing)."""
    book = _book_seconds(timing_csv)
    alone = _alone_rows(alone_csv)
    rows = []
    for chapter in chapters:
        span = alone_seconds(chapter, book)
        smoke = _measured(alone, chapter, "smoke")
        quick = _measured(alone, chapter, "quick")
        rows.append(
            {
                "chapter": chapter,
                "quick, in the book": _minutes(book[chapter]) if chapter in book else NOT,
                "quick, run alone": _quick_alone(span, quick),
                "smoke, run alone": NOT if smoke is None else _short(float(smoke["seconds"])),
                "disk, run alone": _disk(smoke, quick),
            }
        )
    return pd.DataFrame(rows)


def _quick_alone(span: tuple[float, float] | None, quick: pd.Series | None) -> str:
    if quick is not None:
        return f"{_minutes(float(quick['seconds']))} (measured)"
    return NOT if span is None else f"{_span(*span)} (estimated)"


def _disk(smoke: pd.Series | None, quick: pd.Series | None) -> str:
    parts = []
    for profile, row in (("smoke", smoke), ("quick", quick)):
        if row is None or any(_missing(row[c]) for c in DISK_COLUMNS):
            parts.append(f"{profile}: {NOT}")
        else:
            parts.append(f"{profile}: {_mib(sum(float(row[c]) for c in DISK_COLUMNS))}")
    return "; ".join(parts)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ----------------------------------------------------------------------------- README


def handout_readme(
    chapters: Sequence[str],
    timing_csv: str | Path = QUICK_TIMING_CSV,
    alone_csv: str | Path = ALONE_CSV,
) -> str:
    """The handout's README.md for the chapters ``chapters`` (notebook stems)."""
    costs = chapter_costs(chapters, timing_csv, alone_csv)
    cpus = _cpu_count(timing_csv)
    table = _markdown_table(costs)
    needs = [_need_line(c) for c in chapters if c in NEEDS]
    parts = [
        README_TITLE,
        _INTRO.format(version=prreid_lib.__version__),
        _SETUP,
        _PROFILES,
        "## Time and disk per chapter\n\n" + _COSTS_INTRO.format(cpus=cpus or "?").strip(),
        table + _conditions(_alone_rows(alone_csv), chapters),
        _ALONE_INTRO + ("\n".join(needs) if needs else "None of these chapters needs another."),
        _ORDER,
        _READING,
    ]
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


def _conditions(alone: pd.DataFrame, chapters: Sequence[str]) -> str:
    """A sentence on the cores and their load when the runs alone were measured."""
    rows = alone[alone["chapter"].isin(list(chapters))]
    if not len(rows) or "load_1min" not in rows or rows["load_1min"].isna().all():
        return ""
    load = rows["load_1min"].dropna()
    cpus = ", ".join(str(int(c)) for c in sorted(rows["cpu_count"].dropna().unique()))
    return (
        f"\n\nThe runs alone were measured on {cpus} CPU cores under a load average of "
        f"{load.min():.1f} to {load.max():.1f} (other work shared the cores): on an idle "
        "machine they take less time; the disk they need does not change."
    )


def _markdown_table(costs: pd.DataFrame) -> str:
    head = "| " + " | ".join(costs.columns) + " |"
    rule = "|" + "---|" * len(costs.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in costs.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _need_line(chapter: str) -> str:
    what = "; ".join(
        f"{n.what} ({'all' if n.whole else 'part'} of {n.chapter}'s time)" for n in NEEDS[chapter]
    )
    return f"- `{chapter}` alone also trains {what}."


_INTRO = """
The chapters of the prreid book (a reproduction of *Part-regularized Near-duplicate
Vehicle Re-identification*, He et al., CVPR 2019) as notebooks to work through: the
exercises are kept, their solutions and every output are removed. Written by
`prreid handout` (prreid {version}).
"""

_SETUP = """
## Before the lab

The notebooks import `prreid_lib`. In a clone of the prreid repository (Python 3.11),
`make install` (or `make book`, `make test`) installs it with JupyterLab. Put this folder
in the clone as `handout/` (any other path works too) and, from the clone's folder, run

```bash
.venv/bin/jupyter lab handout/
```

A chapter run in Jupyter writes beside its notebook, in this folder: the SynthVeh data
set to `data/synthveh/<profile>-seed<data_seed>/` and its trainings and tables to
`runs/<profile>/`. Writing the handout again replaces a notebook only while its cells
are as written (outputs aside): one with answers in it is kept, and the command stops.
"""

_PROFILES = """
## Which profile

Each notebook's `parameters` cell (its first code cell, `profile = "quick"`) picks the
profile; change it there before running all cells.

- `smoke`: a few dozen identities, one epoch: checks that a notebook runs. Its numbers
  are noise.
- `quick` (the default): the lab on a laptop; 2 CPU cores suffice, no GPU needed.

Without Jupyter, one chapter runs as
`.venv/bin/papermill handout/01_data.ipynb out.ipynb -p profile smoke --cwd handout`.
"""

_COSTS_INTRO = """
"quick, in the book": the chapter's wall time in the last full `quick` build on {cpus}
CPU cores, run in order after the chapters before it
(`benchmarks/results/book_timing_quick.csv`). "run alone": the chapter run first, in an
empty folder: it then also generates SynthVeh and trains what earlier chapters would
have (below). The quick estimate adds those steps' times from the same build; where a
chapter needs only part of an earlier chapter's work the estimate is a range up to all
of it. "smoke, run alone" and "disk, run alone" (what the chapter alone left in
`data/`, `runs/` and the image cache) are measured by `benchmarks/bench_handout.py`
(`benchmarks/results/handout_alone.csv`). "not measured" means no such measurement is
recorded. The trainings keep their decoded images in `~/.cache/prreid/` (or
`$PRREID_CACHE_DIR`), outside this folder.
"""

_ALONE_INTRO = """
What a chapter run alone also trains (the run cache would hold it had the earlier
chapter run first):

"""

_ORDER = """
Running the chapters in order is the cheapest: the run cache, the folder `runs/<profile>/`
where every training is kept under a hash of its settings, data and seed, lets a later
chapter load a model an earlier one trained instead of training it again. Chapter 3 writes
part detections that chapters 4 to 8 train on when they exist (`part_source = "auto"`;
otherwise SynthVeh's own part boxes): run chapter 3 before chapter 4, or not at all,
since detections written after chapter 4 ran make chapters 5 to 8 train their models
again on the detected boxes.
"""

_READING = """
## Reading the notebooks

- Text such as {glue:text}`ch04_base_cmc1:.3f` is filled in with the chapter's number
  in the HTML book (`make book`); in Jupyter it stays as written: the number is in the
  table of glued values (`name`, `value`) that the cell above it prints.
- References such as {doc}`../method` and {cite}`he2019part` point to the book's pages
  and bibliography, in `book/` of the repository.
- Each chapter's exercises stand under its heading "Exercises"; their solutions are in
  the book.
"""
