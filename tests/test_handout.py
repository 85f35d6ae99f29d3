"""`prreid handout`: student notebooks without solutions or outputs, and their README."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from prreid_lib import handout
from prreid_lib.chapters import list_chapters
from prreid_lib.cli import main
from prreid_lib.errors import PrreidError

CHAPTERS = list_chapters()
EXERCISE_ITEM = re.compile(r"^\d+\. .+", re.MULTILINE)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every chapter's student notebook, written by the command line as a user runs it."""
    out = tmp_path_factory.mktemp("course") / "handout"
    assert main(["handout", "--out", str(out)]) == 0
    return out


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _exercises(cells: list[dict]) -> list[str]:
    """The numbered items under each "## Exercises" heading, up to the next admonition."""
    items = []
    for cell in cells:
        text = _text(cell)
        if cell["cell_type"] == "markdown" and "## Exercises" in text:
            section = text.split("## Exercises", 1)[1].split("```", 1)[0]
            items += EXERCISE_ITEM.findall(section)
    return items


def test_every_chapter_and_the_readme_are_written(written):
    names = sorted(p.name for p in written.iterdir())
    assert names == sorted([c.name for c in CHAPTERS] + ["README.md"])


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_no_solution_survives_and_every_exercise_does(written, chapter):
    source, student = _cells(chapter), _cells(written / chapter.name)
    text = "\n".join(_text(c) for c in student)
    assert "solution to exercise" not in text.lower()
    assert "{admonition} Solution" not in text
    assert not [c for c in student if "solution" in c.get("metadata", {}).get("tags", [])]
    assert _exercises(student) == _exercises(source)
    kept = {c["id"] for c in student}
    for cell in source:  # every cell that is not a solution stays
        if "Solution to exercise" not in _text(cell):
            assert cell["id"] in kept, f"{chapter.name}: cell {cell['id']} was removed"


