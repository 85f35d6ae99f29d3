"""Lists that void a test protocol are refused, naming the file and lines, before any model.

Each test copies the SynthVeh smoke export's VehicleID or VeRi-776 folder, plants one
fault a user meets (a training line appended to a test list, every test line doubled,
an emptied list, a query of a training vehicle, a run trained on test vehicles) and
checks the one-line refusal, from the loaders and from ``prreid evaluate``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prreid_lib import metrics, runs
from prreid_lib.cli import main
from prreid_lib.datasets import DatasetFormatError, load_vehicleid, load_veri776
from prreid_lib.evaluate import evaluate_vehicleid, evaluate_veri


@pytest.fixture
def vid(smoke_data: Path, tmp_path: Path) -> Path:
    """A private copy of the smoke VehicleID folder."""
    return Path(shutil.copytree(smoke_data / "VehicleID", tmp_path / "VehicleID"))


@pytest.fixture
def veri(smoke_data: Path, tmp_path: Path) -> Path:
    """A private copy of the smoke VeRi-776 folder."""
    return Path(shutil.copytree(smoke_data / "VeRi-776", tmp_path / "VeRi-776"))


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRREID_CACHE_DIR", str(tmp_path / "cache"))


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def refusal(load, *args, **kwargs) -> str:
    """The message of the DatasetFormatError that ``load(*args)`` raises."""
    with pytest.raises(DatasetFormatError) as info:
        load(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Fix:" in message
    return message


# ----------------------------------------------------------------------------- VehicleID


def test_vehicleid_test_list_with_a_training_line(vid: Path) -> None:
    split = vid / "train_test_split"
    train, test = lines_of(split / "train_list.txt"), lines_of(split / "test_list_800.txt")
    with open(split / "test_list_800.txt", "a") as f:
        f.write(train[4] + "\n")
    name = f"{train[4].split()[0]}.jpg"
    message = refusal(load_vehicleid, vid)
    assert message.startswith(f"{(split / 'test_list_800.txt').resolve()}, line {len(test) + 1}:")
    assert f"image {name} (line {len(test) + 1}; train_list.txt line 5)" in message
    assert str((split / "train_list.txt").resolve()) in message


def test_vehicleid_test_vehicle_that_is_a_training_vehicle(vid: Path) -> None:
    split = vid / "train_test_split"
    train, test = lines_of(split / "train_list.txt"), lines_of(split / "test_list_800.txt")
    train_vid = train[0].split()[1]
    first_train_line = 1 + [t.split()[1] for t in train].index(train_vid)
    test[2] = f"{test[2].split()[0]} {train_vid}"  # a new image, labelled as a training vehicle
    (split / "test_list_800.txt").write_text("\n".join(test) + "\n")
    message = refusal(load_vehicleid, vid)
    assert ", line 3:" in message and "test vehicles that are not training vehicles" in message
    assert f"vehicle {train_vid} (line 3; train_list.txt line {first_train_line})" in message


@pytest.mark.parametrize("size", [800, 2400])
def test_vehicleid_doubled_test_list(vid: Path, size: int) -> None:
    path = vid / "train_test_split" / f"test_list_{size}.txt"
    test = lines_of(path)
    path.write_text("\n".join(test + test) + "\n")
    message = refusal(load_vehicleid, vid, test_size=size)
    n = len(test)
    assert message.startswith(f"{path.resolve()}, line {n + 1}:")
    assert f"found {n} repeated: {test[0].split()[0]}.jpg on line {n + 1} (first on line 1)" in (
        message
    )


def test_vehicleid_same_image_listed_twice_in_another_spelling(vid: Path) -> None:
    path = vid / "train_test_split" / "train_list.txt"
    train = lines_of(path)
    image, vehicle = train[3].split()
    other = next(t.split()[1] for t in train if t.split()[1] != vehicle)
    path.write_text("\n".join([*train, f"{image}.jpg  {other}"]) + "\n")  # same image, new vid
    message = refusal(load_vehicleid, vid)
    assert message.startswith(f"{path.resolve()}, line {len(train) + 1}:")
    assert f"{image}.jpg on line {len(train) + 1} (first on line 4)" in message


@pytest.mark.parametrize("name", ["train_list.txt", "test_list_800.txt"])
def test_vehicleid_empty_list(vid: Path, name: str) -> None:
    path = vid / "train_test_split" / name
    path.write_text("\r\n  \r\n")  # blank lines only
    message = refusal(load_vehicleid, vid)
    assert message.startswith(f"{path.resolve()}: expected at least one 'image vehicle-id' line")
    assert "an empty list" in message


def test_clean_smoke_lists_load(vid: Path, veri: Path) -> None:
    data = load_vehicleid(vid)
    assert len(data.test) and not set(data.train["pid"]) & set(data.test["pid"])
    v = load_veri776(veri)  # queries are gallery images too: that is the VeRi-776 protocol
    assert set(v.query["name"]) <= set(v.gallery["name"])


def test_library_evaluation_refuses_a_doubled_test_frame(vid: Path) -> None:
    test = load_vehicleid(vid).test
    doubled = pd.concat([test, test], ignore_index=True)
    with pytest.raises(
        ValueError, match=rf"found {len(test)} repeated: .*\(rows 0 and {len(test)}\)"
    ):
        evaluate_vehicleid(None, doubled)  # refused before any feature is computed


def test_vehicleid_protocol_without_any_query() -> None:
    feats = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="4 vehicles of one image each, so no query"):
        metrics.vehicleid_protocol(feats, np.array([1, 2, 3, 4]), n_trials=2)
    with pytest.raises(ValueError, match="got no test image"):
        metrics.vehicleid_protocol(feats[:0], np.array([], dtype=np.int64), n_trials=2)


# ----------------------------------------------------------------------------- VeRi-776


def _leak_training_image_into_queries(veri: Path) -> tuple[str, int, int]:
    """Append the first training image to name_query.txt (with its label and file)."""
    name = lines_of(veri / "name_train.txt")[0]
    query = lines_of(veri / "name_query.txt")
    (veri / "name_query.txt").write_text("\n".join([*query, name]) + "\n")
    shutil.copy(veri / "image_train" / name, veri / "image_query" / name)
    item = next(t for t in lines_of(veri / "train_label.xml") if name in t)
    labels = (veri / "test_label.xml").read_bytes().decode("gb2312")
    labels = labels.replace("</Items>", item + "\n</Items>")
    (veri / "test_label.xml").write_bytes(labels.encode("gb2312"))
    return name, int(name[:4]), len(query) + 1


def test_veri_query_of_a_training_vehicle(veri: Path) -> None:
    _, pid, line = _leak_training_image_into_queries(veri)
    message = refusal(load_veri776, veri)
    assert message.startswith(f"{(veri / 'name_query.txt').resolve()}, line {line}:")
    assert f"vehicle {pid} (line {line}; name_train.txt line 1)" in message
    assert str((veri / "name_train.txt").resolve()) in message


def test_veri_test_vehicle_that_is_a_training_vehicle(veri: Path) -> None:
    """A gallery image relabelled (name and label) as a training vehicle."""
    train_pid = int(lines_of(veri / "name_train.txt")[0][:4])
    test, queries = lines_of(veri / "name_test.txt"), set(lines_of(veri / "name_query.txt"))
    row = next(i for i, name in enumerate(test) if name not in queries)
    old = test[row]
    new = f"{train_pid:04d}{old[4:]}"
    test[row] = new
    (veri / "name_test.txt").write_text("\n".join(test) + "\n")
    (veri / "image_test" / old).rename(veri / "image_test" / new)
    labels = (veri / "test_label.xml").read_bytes().decode("gb2312")
    old_item = next(t for t in labels.splitlines() if old in t)
    new_item = old_item.replace(old, new).replace(
        f'vehicleID="{old[:4]}"', f'vehicleID="{new[:4]}"'
    )
    (veri / "test_label.xml").write_bytes(labels.replace(old_item, new_item).encode("gb2312"))
    message = refusal(load_veri776, veri)
    assert message.startswith(f"{(veri / 'name_test.txt').resolve()}, line {row + 1}:")
    assert f"vehicle {train_pid} (line {row + 1}; name_train.txt line 1)" in message


@pytest.mark.parametrize("name", ["name_test.txt", "name_query.txt", "name_train.txt"])
def test_veri_doubled_list(veri: Path, name: str) -> None:
    path = veri / name
    listed = lines_of(path)
    path.write_text("\n".join(listed + listed) + "\n")
    message = refusal(load_veri776, veri)
    n = len(listed)
    assert message.startswith(f"{path.resolve()}, line {n + 1}:")
    assert f"found {n} repeated: {listed[0]} on line {n + 1} (first on line 1)" in message


@pytest.mark.parametrize("name", ["name_test.txt", "name_query.txt", "name_train.txt"])
def test_veri_empty_list(veri: Path, name: str) -> None:
    (veri / name).write_bytes(b"")
    message = refusal(load_veri776, veri)
    assert message.startswith(f"{(veri / name).resolve()}: expected at least one image name")


def test_library_veri_evaluation_refuses_a_doubled_query_frame(veri: Path) -> None:
    data = load_veri776(veri)
    data.query = pd.concat([data.query, data.query.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match=r"veri\.query: expected each test image once; found 1"):
        evaluate_veri(None, data)


# ----------------------------------------------------------------------------- prreid evaluate


def write_run(run: Path, pid_values: list[int]) -> Path:
    """A finished run's model.pt as training writes it (random resnet18 weights)."""
    from prreid_lib.model import PartRegularizedReID

    model = PartRegularizedReID(len(pid_values), "resnet18", feat_dim=32)
    run.mkdir(parents=True)
    record = {"kwargs": model.init_kwargs(), "state_dict": model.state_dict()}
    record |= {"input_size": 32, "pid_values": [int(v) for v in pid_values]}
    runs.atomic_torch_save(record, run / runs.MODEL)
    return run


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if evaluate builds the model (refusals must come first)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr(runs, "load_trained", forbidden)


