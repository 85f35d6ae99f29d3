"""The real-data path end to end, on the official layouts without any SynthVeh file.

A user's data folder DATA holds VeRi-776/ (and VehicleID/) as unpacked, and the part
labels they drew in DATA/parts/ (YOLO: images/, labels/, data.yaml). The fixture builds
it from the SynthVeh smoke export: the layouts are copied without SynthVeh's own files,
and the labels of a few dozen images are written from SynthVeh's truth before it is left
behind, as a user's hand labels would be (tight lamp boxes). The commands run through
``prreid_lib.cli.main`` as README's "The real data sets" lists them: label, detect, train
--parts part_boxes.csv, evaluate; and the refusals on the way name the step to take.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from prreid_lib import config, train
from prreid_lib.annotate import BOX_COLUMNS, validate, write_yolo
from prreid_lib.cli import main
from prreid_lib.config import PART_NAMES
from prreid_lib.datasets import load_vehicleid, load_veri776
from prreid_lib.synthveh_files import IDENTITIES_FILE, MANIFEST, PARTS_FILE, is_synthveh

ROOT = Path(__file__).resolve().parents[1]
SYNTHVEH_FILES = (PARTS_FILE, IDENTITIES_FILE, MANIFEST)
LAYOUTS = {"VeRi-776": "image_train", "VehicleID": "image"}
"""The layout folders a fixture may copy, with the folder of the images to label."""
DATA_YAML = "train: images/train\nval: images/val\nnames:\n  0: window\n  1: light\n  2: brand\n"
"""The part labels' data.yaml exactly as the README tells a user to write it."""


def _hand_labels(layout: Path, parts: Path, n_train: int, n_val: int) -> None:
    """``parts/`` in YOLO format: copies of the first images of the layout's training
    folder and one label file each, boxes from SynthVeh's truth (visible window, lamps,
    brand, as drawn), written with :func:`prreid_lib.annotate.write_yolo`."""
    truth = pd.read_csv(layout / PARTS_FILE)
    drawn = (truth["x2"] - truth["x1"] >= 1) & (truth["y2"] - truth["y1"] >= 1)
    truth = truth[truth["part"].isin(PART_NAMES) & (truth["visible"] == 1) & drawn]
    folder = LAYOUTS[layout.name]
    names = sorted(p.name for p in (layout / folder).glob("*.jpg"))[: n_train + n_val]
    for split, chosen in (("train", names[:n_train]), ("val", names[n_train:])):
        images = parts / "images" / split
        images.mkdir(parents=True)
        copies = [images / name for name in chosen]
        for name, copy in zip(chosen, copies, strict=True):
            shutil.copyfile(layout / folder / name, copy)
        boxes = truth[truth["image"].isin([f"{folder}/{n}" for n in chosen])]
        paths = [str(images / Path(rel).name) for rel in boxes["image"]]
        table = boxes.assign(path=paths)[BOX_COLUMNS]
        write_yolo(table, parts / "labels" / split, images=copies)
    (parts / "data.yaml").write_text(DATA_YAML)


def make_real_data(
    smoke: Path, data: Path, layouts: tuple[str, ...] = ("VeRi-776",), labels: bool = True
) -> Path:
    """A user's DATA folder: the ``layouts`` of ``smoke`` without SynthVeh's files and, with
    ``labels``, the hand labels of 24 + 8 training images of the first layout in parts/."""
    data.mkdir(parents=True)
    for name in layouts:
        shutil.copytree(smoke / name, data / name, ignore=shutil.ignore_patterns(*SYNTHVEH_FILES))
    if labels:
        _hand_labels(smoke / layouts[0], data / "parts", n_train=24, n_val=8)
    assert not [p for p in data.rglob("*") if p.name in SYNTHVEH_FILES]
    assert not any(is_synthveh(p) for p in (data, *(data / n for n in (*layouts, "parts"))))
    return data


