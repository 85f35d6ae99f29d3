"""A run's test-time model as a standalone ONNX or TorchScript file (``prreid export``).

The exported graph takes float32 images (B, 3, S, S), RGB in [0, 1], at the
run's training size S (decoded and resized as :func:`prreid_lib.images.decode_rgb`
does for training, then divided by 255), normalises them inside (ImageNet mean and std, as
:func:`prreid_lib.imagenet.normalize_images` does for training and evaluation) and
returns the test-time descriptor (B, D): the global feature, after the BNNeck
when the model has one, raw (compared by Euclidean distance, the paper's
protocol) or, with ``normalize=True`` (``--normalize``), divided by its L2 norm
inside the graph (unit norm, compared by cosine similarity, as fast-reid's
predictor does). The batch axis is dynamic. What a caller needs to feed
it is recorded in the file (:func:`export_metadata`): ONNX ``metadata_props``,
TorchScript ``_extra_files["prreid.json"]`` (read it back with
``torch.jit.load(f, _extra_files={"prreid.json": ""})``).
"""

from __future__ import annotations

import argparse
import copy
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prreid_lib.cache import atomic_path
from prreid_lib.errors import PrreidError
from prreid_lib.imagenet import IMAGENET_MEAN, IMAGENET_STD
from prreid_lib.model import PartRegularizedReID

FORMATS = ("onnx", "torchscript")
EXTRA_FILE = "prreid.json"
"""Name of the metadata record inside a TorchScript file."""

__all__ = ["FORMATS", "FeatureGraph", "export_metadata", "export_model", "export_run"]


class FeatureGraph(nn.Module):
    """``images`` float32 (B, 3, S, S) in [0, 1] -> normalised -> test-time feature (B, D).

    ``normalize`` divides each output feature by its L2 norm (unit norm).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: PartRegularizedReID, normalize: bool = False) -> None:
        super().__init__()
        if not model.use_global:
            raise ValueError(
                "a parts-only model (use_global=False) needs part boxes for its descriptor "
                "and cannot be exported as an image-only graph; export a run with a global branch"
            )
        self.model = model.eval()
        self.normalize = bool(normalize)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = self.model.features((images - self.mean) / self.std, None, mode="global")
        return F.normalize(feats, dim=1) if self.normalize else feats


def export_metadata(
    model: PartRegularizedReID, run_dir: str | Path | None = None, normalize: bool = False
) -> dict:
    """What the exported graph expects and returns (stored in the file as strings).

    ``output_normalization`` is ``"l2"`` for a graph exported with
    ``normalize`` (unit-norm features), else ``"none"``; ``distance`` says how
    to compare the features.
    """
    size = int(model.input_size)
    meta = {
        "producer": "prreid",
        "input_name": "images",
        "input_layout": "NCHW",
        "input_channels": "RGB",
        "input_dtype": "float32",
        "input_range": "[0, 1]",
        "input_size": str(size),
        "decode": "full-resolution decode (no JPEG draft), EXIF orientation applied, 8-bit RGB "
        "(16-bit scaled by 255/65535, transparency composited over white): "
        "prreid_lib.images.decode_rgb",
        "resize": "PIL Image.resize((input_size, input_size), Image.Resampling.BILINEAR) "
        "of the decoded 8-bit RGB image, then values / 255",
        "normalization_mean": json.dumps(list(IMAGENET_MEAN)),
        "normalization_std": json.dumps(list(IMAGENET_STD)),
        "normalization": "(x - mean) / std, inside the graph",
        "output_name": "features",
        "feature_dim": str(model.feat_dim),
        "feature": "global" + (" (after BNNeck)" if model.bnneck else ""),
        "output_normalization": "l2" if normalize else "none",
        "distance": "cosine similarity (dot product of the unit-norm features), fast-reid's"
        if normalize
        else "Euclidean distance between the raw features, the paper's protocol",
        "arch": model.arch,
    }
    if run_dir is not None:
        meta["run"] = str(run_dir)
    return meta


def export_model(
    model: PartRegularizedReID,
    out: str | Path,
    fmt: str = "onnx",
    *,
    run_dir: str | Path | None = None,
    opset: int = 17,
    normalize: bool = False,
) -> Path:
    """Write ``model``'s test-time graph to ``out`` as ``fmt`` ("onnx" or "torchscript").

    ``model`` must carry ``input_size`` (as :func:`prreid_lib.runs.load_trained`
    gives it). ``normalize`` bakes the L2 normalisation of the features into
    the graph (recorded in its metadata). The file is written next to ``out``
    and renamed over it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if getattr(model, "input_size", None) is None:
        raise ValueError("the model has no input_size: load it with prreid_lib.runs.load_trained")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    graph = FeatureGraph(copy.deepcopy(model).cpu().float(), normalize).eval()  # caller's stays
    size = int(model.input_size)
    example = torch.rand(2, 3, size, size)
    meta = export_metadata(model, run_dir, normalize)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        # the TorchScript tracer and exporter warn they are old
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        _write_graph(graph, example, tmp, meta, fmt, opset)
    return out


