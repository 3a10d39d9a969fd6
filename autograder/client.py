"""The trusted side's client of the sandboxed worker: starts it confined (autograder.confine), sends it requests as
plain data (autograder.wire) and turns its replies into values, handles and errors.

The worker (autograder.worker) sees only the transport modules, staged in a folder of their own
(`transport_files`), and a private copy of the submission; it never sees solutions/, hidden checks or the repository.
"""
from __future__ import annotations

import fcntl
import functools
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder import import_graph, wire
from autograder import worker as worker_server
from autograder.capture import printable
from autograder.confine import confined_command, gpu_access, release_cgroup, sandbox_mode, scrubbed_env
from course_config import Limits

SANDBOX_ROOT = "/sub"            # where the private copy appears inside bubblewrap
SANDBOX_ENGINE = "/opt/dlcore"   # where the folder of transport modules appears inside bubblewrap
# Started as `python -I -B -c BOOT ENGINE ...`: -I keeps every folder but the standard ones off sys.path, so the
# worker's own folder joins it just long enough to import the worker and its siblings.
BOOT = ("import sys; engine = sys.argv.pop(1); sys.path.insert(0, engine); from autograder.worker import main; "
        "sys.path.remove(engine); main(sys.argv)")
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".git")


class WorkerLost(Exception):
    """The worker died or was killed: timeout, memory, crash or exit. `reason` is one word, `message` a sentence."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


class StudentError(Exception):
    """Student code raised. Carries the exception type, message and the student's own frames."""

    def __init__(self, info: dict):
        self.info = info
        super().__init__(f"{info.get('type')}: {info.get('message')}")

    @property
    def not_implemented(self) -> bool:
        return bool(self.info.get("not_implemented"))

    def explain(self) -> str:
        """One readable paragraph: what was raised, where in the student's files, and the fix if we know it."""
        t, msg = self.info.get("type", "Error"), self.info.get("message", "")
        text = f"raised {t}: {msg}" if msg else f"raised {t}"
        where = self.info.get("where") or []
        if where:
            f, line, fn, code = where[-1]
            text += f" (at {f} line {line}, in {fn}: `{code}`)"
        if "signature" in self.info:
            text += (f". Your function is defined as {self.info['signature']}; keep the signature of the released "
                     f"stub, the grader calls it that way")
        if t == "MemoryError":
            text += ". The worker ran out of memory: look for huge intermediate arrays"
        return text


@dataclass(frozen=True)
class Handle:
    """An object kept in the worker (a cache, a model): it can be passed back but not looked into."""

    id: int
    type: str


def _resolve_handle(ref: dict) -> Handle:
    return Handle(int(ref["__h__"]), str(ref.get("type", "?")))


@functools.lru_cache(maxsize=1)
def transport_files() -> dict[str, Path]:
    """The files the worker needs inside the sandbox, relative path -> source: autograder.worker and every
    autograder module it imports, directly or not, with the package's __init__.py. Read from the imports
    (autograder.import_graph), so a new transport module is mounted once the worker imports it; tests/test_layers.py
    keeps that set to the transport layer (nothing of the checks, the runner or the course)."""
    root = Path(worker_server.__file__).resolve().parent
    names = import_graph.closure([worker_server.__name__], root)
    files: dict[str, Path] = {}
    for n in sorted(names):
        path = import_graph.module_file(n, root)
        assert path is not None  # closure() has read each of its modules' source (imports() raises otherwise)
        files[str(path.relative_to(root.parent))] = path
    return files


def _stage_transport(dest: Path) -> None:
    """Copy the transport modules into `dest` (readable, not writable, by the sandbox user)."""
    for rel, src in transport_files().items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        os.chmod(target, 0o644)
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        os.chmod(folder, 0o755)