def evaluate_cli(run: Path, root: Path, *extra: str) -> list[str]:
    return ["evaluate", "--run", str(run), "--data-root", str(root), "--device", "cpu", *extra]


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("prreid evaluate: error: ")
    return err


def test_cli_refuses_a_run_trained_on_test_vehicles(vid: Path, tmp_path, capsys, no_model):
    data = load_vehicleid(vid)
    leaked = int(data.test["pid"].iloc[5])
    run = write_run(tmp_path / "run", sorted({*data.train["pid"], leaked}))
    assert main(evaluate_cli(run, vid)) == 2
    err = one_line_error(capsys)
    test_list = vid.resolve() / "train_test_split" / "test_list_800.txt"
    line = 1 + [int(t.split()[1]) for t in lines_of(test_list)].index(leaked)
    assert (
        f"{run / 'model.pt'}: expected a run trained without the test vehicles of {test_list}"
        in err
    )
    assert f"vehicle {leaked} (test_list_800.txt line {line})" in err
    assert str(vid.resolve() / "train_test_split" / "train_list.txt") in err


def test_cli_refuses_a_veri_run_trained_on_query_vehicles(veri: Path, tmp_path, capsys, no_model):
    data = load_veri776(veri)
    leaked = int(data.query["pid"].iloc[0])
    run = write_run(tmp_path / "run", sorted({*data.train["pid"], leaked}))
    args = evaluate_cli(run, veri, "--dataset", "veri776")
    assert main(args) == 2
    err = one_line_error(capsys)
    assert str(veri.resolve() / "name_query.txt") in err and "name_test.txt" in err
    assert f"vehicle {leaked} (name_query.txt line 1)" in err


