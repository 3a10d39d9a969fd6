"""Stopping and resuming as graders live it: `dlcore demo` and `dlcore grade`, stopped with SIGTERM (a scheduler's
time limit, `kill`) or killed with kill -9 (of the grader alone, or of its whole process group, as a power loss
would), leave no process behind, and the rerun gives every student exactly the uninterrupted run's results.

Real processes and real signals: each run starts in its own session with a private TMPDIR, and a process belongs
to it when it descends from it, shares its session, or names that TMPDIR on its command line (the sandbox's
copies live there; bubblewrap's processes show it in their arguments, and what runs inside a bubblewrap PID
namespace dies with it).
"""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import course_config
from autograder import batch, demo, stopping

TOPIC = "attention"  # the cheapest topic to grade
pytestmark = pytest.mark.xdist_group("stopping")


def _stat(pid: int) -> tuple[int, int, str, int] | None:
    """(parent, session, state, start time) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        return int(fields[1]), int(fields[3]), fields[0].decode(), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def run_processes(top: int, marker: str) -> set[tuple[int, int]]:
    """(pid, start time) of every live process of the run started as `top` (see the module docstring)."""
    found, table = set(), {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) and st[2] != "Z":  # a zombie runs nothing
            table[int(name)] = st
    below = set(stopping.descendants(top))
    for pid, (ppid, sid, _, start) in table.items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid == top or sid == top or pid in below or marker.encode() in cmdline:
            found.add((pid, start))
    return found


def alive(procs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(pid, start) for pid, start in procs if (st := _stat(pid)) and st[2] != "Z" and st[3] == start}


class Run:
    """A `dlcore` command started in its own session with a private TMPDIR."""

    def __init__(self, args: list[str], tmp: Path, log: Path):
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
        self.log = open(log, "w")
        self.proc = subprocess.Popen([str(Path(sys.executable).with_name("dlcore")), *args], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def processes(self) -> set[tuple[int, int]]:
        return run_processes(self.proc.pid, str(self.tmp))

    def stop(self, how: str) -> set[tuple[int, int]]:
        """Send SIGTERM, kill -9 the top process, or kill -9 its process group; returns what was running."""
        seen = self.processes()
        if how == "SIGTERM":
            os.kill(self.proc.pid, signal.SIGTERM)
        elif how == "SIGKILL":
            os.kill(self.proc.pid, signal.SIGKILL)
        else:  # power loss, as far as this machine can fake one: the whole group at once, mid-write or not
            os.killpg(self.proc.pid, signal.SIGKILL)
        return seen | self.processes()

    def wait(self, timeout: float = 600) -> int:
        rc = self.proc.wait(timeout=timeout)
        self.log.close()
        return rc


def assert_nothing_left(run: Run, seen: set[tuple[int, int]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (left := alive(seen) | run.processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running {within:g} s after the stop: " + "; ".join(
        f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()[:120]!r}" for pid, _ in left
        if Path(f"/proc/{pid}").exists())


def wait_for_results(graded: Path, at_least: int, run: Run, timeout: float = 300) -> None:
    """Until `at_least` results.json files exist (the cohort is in the middle of grading)."""
    deadline = time.monotonic() + timeout
    while len(list(graded.glob(f"*/{TOPIC}/results.json"))) < at_least:
        assert run.proc.poll() is None, f"the run ended early: {Path(run.log.name).read_text()[-2000:]}"
        assert time.monotonic() < deadline, "no result came"
        time.sleep(0.2)


def verdicts(graded: Path) -> dict:
    """Every student's task verdicts (what decides points, not timings) and the gradebook."""
    out = {}
    for path in sorted(graded.glob(f"*/{TOPIC}/results.json")):
        data = json.loads(path.read_text())["extra_data"]["dlcore"]
        out[path.parent.parent.name] = (data["notes"], [
            (r["task"], r["points"], r["status"], r["message"], json.dumps(r["parts"]), r["output"])
            for r in data["results"]])
    with open(graded / "gradebook.csv", newline="") as f:
        out["gradebook"] = list(csv.DictReader(f))
    return out


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """The demo's sample cohort of the topic and its manual scores, graded once without interruption."""
    root = tmp_path_factory.mktemp("cohort")
    demo.build_cohort(root, course_config.topic(TOPIC))
    manual = root / "manual_scores.csv"
    manual.write_text(f"student,task,points\nadaeze,{TOPIC}.written_explanation,3\n")
    assert any(t.name == f"{TOPIC}.written_explanation" for t in course_config.topic(TOPIC).tasks)
    batch.grade([TOPIC], root, root / "graded", jobs=2, manual=manual, quiet=True, allow_unisolated=True)
    return root, verdicts(root / "graded")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_demo_stopped_leaves_nothing_running_and_the_rerun_resumes(cohort, tmp_path, how):
    root, expected = cohort
    out = tmp_path / "demo-out"
    run = Run(["demo", "--topics", TOPIC, "--out", str(out)], tmp_path / "tmp", tmp_path / "log")
    wait_for_results(out / "graded", 1, run)
    seen = run.stop(how)
    rc = run.wait(60)
    assert_nothing_left(run, seen)
    log = (tmp_path / "log").read_text()
    if how == "SIGTERM":
        assert rc == 128 + signal.SIGTERM
        assert "stopped by SIGTERM" in log and f"dlcore demo --topics {TOPIC} --out {out}" in log, log[-2000:]
        assert not list((tmp_path / "tmp").glob("dlcore-sub-*")), "a sandbox copy was left behind"
    finished = len(list((out / "graded").glob(f"*/{TOPIC}/results.json")))
    again = Run(["demo", "--topics", TOPIC, "--out", str(out)], tmp_path / "tmp2", tmp_path / "log2")
    assert again.wait() == 0, (tmp_path / "log2").read_text()[-3000:]
    assert f"resuming: {finished} of 6" in (tmp_path / "log2").read_text()
    assert verdicts(out / "graded") == expected


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_grade_stopped_leaves_nothing_running_and_the_rerun_resumes(cohort, tmp_path, how):
    root, expected = cohort
    out = tmp_path / "graded"
    args = ["grade", TOPIC, "--submissions", str(root), "--out", str(out), "--jobs", "2",
            "--manual", str(root / "manual_scores.csv"), "--allow-unisolated-sandbox"]
    run = Run(args, tmp_path / "tmp", tmp_path / "log")
    wait_for_results(out, 1, run)
    seen = run.stop(how)
    rc = run.wait(60)
    assert_nothing_left(run, seen)
    if how == "SIGTERM":
        assert rc == 128 + signal.SIGTERM and "stopped by SIGTERM" in (tmp_path / "log").read_text()
    again = Run(args[:-3] + ["--allow-unisolated-sandbox"], tmp_path / "tmp2", tmp_path / "log2")  # no --manual:
    assert again.wait() == 0, (tmp_path / "log2").read_text()[-3000:]  # the graded folder recorded it
    assert verdicts(out) == expected


