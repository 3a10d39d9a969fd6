"""Run student code in a separate, limited worker process and talk to it with plain data.

Protections, strongest available first (docs/sandbox.md says which hold where):
- bubblewrap (Linux, when `bwrap` works): new PID, IPC, UTS and network namespaces; the filesystem shows
  only the system and Python prefixes read-only, the worker script and a private copy of the submission, so
  solutions/, hidden tests and the rest of the course repository do not exist for student code.
- never root: as root, student code runs as uid/gid 65534 (nobody) with no capabilities and no_new_privs
  (`setpriv` inside bubblewrap, or before the interpreter in the plain mode); as another user it keeps that
  user's (unprivileged) uid, shown as 65534 inside bubblewrap's user namespace.
- always: a private copy of the submission as working folder; a scrubbed environment; `python -I -B`;
  rlimits via prlimit (address space, CPU seconds, file size, open files, no core dumps); a new session whose
  process group is SIGKILLed on timeout; per-call wall-clock limits enforced from this side.
- as root: a pids cgroup caps processes (fork bombs); without bwrap, `unshare -n` still removes the network.

`sandbox_mode()` is "bwrap" only when a real probe worker starts under bubblewrap here (unprivileged, NumPy
importable, the repository invisible); otherwise "plain", which `dlcore grade` refuses unless told otherwise.
"""
from __future__ import annotations

import functools
import glob
import os
import select
import shlex
import shutil
import signal
import stat
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
REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534                   # uid and gid of student code when the grader runs as root
INSTALL_BWRAP = "apt-get install -y bubblewrap"
# As root: become nobody, with no capabilities left (bounding set too) and no way back through setuid files.
DROP_ROOT = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
             "--no-new-privs", "--"]
# What a probe worker checks (argv: mode, repository): it is not root, NumPy loads, and bubblewrap hides the repo.
PROBE = ("import os, sys, numpy\n"
         "assert os.getuid() != 0 and os.geteuid() != 0, 'the worker would run as root'\n"
         "assert sys.argv[1] != 'bwrap' or not os.path.exists(sys.argv[2]), 'the repository is visible inside'\n")


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


def _tool(name: str) -> str:
    """A launcher program by absolute path, found on the grader's PATH (the worker's own PATH is scrubbed)."""
    return shutil.which(name) or name


@functools.lru_cache(maxsize=1)
def sandbox_mode() -> str:
    """'bwrap' when a worker starts under bubblewrap here, else 'plain'. DLCORE_SANDBOX=plain|bwrap forces a mode."""
    forced = os.environ.get("DLCORE_SANDBOX")
    if forced in ("plain", "bwrap"):
        return forced
    return "bwrap" if launch_problem("bwrap") is None else "plain"


