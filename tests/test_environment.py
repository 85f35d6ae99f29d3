"""What `make install` installs is declared, mirrored and versioned in one place.

pyproject.toml asks for compatible ranges (so installing prreid into a CUDA environment
keeps its torch); constraints.txt pins the tested versions, which `make install` and
environment.yml use. environment.yml carries everything `make install` installs; every
package that the library, the chapters, the tests or the benchmarks import is declared in
pyproject.toml; the version is written once (``prreid_lib.__version__``) and copied, checked,
into CITATION.cff.
"""

import ast
import json
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

DISTRIBUTION_OF = {"PIL": "pillow", "yaml": "pyyaml"}
"""Import names whose distribution is named otherwise (else the import name is the name)."""

LOCAL = {"prreid_lib", "tests", "benchmarks"}
"""Top-level packages of this repository."""


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _make_install_lines() -> list[str]:
    """The Makefile's ``pip install`` commands, as written (after ``pip install``)."""
    text = (ROOT / "Makefile").read_text()
    return re.findall(r"-m pip install (.+)", text)


def _make_extras() -> list[str]:
    """The extras of the Makefile's ``pip install ... -e '.[...]'``."""
    found = [m for line in _make_install_lines() for m in re.findall(r"\.\[([^\]]+)\]", line)]
    assert len(found) == 1, f"expected one -e '.[extras]' install in the Makefile, got {found}"
    return [extra.strip() for extra in found[0].split(",")]


def _pyproject_requirements(extras: list[str]) -> set[str]:
    project = _project()
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return {r.replace(" ", "") for r in reqs}


def _environment_requirements() -> tuple[str, set[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return python, {p.replace(" ", "") for p in pip if not p.startswith("-e")}


def _constraints() -> dict[str, Requirement]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {r.name: r for r in reqs}


def _pinned(reqs: set[str]) -> set[str]:
    """``reqs`` with each requirement that constraints.txt pins replaced by its pin."""
    pins = _constraints()
    return {str(pins.get(Requirement(r).name, r)).replace(" ", "") for r in reqs}


def test_make_installs_the_extras_it_needs():
    extras = _make_extras()
    assert {"book", "dev", "export", "tensorboard"} <= set(extras)
    assert set(extras) <= set(_project()["optional-dependencies"])


def test_environment_yml_matches_pyproject_with_constraints():
    python, pip_reqs = _environment_requirements()
    assert python == "python=3.11"
    assert pip_reqs == _pinned(_pyproject_requirements(_make_extras()))


def test_environment_yml_names_the_other_installs_of_make():
    """What `make install` adds outside pyproject (fastreid, with --no-deps, which
    environment.yml's pip list cannot express) is spelled out in environment.yml."""
    others = [
        re.sub(r"\s*#.*", "", line).replace("--quiet ", "")
        for line in _make_install_lines()
        if ".[" not in line and "--upgrade pip" not in line
    ]
    assert others, "the Makefile installs fastreid besides prreid"
    text = (ROOT / "environment.yml").read_text()
    for args in others:
        assert f"pip install {args}" in text, args


def test_torch_is_a_range_in_pyproject_and_pinned_in_constraints():
    pins = _constraints()
    assert str(pins["torch"]) == "torch==2.14.1"
    assert str(pins["torchvision"]) == "torchvision==0.29.1"
    ranges = {Requirement(r).name: Requirement(r) for r in _pyproject_requirements(_make_extras())}
    for name, pin in pins.items():
        (version,) = [s.version for s in pin.specifier]
        assert not any(s.operator == "==" for s in ranges[name].specifier), ranges[name]
        assert ranges[name].specifier.contains(version), (ranges[name], version)
    assert "jupyter-book<2" in _pyproject_requirements(["book"])


def test_make_install_uses_constraints():
    install = [line for line in (ROOT / "Makefile").read_text().splitlines() if "install" in line]
    assert any("pip install" in line and "-c constraints.txt" in line for line in install)


# ----------------------------------------------------------------------------- imports


def _notebook_source(path: Path) -> str:
    """The code cells of a notebook, IPython magics and shell lines left out."""
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    lines = "\n".join(code).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _sources() -> Iterator[tuple[str, Path, ast.Module]]:
    """(where, file, syntax tree) of every module, test, benchmark and chapter."""
    for folder in ("prreid_lib", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield folder, path, ast.parse(path.read_text(), str(path))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        yield "notebooks", path, ast.parse(_notebook_source(path), str(path))


def third_party_imports(tree: ast.Module) -> set[str]:
    """Top-level names of the packages ``tree`` imports anywhere, stdlib and ours left out."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - LOCAL


def _skipped_without(tree: ast.Module) -> set[str]:
    """Packages of ``pytest.importorskip("...")`` calls: optional for that file."""
    return {
        node.args[0].value.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "importorskip"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def _distribution(import_name: str) -> str:
    return canonicalize_name(DISTRIBUTION_OF.get(import_name, import_name))


def _declared(extras: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in _pyproject_requirements(extras)}


def undeclared_imports() -> list[str]:
    """``file: package`` for each import that pyproject.toml does not declare.

    Library and benchmark imports may come from any extra (optional features import
    lazily); the chapters and the tests run after `make install`, so theirs must come
    from the dependencies or the extras it installs, unless a test skips without them.
    """
    anywhere = _declared(list(_project()["optional-dependencies"]))
    by_make = _declared(_make_extras())
    missing = []
    for where, path, tree in _sources():
        after_make = where in ("tests", "notebooks")
        optional = _skipped_without(tree)
        for name in sorted(third_party_imports(tree)):
            needed = by_make if after_make and name not in optional else anywhere
            if _distribution(name) not in needed:
                missing.append(f"{path.relative_to(ROOT)}: {name} ({_distribution(name)})")
    return missing


def test_every_imported_package_is_declared():
    assert undeclared_imports() == []


def test_the_import_scan_sees_packages_and_leaves_out_ours():
    tree = ast.parse(
        "import os, numpy.linalg\nfrom PIL import Image\nfrom . import x\n"
        "def f():\n    import myst_nb\n    from prreid_lib import cli\n"
    )
    assert third_party_imports(tree) == {"numpy", "PIL", "myst_nb"}
    assert _distribution("PIL") == "pillow" and _distribution("myst_nb") == "myst-nb"
    assert "myst-nb" in _declared(["book"])
    notebook_imports = set().union(
        *(third_party_imports(t) for w, _, t in _sources() if w == "notebooks")
    )
    assert {"IPython", "matplotlib", "pandas"} <= notebook_imports


# ----------------------------------------------------------------------------- version


def _package_version() -> str:
    """``prreid_lib.__version__`` as written in its ``__init__.py``."""
    tree = ast.parse((ROOT / "prreid_lib" / "__init__.py").read_text())
    (value,) = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    return value


def test_the_version_is_written_once():
    project = _project()
    assert "version" not in project and "version" in project["dynamic"]
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["dynamic"]["version"] == {"attr": "prreid_lib.__version__"}


def test_citation_cff_carries_the_package_version():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(citation["version"]) == _package_version()


def test_cli_version_is_the_package_version(capsys):
    from prreid_lib.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.split() == ["prreid", _package_version()]