def test_cli_refuses_a_doubled_test_list_before_the_model(vid: Path, tmp_path, capsys, no_model):
    data = load_vehicleid(vid)
    run = write_run(tmp_path / "run", sorted(set(data.train["pid"])))
    path = vid / "train_test_split" / "test_list_800.txt"
    path.write_text(path.read_text() * 2)
    assert main(evaluate_cli(run, vid)) == 2
    assert f"{path.resolve()}, line {len(data.test) + 1}:" in one_line_error(capsys)


def test_cli_evaluates_a_clean_run_and_a_run_of_the_other_layout(vid, veri, tmp_path, capsys):
    """Trained on this training list: checked and evaluated. Trained on the VeRi-776
    layout (numbered independently, so its numbers also occur among VehicleID's test
    vehicles): not compared, said in a note, evaluated."""
    data, other = load_vehicleid(vid), load_veri776(veri)
    clean = write_run(tmp_path / "clean", sorted(set(data.train["pid"])))
    assert main(evaluate_cli(clean, vid, "--n-trials", "2")) == 0
    captured = capsys.readouterr()
    assert "VehicleID test_list_800.txt (" in captured.out and captured.err == ""
    assert "): CMC@1 " in captured.out
    veri_ids = sorted(set(other.train["pid"]))
    assert set(veri_ids) & set(data.test["pid"])  # the numbers collide across layouts
    assert not set(data.train["pid"]) <= set(veri_ids)
    foreign = write_run(tmp_path / "veri-run", veri_ids)
    assert main(evaluate_cli(foreign, vid, "--n-trials", "2")) == 0
    captured = capsys.readouterr()
    assert "VehicleID test_list_800.txt (" in captured.out and "): CMC@1 " in captured.out
    assert captured.err.startswith(f"prreid evaluate: note: {foreign / 'model.pt'} was not trained")
