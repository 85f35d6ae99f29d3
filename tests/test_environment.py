"""environment.yml mirrors the pins of pyproject.toml."""

import tomllib
from pathlib import Path

import yaml

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


def test_environment_yml_matches_pyproject():
    python, pip_reqs = _environment_requirements()
    assert python == "python=3.11"
    assert pip_reqs == _pyproject_requirements()


def test_torch_pins_are_exact():
    reqs = _pyproject_requirements()
    assert "torch==2.14.1" in reqs
    assert "torchvision==0.29.1" in reqs
    assert "jupyter-book<2" in reqs
