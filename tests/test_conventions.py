"""Features, distances and names as a user meets them: --normalize, one metric naming, --help.

``extract`` and ``export`` give raw features unless ``--normalize``; ``evaluate``
names its figures CMC@1, CMC@5, mAP and mINP for VehicleID and VeRi-776 alike,
printed and in its JSON; every sub-command's ``--help`` shows its defaults.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from prreid_lib.cli import build_parser, main
from prreid_lib.runs import load_trained
from tests.test_train import TINY


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture()
def images(tmp_path) -> Path:
    rng = np.random.default_rng(3)
    folder = tmp_path / "crops"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.jpg", "b.png", "sub/c.jpg"):
        Image.fromarray(rng.integers(0, 256, (41, 53, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _norms(feats: np.ndarray) -> np.ndarray:
    return np.linalg.norm(feats.astype(np.float64), axis=1)


# ------------------------------------------------------------------------------ extract


def test_extract_normalize_writes_unit_norm_rows(tiny_run, images, tmp_path, capsys):
    base = ["extract", "--run", str(tiny_run), "--images", str(images), "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "raw.npy"), "--device", "cpu"]) == 0
    raw_line = capsys.readouterr().out
    assert main([*base, "--out", str(tmp_path / "unit.npy"), "--normalize"]) == 0
    unit_line = capsys.readouterr().out
    raw, unit = np.load(tmp_path / "raw.npy"), np.load(tmp_path / "unit.npy")
    assert raw.shape == unit.shape == (3, TINY.feat_dim) and unit.dtype == np.float32
    np.testing.assert_allclose(_norms(unit), 1.0, atol=1e-6)
    assert np.abs(_norms(raw) - 1).max() > 1e-2  # the default stays raw
    np.testing.assert_allclose(unit, raw / _norms(raw)[:, None], atol=1e-5)
    assert "raw (norms" in raw_line and "Euclidean" in raw_line and "--normalize" in raw_line
    assert "unit norm" in unit_line and "cosine" in unit_line


def test_normalizing_a_zero_feature_names_its_image():
    from prreid_lib.extract import l2_normalize

    feats = np.array([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(l2_normalize(feats[:1]), [[0.6, 0.8]], atol=1e-7)
    with pytest.raises(ValueError, match=r"crops/zero\.png, crops/nan\.png: .*non-zero norm"):
        l2_normalize(feats, ["crops/ok.png", "crops/zero.png", "crops/nan.png"])
    with pytest.raises(ValueError, match=r"features of row 1, row 2: .*--normalize"):
        l2_normalize(feats)


# ------------------------------------------------------------------------------- export


def test_onnx_export_normalize_returns_unit_norm_and_says_so(tiny_run, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    outs = {}
    for name, extra in (("raw", []), ("unit", ["--normalize"])):
        path = tmp_path / f"{name}.onnx"
        assert main(["export", "--run", str(tiny_run), "--out", str(path), *extra]) == 0
        outs[name] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert "unit-norm" in capsys.readouterr().out
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)).numpy()
    (raw,) = outs["raw"].run(None, {"images": x})
    (unit,) = outs["unit"].run(None, {"images": x})
    np.testing.assert_allclose(_norms(unit), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit, raw / _norms(raw)[:, None], atol=1e-5)
    assert np.abs(_norms(raw) - 1).max() > 1e-2
    meta = {k: s.get_modelmeta().custom_metadata_map for k, s in outs.items()}
    assert meta["unit"]["output_normalization"] == "l2" and "cosine" in meta["unit"]["distance"]
    assert meta["raw"]["output_normalization"] == "none" and "Euclid" in meta["raw"]["distance"]


def test_torchscript_export_normalize_records_it(tiny_run, tmp_path):
    from prreid_lib.export import EXTRA_FILE

    out = tmp_path / "unit.pt"
    code = main(["export", "--run", str(tiny_run), "--format", "torchscript", "--out", str(out),
                 "--normalize"])  # fmt: skip
    assert code == 0
    extra = {EXTRA_FILE: ""}
    graph = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra[EXTRA_FILE])["output_normalization"] == "l2"
    with torch.no_grad():
        feats = graph(torch.rand(3, 3, 32, 32)).numpy()
    np.testing.assert_allclose(_norms(feats), 1.0, atol=1e-5)
    model = load_trained(tiny_run)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    from prreid_lib.export import FeatureGraph

    with torch.no_grad():
        want = torch.nn.functional.normalize(FeatureGraph(model)(x), dim=1)
        assert (graph(x) - want).abs().max().item() < 1e-5


# ----------------------------------------------------------------------------- evaluate

FIGURES = ("CMC@1", "CMC@5", "mAP", "mINP")


def _figures(line: str) -> dict[str, float]:
    """``{"CMC@1": 0.25, ...}`` of one printed protocol line."""
    return {k: float(v) for k, v in re.findall(r"(CMC@\d+|mAP|mINP) (\d\.\d{4})", line)}


def test_evaluate_names_figures_alike_for_both_data_sets(tiny_run, smoke_data, tmp_path, capsys):
    base = ["evaluate", "--run", str(tiny_run), "--device", "cpu"]
    vid_json, veri_json = tmp_path / "vid.json", tmp_path / "veri.json"
    vid_root = smoke_data / "VehicleID"
    code = main([*base, "--data-root", str(vid_root), "--n-trials", "2", "--out", str(vid_json)])
    assert code == 0
    vid_lines = [ln for ln in capsys.readouterr().out.splitlines() if "CMC@1" in ln]
    code = main([*base, "--data-root", str(smoke_data / "VeRi-776"), "--dataset", "veri776",
                 "--out", str(veri_json)])  # fmt: skip
    assert code == 0
    veri_lines = [ln for ln in capsys.readouterr().out.splitlines() if "CMC@1" in ln]
    vid = json.loads(vid_json.read_text())["results"]
    veri = json.loads(veri_json.read_text())["results"]
    assert len(vid_lines) == 1 and {"image", "track"} <= set(veri)
    assert [ln.split(":")[0] for ln in veri_lines][:1] == ["VeRi-776 image-to-image"]
    pairs = [(vid_lines[0], vid["vehicleid"]), *zip(veri_lines, veri.values(), strict=True)]
    for line, result in pairs:
        printed = _figures(line)
        assert tuple(printed) == FIGURES and "rank" not in line
        for key in FIGURES:
            assert printed[key] == pytest.approx(result[key], abs=6e-5)
        assert 0 < result["mINP"] <= 1 and result["CMC@1"] <= result["CMC@10"]
    assert not {"rank1", "rank5", "cmc1", "cmc5"} & (set(vid["vehicleid"]) | set(veri["image"]))
    assert {"CMC@1_std", "mAP_std", "mINP_std"} <= set(vid["vehicleid"])


def test_vehicleid_label_says_how_many_identities_the_list_holds(
    tiny_run, smoke_data, tmp_path, capsys
):
    listed = pd.read_csv(
        smoke_data / "VehicleID" / "train_test_split" / "test_list_800.txt",
        sep=" ",
        header=None,
        names=["image", "pid"],
    )
    ids = listed["pid"].nunique()
    assert ids != 800  # the smoke profile keeps the official file name
    out = tmp_path / "e.json"
    code = main(["evaluate", "--run", str(tiny_run), "--data-root", str(smoke_data / "VehicleID"),
                 "--n-trials", "1", "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    label = f"VehicleID test_list_800.txt ({ids} identities, not 800; {len(listed)} images):"
    assert label in printed and "VehicleID 800:" not in printed
    record = json.loads(out.read_text())
    assert (record["test_identities"], record["test_images"]) == (ids, len(listed))


def test_vehicleid_label_of_a_list_as_named():
    from prreid_lib.evaluate import vehicleid_label

    frame = pd.DataFrame({"pid": np.repeat(np.arange(800), 2)})
    label, record = vehicleid_label(800, frame)
    assert label == "VehicleID test_list_800.txt (800 identities; 1600 images)"
    assert record == {"test_list": "test_list_800.txt", "test_identities": 800, "test_images": 1600}


# --------------------------------------------------------------------------------- --help

EXPECTED = {
    "--profile": "quick",
    "--dataset": "vehicleid",
    "--metric": None,  # euclidean for evaluate; each command says its own
    "--device": "auto",
}
"""Options whose default every ``--help`` shows, with the value where it is common."""
FILLED_AFTER_PARSING = {
    "evaluate": {"--test-size": "800", "--n-trials": "10", "--k1": "20", "--lambda-value": "0.3"},
    "export": {"--opset": "17"},
    "train": {"--data-seed": "0", "--parts": "gt", "--name": "run"},
    "book": {"--data-seed": "0", "--output-dir": "runs/<profile>"},
}
"""Options that default to None in the parser and get their real default later."""


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _option_text(help_text: str, option: str) -> str | None:
    """The help of ``option`` (its lines joined), or None when the command has no such option."""
    lines = help_text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\s+{re.escape(option)}\b", line):
            block = [line]
            for more in lines[i + 1 :]:
                if re.match(r"\s{0,4}-", more) or not more.startswith(" "):
                    break
                block.append(more)
            return " ".join(" ".join(block).split())
    return None


def test_commands_cover_every_documented_one():
    assert {"synth", "train", "detect", "evaluate", "extract", "export", "book", "archive"} <= set(
        _commands()
    )


@pytest.mark.parametrize("command", _commands())
def test_every_help_shows_the_defaults(command, capsys):
    text = _help(command, capsys)
    seen = 0
    for option, value in EXPECTED.items():
        block = _option_text(text, option)
        if block is None or (command, option) == ("archive", "--profile"):  # required there
            continue
        seen += 1
        assert "(default: " in block, f"prreid {command} --help: {option} shows no default"
        if value is not None:
            assert f"(default: {value})" in block, block
    for option, value in FILLED_AFTER_PARSING.get(command, {}).items():
        block = _option_text(text, option)
        assert block is not None and f"default: {value}" in block, (command, option, block)
    assert "default: None" not in " ".join(text.split())
    if command in ("train", "detect", "evaluate", "extract", "book"):
        assert seen >= 1


def test_evaluate_help_says_which_metric_is_the_papers(capsys):
    block = _option_text(_help("evaluate", capsys), "--metric")
    assert block is not None and "(default: euclidean)" in block and "paper" in block
    for command in ("extract", "export"):
        block = _option_text(_help(command, capsys), "--normalize")
        assert block is not None and "cosine" in block and "default: raw" in block