def _write_graph(
    graph: FeatureGraph, example: torch.Tensor, path: Path, meta: dict, fmt: str, opset: int
) -> None:
    if fmt == "onnx":
        _export_onnx(graph, example, path, meta, opset)
    else:
        with torch.no_grad():
            traced = torch.jit.trace(graph, example, check_inputs=[(example[:1],)])
        torch.jit.save(traced, str(path), _extra_files={EXTRA_FILE: json.dumps(meta)})


def _export_onnx(
    graph: FeatureGraph, example: torch.Tensor, path: Path, meta: dict, opset: int
) -> None:
    try:
        import onnx
    except ImportError:
        raise PrreidError(
            "ONNX export needs the onnx package: install the export extra "
            "(.venv/bin/pip install -e '.[export]')"
        ) from None
    with torch.no_grad():
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "prreid"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def export_run(
    run_dir: str | Path, out: str | Path, fmt: str = "onnx", **kwargs: Any
) -> tuple[Path, dict]:
    """Export the finished run ``run_dir`` (see :func:`export_model`): the file, its metadata."""
    from prreid_lib.extract import load_run_model

    model = load_run_model(run_dir, "cpu")
    path = export_model(model, out, fmt, run_dir=run_dir, **kwargs)
    return path, export_metadata(model, run_dir, bool(kwargs.get("normalize", False)))


DEFAULT_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
"""File written inside a folder given as --out, per format."""


def _opset_range() -> tuple[int, int]:
    """Opset versions the TorchScript-based ONNX exporter of this torch writes."""
    from torch.onnx import _constants

    high = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET)
    return max(9, _constants.ONNX_MIN_OPSET), high


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of ``prreid export``, checked: each bad one is refused naming it.

    ``args.out`` becomes the file to write (``DIR/model.onnx`` for a folder).
    """
    from prreid_lib import argcheck

    low, high = _opset_range()
    parser = argcheck.Parser(
        prog="prreid export",
        description="Write a run's test-time model to FILE (ONNX or TorchScript): input float32 "
        "NCHW RGB in [0, 1] at the run's input size, normalised inside, output the global "
        "feature; dynamic batch axis; input size and normalisation in the file's metadata. The "
        "features are raw, compared by Euclidean distance (the paper's protocol); --normalize "
        "makes the graph return unit-norm features, compared by cosine similarity (fast-reid's "
        "predictor), and records it in the metadata (output_normalization).",
    )
    parser.add_argument("--run", required=True, help="a finished run folder (holds model.pt)")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="file format")
    parser.add_argument(
        "--out",
        required=True,
        help="file to write (e.g. model.onnx, model.pt); a folder: FOLDER/model.onnx or "
        "FOLDER/model.torchscript.pt; missing folders are made; an existing file is replaced",
    )
    parser.add_argument(
        "--opset", type=int, help=f"ONNX opset version, {low} to {high} (default: 17; onnx only)"
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="L2-normalise the output features inside the graph (unit norm, for cosine "
        "similarity; default: raw features, for Euclidean distance)",
    )
    args = parser.parse_args(argv)
    argcheck.run_folder("--run", args.run)
    argcheck.only_with(args, {"opset": 17}, args.format == "onnx", "with --format onnx")
    argcheck.int_in("--opset", args.opset, low, high, "what this torch's ONNX exporter writes")
    protected = argcheck.run_files(args.run)
    args.out = argcheck.output_file("--out", args.out, DEFAULT_NAMES[args.format], protected)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """``prreid export --run RUN --format onnx|torchscript --out FILE``."""
    args = parse_args(argv)
    path, meta = export_run(
        args.run, args.out, args.format, opset=args.opset, normalize=args.normalize
    )
    kind = "unit-norm, for cosine similarity" if args.normalize else "raw, for Euclidean distance"
    print(
        f"{args.format} model written to {path}: input images (B, 3, {meta['input_size']}, "
        f"{meta['input_size']}) float32 RGB in [0, 1], output features (B, {meta['feature_dim']}) "
        f"{kind}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
