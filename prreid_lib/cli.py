"""The ``prreid`` command: synth, train, detect, evaluate, extract, search, export, book, archive.

Each sub-command is a thin wrapper over one library function; errors a user
can fix (a wrong path, a bad profile name, a malformed file, an unknown option)
are printed as one line naming the culprit, without a traceback, and exit with
status 2; ``--debug`` (anywhere on the line) shows the traceback instead.
Options are checked right after parsing (:mod:`prreid_lib.argcheck`), before
anything is read or written. Ctrl-C (or SIGTERM) prints one line saying what
was kept and how to resume, and exits with status 130 (143 for SIGTERM).
``prreid --version`` prints the version (``prreid_lib.__version__``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import prreid_lib
from prreid_lib import argcheck
from prreid_lib.config import PROFILES, get_profile
from prreid_lib.errors import PrreidError

if TYPE_CHECKING:
    from prreid_lib.chapters import ChapterParameters

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, PrreidError)
"""Printed as one line: bad values and files (``ValueError``, data-set format errors),
missing or unwritable paths and full disks (``OSError``), failures prreid explains
itself (:class:`~prreid_lib.errors.PrreidError`). Other errors keep their traceback."""
DELEGATES = ("train", "detect", "evaluate", "extract", "search", "export")
"""Sub-commands whose own parser reads the rest of the line (and refuses unknown options)."""
RERUN = "run the same command again"
KEPT_ON_INTERRUPT = {
    "train": f"no epoch finished, so no new checkpoint was kept; {RERUN}",
    "detect": f"the detector training did not finish; {RERUN}",
    "evaluate": f"nothing was written; {RERUN}",
    "extract": f"nothing was written; {RERUN}",
    "search": f"nothing was written; {RERUN}",
    "export": f"nothing was written; {RERUN}",
    "synth": f"no new data set was written; {RERUN}",
    "book": f"runs that finished are kept and reused; {RERUN}",
    "archive": f"{RERUN} (the archive is replaced as a whole)",
    "handout": f"some notebooks may be missing; {RERUN}",
}
"""What an interrupted sub-command kept, when it does not say more itself."""


def version() -> str:
    """The version of the code that runs: ``prreid_lib.__version__``.

    pyproject.toml reads the distribution's version from there too; the installed
    metadata of an editable install keeps the version of its last install.
    """
    return prreid_lib.__version__


def _cmd_synth(args: argparse.Namespace) -> int:
    from prreid_lib.synthveh import generate_synthveh

    argcheck.seed("--seed", args.seed)
    argcheck.output_folder("--out", args.out)
    start = time.perf_counter()
    try:
        root = generate_synthveh(get_profile(args.profile).synth, Path(args.out), seed=args.seed)
    except KeyboardInterrupt:
        raise argcheck.Interrupted(_synth_kept(Path(args.out))) from None
    print(
        f"SynthVeh ({args.profile}, seed {args.seed}) written to {root} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _synth_kept(out: Path) -> str:
    """What an interrupted ``prreid synth`` left in ``out`` (a manifest marks a whole data set)."""
    import json

    from prreid_lib.synthveh_files import MANIFEST

    try:
        seed = json.loads((out / MANIFEST).read_text())["seed"]
    except (OSError, ValueError, TypeError, KeyError):
        return f"no data set was written to {out}; {RERUN}"
    return f"the complete data set in {out} (seed {seed}) was kept; {RERUN} to replace it"


def _cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    from prreid_lib import train

    return int(train.main(rest) or 0)


def _cmd_detect(args: argparse.Namespace, rest: list[str]) -> int:
    from prreid_lib import detector

    return int(detector.main(rest) or 0)


def _cmd_evaluate(args: argparse.Namespace, rest: list[str]) -> int:
    from prreid_lib import evaluate

    return int(evaluate.main(rest) or 0)


def _cmd_extract(args: argparse.Namespace, rest: list[str]) -> int:
    from prreid_lib import extract

    return int(extract.main(rest) or 0)


def _cmd_search(args: argparse.Namespace, rest: list[str]) -> int:
    from prreid_lib import search

    return int(search.main(rest) or 0)


def _cmd_export(args: argparse.Namespace, rest: list[str]) -> int:
    from prreid_lib import export

    return int(export.main(rest) or 0)


def _cmd_book(args: argparse.Namespace) -> int:
    from prreid_lib.chapters import REPO_ROOT, ChapterParameters, list_chapters, output_dir_for

    argcheck.data_source(args)
    argcheck.seed("--seed", args.seed)
    argcheck.device("--device", args.device)
    output_dir = output_dir_for(args.profile, args.output_dir)
    argcheck.output_folder("--output-dir", REPO_ROOT / output_dir)
    params = ChapterParameters(
        args.profile, args.data_root, args.seed, args.device, output_dir, args.data_seed
    )
    chapters = _chosen_chapters(list_chapters(), args.chapters)
    if args.data_root is not None:  # real data: labels and VehicleID checked before any chapter
        from prreid_lib.studies.data import check_book_data

        check_book_data(args.data_root, [c.stem for c in chapters])
    total = time.perf_counter()
    steps: list[tuple[str, float]] = []
    try:
        return _book_steps(args, params, chapters, output_dir, steps, total)
    except KeyboardInterrupt:
        done = [name for name, _ in steps if name in {c.stem for c in chapters}]
        finished = f"chapters {', '.join(done)} finished" if done else "no chapter finished"
        raise argcheck.Interrupted(
            f"{finished}; the runs in {output_dir} are kept: {RERUN} (finished runs are "
            "reused, an interrupted one resumes from its last epoch)"
        ) from None


def _chosen_chapters(chapters: list[Path], prefixes: list[str] | None) -> list[Path]:
    """The chapters whose name starts with one of ``prefixes`` (all without); each must match."""
    if prefixes is None:
        return chapters
    if not prefixes:
        raise argcheck.OptionError("--chapters", "", "no chapter given", "pass prefixes: 01 04")
    for prefix in prefixes:
        if not any(c.stem.startswith(prefix) for c in chapters):
            names = ", ".join(c.stem for c in chapters)
            raise argcheck.OptionError(
                "--chapters", prefix, "no chapter name starts with it", f"pass a prefix of {names}"
            )
    return [c for c in chapters if any(c.stem.startswith(k) for k in prefixes)]


def _book_steps(
    args: argparse.Namespace,
    params: ChapterParameters,
    chapters: list[Path],
    output_dir: str,
    steps: list[tuple[str, float]],
    total: float,
) -> int:
    """Make the data, execute ``chapters``, build the HTML book; times go to ``steps``."""
    from prreid_lib.book_timing import timing_table, write_timing
    from prreid_lib.chapters import build_book, run_chapters

    if args.data_root is None and get_profile(args.profile).real_data is None:
        from prreid_lib.synthveh import ensure_synthveh

        start = time.perf_counter()
        root = ensure_synthveh(args.profile, seed=args.data_seed)
        steps.append(("SynthVeh", time.perf_counter() - start))
        print(f"[data] SynthVeh {args.profile} at {root} ({steps[-1][1]:.1f} s)", flush=True)

    def report(name: str, seconds: float) -> None:
        steps.append((name, seconds))
        print(f"[chapter] {name:<24s} {seconds:7.1f} s", flush=True)

    print(f"[book] running {len(chapters)} chapters with profile {args.profile!r}", flush=True)
    run_chapters(params, chapters, on_done=report)
    timing_csv = write_timing(timing_table(steps, args.profile), output_dir)
    if not args.no_build:
        start = time.perf_counter()
        index = build_book()
        steps.append(("HTML build", time.perf_counter() - start))
        print(f"[build] HTML book built in {steps[-1][1]:.1f} s", flush=True)
        write_timing(timing_table(steps, args.profile), output_dir)
    print("\nTime per step (s):")
    print(timing_table(steps, args.profile)[["step", "seconds"]].to_string(index=False))
    print(f"total {time.perf_counter() - total:.1f} s; the table is in {timing_csv}")
    if not args.no_build:
        print(f"\nOpen the book: {index}")
    return 0


def _cmd_archive(args: argparse.Namespace) -> int:
    from prreid_lib.chapters import output_dir_for
    from prreid_lib.results import PROVENANCE_FILE, RESULTS_ROOT, archive_tables

    output_dir = output_dir_for(args.profile, args.output_dir)
    fix = f"pass the --output-dir of the prreid book build of profile {args.profile}"
    argcheck.input_folder("--output-dir", output_dir, fix)
    results = args.results or RESULTS_ROOT
    argcheck.output_folder("--results", results)
    mine = Path(results) / args.profile
    if mine.exists() and not (mine / PROVENANCE_FILE).is_file():
        raise argcheck.OptionError(
            "--results",
            results,
            f"{mine} exists and holds no {PROVENANCE_FILE}, so prreid archive did not write it",
            f"pass another --results or move {mine} away yourself",
        )
    dest = archive_tables(args.profile, output_dir, results)
    print(f"archived the tables of {output_dir} in {dest} (commit them with git)")
    return 0


def _cmd_handout(args: argparse.Namespace) -> int:
    from prreid_lib.chapters import list_chapters
    from prreid_lib.handout import write_handout

    out = argcheck.output_folder("--out", args.out, "pass a folder to write the notebooks in")
    chapters = _chosen_chapters(list_chapters(), args.chapters)
    write_handout(out, chapters)
    print(
        f"wrote {len(chapters)} student notebook{'s' * (len(chapters) != 1)} and README.md "
        f"to {out}; "
        f"open them with: .venv/bin/jupyter lab {out}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``prreid`` console script."""
    parser = argcheck.Parser(prog="prreid", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"prreid {version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    profiles = sorted(PROFILES)

    synth = sub.add_parser(
        "synth",
        help="generate the SynthVeh data set",
        description="Generate SynthVeh and write it under --out in the official layouts: "
        "OUT/VeRi-776/, OUT/VehicleID/ and OUT/parts/ (YOLO part labels, data.yaml).",
    )
    synth.add_argument("--profile", choices=profiles, default="quick", help="SynthVeh size")
    synth.add_argument("--seed", type=int, default=0, help="SynthVeh seed")
    synth.add_argument("--out", required=True, help="output folder (VeRi-776/, VehicleID/, parts/)")

    for name, text in (
        ("train", "train one re-id model (see `prreid train --help`)"),
        ("detect", "train the YOLO part detector / predict part boxes"),
        ("evaluate", "evaluate a trained run on a protocol"),
        ("extract", "features of a folder of images: FEATS.npy + FEATS.csv (see --help)"),
        ("search", "rank a gallery for query images: OUT.csv + OUT.png (see --help)"),
        ("export", "a run's test-time model as ONNX or TorchScript (see --help)"),
    ):
        sub.add_parser(name, help=text, add_help=False)

    book = sub.add_parser(
        "book",
        help="execute every chapter with papermill and build the book",
        description="Execute every chapter with papermill and build the HTML book. Writes "
        "SynthVeh to data/synthveh/<profile>-seed<data-seed>/ (unless --data-root), runs "
        "and tables to --output-dir (default runs/<profile>), with the time of each step in "
        "book_timing.csv there, executed chapters to book/_generated/ and the HTML book to "
        "_build/html/ (index.html).",
    )
    book.add_argument("--profile", choices=profiles, default="quick", help="runs and data size")
    book.add_argument(
        "--data-root",
        default=None,
        help="real VeRi-776 / VehicleID folder (default: the profile's SynthVeh, generated)",
    )
    book.add_argument("--seed", type=int, default=0, help="training seed")
    book.add_argument(
        "--data-seed", type=int, help="SynthVeh seed (default: 0; only without --data-root)"
    )
    book.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    book.add_argument("--output-dir", default=None, help="runs folder (default: runs/<profile>)")
    book.add_argument(
        "--chapters", nargs="*", help="only chapters starting so: 01 04 (default: all)"
    )
    book.add_argument("--no-build", action="store_true", help="execute only, do not build HTML")

    archive = sub.add_parser(
        "archive",
        help="keep a build's result tables in results/<profile>/ with provenance",
        description="Writes copies of the result tables of a build (runs/<profile>/tables/ or "
        "OUTPUT_DIR/tables/) to RESULTS/<profile>/ (default results/<profile>/) with a "
        "provenance.json, to commit.",
    )
    archive.add_argument("--profile", choices=profiles, required=True, help="the build's profile")
    archive.add_argument("--output-dir", default=None, help="runs folder (default: runs/<profile>)")
    archive.add_argument("--results", default=None, help="archive root (default: results/)")

    handout = sub.add_parser(
        "handout",
        help="the chapters as student notebooks: no solutions, no outputs, with a README",
        description="Writes the chapters to --out as notebooks for a course: exercises kept, "
        "solutions and outputs removed, and a README.md saying which profile to use and "
        "what each chapter costs run alone.",
    )
    handout.add_argument("--out", required=True, help="folder to write (e.g. handout)")
    handout.add_argument(
        "--chapters", nargs="*", help="only chapters starting so: 01 04 (default: all)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prreid`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in DELEGATES:
        print(
            f"prreid {args.command}: error: unrecognized arguments: {' '.join(rest)} "
            f"(see prreid {args.command} --help)",
            file=sys.stderr,
        )
        return 2
    received: list[int] = []
    restore = _terminate_as_interrupt(received)
    try:
        return _run(args, rest)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"prreid {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        if debug:
            raise
        kept = str(err) if isinstance(err, argcheck.Interrupted) and str(err) else ""
        kept = kept or KEPT_ON_INTERRUPT[args.command]
        print(f"prreid {args.command}: interrupted: {kept}", file=sys.stderr)
        return 128 + (received[0] if received else signal.SIGINT)
    finally:
        restore()


def _terminate_as_interrupt(received: list[int]) -> Callable[[], None]:
    """Make SIGTERM raise ``KeyboardInterrupt`` (its number noted in ``received``).

    Returns what puts the old handler back; outside the main thread, where
    Python sets no handler, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)

    return restore


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    """Run the sub-command ``args.command`` (``rest``: the line its own parser reads)."""
    own = {
        "synth": _cmd_synth,
        "book": _cmd_book,
        "archive": _cmd_archive,
        "handout": _cmd_handout,
    }
    if args.command in own:
        return own[args.command](args)
    delegates = {
        "train": _cmd_train,
        "detect": _cmd_detect,
        "evaluate": _cmd_evaluate,
        "extract": _cmd_extract,
        "search": _cmd_search,
        "export": _cmd_export,
    }
    return delegates[args.command](args, rest)


if __name__ == "__main__":
    sys.exit(main())