class WorkerClient:
    """One sandboxed worker (autograder.worker.WorkerServer) serving a private copy of some submission folders.

    Args:
        folders: name -> untrusted folder (a student's topic folder); copied to <root>/<name> without links.
        limits: resource limits (course_config.Limits).
        banned: top-level packages the worker refuses to import (torch for from-scratch NumPy topics).
        trusted: name -> trusted folder copied beside them (the student toolkit).
        mode: "bwrap" or "plain"; default sandbox_mode().
    """

    def __init__(self, folders: dict[str, Path], limits: Limits, banned: tuple[str, ...] = (),
                 trusted: dict[str, Path] | None = None, mode: str | None = None, device: str | None = None):
        self.limits, self.banned = limits, banned
        self.device = device  # "cuda[:i]": the worker may use the GPU (see gpu_access and set_device)
        self.mode = mode or sandbox_mode()
        self.tmp = Path(tempfile.mkdtemp(prefix="dlcore-sub-"))
        self.copy = self.tmp / "root"
        self.copy.mkdir()
        max_bytes = limits.fsize_mb << 20
        for name, path in folders.items():
            shutil.copytree(path, self.copy / name, symlinks=True,
                            ignore=lambda d, names: _ignore_untrusted(d, names, max_bytes))
        for name, path in (trusted or {}).items():
            shutil.copytree(path, self.copy / name, ignore=COPY_IGNORE)
        os.chmod(self.tmp, 0o755)
        for dirpath, dirnames, filenames in os.walk(self.copy):  # the sandbox user must read (and may write) it
            for n in dirnames + filenames:
                os.chmod(os.path.join(dirpath, n), 0o777 if n in dirnames else 0o666)
        os.chmod(self.copy, 0o777)
        self.engine = self.tmp / "engine"  # the transport modules, the only code of the course the worker sees
        _stage_transport(self.engine)
        self.home = self.tmp / "home"  # HOME and TMPDIR of the plain mode, writable by the sandbox user
        self.home.mkdir(mode=0o777)
        os.chmod(self.home, 0o777)
        self.proc: subprocess.Popen | None = None
        self.cgroup: str | None = None
        self._output = bytearray()
        self._output_dropped = 0
        self._lock = threading.Lock()
        self.callback = None  # answers the worker's callback requests (see patch)

    # -- life cycle -------------------------------------------------------------------------------
    def _command(self, python_args: list[str]) -> list[str]:
        """[join the pids cgroup] prlimit [bwrap | unshare] [setpriv, as root] python PYTHON_ARGS."""
        cmd, self.cgroup = confined_command(python_args, self.limits, self.mode, banned=self.banned,
                                            chdir=SANDBOX_ROOT, plain_tmp=self.tmp,
                                            mounts=[(str(self.engine), SANDBOX_ENGINE, False),
                                                    (str(self.copy), SANDBOX_ROOT, True)])
        return gpu_access(cmd) if (self.device or "cpu").startswith("cuda") else cmd

    def _env(self) -> dict[str, str]:
        env = scrubbed_env("/tmp")
        env["MPLBACKEND"] = "Agg"
        if (self.device or "cpu").startswith("cuda"):  # the grader's choice of GPUs, else all of them
            env.pop("CUDA_VISIBLE_DEVICES")
            if "CUDA_VISIBLE_DEVICES" in os.environ:
                env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        if self.mode == "plain":
            env["HOME"] = env["TMPDIR"] = str(self.home)
            env["MPLCONFIGDIR"] = str(self.home / "mpl")
        return env

    def start(self) -> None:
        """Start the interpreter and wait for its greeting (bounded by limits.import_s)."""
        to_w_r, to_w_w = os.pipe()
        from_w_r, from_w_w = os.pipe()
        bwrap = self.mode == "bwrap"
        cmd = self._command(["-I", "-B", "-c", BOOT, SANDBOX_ENGINE if bwrap else str(self.engine), str(to_w_r),
                             str(from_w_w), SANDBOX_ROOT if bwrap else str(self.copy), ",".join(self.banned),
                             str(self.limits.output_kb << 10)])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(to_w_r, from_w_w), env=self._env(),
                                     cwd=str(self.copy), start_new_session=True)
        os.close(to_w_r)
        os.close(from_w_w)
        self.fd_to, self.fd_from = to_w_w, from_w_r
        for fd in (to_w_w, from_w_r):  # 1 MiB pipes: a callback's arrays cross in one go, not 64 KiB at a time
            try:
                fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
            except OSError:
                pass
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        self._receive(max(self.limits.import_s, 30.0))

    def _drain(self, stream) -> None:
        """Keep the worker's own stdout/stderr flowing (what is written before the worker captures fds 1 and 2,
        and the launcher's errors); keep the head and the tail for feedback."""
        for chunk in iter(lambda: stream.read1(1 << 20), b""):
            self._keep(chunk)

    def _keep(self, data: bytes) -> None:
        """Add student output, keeping at most limits.output_kb: its head and its tail."""
        cap = self.limits.output_kb << 10
        with self._lock:
            self._output += data
            if len(self._output) > cap:
                cut = len(self._output) - cap
                del self._output[cap // 2: cap // 2 + cut]
                self._output_dropped += cut

    def take_output(self) -> str:
        """Student output since the last call of this method, control characters removed."""
        with self._lock:
            data, dropped = bytes(self._output), self._output_dropped
            self._output.clear()
            self._output_dropped = 0
        return printable(data) + (f"\n[... {dropped} bytes of output left out ...]" if dropped else "")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        release_cgroup(self.cgroup)  # sweep anything that escaped the process group
        self.cgroup = None
        for fd in ("fd_to", "fd_from"):
            if hasattr(self, fd):
                try:
                    os.close(getattr(self, fd))
                except OSError:
                    pass
                delattr(self, fd)

    def close(self) -> None:
        if self.alive and self.proc is not None:  # alive implies a process; the second test narrows the type
            try:
                wire.write_message(self.fd_to, {"op": "exit"}, [])
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- requests ---------------------------------------------------------------------------------
    def _lost(self, timed_out: float | None = None) -> WorkerLost:
        if timed_out is None and self.proc is not None:
            try:  # let a process that is exiting by itself report its own status before we kill it
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        code = self.proc.returncode if self.proc else None
        self.kill()
        if timed_out is not None:
            return WorkerLost("timeout", f"did not finish within {timed_out:g} s (an endless loop, a long sleep "
                                         f"or far too slow code?); the grader stopped it")
        if code is not None and code < 0:
            sig = -code
            if sig == signal.SIGXCPU:
                return WorkerLost("cpu", f"used more than {self.limits.cpu_s} s of CPU time and was stopped")
            if sig == signal.SIGKILL:
                return WorkerLost("killed", f"was killed (memory limit {self.limits.memory_mb} MB or process "
                                            f"limit {self.limits.nproc})")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return WorkerLost("crash", f"crashed with signal {name}")
        return WorkerLost("exit", f"ended the grading process (exit status {code}); do not call sys.exit, os._exit "
                                  f"or quit() in your modules")

    def _receive(self, timeout: float) -> tuple[dict, list[bytes]]:
        """The reply to the last request. Callback requests the worker sends meanwhile (a patched function asking
        for the reference's result, see `patch`) are answered here, within the same deadline."""
        deadline = time.monotonic() + timeout
        while True:
            header, blobs = self._read_one(deadline, timeout)
            if "callback" not in header:
                break
            if self.callback is None:
                self.kill()
                raise WorkerLost("protocol", "asked for a callback nobody offered")
            reply, reply_blobs = self.callback(header, blobs)
            try:
                wire.write_message(self.fd_to, reply, reply_blobs)
            except OSError:
                raise self._lost() from None
        output = header.get("output")
        if isinstance(output, str) and output:
            self._keep(output.encode("utf-8", errors="replace"))
        if not header.get("ok", False):
            err = header.get("error") or {}
            raise StudentError(err if isinstance(err, dict) else {"type": "Error", "message": str(err)})
        return header, blobs

    def _read_one(self, deadline: float, timeout: float) -> tuple[dict, list[bytes]]:
        ready, _, _ = select.select([self.fd_from], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise self._lost(timed_out=timeout)
        try:
            # A worker that stalls mid-message is stopped 5 s past the deadline (no watchdog thread per message:
            # isolated scoring reads thousands of callback messages)
            header, blobs = wire.read_message(self.fd_from, max(deadline, time.monotonic() + 1.0) + 5.0)
        except TimeoutError:
            self.kill()
            raise self._lost() from None
        except (EOFError, OSError, wire.WireError, ValueError) as exc:
            if isinstance(exc, wire.WireError):
                self.kill()
                raise WorkerLost("protocol", f"sent a malformed reply ({exc})") from None
            raise self._lost() from None
        return header, blobs

    def request(self, header: dict, blobs: list[bytes] | None = None, timeout: float | None = None):
        if not self.alive:
            raise WorkerLost("dead", "the worker is not running")
        try:
            wire.write_message(self.fd_to, header, blobs or [])
        except OSError:
            raise self._lost() from None
        return self._receive(timeout or self.limits.call_s)

    @staticmethod
    def _encode_args(args, kwargs) -> tuple[list, dict, list[bytes]]:
        blobs: list[bytes] = []

        def keep(obj):
            if isinstance(obj, Handle):
                return {"__h__": obj.id}
            raise TypeError(f"cannot send {type(obj).__name__} to the worker")

        enc_args = [wire.encode(a, blobs, keep) for a in args]
        enc_kwargs = wire.encode(dict(kwargs), blobs, keep)
        return enc_args, enc_kwargs, blobs

    def import_module(self, name: str) -> None:
        self.request({"op": "import", "module": name}, timeout=self.limits.import_s)

    def call(self, target, *args, keep=None, echo=(), timeout=None, **kwargs):
        """Call `target` ("pkg.module.func" or (Handle, "method")) in the worker.

        keep: True keeps the whole result in the worker (returns a Handle); a tuple of indices keeps those
        elements of a returned tuple. echo: indices of positional arguments whose values after the call
        (in-place updates, like bn_param) come back too; then the result is (value, [echoed values]).
        """
        enc_args, enc_kwargs, blobs = self._encode_args(args, kwargs)
        if isinstance(target, tuple):
            target = {"__h__": target[0].id, "attr": target[1]}
        header = {"op": "call", "target": target, "args": enc_args, "kwargs": enc_kwargs,
                  "keep": True if keep is True else list(keep or []), "echo": list(echo)}
        reply, out = self.request(header, blobs, timeout)
        value = wire.decode(reply.get("value"), out, _resolve_handle)
        if echo:
            return value, [wire.decode(v, out, _resolve_handle) for v in reply.get("echo", [])]
        return value

    def getattr(self, handle: Handle, attr: str):
        reply, out = self.request({"op": "getattr", "target": {"__h__": handle.id, "attr": attr}})
        return wire.decode(reply.get("value"), out, _resolve_handle)

    def seed(self, seed: int) -> None:
        self.request({"op": "seed", "seed": int(seed)})

    def banned_modules(self) -> list[str]:
        reply, _ = self.request({"op": "modules"})
        return list(reply.get("value", []))

    def release(self, *handles: Handle) -> None:
        self.request({"op": "release", "handles": [h.id for h in handles]})

    def patch(self, names: Sequence[str], callback) -> None:
        """Replace the functions `names` ("pkg.module.function") in the worker by proxies whose calls come back
        here: `callback(header, blobs) -> (reply, blobs)` answers each (autograder.runner runs the reference).
        The reference code never enters the sandbox; only its arguments and results cross, as plain data."""
        self.callback = callback
        self.request({"op": "patch", "names": list(names)}, timeout=self.limits.import_s)

    def release_all(self) -> None:
        """Forget every object kept in the worker (the end of a task)."""
        self.request({"op": "release", "all": True})

    def set_device(self, device: str) -> None:
        """Make `device` torch's default device in the worker, before any student module is imported (a torch
        worker of `--device cuda`); raises StudentError with the reason if the worker's torch cannot use it."""
        self.request({"op": "device", "device": device}, timeout=max(self.limits.import_s, 60.0))


def _ignore_untrusted(folder: str, names: list[str], max_bytes: int) -> set[str]:
    """Skip links (they could point at solutions/), caches and oversized files when copying a submission."""
    skip = set(COPY_IGNORE(folder, names))
    for n in names:
        p = os.path.join(folder, n)
        if os.path.islink(p) or (os.path.isfile(p) and os.path.getsize(p) > max_bytes):
            skip.add(n)
    return skip
