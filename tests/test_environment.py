"""environment.yml mirrors pyproject.toml, with torch pinned as in constraints.txt.

pyproject.toml asks for compatible torch/torchvision ranges (so installing prreid into a
CUDA environment keeps its torch); constraints.txt pins the tested versions, which
`make install` and environment.yml use.
"""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("book", "dev"):
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


def test_environment_yml_matches_pyproject_with_constraints():
    python, pip_reqs = _environment_requirements()
    assert python == "python=3.11"
    assert pip_reqs == _pinned(_pyproject_requirements())


def test_torch_is_a_range_in_pyproject_and_pinned_in_constraints():
    pins = _constraints()
    assert str(pins["torch"]) == "torch==2.14.1"
    assert str(pins["torchvision"]) == "torchvision==0.29.1"
    ranges = {Requirement(r).name: Requirement(r) for r in _pyproject_requirements()}
    for name, pin in pins.items():
        (version,) = [s.version for s in pin.specifier]
        assert not any(s.operator == "==" for s in ranges[name].specifier), ranges[name]
        assert ranges[name].specifier.contains(version), (ranges[name], version)
    assert "jupyter-book<2" in _pyproject_requirements()


def test_make_install_uses_constraints():
    install = [line for line in (ROOT / "Makefile").read_text().splitlines() if "install" in line]
    assert any("pip install" in line and "-c constraints.txt" in line for line in install)
