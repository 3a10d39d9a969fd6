"""Stopping a run cleanly: on SIGTERM or SIGINT (a job scheduler's time limit, `kill`, Ctrl-C) every process the
run started ends within a few seconds, every finished result stays on disk, and the command says how to resume;
after kill -9 of the top process nothing outlives it either.

One mechanism for every command (`dlcore` runs each one inside `stop_on_signals`), in three places:

- The top process (`stop_on_signals`): the first SIGTERM or SIGINT raises `Stopped` in its main thread, so the
  command unwinds through its `finally` blocks (a process pool is shut down without waiting for queued work, a
  Dask batch cancels its tasks and closes its cluster, a sandboxed worker it runs itself is killed and its copy
  removed); then every process still descending from it gets SIGTERM and, after `GRACE_S`, SIGKILL. It is a
  child subreaper (Linux), so a grandchild whose parent ended first (nbgrader's kernels) is still found. It
  prints the command that resumes and exits with 128 + the signal's number.
- A process that grades for it (a pool process: `in_child` is its initializer, `run_in_child` wraps each task):
  dies with its parent (PR_SET_PDEATHSIG, for kill -9 of the top process); ignores SIGINT (Ctrl-C reaches the
  whole process group, and the top process decides); on SIGTERM unwinds its grading (its sandboxed workers are
  killed, their copies removed) and exits without sending a result back.
- Sandboxed workers die with the process that started them: bubblewrap's --die-with-parent, or setpriv's
  --pdeathsig in the plain sandbox (`autograder.confine.confined_command`).

multiprocessing's resource tracker ignores both signals and ends by itself (removing the pool's semaphores) when
the last process holding its pipe has ended, so the sweep leaves it alone and it ends with the top process.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACE_S = 5.0                     # how long processes get to end after SIGTERM before SIGKILL
PR_SET_PDEATHSIG = 1              # <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36
RESOURCE_TRACKER = b"multiprocessing.resource_tracker"  # in its command line


class Stopped(SystemExit):
    """The run was told to stop by a signal; exits with 128 + its number (143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


def _prctl(option: int, value: int) -> bool:
    """prctl(2) on Linux; False elsewhere or when refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _raise_stopped(signum, frame) -> None:
    for s in SIGNALS:  # once: a second signal must not interrupt the unwinding of the first
        signal.signal(s, signal.SIG_IGN)
    raise Stopped(signum)


def in_child(parent: int) -> None:
    """Initializer of a process that grades for the top process `parent` (see the module docstring)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the line above: nobody wants our results
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stopped)


def run_in_child(fn, *args):
    """Call fn(*args) in a pool process; on SIGTERM end the process once the grading has unwound, so that a
    process pool neither reports a result nor starts its next task."""
    try:
        return fn(*args)
    except Stopped as exc:
        sys.stderr.flush()
        os._exit(exc.code)


def _stat(pid: str) -> tuple[int, str] | None:
    """(parent pid, state letter) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the name in parentheses may hold spaces
        return int(fields[1]), fields[0].decode()
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int | None = None) -> list[int]:
    """Every live (not zombie) process below `root` (default: this one), found through /proc (Linux); sandboxed
    workers in their own PID namespaces appear there under their outer pids."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        st = _stat(pid)
        if st and st[1] != "Z":
            children.setdefault(st[0], []).append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _is_resource_tracker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return RESOURCE_TRACKER in f.read()
    except OSError:
        return False


def end_descendants(grace: float = GRACE_S) -> None:
    """SIGTERM this process's children, wait up to `grace` seconds for everything below it to end, then SIGKILL
    what is left (the resource tracker excepted: it ends when this process does)."""
    def signal_all(pids, sig):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    me = os.getpid()
    left = lambda: [p for p in descendants(me) if not _is_resource_tracker(p)]  # noqa: E731
    signal_all([p for p in left() if (_stat(str(p)) or (0,))[0] == me], signal.SIGTERM)
    deadline = time.monotonic() + grace
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(20):  # a process may start a child while its siblings are killed: repeat until none is left
        pids = left()
        if not pids:
            break
        signal_all(pids, signal.SIGKILL)
        time.sleep(0.05)


@contextlib.contextmanager
def stop_on_signals(resume: str | None = None):
    """Run a command so that SIGTERM or SIGINT stops it and everything it started (see the module docstring);
    `resume` is the command that resumes, printed when stopped. Outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    for s in SIGNALS:
        signal.signal(s, _raise_stopped)
    try:
        yield
    except Stopped as exc:
        end_descendants()
        name = signal.Signals(exc.signum).name
        hint = (f"; every result finished before the signal is saved, and the same command resumes (what is "
                f"graded is not graded again):\n  {resume}") if resume else ""
        print(f"\nstopped by {name}: every process this run started has ended{hint}", file=sys.stderr, flush=True)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _prctl(PR_SET_CHILD_SUBREAPER, 0)
