"""Confinement: the command that runs a Python interpreter with student code in it, limited, and which mode works here.

Used by the worker client (autograder.client) and the notebook kernel (autograder.kernel). Protections, strongest
available first (docs/sandbox.md says which hold where):
- bubblewrap (Linux, when `bwrap` works): new PID, IPC, UTS and network namespaces; the filesystem shows
  only the system and Python prefixes read-only and the folders the caller mounts (for a worker: the transport
  modules and a private copy of the submission), so solutions/, hidden tests and the rest of the course
  repository do not exist for student code.
- never root: as root, student code runs as uid/gid 65534 (nobody) with no capabilities and no_new_privs
  (`setpriv` inside bubblewrap, or before the interpreter in the plain mode); as another user it keeps that
  user's (unprivileged) uid, shown as 65534 inside bubblewrap's user namespace.
- always: rlimits via prlimit (address space, CPU seconds, file size, open files, no core dumps) and a scrubbed
  environment (`scrubbed_env`); the caller adds `python -I -B`, a private working folder, a new session and
  wall-clock limits.
- as root: a pids cgroup caps processes (fork bombs); without bwrap, `unshare -n` still removes the network.

`sandbox_mode()` is "bwrap" only when a real probe starts under bubblewrap here (unprivileged, NumPy importable, the
repository invisible); otherwise "plain", which `dlcore grade` refuses unless told otherwise.
"""
from __future__ import annotations

import functools
import glob
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from course_config import Limits

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
    """Why confined student code cannot start in `mode` ("bwrap" or "plain") here, in one line; None when it can.

    The probe is a real confined launch (`confined_command` with default limits and the privilege drop, a scrubbed
    environment, a private writable folder as working folder, as a worker gets) running PROBE, so a bubblewrap
    that exists but cannot mount /proc, a Python that uid 65534 cannot read, or a missing setpriv all count as
    "does not work" rather than failing later on every student.
    """
    if mode == "bwrap" and not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed"
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return "setpriv (util-linux) is missing, so student code cannot be run as an unprivileged user"
    tmp = Path(tempfile.mkdtemp(prefix="dlcore-probe-"))
    cgroup = None
    try:
        os.chmod(tmp, 0o777)  # the sandbox user's working folder, as a worker's private copy is
        cmd, cgroup = confined_command(["-I", "-B", "-c", PROBE, mode, str(REPO)], Limits(), mode,
                                       mounts=[(str(tmp), str(tmp), True)], chdir=str(tmp), plain_tmp=tmp)
        proc = subprocess.run(cmd, env=scrubbed_env("/tmp" if mode == "bwrap" else str(tmp)), cwd=str(tmp),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120, start_new_session=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        release_cgroup(cgroup)
        shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode == 0:
        return None
    lines = (proc.stderr + proc.stdout).decode("utf-8", errors="replace").strip().splitlines()
    detail = f"its probe failed: {lines[-1] if lines else f'exit status {proc.returncode}'}"
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


def _plain_root_prefix(tmp: Path | None, extra: list[str]) -> list[str]:
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
        assert tmp is not None, "confined_command: the plain mode as root needs plain_tmp"  # (was a TypeError)
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


def confined_command(python_args: list[str], limits: Limits, mode: str, *, mounts: list[tuple[str, str, bool]],
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
    """SIGKILL whatever is left in a pids cgroup made by `confined_command`, then remove it."""
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
    """A `confined_command` changed for a worker whose torch code runs on CUDA: bubblewrap's fresh /dev gets the
    NVIDIA device nodes, and the memory limit bounds the data segment (RLIMIT_DATA) instead of the address space,
    since the CUDA driver reserves far more address space than any memory limit and does not start under
    RLIMIT_AS. GPU memory itself is bounded only by the device."""
    out = [f"--data={a[len('--as='):]}" if a.startswith("--as=") else a for a in cmd]
    if "--dev" in out:
        at = out.index("--dev") + 2  # after "--dev /dev"
        out[at:at] = [a for node in sorted(glob.glob("/dev/nvidia*")) for a in ("--dev-bind", node, node)]
    return out
