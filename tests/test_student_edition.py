"""The student edition installed as its README says, in its own fresh virtual environment (no grader packages):
`dlcore check` and `pytest -m TOPIC` work there on the stubs and on a finished topic.

.ci/run builds that environment (a copy of release/, `pip install -e .` in a new venv) and passes it in
DLCORE_STUDENT_EDITION and DLCORE_STUDENT_PYTHON; a developer can do the same by hand. Without them the test skips
and says so."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import course_config
from conftest import SOLUTIONS

EDITION = os.environ.get("DLCORE_STUDENT_EDITION")
PYTHON = os.environ.get("DLCORE_STUDENT_PYTHON")
pytestmark = pytest.mark.skipif(not (EDITION and PYTHON), reason="no student-edition environment: set "
                                "DLCORE_STUDENT_EDITION and DLCORE_STUDENT_PYTHON (.ci/run does)")
# the topic without a dataset and with both a NumPy and a PyTorch worker: cheap, and it exercises both
TOPIC = course_config.topic("attention").slug


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    return subprocess.run([str(Path(PYTHON).parent / args[0]), *args[1:]], cwd=folder, capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture
def edition() -> Path:
    return Path(EDITION)


def test_the_student_environment_has_no_grader_packages():
    proc = subprocess.run([PYTHON, "-I", "-c", "import importlib.util as u; print([m for m in ('nbgrader', 'otter', "
                           "'dask', 'autograder.hidden') if u.find_spec(m.split('.')[0]) and "
                           "(m != 'autograder.hidden' or u.find_spec(m))])"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


def test_check_on_the_stubs_gives_a_table_not_a_traceback(edition):
    proc = _run(edition, "dlcore", "check", TOPIC)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "not attempted" in out and "Traceback" not in out, out


def test_check_and_pytest_pass_a_finished_topic(edition, tmp_path):
    """A copy of the edition with the topic finished (the editable install serves the same engine to it)."""
    copy = tmp_path / "edition"
    shutil.copytree(edition, copy, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "*.ipynb"))
    for f in (SOLUTIONS / TOPIC).glob("*.py"):
        shutil.copy(f, copy / TOPIC / f.name)
    proc = _run(copy, "dlcore", "check", TOPIC)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    # `pytest -m TOPIC` (the student README's command) runs the same public checks; pytest is a dependency there
    proc = _run(copy, "python", "-m", "pytest", "-m", TOPIC, "-q", "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout[-2000:]
