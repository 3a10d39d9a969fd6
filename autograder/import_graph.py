"""Which autograder modules a module imports, read from its source with `ast` (nothing is imported or run).

Lists that follow from the imports are derived here rather than kept by hand: the files the sandbox mounts for the
worker (autograder.client.transport_files), the engine files `dlcore release` ships (autograder.release) and the
layer order tests/test_layers.py enforces. Imports inside functions count too: a lazy import is still a use.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "autograder"
ROOT = Path(__file__).resolve().parent  # the package folder: autograder/ here, release/autograder/ in the edition


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """autograder.x.y -> its file under `root` (a module or a package's __init__.py), or None if there is none."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    """The file of an autograder module -> its dotted name (autograder/public/x.py -> autograder.public.x)."""
    rel = Path(path).resolve().relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join((PACKAGE, *parts))


def imports(name: str, root: Path = ROOT) -> set[str]:
    """The autograder modules that module `name` imports anywhere in its source (`from autograder import x` counts
    as autograder.x when x is a module, else as autograder)."""
    path = module_file(name, root)
    if path is None:
        raise ModuleNotFoundError(f"no source for {name} under {root}")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            candidates = [f"{base}.{alias.name}" if module_file(f"{base}.{alias.name}", root) else base
                          for alias in node.names]
        else:
            continue
        for cand in candidates:
            while cand and module_file(cand, root) is None:  # `import autograder.x.y as z` of a deeper name
                cand = cand.rpartition(".")[0]
            if cand.split(".")[0] == PACKAGE and cand:
                found.add(cand)
    found.discard(name)
    return found


def closure(roots, root: Path = ROOT, stop=frozenset()) -> set[str]:
    """`roots` and every autograder module they import, directly or not, with the packages holding them (importing
    autograder.public.x runs autograder/__init__.py and autograder/public/__init__.py too), without entering the
    modules in `stop`."""
    seen: set[str] = set()
    todo = [r for r in roots if r not in stop]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
        todo += [m for m in (*imports(name, root), *parents) if m not in seen and m not in stop]
    return seen
