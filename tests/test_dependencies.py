"""Every module the project imports is declared: the standard library, the project's own code, or a distribution
that pyproject.toml names (the grader edition's for the repository, the student edition's for release/).

A fresh virtual environment with only the README's set-up command must be able to import everything, so an import
that is satisfied only because something else happened to pull the package in (or because the machine had it) fails
here. Nothing is hand-listed: the project's own names are the modules and packages in this repository, and each
declared distribution's import names are read from its installed metadata."""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import nbformat
import pytest

from conftest import REPO

# (folders scanned, the pyproject.toml whose dependencies must cover them, extras counted as declared)
SCOPES = {
    "grader": ([REPO / "autograder", REPO / "solutions", REPO / "tests", REPO / "benchmarks",
                REPO / "course_config", REPO / "assignments"], REPO / "pyproject.toml", True),
    "student": ([REPO / "release"], REPO / "release" / "pyproject.toml", False),
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_file():
            out.append(p)
        else:
            out += [f for f in sorted(p.rglob("*")) if f.suffix in (".py", ".ipynb") and "__pycache__" not in f.parts]
    return out


def _sources(path: Path) -> list[str]:
    if path.suffix == ".py":
        return [path.read_text()]
    nb = nbformat.read(path, as_version=4)
    # IPython magics and shell lines are not Python; drop them so the cell parses
    return ["\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for c in nb.cells if c.cell_type == "code"]


def imported_names(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file (at any depth: inside functions and try blocks too), and of
    every module a command line in it runs with `python -m NAME`."""
    names = set()
    for src in _sources(path):
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif isinstance(node, (ast.List, ast.Tuple)):  # a command line running a module: [..., "-m", "name"]
                items = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                names |= {b.split(".")[0] for a, b in zip(items, items[1:])
                          if a == "-m" and isinstance(b, str) and not b.startswith("-")}
    return names


@cache
def own_names() -> frozenset[str]:
    """The project's own importable names: every module file and package folder in the repository."""
    names = set()
    for f in REPO.rglob("*.py"):
        if {".git", "__pycache__", "site-packages"} & set(f.parts):  # a venv inside the checkout is not the project
            continue
        names.add(f.stem)
        names |= {d.name for d in f.parents if (d / "__init__.py").exists() and REPO in d.parents}
    return frozenset(names)


def _requirement_names(req: str) -> tuple[str, set[str]]:
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?", req)
    assert m, req
    return _normal(m.group(1)), {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}


def declared_distributions(pyproject: Path, with_extras: bool) -> set[str]:
    """Distributions named in pyproject's dependencies (and optional dependencies), plus those that a requested
    extra of a named distribution pulls in (`dask[distributed]` declares `distributed`)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project.get("dependencies", []))
    if with_extras:
        for extra in project.get("optional-dependencies", {}).values():
            reqs += extra
    dists = set()
    for req in reqs:
        name, extras = _requirement_names(req)
        dists.add(name)
        for dep in md.requires(name) or []:
            for extra in extras:
                if re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", dep):
                    dists.add(_requirement_names(dep)[0])
    return dists


@cache
def _providers() -> dict[str, set[str]]:
    return {mod: {_normal(d) for d in dists} for mod, dists in md.packages_distributions().items()}


def undeclared(scope: str) -> dict[str, list[str]]:
    """Imported name -> the files importing it, for names that are neither stdlib, own, nor declared."""
    paths, pyproject, with_extras = SCOPES[scope]
    declared = declared_distributions(pyproject, with_extras)
    missing: dict[str, list[str]] = {}
    for f in _files(paths):
        for name in imported_names(f):
            if name in sys.stdlib_module_names or name == "__future__" or name in own_names():
                continue
            if _providers().get(name, set()) & declared:
                continue
            missing.setdefault(name, []).append(str(f.relative_to(REPO) if REPO in f.parents else f))
    return missing


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_every_import_is_declared(scope):
    missing = undeclared(scope)
    pyproject = SCOPES[scope][1]
    assert not missing, f"imports not declared in {pyproject}:\n" + "\n".join(
        f"  {name} ({', '.join(sorted(_providers().get(name, {'no installed distribution'})))}): "
        f"imported by {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}" for name, files in sorted(missing.items()))


def test_the_check_sees_an_undeclared_import(tmp_path, monkeypatch):
    """The check itself can fail: a file importing an installed but undeclared distribution is reported."""
    (tmp_path / "m.py").write_text("import os\nimport scipy.linalg\nfrom numpy import ones\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["numpy"]\n')
    monkeypatch.setitem(SCOPES, "probe", ([tmp_path / "m.py"], tmp_path / "pyproject.toml", False))
    assert set(undeclared("probe")) == {"scipy"}


def test_ci_runs_the_readme_commands():
    """.ci/run installs with the README's set-up command and runs the README's test command, word for word."""
    import shlex

    readme, ci = (REPO / "README.md").read_text(), (REPO / ".ci" / "run").read_text()
    block = readme.split("## Set up, run, test", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split(" #", 1)[0]) for line in block.splitlines() if line.strip()]
    setup = next(c for c in commands if c[:3] == ["pip", "install", "-e"])
    test = next(c for c in commands if c[:3] == ["python", "-m", "pytest"])
    ci_lines = [shlex.split(line) for line in ci.splitlines() if line.startswith(("python ", "pip "))]
    # `python -m pip install -q -e .[dev]` in .ci/run is the README's `pip install -e ".[dev]"` (quiet)
    assert any(c[:3] == "python -m pip".split() and [x for x in c[3:] if x != "-q"] == setup[1:]
               for c in ci_lines), setup
    assert ci_lines[-1] == test, (ci_lines[-1], test)
