"""Checks a notebook cell can call: `check("<topic>.<function>")` grades one task of the folder the
notebook sits in with the public suite (in the sandbox, like `dlcore check`), prints what is wrong and where,
and raises AssertionError unless the task gets full points. It prints to stdout only: nbgrader zeroes a test
cell that writes to stderr.
"""
from __future__ import annotations

from pathlib import Path

import course_config
from autograder.runner import grade_topic


def check(task: str, folder: str | Path = ".") -> None:
    """Grade one task with the public suite; raises AssertionError if any points were lost.

    Returns None on purpose: nbgrader would read a number left as a cell's value as that cell's partial credit.
    """
    topic = course_config.topic(task.split(".")[0])
    result = grade_topic(topic, Path(folder).resolve(), "public", tasks=[task]).results[0]
    mark = "PASS" if result.points == result.max_points else "FAIL"
    print(f"{mark} {task}: {result.points:g}/{result.max_points:g}")
    for part in result.parts:
        print(f"  {'ok  ' if part.passed else 'FAIL'} {part.label}" + ("" if part.passed else f": {part.message}"))
    if result.output.strip():
        print("  your code printed:\n    " + result.output.strip().replace("\n", "\n    ")[:2000])
    assert result.points == result.max_points, f"{task}: {result.message}"