def test_kill_9_at_random_moments_then_the_rerun_gives_the_same_points(cohort, tmp_path):
    """kill -9 of the grader, then of its whole process group (mid-write or not), at random moments; each time
    nothing stays running, and the final rerun grades only what is missing and equals the uninterrupted run."""
    root, expected = cohort
    out = tmp_path / "graded"
    args = ["grade", TOPIC, "--submissions", str(root), "--out", str(out), "--jobs", "2", "--manual",
            str(root / "manual_scores.csv"), "--allow-unisolated-sandbox"]
    rng = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "") + str(time.time()))
    for i, how in enumerate(("SIGKILL", "group")):
        run = Run(args, tmp_path / f"tmp{i}", tmp_path / f"log{i}")
        wait_for_results(out, i, run)  # the second run must have resumed past the first's results
        time.sleep(rng.uniform(0.0, 15.0))
        if run.proc.poll() is not None:
            break
        seen = run.stop(how)
        run.wait(60)
        assert_nothing_left(run, seen)
    for path in out.glob(f"*/{TOPIC}/results.json"):  # a result cut short (as by a power loss) must count as stale
        json.loads(path.read_text())
    victim = next(out.glob(f"*/{TOPIC}/results.json"), None)
    if victim is not None:
        victim.write_text(victim.read_text()[: len(victim.read_text()) // 2])
    final = Run(args, tmp_path / "tmp-final", tmp_path / "log-final")
    assert final.wait() == 0, (tmp_path / "log-final").read_text()[-3000:]
    assert verdicts(out) == expected
    assert not list(out.rglob("*.tmp"))