def test_the_book_has_solutions_to_remove():
    """The source chapters hold solutions in every form the handout removes."""
    text = "\n".join(_text(c) for nb in CHAPTERS for c in _cells(nb))
    assert "```{admonition} Solution to exercise" in text
    assert "````{admonition} Solution to exercise" in text  # with a nested code fence
    assert re.search(r"^# Solution to exercise", text, re.MULTILINE)  # code cells


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_no_outputs_and_the_parameters_cell_is_kept(written, chapter):
    student = json.loads((written / chapter.name).read_text())
    code = [c for c in student["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    source = [c for c in _cells(chapter) if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and _text(params[0]) == _text(source[0])
    assert student["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_no_kept_cell_needs_a_name_only_a_solution_defined(written, chapter):
    """A solution's code cell is removed; nothing after it may read what it assigned."""
    kept = {c["id"] for c in _cells(written / chapter.name)}
    removed_names: set[str] = set()
    for cell in _cells(chapter):
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(_text(cell))
        if cell["id"] not in kept:
            removed_names |= _assigned(tree)
        else:
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            assert not used & removed_names, f"{chapter.name}: {used & removed_names}"
            removed_names -= _assigned(tree)


def _assigned(tree: ast.AST) -> set[str]:
    """Names a cell binds: assignments and imports."""
    stores = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    imports = {
        (a.asname or a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    return stores | imports


def test_solution_blocks_go_and_the_text_around_them_stays():
    text = (
        "## Exercises\n\n1. Why?\n\n"
        "```{admonition} Solution to exercise 1\n:class: dropdown\nBecause.\n```\n\n"
        "Between the two.\n\n"
        "````{admonition} Solution to exercise 2\n```python\nx = 1\n```\nSee above.\n````\n\n"
        ":::{admonition} Solution to exercise 3\nColon fence.\n:::\n\n"
        "## In short\n\n- kept\n"
    )
    assert handout.strip_solutions(text) == (
        "## Exercises\n\n1. Why?\n\nBetween the two.\n\n## In short\n\n- kept"
    )


def test_an_unclosed_or_unknown_solution_is_refused_not_leaked():
    with pytest.raises(ValueError, match="never closed"):
        handout.strip_solutions("```{admonition} Solution to exercise 1\nno end\n")
    nb = {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["x"]}]}
    nb["cells"].append(
        {
            "cell_type": "markdown",
            "id": "b",
            "metadata": {},
            "source": ["**Solution to exercise 1**"],
        }
    )
    with pytest.raises(PrreidError, match=r"ch\.ipynb, cell b: still holds 'Solution to exercise'"):
        handout.student_notebook(nb, "ch.ipynb")


def test_a_cell_tagged_solution_is_removed():
    cells = [
        {"cell_type": "code", "id": "a", "metadata": {"tags": ["solution"]}, "source": "x = 1"},
        {"cell_type": "code", "id": "b", "metadata": {}, "source": "y = 2", "outputs": [1]},
    ]
    student = handout.student_notebook({"cells": cells, "metadata": {}})
    assert [c["id"] for c in student["cells"]] == ["b"]
    assert student["cells"][0]["outputs"] == []


def test_readme_lists_every_chapter_with_a_time_and_the_profiles(written):
    readme = (written / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(): line
        for line in readme.splitlines()
        if re.match(r"\| \d\d_", line)
    }
    assert sorted(rows) == [c.stem for c in CHAPTERS]
    for stem, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert len(cells) == 4, row
        for cell in cells[:3]:  # a time, or "not measured"
            assert re.search(r"\d+ (min|s)|under a minute|not measured", cell), (stem, cell)
        assert re.search(r"smoke: (\d+ MiB|[\d.]+ GiB|under 1 MiB|not measured)", cells[3]), (
            stem,
            cells[3],
        )
    assert "`smoke`" in readme and "`quick`" in readme
    assert ".venv/bin/jupyter lab handout/" in readme
    for chapter in handout.NEEDS:  # what a chapter run alone also trains
        assert f"- `{chapter}` alone also trains" in readme


def test_standalone_estimate_adds_what_earlier_chapters_would_have_trained(tmp_path):
    timing = tmp_path / "timing.csv"
    rows = [("SynthVeh", 60), ("04_training", 600), ("05_evaluation", 60), ("06_ablation", 300)]
    lines = [f"{s},{t},quick,2026-01-01,2" for s, t in rows]
    timing.write_text("step,seconds,profile,date,cpu_count\n" + "\n".join(lines) + "\n")
    costs = handout.chapter_costs(
        ["04_training", "05_evaluation", "06_ablation", "07_resolution"],
        timing,
        tmp_path / "none.csv",
    ).set_index("chapter")
    alone = costs["quick, run alone"]
    assert alone["04_training"] == "about 11 min (estimated)"  # SynthVeh + its own
    assert alone["05_evaluation"] == "about 12 min (estimated)"  # all of chapter 4 + its own
    assert alone["06_ablation"] == "about 16 min (estimated)"  # all of chapter 4 + its own
    assert alone["07_resolution"] == "not measured"  # its own time is not in the table
    assert costs.loc["06_ablation", "quick, in the book"] == "about 5 min"
    assert (costs["smoke, run alone"] == "not measured").all()


def test_measured_disk_and_time_are_shown(tmp_path):
    alone = tmp_path / "alone.csv"
    alone.write_text(
        "chapter,profile,seconds,data_mib,runs_mib,cache_mib,cpu_count,date,commit\n"
        "01_data,smoke,42.0,3.0,10.0,2.0,2,2026-01-01,x\n"
        "01_data,quick,120.0,300.0,900.0,100.0,2,2026-01-01,x\n"
    )
    costs = handout.chapter_costs(["01_data", "02_part_annotation"], tmp_path / "no.csv", alone)
    first = costs.iloc[0]
    assert first["smoke, run alone"] == "42 s"
    assert first["quick, run alone"] == "about 2 min (measured)"
    assert first["disk, run alone"] == "smoke: 15 MiB; quick: 1.3 GiB"
    assert costs.iloc[1]["disk, run alone"] == "smoke: not measured; quick: not measured"
    assert costs.iloc[1]["quick, in the book"] == "not measured"


def test_the_committed_timing_gives_every_chapter_a_quick_time():
    readme = handout.handout_readme([c.stem for c in CHAPTERS])
    rows = [line for line in readme.splitlines() if line.startswith("| 0")]
    assert all("(estimated)" in r or "(measured)" in r for r in rows), rows


def test_cli_chapters_and_rewriting_its_own_folder(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["handout", "--out", str(out), "--chapters", "01", "05"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "01_data.ipynb",
        "05_evaluation.ipynb",
        "README.md",
    ]
    assert f"open them with: .venv/bin/jupyter lab {out}" in capsys.readouterr().out
    readme = (out / "README.md").read_text()
    assert "| 01_data |" in readme and "| 04_training |" not in readme
    assert main(["handout", "--out", str(out), "--chapters", "01"]) == 0  # its own files


def test_cli_refuses_an_out_that_is_a_file_in_one_line(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    assert main(["handout", "--out", str(afile)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"prreid handout: error: --out {afile}: is a file, not a folder")
    assert afile.read_text() == "mine"


def test_files_it_did_not_write_are_never_replaced(tmp_path, capsys):
    out = tmp_path / "course"
    out.mkdir()
    (out / "README.md").write_text("my own notes")
    assert main(["handout", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "README.md exists and prreid handout did not write it" in err
    assert (out / "README.md").read_text() == "my own notes"
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]  # nothing written


def test_an_edited_handout_is_kept_and_a_run_one_rewritten(tmp_path, capsys):
    """A student's edits are never overwritten; outputs alone (a notebook only run) are."""
    out = tmp_path / "lab"
    assert main(["handout", "--out", str(out), "--chapters", "01"]) == 0
    notebook = out / "01_data.ipynb"
    nb = json.loads(notebook.read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"], code["execution_count"] = [{"output_type": "stream", "text": "x"}], 1
    notebook.write_text(json.dumps(nb))  # run in Jupyter, nothing edited
    assert main(["handout", "--out", str(out), "--chapters", "01"]) == 0
    assert json.loads(notebook.read_text())["cells"][2]["outputs"] == []
    nb = json.loads(notebook.read_text())
    nb["cells"][-1]["source"] = ["my answer"]
    notebook.write_text(json.dumps(nb))  # an answer written in
    readme = out / "README.md"
    assert main(["handout", "--out", str(out), "--chapters", "01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "01_data.ipynb exists and was edited since" in err
    assert json.loads(notebook.read_text())["cells"][-1]["source"] == ["my answer"]
    readme.write_text(readme.read_text().replace("## Which profile", "## Profile: quick"))
    notebook.unlink()
    assert main(["handout", "--out", str(out), "--chapters", "01"]) == 2
    assert "README.md exists and was edited since" in capsys.readouterr().err
    assert "## Profile: quick" in readme.read_text() and not notebook.exists()


def test_a_book_notebook_is_never_replaced(tmp_path, capsys):
    """``--out notebooks`` would replace the book's own chapters: refused, as any
    notebook the handout did not write (here a copy of the book's chapter)."""
    book = tmp_path / "notebooks"
    book.mkdir()
    chapter = book / "01_data.ipynb"
    chapter.write_bytes(CHAPTERS[0].read_bytes())
    assert main(["handout", "--out", str(book), "--chapters", "01"]) == 2
    assert "01_data.ipynb exists and prreid handout did not write it" in capsys.readouterr().err
    assert chapter.read_bytes() == CHAPTERS[0].read_bytes()
    assert sorted(p.name for p in book.iterdir()) == ["01_data.ipynb"]


@pytest.mark.slow
def test_the_cheapest_student_notebook_runs_on_smoke(written, smoke_data, tmp_path):
    import papermill as pm

    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(written / "01_data.ipynb"),
        str(out),
        parameters={"profile": "smoke", "data_root": str(smoke_data), "device": "cpu"},
        cwd=str(tmp_path),
        progress_bar=False,
    )
    executed = json.loads(out.read_text())["cells"]
    assert any(c.get("outputs") for c in executed if c["cell_type"] == "code")


@pytest.mark.slow
def test_jupyter_lab_opens_the_handout(written):
    """The README's command: `.venv/bin/jupyter lab handout/` serves the notebooks with
    the chapters' kernel (as root too: `make install` allows it in the venv)."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    jupyter = Path(sys.executable).with_name("jupyter")
    args = [str(jupyter), "lab", str(written), "--no-browser", f"--port={port}"]
    server = subprocess.Popen(
        [*args, "--IdentityProvider.token=t", "--ServerApp.ip=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        contents = specs = None
        for _ in range(120):
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited: {server.stderr.read().decode()[-800:]}")
            try:
                base = f"http://127.0.0.1:{port}/api"
                contents = json.load(urllib.request.urlopen(f"{base}/contents?token=t"))
                specs = json.load(urllib.request.urlopen(f"{base}/kernelspecs?token=t"))
                break
            except OSError:
                time.sleep(0.5)
        assert contents is not None and specs is not None, "jupyter lab never answered"
        names = {c["name"] for c in contents["content"]}
        assert {c.name for c in CHAPTERS} | {"README.md"} <= names
        assert specs["default"] == "python3" and "python3" in specs["kernelspecs"]
    finally:
        server.terminate()
        server.wait(timeout=30)
