"""The public checks as pytest tests, one per task: `pytest -m TOPIC` or `pytest -m TOPIC.FUNCTION`.

Each test runs your topic folder in the sandbox, like `dlcore check`, and fails with the same feedback.
"""
from pathlib import Path

import pytest

import course_config
from autograder.notebook import check

TASKS = [pytest.param(task.name, marks=[getattr(pytest.mark, topic.slug), getattr(pytest.mark, task.name)],
                      id=task.name)
         for topic in course_config.TOPICS for task in topic.tasks if task.kind == "auto"]


@pytest.mark.parametrize("task", TASKS)
def test_public(task):
    check(task, folder=Path(__file__).parent / task.split(".")[0])
