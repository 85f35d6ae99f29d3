"""Run the book's chapters with papermill and build the HTML book.

`prreid book` (and `make book`) call :func:`run_chapters` then :func:`build_book`.
Every chapter is a parameterized notebook in ``notebooks/``; the executed copies
land in ``book/_generated/`` where ``_toc.yml`` expects them. The kernel's own
startup warning about its unencrypted local TCP transport is filtered out of its
log (:data:`KERNEL_CONFIG`); every other message of the kernel still shows.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from prreid_lib.errors import PrreidError
from prreid_lib.heap import heap_reuse_for_children
from prreid_lib.memory import PeakChildMemory

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
GENERATED_DIR = REPO_ROOT / "book" / "_generated"
TIMINGS_FILE = "chapter_timings.csv"
KERNEL_WARNING = "running over TCP without encryption"
"""The part of the warning ipykernel logs at startup on the TCP transport papermill
uses (ipykernel 7); the kernel and papermill talk over the loopback interface."""
KERNEL_CONFIG = f"""# Kernel configuration of prreid_lib.chapters (loaded with --config).
import logging


class QuietTransportWarning(logging.Filter):
    \"\"\"Drop the kernel's warning about its local TCP transport; keep every other record.\"\"\"

    def filter(self, record):
        return {KERNEL_WARNING!r} not in record.getMessage()


c.IPKernelApp.logging_config = {{
    "filters": {{"prreid_quiet_transport": {{"()": QuietTransportWarning}}}},
    "handlers": {{"console": {{"filters": ["prreid_quiet_transport"]}}}},
}}
"""
"""A kernel configuration file: the kernel's log handler drops :data:`KERNEL_WARNING`."""


def output_dir_for(profile: str, output_dir: str | None = None) -> str:
    """Where a profile's runs and tables go: ``output_dir``, or ``runs/<profile>`` by default
    (the same default for ``prreid book``, ``prreid archive`` and every chapter)."""
    return str(output_dir) if output_dir else str(Path("runs") / profile)


def as_list(value: object, name: str = "value") -> list | None:
    """A list parameter as a list, whichever way papermill passed it.

    ``-y "seeds: [0, 1, 2]"`` gives a list, ``-p seeds "[0, 1, 2]"`` the string
    ``"[0, 1, 2]"``: both give ``[0, 1, 2]``. ``None`` stays ``None`` (the
    chapter's default); a tuple becomes a list. Anything else raises a
    :class:`ValueError` that names the parameter.
    """
    import ast

    if value is None or isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list | tuple):
            return list(parsed)
    raise ValueError(
        f'{name} must be a list such as [0, 1, 2] (papermill: -p {name} "[0, 1, 2]" or '
        f'-y "{name}: [0, 1, 2]"), or None for the chapter\'s default; got {value!r}'
    )


class ChapterFailed(RuntimeError):
    """A chapter raised while papermill executed it; the message names the executed copy."""


@dataclass(frozen=True)
class ChapterParameters:
    """The parameters every chapter's ``parameters`` cell defines."""

    profile: str = "quick"
    data_root: str | None = None
    seed: int = 0
    device: str = "auto"
    output_dir: str = "runs"
    data_seed: int = 0

    def as_dict(self) -> dict[str, object]:
        """Parameters as papermill expects them (``seed`` trains, ``data_seed`` makes SynthVeh)."""
        return {
            "profile": self.profile,
            "data_root": self.data_root,
            "seed": self.seed,
            "data_seed": self.data_seed,
            "device": self.device,
            "output_dir": self.output_dir,
        }


