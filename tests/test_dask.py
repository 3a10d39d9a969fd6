"""Grading on Dask distributed: the same results as the process pool, a worker killed mid-grading loses nothing,
and the resume rules (fingerprint, --force) hold. Real `distributed.LocalCluster`s with 2 worker processes.

The topic is backprop (no training runs, so a grading takes seconds): the reference, the untouched stubs and a
planted bug. The tests start clusters, so they share one xdist group and never run at the same time."""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import pytest

from autograder import batch
from autograder.hidden.backprop import MUTANTS
from autograder.mutants import apply, copy_reference, write_stubs
from conftest import SOLUTIONS, prepend

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.xdist_group("dask")
TOPIC = "backprop"
MUTANT = next(m for m in MUTANTS if m.name == "staged_dz2_missing_1_over_N")
SLEEP_S = 6  # the sleeper's import takes this long: time enough to kill its worker mid-grading


def stub_student(sub, name):
    write_stubs("feedforward", SOLUTIONS, sub / name)
    return write_stubs(TOPIC, SOLUTIONS, sub / name)


def comparable(path) -> dict:
    """A results.json without what may differ between two gradings of the same submission: times, the worker."""
    data = json.loads(path.read_text())
    data.pop("execution_time")
    dl = data["extra_data"]["dlcore"]
    for key in ("seconds", "student_seconds", "graded_on", "fingerprint"):  # fingerprints: checked below
        dl.pop(key, None)
    for r in dl["results"]:
        r.pop("seconds")
    return data


def results(out) -> dict:
    return {p.relative_to(out).parts[0]: p for p in sorted(out.glob(f"*/{TOPIC}/results.json"))}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    sub = root / "submitted"
    copy_reference(TOPIC, SOLUTIONS, sub / "ada")
    stub_student(sub, "bisi")
    apply(MUTANT, TOPIC, SOLUTIONS, sub / "chidi")
    return root


def test_dask_gives_the_process_pools_results(cohort):
    pool_rows = batch.grade([TOPIC], cohort, cohort / "pool", jobs=1, quiet=True, allow_unisolated=True)
    version = batch.grading_version()
    dask_rows = batch.grade([TOPIC], cohort, cohort / "dask", jobs=2, quiet=True, allow_unisolated=True,
                            executor="dask")
    pool, dask = results(cohort / "pool"), results(cohort / "dask")
    assert sorted(pool) == sorted(dask) == ["ada", "bisi", "chidi"]
    for student in pool:
        assert comparable(dask[student]) == comparable(pool[student]), student
    by = {r["student"]: r for r in dask_rows}
    assert dask_rows == pool_rows
    assert by["ada"]["total_points"] == 22 and by["bisi"]["total_points"] == 0
    assert 0 < by["chidi"]["total_points"] < 22  # the planted bug costs points, through the same checks
    graded_on = {json.loads(dask[s].read_text())["extra_data"]["dlcore"]["graded_on"] for s in dask}
    assert all(addr.startswith("tcp://") for addr in graded_on)
    assert "submitted" in json.loads(dask["ada"].read_text())["output"]  # paths name the client's folder
    if batch.grading_version() == version:  # (unless someone edited the grader meanwhile, in a shared checkout)
        for student, path in dask.items():  # what resuming compares: the client's fingerprint of the submission
            written = json.loads(path.read_text())["extra_data"]["dlcore"]["fingerprint"]
            assert written == batch.fingerprint(cohort / "submitted" / student / TOPIC, version)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cl, distributed.Client(cl) as client:
        yield cl, client


