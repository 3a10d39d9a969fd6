"""Every planted bug loses points on the task it breaks, and only on tasks that call the broken code.

Tasks whose modules neither are the mutated module nor import it (directly or through another module) run the
reference's code byte for byte with the same seeds, so they are not regraded here; the reference test shows
they get full marks.
"""
from __future__ import annotations

import ast

import pytest

from autograder import results as R
from autograder.hidden.feedforward import MUTANTS
from autograder.mutants import apply
from conftest import FF, SOLUTIONS, grade


def affected_modules(topic, changed: str) -> set[str]:
    """Modules of the topic that are `changed` or import it, directly or transitively."""
    imports = {}
    for m in topic.modules:
        tree = ast.parse((SOLUTIONS / topic.slug / f"{m}.py").read_text())
        imports[m] = {n.module.split(".")[1] for n in ast.walk(tree)
                      if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith(topic.slug + ".")}
    affected, grew = {changed}, True
    while grew:
        new = {m for m, deps in imports.items() if deps & affected} - affected
        affected |= new
        grew = bool(new)
    return affected


def test_there_are_enough_mutants():
    assert len(MUTANTS) >= 12
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert {m.primary for m in MUTANTS} >= {t.name for t in FF.tasks if t.kind == "auto"}  # every task is tested


def test_dependency_analysis():
    assert affected_modules(FF, "layers") == {"layers", "net"}
    assert affected_modules(FF, "torch_net") == {"torch_net"}


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_loses_points_exactly_where_it_breaks(mutant, tmp_path):
    folder = apply(mutant, FF.slug, SOLUTIONS, tmp_path)
    modules = affected_modules(FF, mutant.module)
    tasks = [t.name for t in FF.tasks if t.kind == "auto" and t.module in modules]
    assert mutant.primary in tasks
    result = grade(folder, tasks=tasks)
    lost = {r.task: r for r in result.results if r.points < r.max_points}
    assert mutant.primary in lost, f"{mutant.name} ({mutant.description}) was not caught"
    assert set(lost) <= mutant.allowed(FF), f"{mutant.name} also cost points on {sorted(set(lost) - mutant.allowed(FF))}"
    primary = lost[mutant.primary]
    assert primary.status in (R.PARTIAL, R.FAILED, R.ERROR)
    assert primary.message and "Traceback" not in primary.message
