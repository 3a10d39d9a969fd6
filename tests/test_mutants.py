"""Every planted bug loses points on the task it breaks, and only on tasks that call the broken code.

Tasks whose modules neither are the mutated module nor import it (directly or through another module) run the
reference's code byte for byte with the same seeds, so they are not regraded here; the reference test shows
they get full marks. Tasks that depend on the primary (config depends_on, transitively) may lose points or not,
so they are not regraded either: that keeps expensive training runs out of most mutants' grading.
"""
from __future__ import annotations

import importlib

import pytest

import course_config
from autograder import results as R
from autograder.mutants import apply
from conftest import FF, SOLUTIONS, affected_modules, grade

MUTANTS = [(topic, m) for topic in course_config.TOPICS
           for m in importlib.import_module(f"autograder.hidden.{topic.slug}").MUTANTS]


@pytest.mark.parametrize("topic", course_config.TOPICS, ids=lambda t: t.slug)
def test_there_are_enough_mutants(topic):
    mine = [m for t, m in MUTANTS if t is topic]
    assert len(mine) >= topic.min_mutants
    assert len({m.name for m in mine}) == len(mine)
    assert {m.primary for m in mine} >= {t.name for t in topic.tasks if t.kind == "auto"}  # every task is tested
    assert set(topic.demo_mutants) <= {m.name for m in mine}  # the demo's buggy students exist


def test_dependency_analysis():
    assert affected_modules(FF, "layers") == {"layers", "net"}
    assert affected_modules(FF, "torch_net") == {"torch_net"}


@pytest.mark.parametrize("topic, mutant", MUTANTS, ids=lambda x: getattr(x, "name", None) or x.slug)
def test_mutant_loses_points_exactly_where_it_breaks(topic, mutant, tmp_path):
    folder = apply(mutant, topic.slug, SOLUTIONS, tmp_path)
    modules = affected_modules(topic, mutant.module)
    allowed = mutant.allowed(topic)
    # the primary must lose points; every other task that runs the mutated code must not. Tasks that may lose
    # (they call the primary's code, config depends_on) are not regraded: either outcome is right for them.
    tasks = [t.name for t in topic.tasks if t.kind == "auto" and t.module in modules
             and (t.name == mutant.primary or t.name not in allowed)]
    assert mutant.primary in tasks
    result = grade(folder, tasks=tasks, topic=topic)
    lost = {r.task: r for r in result.results if r.points < r.max_points}
    assert mutant.primary in lost, f"{mutant.name} ({mutant.description}) was not caught"
    assert set(lost) <= mutant.allowed(topic), f"{mutant.name} also cost points on {sorted(set(lost) - mutant.allowed(topic))}"
    primary = lost[mutant.primary]
    assert primary.status in (R.PARTIAL, R.FAILED, R.ERROR)
    assert primary.message and "Traceback" not in primary.message
