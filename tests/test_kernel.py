"""The kernel nbgrader runs student notebooks in (autograder/kernel.py), started as nbgrader starts it: a real
jupyter_client KernelManager with the course's kernelspec and IPC transport, a real ipykernel inside the sandbox.

A hostile notebook cell runs in it and reports what it could reach; the course's secrets (solutions, hidden checks,
nbgrader's database, another student's folder) must not exist for it, the network must be unreachable, and it must
not run as root. The kernel refuses to start without isolation unless the grader allowed it, and says why.
`tests/test_nbgrader_term.py` runs whole notebooks through nbgrader's autograde in this kernel.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder import confine, kernel, nbgrader_course

REPO = kernel.REPO

pytestmark = pytest.mark.skipif(confine.isolation_problem() is not None,
                                reason=f"no filesystem isolation here: {confine.isolation_problem()}")

HOSTILE = r'''
import json, os, socket
seen = {}
for name, path in PATHS.items():
    seen[name] = os.path.exists(path)
try:
    socket.create_connection(("10.255.255.1", 80), timeout=2)
    seen["network"] = True
except OSError:
    seen["network"] = False
try:
    with open(os.path.join(os.getcwd(), "planted.txt"), "w") as f:
        f.write("x")
    seen["wrote_submission"] = True
except OSError:
    seen["wrote_submission"] = False
seen["uid"] = os.getuid()
import course_config, autograder.notebook
seen["edition"] = os.path.dirname(autograder.notebook.__file__)
print("SEEN " + json.dumps(seen))
'''


def _course(tmp_path: Path) -> tuple[Path, Path]:
    course = tmp_path / "course"
    nbgrader_course.init(course, topics=["backprop"])
    (course / "gradebook.db").write_text("secret")
    work = course / "autograded" / "alice" / "backprop"
    work.mkdir(parents=True)
    (course / "autograded" / "bob" / "backprop").mkdir(parents=True)
    (course / "autograded" / "bob" / "backprop" / "manual.py").write_text("# bob's work\n")
    return course, work


def _run(course: Path, work: Path, code: str, env: dict[str, str], monkeypatch) -> str:
    """Start the course's kernel as nbgrader does, run `code`, return its stdout (or raise RuntimeError)."""
    from jupyter_client.manager import KernelManager

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUPYTER_PATH", str(course / ".dlcore" / "jupyter"))
    # a connection file of its own, as nbgrader's kernels have: its IPC socket paths are then unique to this kernel
    # (in a short folder: a Unix socket's path has at most 107 bytes)
    runtime = tempfile.mkdtemp(prefix="dlk-")
    km = KernelManager(kernel_name=kernel.NAME, transport="ipc", connection_file=os.path.join(runtime, "k.json"))
    km.start_kernel(cwd=str(work), extra_arguments=["--HistoryManager.hist_file=:memory:"])
    out = []
    try:
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=90)
        except RuntimeError as exc:
            raise RuntimeError(f"kernel did not start: {exc}") from exc
        msg_id = kc.execute(code)
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=120)
            except queue.Empty:
                raise RuntimeError("no reply from the kernel")
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
        leftover = [n for n in os.listdir(runtime) if "ipc" in n]
        shutil.rmtree(runtime, ignore_errors=True)
    assert not leftover, f"socket links left behind: {leftover}"
    return "".join(out)


def test_a_hostile_notebook_cell_reaches_nothing_it_should_not(tmp_path, monkeypatch):
    course, work = _course(tmp_path)
    paths = {"solutions": str(REPO / "solutions" / "backprop"), "hidden": str(REPO / "autograder" / "hidden"),
             "assignments": str(REPO / "assignments"), "gradebook": str(course / "gradebook.db"),
             "other_student": str(course / "autograded" / "bob"), "nbgrader_config": str(course / "nbgrader_config.py"),
             "grader_file": str(tmp_path / "grader-notes.txt"),
             "data": os.environ.get("DLCORE_DATA", "/nonexistent")}
    (tmp_path / "grader-notes.txt").write_text("the grader's own files")
    secrets = ("solutions", "hidden", "assignments", "gradebook", "other_student", "nbgrader_config", "grader_file")
    assert all(os.path.exists(paths[s]) for s in secrets), "each secret must exist outside the sandbox"
    text = _run(course, work, f"PATHS = {paths!r}\n" + HOSTILE, {}, monkeypatch)
    line = next((l for l in text.splitlines() if l.startswith("SEEN ")), None)
    assert line, f"the cell did not finish:\n{text}"
    seen = json.loads(line[5:])
    for secret in secrets:
        assert seen[secret] is False, f"{secret} ({paths[secret]}) is visible to student code in the kernel"
    assert seen["network"] is False
    assert seen["wrote_submission"] is False and not (work / "planted.txt").exists()
    assert seen["uid"] != 0
    assert seen["edition"] == str(REPO / "release" / "autograder"), "the notebook must import the student edition"
    if os.environ.get("DLCORE_DATA"):
        assert seen["data"] is True, "the course data must be readable in the kernel"


def test_the_kernel_refuses_to_run_without_isolation_unless_allowed(tmp_path, monkeypatch):
    course, work = _course(tmp_path)
    log = tmp_path / "kernel.log"
    # jupyter_client hands the kernel our stderr; the refusal is the launcher's one line there
    monkeypatch.setenv("DLCORE_SANDBOX", "plain")
    monkeypatch.delenv("DLCORE_ALLOW_UNISOLATED", raising=False)
    with open(log, "w") as err, pytest.raises(RuntimeError):
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            _run(course, work, "print(1)", {}, monkeypatch)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    assert "refusing to run a student notebook" in log.read_text() and "--allow-unisolated-sandbox" in log.read_text()
    # the grader's explicit choice: the plain sandbox (not root, rlimits) runs the notebook
    text = _run(course, work, "import os; print('UID', os.getuid())", {"DLCORE_ALLOW_UNISOLATED": "1"}, monkeypatch)
    assert "UID " in text and "UID 0" not in text


def test_nbgrader_config_names_the_sandboxed_kernel(tmp_path):
    course = tmp_path / "course"
    nbgrader_course.init(course, topics=["backprop"])
    text = (course / "nbgrader_config.py").read_text()
    assert f"c.Execute.kernel_name = {kernel.NAME!r}" in text and "c.KernelManager.transport = 'ipc'" in text
    spec = json.loads((course / ".dlcore" / "jupyter" / "kernels" / kernel.NAME / "kernel.json").read_text())
    assert spec["argv"][1:3] == ["-m", "autograder.kernel"] and spec["interrupt_mode"] == "message"
