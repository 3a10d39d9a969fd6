"""The type checker is clean over the engine and the configuration: `python -m mypy` from the repository root, with
the [tool.mypy] configuration of pyproject.toml (files: autograder, course_config)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_mypy_is_clean():
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mypy found errors:\n{proc.stdout}\n{proc.stderr}"