@pytest.fixture(scope="module")
def real_data(smoke_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA with VeRi-776/ and the part labels in DATA/parts/."""
    return make_real_data(smoke_data, tmp_path_factory.mktemp("user") / "reid")


@pytest.fixture(scope="module")
def unlabelled(smoke_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA with VeRi-776/ only: the data set as downloaded, no part labels yet."""
    return make_real_data(smoke_data, tmp_path_factory.mktemp("user") / "reid", labels=False)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path / "default-cache"))


def _error_line(capsys, argv: list[str]) -> str:
    """Run ``prreid argv``: status 2 and one error line on stderr (no traceback)."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    prefix = f"prreid {argv[0]}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix) :]


# ------------------------------------------------------------------ the refusals on the way


def test_detect_without_labels_says_where_to_label_500_images(unlabelled, capsys, monkeypatch):
    monkeypatch.chdir(unlabelled.parent)  # DATA as a user types it, relative
    line = _error_line(capsys, ["detect", "--profile", "smoke", "--data-root", "reid"])
    assert line.startswith("--data-root reid: has no parts/data.yaml (the part labels); ")
    assert "label about 500 of its images (window, light, brand) in YOLO format" in line
    assert "reid/parts/data.yaml" in line and "--parts-yaml FILE" in line
    assert not (unlabelled.parent / "runs").exists()  # refused before any training


def test_detect_with_a_real_data_profile_needs_the_data_root(capsys):
    line = _error_line(capsys, ["detect", "--profile", "veri776"])
    assert line == "--profile veri776: trains on the real veri776 data; pass --data-root"


def test_detect_help_says_what_its_data_root_holds(capsys):
    with pytest.raises(SystemExit) as done:
        main(["detect", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--data-root DATA" in text
    assert "the folder holding VeRi-776/ and/or VehicleID/ and the part labels parts/" in text
    assert "default: DATA/parts/data.yaml" in text


def test_detect_refuses_a_folder_without_a_data_set_before_training(tmp_path, capsys):
    data = tmp_path / "reid"
    _hand_labels_only(data)
    runs = tmp_path / "runs"
    argv = ["detect", "--profile", "smoke", "--data-root", str(data)]
    line = _error_line(capsys, [*argv, "--output-dir", str(runs)])
    assert "holds neither VeRi-776 nor VehicleID to detect parts on" in line
    assert not (runs / "detector").exists()  # no detector was trained for nothing


def _hand_labels_only(data: Path) -> None:
    """DATA with a (tiny) parts/ folder and no data set beside it."""
    from PIL import Image

    for split in ("train", "val"):
        (data / "parts" / "images" / split).mkdir(parents=True)
        (data / "parts" / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (40, 30)).save(data / "parts" / "images" / split / "a.jpg")
        (data / "parts" / "labels" / split / "a.txt").write_text("0 0.5 0.3 0.4 0.2\n")
    (data / "parts" / "data.yaml").write_text(DATA_YAML)


def test_train_without_part_boxes_points_to_the_detect_step(real_data, tmp_path, capsys):
    out, cache = tmp_path / "runs", tmp_path / "cache"
    argv = ["train", "--profile", "smoke", "--data-root", str(real_data), "--dataset", "veri776"]
    line = _error_line(capsys, [*argv, "--output-dir", str(out), "--cache-dir", str(cache)])
    assert line.startswith("--parts gt (the default while a part branch trains) reads SynthVeh")
    assert f"{real_data / 'VeRi-776'} has none (real data)" in line
    detect = f"prreid detect --profile smoke --data-root {real_data} --out part_boxes.csv"
    assert detect in line and "pass --parts part_boxes.csv" in line
    assert f"about 500 images labelled in {real_data / 'parts' / 'data.yaml'}" in line
    assert "--set lambda_p.window=0 --set lambda_p.light=0 --set lambda_p.brand=0" in line
    assert not out.exists() and not cache.exists()


def test_a_real_data_baseline_needs_no_parts_option(real_data, tmp_path, capsys, monkeypatch):
    seen = {}

    def record(cfg, train_df, part_boxes, *args, **kwargs):
        seen.update(cfg=cfg, train_df=train_df, part_boxes=part_boxes)
        return SimpleNamespace(history=pd.DataFrame(), reused=True, seconds=0.0, run_dir="r")

    monkeypatch.setattr(train, "run_or_load", record)
    argv = ["train", "--profile", "smoke", "--data-root", str(real_data), "--dataset", "veri776"]
    argv += [f"--set=lambda_p.{part}=0" for part in PART_NAMES]
    assert main([*argv, "--output-dir", str(tmp_path / "runs")]) == 0, capsys.readouterr().err
    assert seen["part_boxes"] is None and len(seen["train_df"]) == len(
        load_veri776(real_data).train
    )


# ------------------------------------------------------------ where the chapters find labels


def test_chapters_find_the_labels_in_data_parts(real_data, unlabelled):
    from prreid_lib.studies.part_labels import labelled_set

    labels = labelled_set("veri776", data_root=real_data)
    assert labels.parts_yaml == (real_data / "parts" / "data.yaml").resolve()
    assert not labels.synthetic and labels.root == real_data.resolve()
    assert (labels.n_images("train"), labels.n_images("val")) == (24, 8)
    assert validate(labels.parts_yaml, raise_errors=False).empty  # the README's check
    with pytest.raises(FileNotFoundError) as err:
        labelled_set("veri776", data_root=unlabelled)
    message = str(err.value)
    assert message.startswith(f"no part labels at {unlabelled.resolve() / 'parts' / 'data.yaml'}")
    assert "label about 500 images (window, light, brand) in YOLO format into" in message


def test_book_numbers_on_real_data_are_labelled_vehicleid(smoke_data, tmp_path):
    """The training chapters train and test on VehicleID under either real profile; the
    boxes chapter 3 saves (here written from the truth) are what they train with."""
    from prreid_lib.parts import ground_truth_part_boxes
    from prreid_lib.studies import load_study_data, save_detected_boxes
    from prreid_lib.synthveh import load_synthveh_parts

    data = make_real_data(smoke_data, tmp_path / "reid", ("VehicleID", "VeRi-776"))
    vid = load_vehicleid(data)
    truth = load_synthveh_parts(smoke_data / "VehicleID")
    boxes = ground_truth_part_boxes(truth, load_vehicleid(smoke_data).train)
    moved = boxes["path"].str.replace(str(smoke_data.resolve()), str(data.resolve()), regex=False)
    save_detected_boxes(boxes.assign(path=moved), tmp_path / "out")
    study = load_study_data("veri776", data_root=data, output_dir=tmp_path / "out")
    assert not study.synthetic and study.veri is None and study.test_part_boxes is None
    assert study.data_name == "VehicleID"  # the numbers' data set, not the profile's name
    assert study.label == "ours (VehicleID, veri776 profile)"
    assert study.part_source.startswith("detected (chapter 3), 100%")
    assert set(study.part_boxes["path"]) == set(vid.train["path"])


def test_book_refuses_real_data_its_chapters_cannot_use_before_any_runs(
    real_data, unlabelled, capsys
):
    book = ["book", "--profile", "veri776", "--no-build", "--data-root"]
    line = _error_line(capsys, [*book, str(unlabelled)])
    labels = unlabelled.resolve() / "parts" / "data.yaml"
    assert line.startswith(f"no part labels at {labels}: label about 500 images")
    line = _error_line(capsys, [*book, str(real_data)])  # labelled, but VeRi-776 only
    assert line.startswith(f"{real_data.resolve()} holds no VehicleID (VehicleID_V1.0/ or ")
    assert "the chapters 04_training, 05_evaluation, 06_ablation, 07_resolution, 08_cam" in line
    assert "--chapters 01 02 03" in line
    line = _error_line(capsys, [*book, str(unlabelled), "--chapters", "04"])
    assert line.startswith(f"{unlabelled.resolve()} holds no VehicleID")  # no labels needed


def test_book_data_check_passes_what_the_chapters_can_use(real_data, smoke_data, tmp_path):
    from prreid_lib.chapters import list_chapters
    from prreid_lib.studies.data import LABEL_CHAPTERS, VEHICLEID_CHAPTERS, check_book_data

    every = [c.stem for c in list_chapters()]
    sources = {c.stem: c.read_text() for c in list_chapters()}
    assert set(LABEL_CHAPTERS) == {n for n in every if "labelled_set(" in sources[n]}
    assert set(VEHICLEID_CHAPTERS) == {n for n in every if "load_study_data(" in sources[n]}
    check_book_data(real_data, ["01_data", *LABEL_CHAPTERS, "09_appendix"])
    check_book_data(smoke_data, every)  # SynthVeh: nothing to check
    both = make_real_data(smoke_data, tmp_path / "reid", ("VeRi-776", "VehicleID"))
    check_book_data(both, every)
    (both / "VehicleID" / "train_test_split" / "train_list.txt").write_text("")
    with pytest.raises(ValueError, match="train_list.txt"):  # there but broken: the loader's
        check_book_data(both, every)


def test_make_book_with_a_data_root_passes_the_option_checks(real_data):
    from prreid_lib import argcheck
    from prreid_lib.cli import build_parser

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        ["make", "-n", "book", "PROFILE=veri776", f"DATA_ROOT={real_data}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    line = next(x for x in dry.stdout.splitlines() if "prreid book" in x)
    argv = line.split("prreid ", 1)[1].split()
    assert "--data-seed" not in argv and argv[argv.index("--data-root") + 1] == str(real_data)
    args, _ = build_parser().parse_known_args(argv)
    argcheck.data_source(args)  # refused before: --data-seed 0 beside --data-root


# ------------------------------------------------------------------------- the whole path


@pytest.mark.slow
def test_label_detect_train_evaluate_on_the_real_layout(real_data, tmp_path, capsys, monkeypatch):
    """README's steps 2-4 on DATA (VeRi-776 and hand labels, no SynthVeh file).

    A detector trained for one epoch on 24 images is barely trained: the smoke profile's
    confidence threshold is set to 0 here (every box it proposes), so that it names every
    part somewhere; nothing else is changed.
    """
    smoke = config.PROFILES["smoke"]
    detector_cfg = replace(smoke.detector, conf=0.0)
    monkeypatch.setitem(config.PROFILES, "smoke", replace(smoke, detector=detector_cfg))
    monkeypatch.chdir(real_data.parent)
    boxes_csv, runs = Path("part_boxes.csv"), Path("runs")

    detect = ["detect", "--profile", "smoke", "--data-root", "reid", "--device", "cpu"]
    assert main([*detect, "--output-dir", str(runs), "--out", str(boxes_csv)]) == 0
    printed = capsys.readouterr()
    assert "mAP50" in printed.out and "warning" not in printed.err, printed.err
    boxes = pd.read_csv(boxes_csv)
    veri = load_veri776(real_data)
    every = set(pd.concat([veri.train, veri.query, veri.gallery])["path"])
    assert set(boxes["path"]) == every  # a box for every image of the data set
    per_image = boxes.groupby("path")["part"].nunique()
    assert (per_image == len(PART_NAMES)).all()  # every part on every image (imputed)

    argv = ["train", "--profile", "smoke", "--data-root", "reid", "--dataset", "veri776"]
    argv += ["--parts", str(boxes_csv), "--output-dir", str(runs), "--device", "cpu"]
    assert main([*argv, "--no-progress", "--set", "epochs=1"]) == 0
    out = capsys.readouterr().out
    run = Path(out.split("run ", 1)[1].split(" (", 1)[0])
    assert (run / "model.pt").is_file() and (run / "final.json").is_file()
    assert json.loads((run / "config.json").read_text())  # the run's record

    evaluate = ["evaluate", "--run", str(run), "--data-root", "reid", "--dataset", "veri776"]
    assert main([*evaluate, "--device", "cpu", "--out", "veri.json"]) == 0
    record = json.loads(Path("veri.json").read_text())
    assert record["dataset"] == "veri776" and set(record["results"]) == {"image", "track"}
    for figures in record["results"].values():
        assert 0 <= figures["mAP"] <= 1 and 0 <= figures["CMC@1"] <= 1
        assert figures["num_query"] == len(veri.query)


# ------------------------------------------------------------------ the README's commands


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}")  # a heading that starts so
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _commands(section: str) -> dict[str, list[str]]:
    """The shell commands of ``section``'s bash blocks by their first two words after the
    program (``prreid detect``, ``make book``), as argument lists; the last one wins."""
    blocks = section.split("```bash\n")[1:]
    found: dict[str, list[str]] = {}
    for block in blocks:
        text = block.split("```", 1)[0].replace("\\\n", " ")
        for line in text.splitlines():
            argv = shlex.split(line, comments=True)
            if argv and argv[0].endswith(("prreid", "make")):
                found[f"{Path(argv[0]).name} {argv[1]}"] = argv[2:]
            elif argv and "=" in argv[0] and len(argv) == 1:
                found[argv[0].split("=")[0]] = [argv[0].split("=", 1)[1]]
    return found


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_readme_real_data_commands_agree_and_parse(real_data, tmp_path, monkeypatch):
    from prreid_lib import detector

    steps = _commands(_section("The real data sets"))
    data = steps["DATA"][0]
    detect, train_argv = steps["prreid detect"], steps["prreid train"]
    for name in ("prreid detect", "prreid train", "prreid evaluate", "prreid book"):
        assert _option(steps[name], "--data-root") == data, name
    assert f"DATA_ROOT={data}" in steps["make book"]
    assert _option(detect, "--out") == _option(train_argv, "--parts")
    assert _option(train_argv, "--dataset") == _option(steps["prreid evaluate"], "--dataset")
    profiles = {_option(steps[n], "--profile") for n in ("prreid detect", "prreid train")}
    assert profiles == {_option(steps["prreid book"], "--profile")}
    monkeypatch.chdir(tmp_path)
    Path(_option(train_argv, "--parts")).write_text("path,part\n")
    mine = [str(real_data) if a == data else a for a in detect]
    assert Path(detector.parse_args(mine).data_root) == real_data  # labels where it looks
    train.parse_args([str(real_data) if a == data else a for a in train_argv])


def test_readme_synthveh_commands_write_where_the_others_read():
    line = _commands(_section("The command line"))
    synth = line["prreid synth"]
    out = _option(synth, "--out")
    profile, seed = _option(synth, "--profile"), _option(synth, "--seed")
    assert out == f"data/synthveh/{profile}-seed{seed}"  # ensure_synthveh's own folder
    assert _option(line["prreid train"], "--data-root") == out
    data = _commands(_section("The real data sets"))["DATA"][0]
    evaluated = {_option(a, "--data-root") for a in _evaluate_lines(_section("Use a trained run"))}
    assert evaluated == {out, data}  # SynthVeh where synth wrote it, real data in DATA


def _evaluate_lines(section: str) -> list[list[str]]:
    """Every ``prreid evaluate`` command of ``section``'s bash blocks, as arguments."""
    text = "".join(block.split("```", 1)[0] for block in section.split("```bash\n")[1:])
    lines = [shlex.split(x, comments=True) for x in text.replace("\\\n", " ").splitlines()]
    return [a[2:] for a in lines if len(a) > 1 and a[0].endswith("prreid") and a[1] == "evaluate"]
