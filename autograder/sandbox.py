"""Run student code in a separate, limited worker process and talk to it with plain data.

Protections, strongest available first (README "Sandbox" says which hold where):
- bubblewrap (Linux, when `bwrap` works): new user, PID, IPC, UTS and network namespaces; the filesystem shows
  only the system and Python prefixes read-only, the worker script and a private copy of the submission, so
  solutions/, hidden tests and the rest of the course repository do not exist for student code.
- always: a private copy of the submission as working folder; a scrubbed environment; `python -I -B`;
  rlimits via prlimit (address space, CPU seconds, file size, open files, no core dumps); a new session whose
  process group is SIGKILLed on timeout; per-call wall-clock limits enforced from this side.
- as root: a pids cgroup caps processes (fork bombs); without bwrap, `unshare -n` still removes the network.
"""
from __future__ import annotations

import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from autograder import worker as wire
from course_config import Limits

WORKER_SCRIPT = Path(wire.__file__).resolve()
SANDBOX_ROOT = "/sub"            # where the private copy appears inside bubblewrap
SANDBOX_WORKER = "/opt/dlcore/worker.py"
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
def sandbox_mode() -> str:
    """'bwrap' when bubblewrap works here, else 'plain'. DLCORE_SANDBOX=plain|bwrap forces a mode."""
    forced = os.environ.get("DLCORE_SANDBOX")
    if forced in ("plain", "bwrap"):
        return forced
    if shutil.which("bwrap"):
        probe = subprocess.run(["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"],
                               capture_output=True, timeout=30)
        if probe.returncode == 0:
            return "bwrap"
    return "plain"


def _python_dirs() -> list[str]:
    """Folders the worker's interpreter needs: prefixes and site-packages, outside this repository."""
    import site

    repo = Path(__file__).resolve().parents[1]
    dirs = {sys.base_prefix, sys.prefix, *site.getsitepackages()}
    dirs |= {p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p}
    # never a folder that holds the repository (that would show solutions/); a venv inside it is fine
    return sorted(d for d in dirs if os.path.isdir(d) and not repo.is_relative_to(Path(d).resolve()))


def _banned_dirs(banned: tuple[str, ...]) -> list[str]:
    import site

    return [os.path.join(sp, name) for sp in site.getsitepackages() for name in banned
            if os.path.isdir(os.path.join(sp, name))]


def _pids_cgroup(limit: int) -> str | None:
    """A fresh pids cgroup (v1 or v2) capped at `limit`, or None where we may not create one."""
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.isfile(os.path.join(base, "cgroup.procs")) and os.access(base, os.W_OK):
            path = os.path.join(base, f"dlcore-{uuid.uuid4().hex[:12]}")
            try:
                os.mkdir(path)
                with open(os.path.join(path, "pids.max"), "w") as f:
                    f.write(str(limit))
                return path
            except OSError:
                shutil.rmtree(path, ignore_errors=True)
    return None


