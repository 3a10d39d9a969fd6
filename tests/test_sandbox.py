"""The sandbox fails closed: `dlcore grade` refuses to run without bubblewrap unless told, and student code never
runs as root, in either mode. A probe submission reports who it runs as and what it could touch."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest

from autograder.mutants import write_stubs
from autograder.confine import sandbox_mode
from conftest import REPO, SOLUTIONS, by_task, grade, prepend
from course_config import Limits

HIDDEN = REPO / "autograder" / "hidden" / "feedforward.py"
LIMITS = Limits(call_s=20.0, import_s=20.0, wall_s=120.0, memory_mb=1024)
IS_ROOT = os.geteuid() == 0


def probe_code(pwned: str) -> str:
    """Top-level code for a student module: prints PROBE{json}END with its ids and what it could write or read."""
    return f'''
import json as _json, os as _os


def _probe():
    out = {{"uid": _os.getuid(), "euid": _os.geteuid()}}
    for line in open("/proc/self/uid_map").read().splitlines():  # the uid seen outside any user namespace
        inside, outside, count = map(int, line.split())
        if inside <= out["uid"] < inside + count:
            out["outside_uid"] = outside + out["uid"] - inside
    for line in open("/proc/self/status").read().splitlines():
        if line.startswith(("Uid:", "CapEff:")):
            out[line.split(":")[0]] = line.split(":")[1].split()
    for key, path in (("tmp", {pwned!r}), ("root", "/root/x"), ("own", "own.txt")):
        try:
            with open(path, "w") as f:
                f.write("x")
            out[key] = "wrote"
        except OSError as exc:
            out[key] = type(exc).__name__
    try:
        open({str(HIDDEN)!r}).read()
        out["hidden"] = "read"
    except OSError as exc:
        out["hidden"] = type(exc).__name__
    print("PROBE" + _json.dumps(out) + "END")


_probe()
'''


def probe_report(text: str) -> dict:
    found = re.search(r"PROBE(\{.*?\})END", text)
    assert found, f"no probe report in the output: {text[:2000]!r}"
    return json.loads(found.group(1))


def assert_unprivileged(report: dict) -> None:
    assert report["uid"] != 0 and report["euid"] != 0 and report["outside_uid"] != 0, report
    if IS_ROOT:  # the grader is root: student code must have become nobody, with no capabilities
        assert report["uid"] == report["euid"] == report["outside_uid"] == 65534, report
        assert report["Uid"] == ["65534"] * 4, report
    assert int(report["CapEff"][0], 16) == 0, report
    assert report["root"] != "wrote", report
    assert report["own"] == "wrote", report  # its private copy stays writable for the sandbox user


def dlcore(*args, env):
    return subprocess.run([sys.executable, "-m", "autograder.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900)


@pytest.fixture
def pwned():
    path = f"/tmp/dlcore-pwned-{uuid.uuid4().hex[:8]}"
    yield path
    if os.path.exists(path):
        os.unlink(path)


@pytest.mark.skipif(sandbox_mode() != "bwrap", reason="filesystem isolation needs bubblewrap (see docs/sandbox.md)")
def test_bwrap_worker_is_unprivileged_and_sees_only_its_copy(reference_copy, pwned):
    prepend(reference_copy, "layers", probe_code(pwned))
    res = by_task(grade(reference_copy, tasks=["feedforward.affine_forward", "feedforward.relu_forward"],
                        limits=LIMITS))
    assert res["feedforward.affine_forward"].points == 2 and res["feedforward.relu_forward"].points == 1
    report = probe_report(res["feedforward.affine_forward"].output)
    assert_unprivileged(report)
    assert report["hidden"] == "FileNotFoundError", report  # the repository does not exist inside
    assert report["tmp"] == "wrote" and not os.path.exists(pwned), report  # its /tmp is a private tmpfs


def test_grade_refuses_without_bubblewrap_and_grades_unprivileged_when_allowed(tmp_path, pwned):
    """A grader's fresh machine where bubblewrap does not work: a `bwrap` that exits 1 comes first on PATH."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DLCORE_SANDBOX"}
    env.update(PATH=f"{fake}:{os.environ['PATH']}", COLUMNS="200")
    folder = write_stubs("feedforward", SOLUTIONS, tmp_path / "course" / "submitted" / "eve")
    prepend(folder, "layers", probe_code(pwned))
    out = tmp_path / "graded"
    args = ["grade", "feedforward", "--submissions", str(tmp_path / "course"), "--out", str(out)]

    refused = dlcore(*args, env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "refusing to grade: bubblewrap does not work here" in refused.stderr, refused.stderr
    assert "apt-get install -y bubblewrap" in refused.stderr and "--allow-unisolated-sandbox" in refused.stderr
    assert not out.exists()

    graded = dlcore(*args, "--allow-unisolated-sandbox", env=env)
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
    assert "WITHOUT filesystem isolation" in graded.stderr
    data = json.loads((out / "eve" / "feedforward" / "results.json").read_text())
    assert data["extra_data"]["dlcore"]["sandbox"] == "plain"
    assert data["score"] == 0  # stubs
    assert_unprivileged(probe_report("\n".join(t["output"] for t in data["tests"])))


def test_forced_plain_mode_is_refused_too(tmp_path):
    env = dict(os.environ, DLCORE_SANDBOX="plain")
    proc = dlcore("grade", "feedforward", "--submissions", str(tmp_path), "--out", str(tmp_path / "o"), env=env)
    assert proc.returncode == 2 and "DLCORE_SANDBOX=plain" in proc.stderr and "refusing" in proc.stderr, proc.stderr


def test_check_runs_in_plain_mode_with_a_one_line_note():
    env = dict(os.environ, DLCORE_SANDBOX="plain", COLUMNS="200")
    proc = dlcore("check", "feedforward", str(SOLUTIONS / "feedforward"), "--task", "feedforward.relu_forward",
                  env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "without filesystem isolation" in notes[0], proc.stderr


def test_plain_worker_is_unprivileged(reference_copy, pwned, monkeypatch):
    monkeypatch.setenv("DLCORE_SANDBOX", "plain")
    sandbox_mode.cache_clear()
    try:
        prepend(reference_copy, "layers", probe_code(pwned))
        res = by_task(grade(reference_copy, tasks=["feedforward.relu_forward"], limits=LIMITS))
    finally:
        monkeypatch.delenv("DLCORE_SANDBOX")
        sandbox_mode.cache_clear()
    assert res["feedforward.relu_forward"].points == 1
    assert_unprivileged(probe_report(res["feedforward.relu_forward"].output))