def list_chapters(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The source notebooks in book order (by file name: ``01_data.ipynb`` ...)."""
    chapters = sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not chapters:
        raise FileNotFoundError(
            f"no chapter notebooks (NN_name.ipynb) in {notebook_dir}; run from a prreid checkout"
        )
    return chapters


def run_chapter(
    notebook: Path,
    output: Path,
    params: ChapterParameters,
    cwd: Path = REPO_ROOT,
    kernel: str = "python3",
) -> float:
    """Execute one chapter with papermill; return its wall time in seconds.

    A failing cell raises :class:`ChapterFailed`; the executed notebook, with
    the error in it, stays at ``output`` for inspection.
    """
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with quiet_kernel_arguments() as extra_arguments:
            pm.execute_notebook(
                str(notebook),
                str(output),
                parameters=params.as_dict(),
                kernel_name=kernel,
                cwd=str(cwd),
                progress_bar=False,
                extra_arguments=extra_arguments,
            )
    except pm.PapermillExecutionError as err:
        raise ChapterFailed(
            f"chapter {notebook.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"the executed notebook with the full traceback is {output}"
        ) from None
    return time.perf_counter() - start


@contextmanager
def quiet_kernel_arguments() -> Iterator[list[str]]:
    """Kernel command-line arguments that load :data:`KERNEL_CONFIG` (a temporary file,
    removed on exit): ``["--config=/tmp/.../kernel_config.py"]``."""
    with tempfile.TemporaryDirectory(prefix="prreid-kernel-") as folder:
        path = Path(folder) / "kernel_config.py"
        path.write_text(KERNEL_CONFIG, encoding="utf-8")
        yield [f"--config={path}"]


def largest_step(profile: str) -> tuple[int, int]:
    """The largest batch size and input size any training of ``profile`` uses (chapter 7
    trains at its study's input sizes), for :func:`~prreid_lib.heap.heap_reuse_for_children`."""
    from prreid_lib.config import get_profile

    prof = get_profile(profile)
    batch = max(prof.train.batch_size, prof.pretrain.batch_size if prof.pretrain else 0)
    return batch, max(prof.train.input_size, *prof.study.input_sizes)


def run_chapters(
    params: ChapterParameters,
    chapters: Sequence[Path] | None = None,
    generated_dir: Path = GENERATED_DIR,
    cwd: Path = REPO_ROOT,
    on_done: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """Execute every chapter in order; return a table of per-chapter wall times and the
    peak memory of each chapter's kernel (``peak GiB``,
    :class:`~prreid_lib.memory.PeakChildMemory`).

    The table is also written to ``<output_dir>/chapter_timings.csv`` before each
    chapter starts, so the appendix chapter can show the times of those before it.
    """
    chapters = list(chapters) if chapters is not None else list_chapters()
    timings_csv = _ensure_dir(cwd / params.output_dir) / TIMINGS_FILE
    columns = ["chapter", "seconds", "peak GiB"]
    rows: list[dict[str, object]] = []
    step = largest_step(params.profile)
    for notebook in chapters:
        pd.DataFrame(rows, columns=columns).to_csv(timings_csv, index=False)
        with heap_reuse_for_children(*step), PeakChildMemory() as memory:
            seconds = run_chapter(notebook, generated_dir / notebook.name, params, cwd=cwd)
        rows.append(
            {"chapter": notebook.stem, "seconds": round(seconds, 1),
             "peak GiB": round(memory.peak_gib, 2)}
        )  # fmt: skip
        if on_done is not None:
            on_done(notebook.stem, seconds)
    table = pd.DataFrame(rows, columns=columns)
    table.to_csv(timings_csv, index=False)
    return table


def build_book(root: Path = REPO_ROOT, strict: bool = True) -> Path:
    """Build the HTML book with Jupyter Book 1 (warnings are errors when ``strict``).

    Returns the path of ``index.html``; raises :class:`~prreid_lib.errors.PrreidError`
    (a ``RuntimeError``) with the build log's
    tail when the build fails.
    """
    draw_figures(root)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(root), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr)[-6000:]
        raise PrreidError(f"jupyter-book build of {root} failed:\n{log}")
    return root / "_build" / "html" / "index.html"


def draw_figures(root: Path = REPO_ROOT) -> list[Path]:
    """Run every ``book/figures/<name>.py`` script, writing ``book/_static/<name>.png``.

    The book's own figures (the method page's architecture) are drawn from code at
    build time and never committed as images.
    """
    written = []
    for script in sorted((root / "book" / "figures").glob("*.py")):
        output = root / "book" / "_static" / f"{script.stem}.png"
        proc = subprocess.run(
            [sys.executable, str(script), str(output)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise PrreidError(f"{script} failed to draw {output}:\n{proc.stderr[-3000:]}")
        written.append(output)
    return written


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