class Worker:
    """One sandboxed interpreter serving a private copy of some submission folders.

    Args:
        folders: name -> untrusted folder (a student's topic folder); copied to <root>/<name> without links.
        limits: resource limits (course_config.Limits).
        banned: top-level packages the worker refuses to import (torch for from-scratch NumPy topics).
        trusted: name -> trusted folder copied beside them (the student toolkit).
    """

    def __init__(self, folders: dict[str, Path], limits: Limits, banned: tuple[str, ...] = (),
                 trusted: dict[str, Path] | None = None):
        self.limits, self.banned = limits, banned
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
        self.proc: subprocess.Popen | None = None
        self.cgroup: str | None = None
        self._output = bytearray()
        self._output_dropped = 0
        self._lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------------
    def _command(self, fd_in: int, fd_out: int) -> list[str]:
        mode = sandbox_mode()
        root = SANDBOX_ROOT if mode == "bwrap" else str(self.copy)
        script = SANDBOX_WORKER if mode == "bwrap" else str(WORKER_SCRIPT)
        py = [sys.executable, "-I", "-B", script, str(fd_in), str(fd_out), root, ",".join(self.banned)]
        lim = self.limits
        prlimit = ["prlimit", f"--as={lim.memory_mb << 20}", f"--cpu={lim.cpu_s}", f"--fsize={lim.fsize_mb << 20}",
                   "--nofile=256", "--core=0"]
        is_root = os.geteuid() == 0
        self.cgroup = _pids_cgroup(lim.nproc) if is_root else None
        if not is_root:
            prlimit.append(f"--nproc={lim.nproc}")
        if mode == "bwrap":
            cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534",
                   "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/opt/dlcore"]
            for d in ("/usr", "/bin", "/lib", "/lib64", "/etc"):
                if os.path.exists(d):
                    cmd += ["--ro-bind", d, d]
            for d in _python_dirs():
                cmd += ["--ro-bind", d, d]
            for d in _banned_dirs(self.banned):
                cmd += ["--tmpfs", d]  # the package's files do not exist for this worker
            cmd += ["--ro-bind", str(WORKER_SCRIPT), SANDBOX_WORKER, "--bind", str(self.copy), SANDBOX_ROOT,
                    "--chdir", SANDBOX_ROOT, "--"]
        else:
            cmd = ["unshare", "-n", "--"] if is_root and shutil.which("unshare") else []
        cmd = prlimit + ["--"] + cmd + py
        if self.cgroup:
            cmd = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', self.cgroup] + cmd
        return cmd

    def _env(self) -> dict[str, str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
               "MPLCONFIGDIR": "/tmp/mpl", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # needed for correct results on some CPUs
            if key in os.environ:
                env[key] = os.environ[key]
        if sandbox_mode() == "plain":
            env["HOME"] = env["TMPDIR"] = str(self.tmp)
        return env

    def start(self) -> None:
        """Start the interpreter and wait for its greeting (bounded by limits.import_s)."""
        to_w_r, to_w_w = os.pipe()
        from_w_r, from_w_w = os.pipe()
        cmd = self._command(to_w_r, from_w_w)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(to_w_r, from_w_w), env=self._env(),
                                     cwd=str(self.copy), start_new_session=True)
        os.close(to_w_r)
        os.close(from_w_w)
        self.fd_to, self.fd_from = to_w_w, from_w_r
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        self._receive(max(self.limits.import_s, 30.0))

    def _drain(self, stream) -> None:
        """Keep the worker's stdout/stderr flowing; keep the head and the tail for feedback."""
        cap = self.limits.output_kb << 10
        for chunk in iter(lambda: stream.read1(65536), b""):
            with self._lock:
                self._output += chunk
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
        text = data.decode("utf-8", errors="replace")
        text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
        return text + (f"\n[... {dropped} bytes of output left out ...]" if dropped else "")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.cgroup:  # sweep anything that escaped the process group, then drop the cgroup
            try:
                with open(os.path.join(self.cgroup, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.02)
            self.cgroup = None
        for fd in ("fd_to", "fd_from"):
            if hasattr(self, fd):
                try:
                    os.close(getattr(self, fd))
                except OSError:
                    pass
                delattr(self, fd)

    def close(self) -> None:
        if self.alive:
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
        deadline = time.monotonic() + timeout
        ready, _, _ = select.select([self.fd_from], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise self._lost(timed_out=timeout)
        try:
            # Only the 8-byte length may block past the deadline check; a worker that stalls mid-message
            # is caught by the watchdog below.
            timer = threading.Timer(max(1.0, deadline - time.monotonic()) + 5.0, self.kill)
            timer.start()
            try:
                header, blobs = wire.read_message(self.fd_from)
            finally:
                timer.cancel()
        except (EOFError, OSError, wire.WireError, ValueError) as exc:
            if isinstance(exc, wire.WireError):
                self.kill()
                raise WorkerLost("protocol", f"sent a malformed reply ({exc})") from None
            raise self._lost() from None
        output = header.get("output")
        if isinstance(output, str) and output:
            with self._lock:
                self._output += output.encode("utf-8", errors="replace")[: self.limits.output_kb << 10]
        if not header.get("ok", False):
            err = header.get("error") or {}
            raise StudentError(err if isinstance(err, dict) else {"type": "Error", "message": str(err)})
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


def _ignore_untrusted(folder: str, names: list[str], max_bytes: int) -> set[str]:
    """Skip links (they could point at solutions/), caches and oversized files when copying a submission."""
    skip = set(COPY_IGNORE(folder, names))
    for n in names:
        p = os.path.join(folder, n)
        if os.path.islink(p) or (os.path.isfile(p) and os.path.getsize(p) > max_bytes):
            skip.add(n)
    return skip