def kill_when_grading(client, key_part: str, killed: list, after_s: float = 1.5, give_up_s: float = 120.0):
    """SIGKILL the worker process that is executing the task whose key contains `key_part`."""
    def executing(dask_worker):
        return [str(ts.key) for ts in dask_worker.state.executing]

    end = time.monotonic() + give_up_s
    while time.monotonic() < end:
        busy = client.run(executing)
        victim = next((addr for addr, keys in busy.items() if any(key_part in k for k in keys)), None)
        if victim:
            time.sleep(after_s)  # its sandboxed worker is now sleeping in the student's import
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            killed.append(victim)
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, cluster):
    """Three stubs graded on the cluster by its address (--scheduler), one of which sleeps in its import; the worker
    grading that one is SIGKILLed mid-grading."""
    cl, client = cluster
    root = tmp_path_factory.mktemp("killed")
    sub = root / "submitted"
    for name in ("ebo", "femi"):
        stub_student(sub, name)
    prepend(stub_student(sub, "sleeper"), "manual", f"import time\ntime.sleep({SLEEP_S})")
    killed: list[str] = []
    killer = threading.Thread(target=kill_when_grading, args=(client, f"{TOPIC}-sleeper-", killed))
    killer.start()
    rows = batch.grade([TOPIC], root, root / "out", quiet=True, allow_unisolated=True,
                       scheduler=cl.scheduler_address)
    killer.join()
    return root, root / "out", rows, killed


def test_a_worker_killed_mid_grading_loses_nothing(killed_run):
    root, out, rows, killed = killed_run
    assert killed, "the sleeper's grading was never seen running"
    assert [r["student"] for r in rows] == ["ebo", "femi", "sleeper"]
    for student in ("ebo", "femi", "sleeper"):  # exactly one result each, whole, written by the client
        assert sorted(p.name for p in (out / student / TOPIC).iterdir()) == ["results.json"]
    sleeper = json.loads((out / "sleeper" / TOPIC / "results.json").read_text())
    assert sleeper["extra_data"]["dlcore"]["graded_on"] != killed[0]  # retried on another worker process
    assert sleeper["extra_data"]["dlcore"]["fingerprint"]  # a real result, not a recorded grader failure
    stub = json.loads((out / "ebo" / TOPIC / "results.json").read_text())
    verdicts = [[(t["name"], t["score"], t["status"]) for t in r["tests"]] for r in (sleeper, stub)]
    assert verdicts[0] == verdicts[1]  # graded like any stub: 0 points, every task not attempted
    assert all(t["output"].startswith(("not attempted", "pending")) for t in sleeper["tests"]), sleeper["tests"]
    assert all(r["grader_errors"] == 0 for r in rows)


def test_resume_and_force_hold_on_dask(killed_run, cluster):
    root, out, rows, killed = killed_run
    on_dask = dict(quiet=True, allow_unisolated=True, scheduler=cluster[0].scheduler_address)
    first = {s: p.stat().st_mtime_ns for s, p in results(out).items()}
    assert sorted(first) == ["ebo", "femi", "sleeper"]

    batch.grade([TOPIC], root, out, **on_dask)  # same submissions, same grader: nothing regraded
    assert {s: p.stat().st_mtime_ns for s, p in results(out).items()} == first

    manual = root / "submitted" / "femi" / TOPIC / "manual.py"
    manual.write_text("# changed\n" + manual.read_text())
    batch.grade([TOPIC], root, out, **on_dask)  # a changed submission is regraded, the rest kept
    second = {s: p.stat().st_mtime_ns for s, p in results(out).items()}
    assert second["femi"] != first["femi"] and {s: second[s] for s in ("ebo", "sleeper")} == \
        {s: first[s] for s in ("ebo", "sleeper")}

    batch.grade([TOPIC], root, out, force=True, **on_dask)  # --force regrades everything
    third = {s: p.stat().st_mtime_ns for s, p in results(out).items()}
    assert all(third[s] != second[s] for s in third)
    assert not list(out.rglob("*.tmp"))


def test_a_worker_with_another_grader_refuses(cluster):
    """The client's fingerprint names its grader: a worker that loaded other grading code must not use it."""
    cl, client = cluster
    fut = client.submit(batch._grade_packed, "ebo", TOPIC, b"", "/nowhere", "another-grader:bwrap", "fp", None,
                        None, True, pure=False)
    with pytest.raises(RuntimeError, match="another grader or sandbox"):
        fut.result()
