"""`dlcore demo`: build a small sample cohort from the bundled definitions, grade it end to end, show the results.

The cohort (nbgrader layout OUT/submitted/<student>/<topic>/), for every topic: the reference solution,
untouched stubs, three typical buggy students (mutants from the hidden suites), and one hostile submission that
calls sys.exit at import. Each topic folder also carries the topic notebook. The reference student's manual
scores come from a CSV.
"""
from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import course_config
from autograder import batch, mutants
from autograder.runner import REPO

SOLUTIONS = REPO / "solutions"

# The sample students, and how each one's submission of a topic is made: "reference", "stubs", "hostile" (the
# reference plus a sys.exit at import in one module), or the topic's i-th demo mutant (Topic.demo_mutants).
STUDENTS = ("adaeze", "bola", "chidi", "damilola", "emeka", "funmi")


def kind_of(student: str, topic: course_config.Topic) -> str:
    """What `student` hands in for `topic`: funmi is hostile in the first topic only."""
    if student == "adaeze":
        return "reference"
    if student == "bola":
        return "stubs"
    if student == "funmi":
        return "hostile" if topic is course_config.TOPICS[0] else "reference"
    return topic.demo_mutants[STUDENTS.index(student) - 2]


HOSTILE_LINE = "import sys\nsys.exit(0)  # a submission that tries to end the grader early\n"


def build_cohort(root: Path, topic: course_config.Topic) -> Path:
    """Write OUT/submitted/<student>/<topic>/ for every sample student; returns the submitted/ folder."""
    submitted = root / "submitted"
    by_name = {m.name: m for m in importlib.import_module(f"autograder.hidden.{topic.slug}").MUTANTS}
    released_nb = REPO / "release" / topic.slug / topic.notebook
    source_nb = REPO / "assignments" / topic.slug / topic.notebook
    for student in STUDENTS:
        kind = kind_of(student, topic)
        dest = submitted / student
        dest.mkdir(parents=True, exist_ok=True)
        if kind == "stubs":
            folder = mutants.write_stubs(topic.slug, SOLUTIONS, dest)
        elif kind in ("reference", "hostile"):
            folder = dest / topic.slug
            shutil.copytree(SOLUTIONS / topic.slug, folder, ignore=shutil.ignore_patterns("__pycache__"))
            if kind == "hostile":
                victim = folder / f"{topic.torch_modules[0] if topic.torch_modules else topic.modules[-1]}.py"
                text = victim.read_text()  # after `from __future__ ...`, which must stay the first statement
                head, sep, rest = text.partition("from __future__ import annotations\n")
                victim.write_text(head + sep + HOSTILE_LINE + rest if sep else HOSTILE_LINE + text)
        else:
            folder = mutants.apply(by_name[kind], topic.slug, SOLUTIONS, dest)
        notebook = source_nb if kind == "reference" else released_nb
        if notebook.is_file():
            shutil.copy(notebook, folder / topic.notebook)
    return submitted


def run(out: Path, jobs: int = 2, topics: list[str] | None = None, force: bool = False) -> list[dict]:
    """Build and grade the sample cohort of `topics` (slugs; default every configured topic). The cohort is built
    the same way every time, so a rerun after an interruption resumes (grades only what is missing); `force`
    grades it all again."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    chosen = [course_config.topic(t) for t in topics] if topics else list(course_config.TOPICS)
    topics = [t.slug for t in chosen]
    shutil.rmtree(out / "submitted", ignore_errors=True)
    for t in chosen:
        build_cohort(out, t)
    manual = out / "manual_scores.csv"
    manual_tasks = [t.name for tp in chosen for t in tp.tasks if t.kind == "manual"]
    manual.write_text("student,task,points\n" + "".join(f"adaeze,{name},3\n" for name in manual_tasks))
    console.print(f"sample cohort of {len(STUDENTS)} students in {out / 'submitted'}; grading with {jobs} job(s)")
    # the sample cohort is the course's own code, so the plain sandbox is acceptable where bubblewrap is missing
    rows = batch.grade(topics, out, out / "graded", jobs=jobs, manual=manual, force=force, allow_unisolated=True)
    table = Table(title="gradebook (graded/gradebook.csv)")
    for col in ("student", "submission", "points", "%", "grade"):
        table.add_column(col)
    for row in rows:
        kinds = ", ".join(dict.fromkeys(kind_of(row["student"], t) for t in chosen))
        table.add_row(row["student"], kinds, f"{row['total_points']:g}/{row['total_max']:g}",
                      f"{row['percentage']:.1f}", f"{row['letter']} ({row['grade_point']})")
    console.print(table)
    console.print(f"feedback pages: {out / 'graded'}/<student>/feedback.html; "
                  f"Gradescope files: {out / 'graded'}/<student>/<topic>/results.json")
    return rows