@functools.lru_cache(maxsize=None)
def launch_problem(mode: str) -> str | None:
    """Why a worker cannot start in `mode` ("bwrap" or "plain") here, in one line; None when it can.

    The probe is a real worker launch (same bwrap arguments, limits and privilege drop) running PROBE, so a
    bubblewrap that exists but cannot mount /proc, a Python that uid 65534 cannot read, or a missing setpriv
    all count as "does not work" rather than failing later on every student.
    """
    if mode == "bwrap" and not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed"
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return "setpriv (util-linux) is missing, so student code cannot be run as an unprivileged user"
    w = Worker({}, Limits(), mode=mode)
    try:
        cmd = w._command(["-I", "-B", "-c", PROBE, mode, str(REPO)])
        proc = subprocess.run(cmd, env=w._env(), cwd=str(w.copy), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=120, start_new_session=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        w.close()
    if proc.returncode == 0:
        return None
    lines = (proc.stderr + proc.stdout).decode("utf-8", errors="replace").strip().splitlines()
    detail = f"its probe worker failed: {lines[-1] if lines else f'exit status {proc.returncode}'}"
    return f"bubblewrap does not work here ({detail})" if mode == "bwrap" else f"no plain worker starts here ({detail})"


def isolation_problem() -> str | None:
    """Why student code would run here without filesystem isolation (the plain mode), or None under bubblewrap."""
    if sandbox_mode() == "bwrap":
        return None
    if os.environ.get("DLCORE_SANDBOX") == "plain":
        return "DLCORE_SANDBOX=plain turns bubblewrap off"
    return launch_problem("bwrap")


def _site_dirs() -> set[str]:
    import site

    return {*site.getsitepackages(), *(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)}


def _python_dirs() -> list[str]:
    """Folders the worker's interpreter needs: prefixes and site-packages, outside this repository."""
    dirs = {sys.base_prefix, sys.prefix, *_site_dirs()}
    # never a folder that holds the repository (that would show solutions/); a venv inside it is fine
    return sorted(d for d in dirs if os.path.isdir(d) and not REPO.is_relative_to(Path(d).resolve()))


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


def _closed_ancestor(path: str) -> str | None:
    """The topmost folder above `path` that uid 65534 may not enter (ACLs aside), or None."""
    parts = Path(path).parts
    for i in range(1, len(parts)):
        folder = os.path.join(*parts[:i])
        st = os.stat(folder)
        bit = stat.S_IXUSR if st.st_uid == NOBODY else stat.S_IXGRP if st.st_gid == NOBODY else stat.S_IXOTH
        if not st.st_mode & bit:
            return folder
    return None


def _plain_root_prefix(tmp: Path, extra: list[str]) -> list[str]:
    """As root without bubblewrap: `unshare -n` (no network) before the privilege drop.

    A Python that lives under a folder nobody may enter (pyenv under /root, mode 0700) would not start as
    nobody, so then a mount namespace is added in which that folder is an empty tmpfs with only the
    interpreter's folders and the worker script bound back into it (this also hides the rest of that folder).
    """
    if not shutil.which("unshare"):
        return []
    needed = sorted({sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
                     *_site_dirs(), *extra})
    needed = [p for p in needed if os.path.exists(p)
              and not any(p != q and Path(p).is_relative_to(q) for q in needed)]  # outermost only
    closed: dict[str, list[str]] = {}
    for p in needed:
        top = _closed_ancestor(p)
        if top:
            closed.setdefault(top, []).append(p)
    if not closed:
        return [_tool("unshare"), "-n", "--"]
    q = shlex.quote
    script = ["set -e"]
    for i, (top, paths) in enumerate(sorted(closed.items())):
        stage = tmp / f"stage{i}"  # the real folder, seen only by this root shell until it is unmounted
        script += [f"mkdir -m 700 {q(str(stage))}", f"mount --bind {q(top)} {q(str(stage))}",
                   f"mount -t tmpfs -o mode=0755,size=1m dlcore {q(top)}"]
        for p in paths:
            src = q(str(stage / os.path.relpath(p, top)))
            make = f"mkdir -p {q(p)}" if os.path.isdir(p) else f"mkdir -p {q(os.path.dirname(p))} && : > {q(p)}"
            script += [make, f"mount --bind {src} {q(p)}", f"mount -o remount,bind,ro {q(p)}"]
        script.append(f"umount -l {q(str(stage))}")
    script.append('exec "$@"')
    return [_tool("unshare"), "-m", "-n", "--propagation", "private", "--", _tool("sh"), "-c", "\n".join(script),
            "dlcore"]


def confine(python_args: list[str], limits: Limits, mode: str, *, mounts: list[tuple[str, str, bool]],
            chdir: str, banned: tuple[str, ...] = (), plain_tmp: Path | None = None) -> tuple[list[str], str | None]:
    """The command that runs `python PYTHON_ARGS` confined: [join a pids cgroup] prlimit [bwrap | unshare]
    [setpriv, as root]. Returns it and the pids cgroup it joins (None where none could be made; the caller
    removes it with `release_cgroup` once the process is gone).

    mounts: (source, destination, writable) shown inside bubblewrap besides the system and Python folders; in the
    plain mode the paths are used as they are, so pass destinations equal to sources where both modes are used.
    """
    is_root = os.geteuid() == 0
    prlimit = [_tool("prlimit"), f"--as={limits.memory_mb << 20}", f"--cpu={limits.cpu_s}",
               f"--fsize={limits.fsize_mb << 20}", "--nofile=256", "--core=0"] if shutil.which("prlimit") else []
    cgroup = _pids_cgroup(limits.nproc) if is_root else None
    if prlimit and cgroup is None:  # binds once the process is not root (always, after the drop below)
        prlimit.append(f"--nproc={limits.nproc}")
    # the interpreter dies with the process that started it (kill -9 of the grader leaves no worker behind):
    # bubblewrap's --die-with-parent, and setpriv's --pdeathsig where no bubblewrap stands between them
    die = ["--pdeathsig", "KILL"] if mode != "bwrap" else []
    drop = [_tool("setpriv"), *die, *DROP_ROOT] if is_root else \
        [_tool("setpriv"), *die, "--"] if die and shutil.which("setpriv") else []
    if mode == "bwrap":
        cmd = [_tool("bwrap"), "--die-with-parent", "--new-session"]
        if is_root:
            # No user namespace: as root one would map the sandbox user to the real root outside. bwrap makes
            # the mounts as root, then setpriv (after "--") turns the process into nobody without capabilities.
            cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                    "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        else:  # unprivileged: a user namespace maps this (already unprivileged) user to 65534 inside
            cmd += ["--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY), "--proc", "/proc", "--dev",
                    "/dev", "--tmpfs", "/tmp"]
        mounted = [d for d in ("/usr", "/bin", "/lib", "/lib64", "/etc") if os.path.exists(d)]
        for d in mounted:
            cmd += ["--ro-bind", d, d]
        made: set[Path] = set()

        def parents(dest: str) -> list[str]:
            # bwrap as root makes missing parents 0700, so nobody could not reach a prefix under /root
            out = []
            for parent in reversed(Path(dest).parents[:-1]):
                if is_root and parent not in made and not any(parent.is_relative_to(m) for m in mounted):
                    out += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            return out

        for d in _python_dirs():  # sorted: a prefix before the site-packages inside it
            cmd += parents(d) + ["--ro-bind", d, d]
            mounted.append(d)
        for d in _banned_dirs(banned):
            cmd += ["--tmpfs", d]  # the package's files do not exist for this process
        for src, dest, writable in mounts:
            cmd += parents(dest) + ["--bind" if writable else "--ro-bind", src, dest]
        cmd += ["--chdir", chdir, "--"] + drop
    else:
        cmd = (_plain_root_prefix(plain_tmp, [src for src, _, _ in mounts]) if is_root else []) + drop
    cmd = prlimit + (["--"] if prlimit else []) + cmd + [sys.executable, *python_args]
    if cgroup:
        cmd = [_tool("sh"), "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup] + cmd
    return cmd, cgroup


def scrubbed_env(home: str) -> dict[str, str]:
    """The environment of confined student code: nothing of the grader's but what correct results need, one
    BLAS thread, no GPU; HOME, TMPDIR and matplotlib's cache in `home`."""
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": os.path.join(home, "mpl"), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # needed for correct results on some CPUs
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def release_cgroup(cgroup: str | None) -> None:
    """SIGKILL whatever is left in a pids cgroup made by `confine`, then remove it."""
    if not cgroup:
        return
    try:
        with open(os.path.join(cgroup, "cgroup.procs")) as f:
            for pid in f.read().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    except OSError:
        pass
    for _ in range(50):
        try:
            os.rmdir(cgroup)
            break
        except OSError:
            time.sleep(0.02)


def gpu_access(cmd: list[str]) -> list[str]:
    """A `confine` command changed for a worker whose torch code runs on CUDA: bubblewrap's fresh /dev gets the
    NVIDIA device nodes, and the memory limit bounds the data segment (RLIMIT_DATA) instead of the address space,
    since the CUDA driver reserves far more address space than any memory limit and does not start under
    RLIMIT_AS. GPU memory itself is bounded only by the device."""
    out = [f"--data={a[len('--as='):]}" if a.startswith("--as=") else a for a in cmd]
    if "--dev" in out:
        at = out.index("--dev") + 2  # after "--dev /dev"
        out[at:at] = [a for node in sorted(glob.glob("/dev/nvidia*")) for a in ("--dev-bind", node, node)]
    return out


class Worker:
    """One sandboxed interpreter serving a private copy of some submission folders.

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
        cmd, self.cgroup = confine(python_args, self.limits, self.mode, banned=self.banned, chdir=SANDBOX_ROOT,
                                   mounts=[(str(WORKER_SCRIPT), SANDBOX_WORKER, False),
                                           (str(self.copy), SANDBOX_ROOT, True)], plain_tmp=self.tmp)
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
        cmd = self._command(["-I", "-B", SANDBOX_WORKER if bwrap else str(WORKER_SCRIPT), str(to_w_r), str(from_w_w),
                             SANDBOX_ROOT if bwrap else str(self.copy), ",".join(self.banned),
                             str(self.limits.output_kb << 10)])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(to_w_r, from_w_w), env=self._env(),
                                     cwd=str(self.copy), start_new_session=True)
        os.close(to_w_r)
        os.close(from_w_w)
        self.fd_to, self.fd_from = to_w_w, from_w_r
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
        text = data.decode("utf-8", errors="replace")
        text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
        return text + (f"\n[... {dropped} bytes of output left out ...]" if dropped else "")

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

    def patch(self, names: list[str], callback) -> None:
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
