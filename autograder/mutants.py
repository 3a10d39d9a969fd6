"""Planted bugs ("mutants") that test the hidden suite: each must lose points where it breaks, and only there.

A mutant is a one-place textual edit of a reference module. Topics list theirs in their hidden suite module
(`MUTANTS`); the tests grade every mutant, and `dlcore demo` uses a few as typical buggy students.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from autograder.release import make_stub


@dataclass(frozen=True)
class Mutant:
    name: str                  # short id, e.g. "softmax_missing_1_over_N"
    module: str                # file stem in solutions/<topic>/
    old: str                   # exact text in the reference (must occur exactly once)
    new: str                   # replacement
    primary: str               # the task that must lose points
    may_break: tuple[str, ...] = ()  # tasks besides the primary's dependents (config depends_on) that may lose
    description: str = ""

    def allowed(self, topic) -> set[str]:
        """Tasks that may lose points: the primary, every task that (transitively) depends on it in the
        config, and the listed extras."""
        allowed, grew = {self.primary, *self.may_break}, True
        while grew:
            new = {t.name for t in topic.tasks if set(t.depends_on) & allowed} - allowed
            allowed |= new
            grew = bool(new)
        return allowed


def mutant(topic: str, name: str, module: str, old: str, new: str, primary: str, description: str) -> Mutant:
    """A mutant of solutions/<topic>/<module>.py whose `primary` task (a bare name in that topic) must lose
    points; the tasks that depend on it in the config may lose points too."""
    return Mutant(name, module, old, new, f"{topic}.{primary}", (), description)


def copy_reference(topic: str, solutions: Path, dest: Path) -> Path:
    """Copy the reference of a topic, and of the topics it requires (unless present), into dest/."""
    import course_config

    for slug in (*course_config.topic(topic).requires, topic):
        if not (dest / slug).exists():
            shutil.copytree(solutions / slug, dest / slug, ignore=shutil.ignore_patterns("__pycache__"))
    return dest / topic


def apply(mutant: Mutant, topic: str, solutions: Path, dest: Path) -> Path:
    """Write the topic folder with the mutant applied (other modules and required topics are the reference)."""
    folder = copy_reference(topic, solutions, dest)
    path = folder / f"{mutant.module}.py"
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise ValueError(f"mutant {mutant.name}: its text occurs {count} times in {mutant.module}.py (need 1)")
    path.write_text(text.replace(mutant.old, mutant.new))
    return folder


def write_stubs(topic: str, solutions: Path, dest: Path) -> Path:
    """Write the untouched stubs of a topic (as released) to dest/<topic>."""
    folder = dest / topic
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((solutions / topic).glob("*.py")):
        text = path.read_text()
        (folder / path.name).write_text(make_stub(text, topic, path.name) if "### BEGIN SOLUTION" in text else text)
    return folder
