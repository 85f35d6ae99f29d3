"""The ``prreid`` console script: synth, train, detect, evaluate, extract, export, book, archive.

Each sub-command is a thin wrapper over one library function; errors a user
can fix (a wrong path, a bad profile name, a malformed file, an unknown option)
are printed as one line naming the culprit, without a traceback, and exit with
status 2; ``--debug`` (anywhere on the line) shows the traceback instead.
``prreid --version`` prints the installed version.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from prreid_lib.config import PROFILES, get_profile
from prreid_lib.errors import PrreidError

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, PrreidError)
"""Printed as one line: bad values and files (``ValueError``, data-set format errors),
missing or unwritable paths and full disks (``OSError``), failures prreid explains
itself (:class:`~prreid_lib.errors.PrreidError`). Other errors keep their traceback."""
DELEGATES = ("train", "detect", "evaluate", "extract", "export")
"""Sub-commands whose own parser reads the rest of the line (and refuses unknown options)."""


def version() -> str:
    """The installed ``prreid`` distribution's version (else ``prreid_lib.__version__``)."""
    try:
        return metadata.version("prreid")
    except metadata.PackageNotFoundError:
        import prreid_lib

        return getattr(prreid_lib, "__version__", "unknown")


def _cmd_synth(args: argparse.Namespace) -> int:
    from prreid_lib.synthveh import generate_synthveh

    start = time.perf_counter()
    root = generate_synthveh(get_profile(args.profile).synth, Path(args.out), seed=args.seed)
    print(
        f"SynthVeh ({args.profile}, seed {args.seed}) written to {root} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


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


def _cmd_export(args: argparse.Namespace, rest: list[str]) -> int:
    from prreid_lib import export

    return int(export.main(rest) or 0)


def _cmd_book(args: argparse.Namespace) -> int:
    from prreid_lib.book_timing import timing_table, write_timing
    from prreid_lib.chapters import (
        ChapterParameters,
        build_book,
        list_chapters,
        output_dir_for,
        run_chapters,
    )

    output_dir = output_dir_for(args.profile, args.output_dir)
    params = ChapterParameters(
        args.profile, args.data_root, args.seed, args.device, output_dir, args.data_seed
    )
    chapters = list_chapters()
    if args.chapters:
        chapters = [c for c in chapters if any(c.stem.startswith(k) for k in args.chapters)]
    total = time.perf_counter()
    steps: list[tuple[str, float]] = []
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
    from prreid_lib.results import RESULTS_ROOT, archive_tables

    output_dir = output_dir_for(args.profile, args.output_dir)
    dest = archive_tables(args.profile, output_dir, args.results or RESULTS_ROOT)
    print(f"archived the tables of {output_dir} in {dest} (commit them with git)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``prreid`` console script."""
    parser = argparse.ArgumentParser(prog="prreid", description=__doc__.splitlines()[0])
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
    synth.add_argument("--profile", choices=profiles, default="quick")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, help="output folder (VeRi-776/, VehicleID/, parts/)")

    for name, text in (
        ("train", "train one re-id model (see `prreid train --help`)"),
        ("detect", "train the YOLO part detector / predict part boxes"),
        ("evaluate", "evaluate a trained run on a protocol"),
        ("extract", "features of a folder of images: FEATS.npy + FEATS.csv (see --help)"),
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
    book.add_argument("--profile", choices=profiles, default="quick")
    book.add_argument("--data-root", default=None, help="real VeRi-776 / VehicleID folder")
    book.add_argument("--seed", type=int, default=0, help="training seed")
    book.add_argument("--data-seed", type=int, default=0, help="SynthVeh seed (the data set)")
    book.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    book.add_argument("--output-dir", default=None, help="runs folder (default runs/<profile>)")
    book.add_argument("--chapters", nargs="*", help="only chapters starting so: 01 04")
    book.add_argument("--no-build", action="store_true", help="execute only, do not build HTML")

    archive = sub.add_parser(
        "archive",
        help="keep a build's result tables in results/<profile>/ with provenance",
        description="Writes copies of the result tables of a build (runs/<profile>/tables/ or "
        "OUTPUT_DIR/tables/) to RESULTS/<profile>/ (default results/<profile>/) with a "
        "provenance.json, to commit.",
    )
    archive.add_argument("--profile", choices=profiles, required=True)
    archive.add_argument("--output-dir", default=None, help="runs folder (default runs/<profile>)")
    archive.add_argument("--results", default=None, help="archive root (default results/)")
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
    try:
        if args.command == "synth":
            return _cmd_synth(args)
        if args.command == "book":
            return _cmd_book(args)
        if args.command == "archive":
            return _cmd_archive(args)
        delegates = {
            "train": _cmd_train,
            "detect": _cmd_detect,
            "evaluate": _cmd_evaluate,
            "extract": _cmd_extract,
            "export": _cmd_export,
        }
        return delegates[args.command](args, rest)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"prreid {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
