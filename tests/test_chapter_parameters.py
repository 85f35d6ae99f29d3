"""A chapter stops at its first hidden cell on an unknown, mistyped or out-of-range parameter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prreid_lib.chapter_parameters import (
    ChapterParameterError,
    checked_parameters,
    declared_parameters,
    kind_of,
)
from prreid_lib.chapters import list_chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [nb.stem for nb in list_chapters()]
PAPERMILL = Path(sys.executable).with_name("papermill")


def kernel_namespace(chapter: str, injected: dict[str, object]) -> dict[str, object]:
    """The globals of a kernel after papermill ran the parameters cell and its injected cell."""
    source = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in injected.items())
    return {
        "In": ["", "from myst_nb import glue\n", "profile = 'quick'\n", source],
        "glue": print,
        **declared_parameters(chapter),
        **injected,
    }


def check(chapter: str, **injected: object) -> dict[str, object]:
    return checked_parameters(chapter, kernel_namespace(chapter, injected))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_defaults_pass_and_output_dir_is_resolved(chapter):
    defaults = declared_parameters(chapter)
    values = check(chapter)
    assert values == {**defaults, "output_dir": str(Path("runs") / "quick")}


def test_list_given_as_string_or_list_is_parsed_and_text_numbers_are_read():
    values = check("04_training", seeds="[3, 1]", seed="2", train_epochs=5, output_dir="out")
    assert values["seeds"] == [3, 1]
    assert values["seed"] == 2  # papermill -r seed 2 gives the text "2"
    assert values["output_dir"] == "out"
    assert check("04_training", seeds="3, 4")["seeds"] == [3, 4]
    shares = check("07_resolution", outside_cue_shares=[0, 1], cue_strength=2)
    assert shares["outside_cue_shares"] == [0.0, 1.0] and shares["cue_strength"] == 2.0


def test_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(ChapterParameterError) as err:
        check("04_training", profile="smoke", data_rot="X")
    message = str(err.value)
    assert "unknown parameter 'data_rot' (did you mean data_root?)" in message
    assert "for chapter 04_training; valid: profile, data_root, seed," in message
    assert "train_epochs" in message and "\n" not in message


def test_parameter_of_another_chapter_is_unknown_here():
    with pytest.raises(
        ChapterParameterError, match=r"parameter 'seeds' \(did you mean seed\?\) for"
    ):
        check("05_evaluation", seeds=[0, 1])


def test_without_injected_cell_later_variables_are_no_parameters():
    namespace = {**declared_parameters("04_training"), "In": ["", "x = 1\n"], "x": 1}
    assert checked_parameters("04_training", namespace)["seed"] == 0


def test_outside_ipython_a_plain_global_no_cell_binds_is_unknown():
    namespace = {**declared_parameters("04_training"), "glue": print, "seed_list": [0, 1]}
    checked_parameters("04_training", namespace)  # seed_list is bound by a later cell
    with pytest.raises(ChapterParameterError, match="unknown parameter 'data_rot'"):
        checked_parameters("04_training", {**namespace, "data_rot": "X"})


@pytest.mark.parametrize(
    ("chapter", "name", "value", "expected"),
    [
        ("04_training", "seed", "abc", "must be an int from 0 to 4294967295; got 'abc' (str)"),
        ("04_training", "seed", 1.5, "must be an int from 0 to 4294967295; got 1.5 (float)"),
        ("04_training", "seed", True, "got True (bool)"),
        ("04_training", "seed", None, "got None (NoneType)"),
        ("04_training", "data_seed", -1, "data_seed of chapter 04_training must be an int"),
        ("04_training", "train_epochs", "x", "must be an int >= 1 (or None, the default)"),
        ("04_training", "train_epochs", 0, "got 0 (int)"),
        ("04_training", "seeds", 3, "seeds of chapter 04_training must be a list of distinct"),
        ("04_training", "seeds", "[0, 'a']", "'a' is not an int from 0 to 4294967295"),
        ("04_training", "seeds", "[]", "the list is empty"),
        ("04_training", "part_source", "gt", "one of auto, detected, ground_truth; got 'gt'"),
        ("04_training", "device", "gpu", "auto, cpu, cuda, cuda:<index> or mps; got 'gpu'"),
        ("04_training", "output_dir", 2024, "pass text with -r"),
        ("05_evaluation", "distance", "l2", "one of euclidean, cosine"),
        ("05_evaluation", "veri_train", "veri", "one of veri776, vehicleid (or None"),
        ("07_resolution", "random_start", 1, "must be True or False (or None, the default)"),
        ("07_resolution", "cue_strength", float("nan"), "a number from 0 to 5"),
        ("07_resolution", "outside_cue_shares", "[0, 1.5]", "1.5 is not a number from 0 to 1"),
        ("07_resolution", "input_sizes", [16], "16 is not an int >= 32"),
        ("02_part_annotation", "interactive", "yes", "must be True or False; got 'yes'"),
    ],
)
def test_wrong_value_names_parameter_expectation_and_value(chapter, name, value, expected):
    with pytest.raises(ChapterParameterError) as err:
        check(chapter, **{name: value})
    message = str(err.value)
    assert message.startswith(f"parameter {name} of chapter {chapter} must be "), message
    assert expected in message and "\n" not in message


def test_unknown_profile_names_the_valid_profiles():
    from prreid_lib.config import PROFILES

    with pytest.raises(ChapterParameterError) as err:
        check("01_data", profile="quik")
    valid = ", ".join(sorted(PROFILES))
    assert f"profile of chapter 01_data must be one of {valid}; got 'quik'" in str(err.value)


@pytest.mark.parametrize(
    ("seeds", "repeated"), [("[0, 0]", "0 repeated"), ([3, 1, 3, 1, 2], "1, 3 repeated")]
)
def test_repeated_seeds_are_named(seeds, repeated):
    with pytest.raises(ChapterParameterError, match=f"seeds of chapter 06_ablation .*{repeated}"):
        check("06_ablation", seeds=seeds)


def test_missing_data_root_is_named_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    assert check("01_data", data_root="data")["data_root"] == "data"
    with pytest.raises(ChapterParameterError) as err:
        check("01_data", data_root="dat")
    message = str(err.value)
    assert "must be an existing folder (or None, the default); got 'dat' (str)" in message
    assert f"no such folder: {tmp_path / 'dat'}" in message
    with pytest.raises(ChapterParameterError, match="no such file: .*data.yaml"):
        check("03_part_detection", parts_yaml="data/data.yaml")


def test_every_chapter_checks_its_parameters_in_the_cell_after_them():
    for nb_path in list_chapters():
        cells = json.loads(nb_path.read_text())["cells"]
        tags = [c.get("metadata", {}).get("tags", []) for c in cells]
        at = next(i for i, t in enumerate(tags) if "parameters" in t)
        after = "".join(cells[at + 1]["source"])
        call = f'globals().update(checked_parameters("{nb_path.stem}", globals()))'
        assert call in after, f"{nb_path.name}: the cell after 'parameters' must run {call}"
        for name, default in declared_parameters(nb_path.stem).items():
            kind_of(name, default)  # every parameter has a kind


def test_papermill_stops_at_an_unknown_parameter_before_any_work(tmp_path):
    output = tmp_path / "out.ipynb"
    notebook = "notebooks/04_training.ipynb"
    cmd = [str(PAPERMILL), notebook, str(output), "-p", "data_rot", "X", "--cwd", "."]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "ChapterParameterError: unknown parameter 'data_rot'" in proc.stdout + proc.stderr
    cells = [c for c in json.loads(output.read_text())["cells"] if c["cell_type"] == "code"]
    ran = [c for c in cells if c.get("execution_count")]
    assert "checked_parameters" in "".join(ran[-1]["source"])  # nothing ran after the check
    assert len(ran) == 4  # glue, parameters, injected parameters, the check


def test_papermill_refuses_repeated_seeds_given_as_text(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(ROOT / "notebooks" / "06_ablation.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"seeds": "[0, 0]"},
            kernel_name="python3",
            cwd=str(ROOT),
            progress_bar=False,
        )
    assert err.value.ename == "ChapterParameterError"
    assert "seeds of chapter 06_ablation" in err.value.evalue
    assert "0 repeated" in err.value.evalue
