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
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from prreid_lib import metrics
from prreid_lib.model import PartRegularizedReID, extract_features
from prreid_lib.parts import boxes_to_masks
from prreid_lib.pipeline.imageset import ReIDImageSet, default_cache_dir


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


def evaluate_vehicleid(
    model: PartRegularizedReID,
    test_df: pd.DataFrame,
    *,
    part_boxes: pd.DataFrame | None = None,
    n_trials: int = 10,
    seed: int = 0,
    metric: str = "euclidean",
    max_rank: int = 50,
    rerank: dict[str, float] | None = None,
    **feature_kwargs,
) -> metrics.VehicleIDResult:
    """VehicleID protocol on ``test_df``: features, then :func:`metrics.vehicleid_protocol`.

    ``metric`` "euclidean" (the paper's L2) or "cosine"; ``n_trials`` random
    gallery splits drawn from ``seed``; ``rerank`` (``k1``, ``k2``,
    ``lambda_value``; ``{}`` for the defaults) applies k-reciprocal re-ranking
    (:func:`prreid_lib.reranking.re_rank`) in each trial. Extra keyword
    arguments go to :func:`image_features`.
    """
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
    rerank: dict[str, float] | None = None,
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prreid_lib.evaluate --run DIR --data-root ROOT [--dataset veri776]``."""
    from prreid_lib.cache import write_json
    from prreid_lib.datasets import load_vehicleid, load_veri776
    from prreid_lib.distributed import local_device
    from prreid_lib.runs import load_trained

    parser = argparse.ArgumentParser(
        prog="prreid evaluate",
        description="Evaluate a finished run on the VehicleID or VeRi-776 test protocol. Prints "
        "one line per protocol on stdout; --out also writes every figure to a JSON file.",
    )
    parser.add_argument("--run", required=True, help="a finished run folder (holds model.pt)")
    parser.add_argument("--data-root", required=True, help="VehicleID or VeRi-776 folder")
    parser.add_argument("--dataset", choices=("vehicleid", "veri776"), default="vehicleid")
    parser.add_argument("--test-size", type=int, default=800, help="VehicleID test list")
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    parser.add_argument("--n-trials", type=int, default=10, help="VehicleID gallery draws")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument(
        "--rerank", action="store_true", help="k-reciprocal re-ranking (Zhong et al. 2017)"
    )
    parser.add_argument("--k1", type=int, default=20, help="re-ranking: k-reciprocal neighbours")
    parser.add_argument("--k2", type=int, default=6, help="re-ranking: query expansion size")
    parser.add_argument(
        "--lambda-value",
        type=float,
        default=0.3,
        help="re-ranking: weight of the original distance",
    )
    parser.add_argument("--out", default=None, help="JSON file to write the results to")
    args = parser.parse_args(argv)
    rerank = None
    if args.rerank:
        rerank = {"k1": args.k1, "k2": args.k2, "lambda_value": args.lambda_value}
    model = load_trained(args.run, local_device(args.device))
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
        data = load_vehicleid(args.data_root, test_size=args.test_size)
        res = evaluate_vehicleid(
            model, data.test, n_trials=args.n_trials, metric=args.metric, rerank=rerank
        )
        print(
            f"VehicleID {args.test_size}: CMC@1 {res.cmc_mean[0]:.4f} "
            f"CMC@5 {res.cmc_mean[4]:.4f} mAP {res.mAP_mean:.4f} ({args.n_trials} trials{suffix})"
        )
        record |= {"test_size": args.test_size, "n_trials": args.n_trials}
        record["results"] = {"vehicleid": _vehicleid_record(res)}
    else:
        from prreid_lib.datasets.veri776 import missing_file_notes

        veri = load_veri776(args.data_root)
        for note in missing_file_notes(veri):
            print(f"prreid evaluate: warning: {note}", file=sys.stderr)
        with warnings.catch_warnings():  # the missing track file is reported above
            warnings.filterwarnings("ignore", message=".*image-to-track protocol")
            res = evaluate_veri(model, veri, metric=args.metric, rerank=rerank)
        record["results"] = {}
        for name, r in res.items():
            s = r.summary()
            print(
                f"VeRi-776 {name}: mAP {s['mAP']:.4f} rank1 {s['rank1']:.4f} "
                f"rank5 {s['rank5']:.4f}{suffix}"
            )
            record["results"][name] = s | {"num_valid": r.num_valid, "num_query": r.num_query}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out), record)
        print(f"results written to {args.out}")
    return 0


def _vehicleid_record(res: metrics.VehicleIDResult) -> dict:
    """The VehicleID figures as plain numbers: mean and std of CMC@1/5/10 and mAP."""
    out: dict = {}
    for k in (1, 5, 10):
        if k <= len(res.cmc_mean):
            out[f"cmc{k}"] = float(res.cmc_mean[k - 1])
            out[f"cmc{k}_std"] = float(res.cmc_std[k - 1])
    out |= {"mAP": float(res.mAP_mean), "mAP_std": float(res.mAP_std)}
    out["cmc_mean"] = [float(v) for v in res.cmc_mean]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
