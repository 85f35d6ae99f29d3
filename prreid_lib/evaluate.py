"""Glue between a trained model and the test protocols of :mod:`prreid_lib.metrics`.

:func:`image_features` decodes a DataFrame's images at the training size and
extracts the test descriptor (the global feature, paper Sec. 4.2; the
concatenated part features for a parts-only model, which needs part boxes of
the test images). :func:`evaluate_vehicleid` runs the VehicleID protocol (one
random gallery image per identity, repeated trials), :func:`evaluate_veri`
the VeRi-776 image-to-image and image-to-track protocols.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from prreid_lib import metrics
from prreid_lib.datasets._parsing import read_lines, short_list
from prreid_lib.model import PartRegularizedReID, extract_features
from prreid_lib.parts import boxes_to_masks
from prreid_lib.pipeline.imageset import ReIDImageSet, default_cache_dir
from prreid_lib.reranking import RerankOptions
from prreid_lib.runs import MODEL, load_torch_file

if TYPE_CHECKING:
    from prreid_lib.datasets.vehicleid import VehicleID
    from prreid_lib.datasets.veri776 import VeRi776


def _input_size(model: PartRegularizedReID, input_size: int | None) -> int:
    size = input_size or getattr(model, "input_size", None)
    if size is None:
        raise ValueError(
            "input_size is unknown: pass input_size= (the training size) or a model from "
            "prreid_lib.runs.load_trained / train_reid, which carries it"
        )
    return int(size)


def image_features(
    model: PartRegularizedReID,
    frame: pd.DataFrame,
    part_boxes: pd.DataFrame | None = None,
    *,
    input_size: int | None = None,
    mode: str | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
) -> torch.Tensor:
    """Descriptors (N, D) of the images of ``frame`` (columns ``path``, ``pid``).

    ``mode`` as in :meth:`PartRegularizedReID.features` (default: global, or
    parts for a parts-only model); part modes need ``part_boxes`` for these
    images. Images are resized to ``input_size`` (default: the model's
    training size) and cached like the training images.
    """
    mode = mode or ("global" if model.use_global else "parts")
    size = _input_size(model, input_size)
    needs_parts = mode != "global"
    if needs_parts and part_boxes is None:
        raise ValueError(
            f"mode {mode!r} uses part features: pass part_boxes for the test images "
            "(ground truth or detected), or use mode='global'"
        )
    data = ReIDImageSet(
        frame,
        part_boxes if needs_parts else None,
        size,
        model.parts if needs_parts else (),
        cache_dir if cache_dir is not None else default_cache_dir(),
        relabel=False,
    )
    masks = None
    if needs_parts:
        masks = boxes_to_masks(data.boxes, data.box_valid, model.grid_size(size))
    return extract_features(model, data.images, masks, batch_size, device, mode)


def refuse_repeated_images(frame: pd.DataFrame, what: str) -> None:
    """Raise ``ValueError`` when a ``path`` occurs twice in ``frame`` (rows named).

    A test image listed twice is drawn as its own gallery match and inflates
    every score. Frames without a ``path`` column are not checked.
    """
    if "path" not in frame.columns or not len(frame):
        return
    paths = frame["path"].astype(str).to_numpy()
    repeated = np.flatnonzero(pd.Series(paths).duplicated().to_numpy())
    if repeated.size:
        first = {p: i for i, p in reversed(list(enumerate(paths)))}
        items = [f"{paths[i]} (rows {first[paths[i]]} and {i})" for i in repeated]
        raise ValueError(
            f"{what}: expected each test image once; found {len(items)} repeated: "
            f"{short_list(items)}; fix: drop the repeated rows "
            "(frame.drop_duplicates('path')) or load the data with prreid_lib.datasets"
        )


def run_training_identities(run_dir: str | Path) -> np.ndarray | None:
    """The original identities a finished run was trained on (``pid_values`` of its model.pt).

    Read without building the model; ``None`` when ``model.pt`` is missing or
    unreadable (:func:`prreid_lib.runs.load_trained` reports that).
    """
    path = Path(run_dir) / MODEL
    if not path.is_file():
        return None
    try:
        state = load_torch_file(path, "")
        values = state["pid_values"]
    except (ValueError, OSError, TypeError, KeyError, IndexError):
        return None
    values = values.numpy() if isinstance(values, torch.Tensor) else values
    return np.unique(np.asarray(values, dtype=np.int64))


def _listed_lines(path: Path) -> list[int]:
    """Line number of each entry (non-blank line) of a list file, in order."""
    return [line for line, _ in read_lines(path, "list entries")]


def refuse_run_trained_on_test(
    training: np.ndarray,
    model_file: Path,
    train: tuple[Path, pd.DataFrame],
    tests: Sequence[tuple[Path, pd.DataFrame]],
) -> bool:
    """Raise ``ValueError`` when the run's training identities include test identities.

    ``training`` are the run's identities (``model.pt``'s ``pid_values``),
    ``train`` the data set's training list and frame, ``tests`` its test
    lists and frames (rows in list order). Identity numbers are only
    comparable within one data set (SynthVeh numbers the vehicles of its
    VehicleID and VeRi-776 layouts, and of each seed, independently), so the
    check applies when the run was trained on this data set: its classes
    include every training identity listed here. Returns whether it applied.
    """
    train_path, train_frame = train
    if not np.isin(train_frame["pid"].to_numpy(), training).all():
        return False
    shared: list[tuple[int, str, int]] = []  # (line, list file, vehicle)
    for path, frame in tests:
        pids = frame["pid"].to_numpy()
        rows = np.flatnonzero(np.isin(pids, training))
        if rows.size:
            lines = _listed_lines(path)
            first = dict(zip(pids[rows][::-1].tolist(), rows[::-1].tolist(), strict=True))
            shared += [(lines[r], path.name, p) for p, r in first.items()]
    if shared:
        vehicles = {p for _, _, p in shared}
        items = [f"vehicle {p} ({name} line {line})" for line, name, p in sorted(shared)]
        names = " and ".join(str(path) for path, _ in tests)
        raise ValueError(
            f"{model_file}: expected a run trained without the test vehicles of {names}; "
            f"found {len(vehicles)} of its {training.size} training identities among them: "
            f"{short_list(items)}. Fix: evaluate a run trained on {train_path} alone "
            "(prreid train --data-root ...), or test on vehicles the run never saw"
        )
    return True


def evaluate_vehicleid(
    model: PartRegularizedReID,
    test_df: pd.DataFrame,
    *,
    part_boxes: pd.DataFrame | None = None,
    n_trials: int = 10,
    seed: int = 0,
    metric: str = "euclidean",
    max_rank: int = 50,
    rerank: RerankOptions | None = None,
    **feature_kwargs,
) -> metrics.VehicleIDResult:
    """VehicleID protocol on ``test_df``: features, then :func:`metrics.vehicleid_protocol`.

    ``metric`` "euclidean" (the paper's L2) or "cosine"; ``n_trials`` random
    gallery splits drawn from ``seed``; ``rerank`` (``k1``, ``k2``,
    ``lambda_value``; ``{}`` for the defaults) applies k-reciprocal re-ranking
    (:func:`prreid_lib.reranking.re_rank`) in each trial. Extra keyword
    arguments go to :func:`image_features`.
    """
    refuse_repeated_images(test_df, "test_df")
    feats = image_features(model, test_df, part_boxes, **feature_kwargs)
    return metrics.vehicleid_protocol(
        feats, test_df["pid"].to_numpy(), n_trials, seed, max_rank, metric=metric, rerank=rerank
    )


def evaluate_veri(
    model: PartRegularizedReID,
    veri,
    *,
    part_boxes: pd.DataFrame | None = None,
    metric: str = "euclidean",
    max_rank: int = 50,
    rerank: RerankOptions | None = None,
    **feature_kwargs,
) -> dict[str, metrics.ReIDResult]:
    """VeRi-776 protocols: ``"image"`` (image-to-image mAP/CMC) and ``"track"`` (HIT@k).

    ``veri`` is a :class:`prreid_lib.datasets.veri776.VeRi776` (``query``,
    ``gallery``, ``tracks``); same-camera matches are junk. ``rerank``
    (``k1``, ``k2``, ``lambda_value``; ``{}`` for the defaults) re-ranks the
    distances by k-reciprocal encoding (:func:`prreid_lib.reranking.re_rank`)
    before both protocols. ``"track"`` is
    left out, with a warning naming the file, when the data set has no
    ``test_track.txt`` (or the file lists no track).
    """
    refuse_repeated_images(veri.query, "veri.query")
    refuse_repeated_images(veri.gallery, "veri.gallery")
    q = image_features(model, veri.query, part_boxes, **feature_kwargs)
    g = image_features(model, veri.gallery, part_boxes, **feature_kwargs)
    ids = (
        veri.query["pid"].to_numpy(),
        veri.gallery["pid"].to_numpy(),
        veri.query["camid"].to_numpy(),
        veri.gallery["camid"].to_numpy(),
    )
    if rerank is None:
        distmat = metrics.pairwise_distance(q, g, metric)
    else:
        distmat = metrics.reranked_distance(q, g, metric, **rerank)
    out = {"image": metrics.evaluate_ranking(distmat, *ids, max_rank=max_rank)}
    if not len(veri.tracks):
        track_file = Path(getattr(veri, "root", ".")) / "test_track.txt"
        state = "lists no track" if track_file.is_file() else "not found"
        warnings.warn(
            f"{track_file} {state}: the image-to-track protocol (HIT@k) is left out; "
            "fix: re-extract test_track.txt from the official VeRi-776 archive",
            stacklevel=2,
        )
    else:
        q_pids, g_pids, q_cams, g_cams = ids
        out["track"] = metrics.evaluate_tracks(
            distmat, q_pids, q_cams, g_pids, g_cams, veri.tracks, max_rank=max_rank
        )
    return out


def veri_figures(result: Mapping[str, metrics.ReIDResult]) -> dict[str, float]:
    """One column of a VeRi-776 table from :func:`evaluate_veri`: image-to-image mAP and
    CMC@1 and, with tracks, image-to-track mAP, HIT@1 and HIT@5."""
    row = {
        "mAP (image-to-image)": result["image"].mAP,
        "CMC@1 (image-to-image)": result["image"].cmc[0],
    }
    if "track" in result:
        row.update(
            {
                "mAP (image-to-track)": result["track"].mAP,
                "HIT@1": result["track"].cmc[0],
                "HIT@5": result["track"].cmc[4],
            }
        )
    return row


RERANK_DEFAULTS = {"k1": 20, "k2": 6, "lambda_value": 0.3}
"""Defaults of --k1, --k2, --lambda-value (Zhong et al. 2017); they apply only with --rerank."""
VEHICLEID_DEFAULTS = {"test_size": 800, "n_trials": 10}
"""Defaults of --test-size and --n-trials; they apply only to --dataset vehicleid."""
MAX_TRIALS = 1000
"""Most VehicleID gallery draws (the paper reports 10); each one ranks the test set again."""
MAX_K = 1000
"""Largest re-ranking neighbourhood (--k1, --k2; the reference uses 20 and 6)."""


def add_rerank_options(parser: argparse.ArgumentParser, rerank_help: str) -> None:
    """``--rerank`` and its ``--k1``, ``--k2``, ``--lambda-value`` (left ``None`` when not
    given: :func:`checked_rerank` fills :data:`RERANK_DEFAULTS`)."""
    parser.add_argument("--rerank", action="store_true", help=rerank_help)
    parser.add_argument(
        "--k1", type=int, help="re-ranking: k-reciprocal neighbours (default: 20; with --rerank)"
    )
    parser.add_argument(
        "--k2", type=int, help="re-ranking: query expansion size (default: 6; with --rerank)"
    )
    parser.add_argument(
        "--lambda-value",
        type=float,
        help="re-ranking: weight of the original distance, 0 to 1 (default: 0.3; with --rerank)",
    )


def checked_rerank(args: argparse.Namespace) -> RerankOptions | None:
    """Refuse ``--k1``, ``--k2``, ``--lambda-value`` without ``--rerank`` or out of bounds,
    fill their defaults, and return the re-ranking options (``None`` without ``--rerank``)."""
    from prreid_lib import argcheck

    argcheck.only_with(args, RERANK_DEFAULTS, args.rerank, "with --rerank")
    argcheck.int_in("--k1", args.k1, 1, MAX_K)
    argcheck.int_in("--k2", args.k2, 1, MAX_K)
    argcheck.float_in("--lambda-value", args.lambda_value, 0.0, 1.0)
    if not args.rerank:
        return None
    return {"k1": args.k1, "k2": args.k2, "lambda_value": args.lambda_value}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``prreid evaluate``, checked: each bad one is refused naming it.

    ``args.out`` becomes the JSON file to write (``DIR/evaluation.json`` for a folder).
    """
    from prreid_lib import argcheck

    parser = argcheck.Parser(
        prog="prreid evaluate",
        description="Evaluate a finished run on the VehicleID or VeRi-776 test protocol. Prints "
        "one line per protocol on stdout (CMC@1, CMC@5, mAP, mINP); --out also writes every "
        "figure (CMC@1/5/10, mAP, mINP, and their std over the VehicleID trials) to a JSON file, "
        "under the same names for both data sets.",
    )
    parser.add_argument("--run", required=True, help="a finished run folder (holds model.pt)")
    parser.add_argument("--data-root", required=True, help="VehicleID or VeRi-776 folder")
    parser.add_argument(
        "--dataset",
        choices=("vehicleid", "veri776"),
        default="vehicleid",
        help="the protocol: vehicleid or veri776",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        help="VehicleID test list test_list_N.txt (default: 800; vehicleid only)",
    )
    parser.add_argument(
        "--metric",
        choices=("euclidean", "cosine"),
        default="euclidean",
        help="euclidean: the paper's protocol, on the raw features; cosine: fast-reid's, the "
        "ranking of Euclidean distance on L2-normalised features",
    )
    parser.add_argument(
        "--n-trials",
        type=int,
        help=f"VehicleID gallery draws, 1 to {MAX_TRIALS} (default: 10; vehicleid only)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    add_rerank_options(parser, "k-reciprocal re-ranking (Zhong et al. 2017)")
    parser.add_argument(
        "--out",
        default=None,
        help="JSON file to write the results to (a folder: FOLDER/evaluation.json; missing "
        "folders are made; an existing file is replaced; default: none)",
    )
    args = parser.parse_args(argv)
    argcheck.run_folder("--run", args.run)
    argcheck.input_folder(
        "--data-root", args.data_root, "pass the folder of the VehicleID or VeRi-776 data set"
    )
    argcheck.only_with(args, VEHICLEID_DEFAULTS, args.dataset == "vehicleid", "with vehicleid")
    args.rerank_options = checked_rerank(args)
    argcheck.int_in("--test-size", args.test_size, 1, 10**7)
    argcheck.int_in("--n-trials", args.n_trials, 1, MAX_TRIALS)
    argcheck.device("--device", args.device)
    if args.out is not None:
        protected = argcheck.run_files(args.run)
        args.out = argcheck.output_file("--out", args.out, "evaluation.json", protected)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prreid_lib.evaluate --run DIR --data-root ROOT [--dataset veri776]``."""
    from prreid_lib.cache import write_json
    from prreid_lib.distributed import local_device
    from prreid_lib.runs import load_trained

    args = parse_args(argv)
    rerank: RerankOptions | None = args.rerank_options
    data, model = _checked_data_and_model(
        args, lambda: load_trained(args.run, local_device(args.device))
    )
    suffix = ""
    if rerank is not None:
        suffix = f", re-ranked k1 {args.k1} k2 {args.k2} lambda {args.lambda_value:g}"
    record: dict = {
        "run": str(args.run),
        "data_root": str(args.data_root),
        "dataset": args.dataset,
        "metric": args.metric,
        "rerank": rerank,
    }
    if args.dataset == "vehicleid":
        res = evaluate_vehicleid(
            model, data.test, n_trials=args.n_trials, metric=args.metric, rerank=rerank
        )
        label, test_list = vehicleid_label(args.test_size, data.test)
        trials = f"{args.n_trials} trial{'s' if args.n_trials != 1 else ''}"
        print(f"{label}: {figures_line(res.summary())} ({trials}, {args.metric} distance{suffix})")
        record |= {"test_size": args.test_size, "n_trials": args.n_trials} | test_list
        record["results"] = {"vehicleid": _vehicleid_record(res)}
    else:
        from prreid_lib.datasets.veri776 import missing_file_notes

        veri = data
        for note in missing_file_notes(veri):
            print(f"prreid evaluate: warning: {note}", file=sys.stderr)
        with warnings.catch_warnings():  # the missing track file is reported above
            warnings.filterwarnings("ignore", message=".*image-to-track protocol")
            by_protocol = evaluate_veri(model, veri, metric=args.metric, rerank=rerank)
        record["results"] = {}
        for name, r in by_protocol.items():
            s = r.summary()
            print(
                f"VeRi-776 {VERI_LABELS[name]}: {figures_line(s)} ({args.metric} distance{suffix})"
            )
            record["results"][name] = s | {"num_valid": r.num_valid, "num_query": r.num_query}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out), record)
        print(f"results written to {args.out}")
    return 0


def _checked_data_and_model(
    args: argparse.Namespace, load_model: Callable[[], PartRegularizedReID]
) -> tuple[Any, PartRegularizedReID]:
    """The test data set of ``args`` and the run's model (``load_model()``).

    The run's training identities (model.pt) are compared with the test
    identities before the model is built (:func:`refuse_run_trained_on_test`);
    a run without a readable model.pt is left to ``load_model`` to report,
    before the data set is read.
    """
    training = run_training_identities(args.run)
    if training is None:
        model = load_model()
        return _test_data(args)[0], model
    data, train, tests = _test_data(args)
    if not refuse_run_trained_on_test(training, Path(args.run) / MODEL, train, tests):
        print(
            f"prreid evaluate: note: {Path(args.run) / MODEL} was not trained on {train[0]} "
            "(its classes lack some of the vehicles listed there), so its training identities "
            "are not compared with the test vehicles",
            file=sys.stderr,
        )
    return data, load_model()


def _test_data(
    args: argparse.Namespace,
) -> tuple[VehicleID | VeRi776, tuple[Path, pd.DataFrame], list[tuple[Path, pd.DataFrame]]]:
    """The data set of ``args``, its training list and its test lists, each as (file, table)."""
    from prreid_lib.datasets import load_vehicleid, load_veri776

    if args.dataset == "vehicleid":
        vid = load_vehicleid(args.data_root, test_size=args.test_size)
        split = vid.root / "train_test_split"
        train = (split / "train_list.txt", vid.train)
        return vid, train, [(split / f"test_list_{args.test_size}.txt", vid.test)]
    veri = load_veri776(args.data_root)
    tests = [
        (veri.root / "name_query.txt", veri.query),
        (veri.root / "name_test.txt", veri.gallery),
    ]
    return veri, (veri.root / "name_train.txt", veri.train), tests


def _vehicleid_record(res: metrics.VehicleIDResult) -> dict:
    """The VehicleID figures as plain numbers: :meth:`~metrics.VehicleIDResult.summary`
    (mean and std over trials of CMC@1/5/10, mAP and mINP) and the mean CMC curve."""
    return res.summary() | {"cmc_mean": [float(v) for v in res.cmc_mean]}


VERI_LABELS = {"image": "image-to-image", "track": "image-to-track (CMC@k is the paper's HIT@k)"}
"""How ``prreid evaluate`` names the VeRi-776 protocols of :func:`evaluate_veri`."""
PRINTED = ("CMC@1", "CMC@5", "mAP", "mINP")
"""The figures ``prreid evaluate`` prints per protocol (the JSON holds CMC@10 and stds too)."""


def figures_line(summary: Mapping[str, float]) -> str:
    """``CMC@1 0.1234 CMC@5 0.2345 mAP 0.3456 mINP 0.1234`` of a result's ``summary()``."""
    return " ".join(f"{key} {summary[key]:.4f}" for key in PRINTED)


def vehicleid_label(test_size: int, test_df: pd.DataFrame) -> tuple[str, dict]:
    """The printed name of a VehicleID test list, and what the JSON records of it.

    ``VehicleID test_list_800.txt (800 identities, 6532 images)``; a list whose
    number of identities differs from its name says so (SynthVeh's smaller
    profiles keep the official file names): ``(37 identities, not 800; ...)``.
    """
    name = f"test_list_{test_size}.txt"
    ids, images = int(test_df["pid"].nunique()), len(test_df)
    differs = "" if ids == test_size else f", not {test_size}"
    label = f"VehicleID {name} ({ids} identities{differs}; {images} images)"
    return label, {"test_list": name, "test_identities": ids, "test_images": images}


if __name__ == "__main__":
    raise SystemExit(main())
