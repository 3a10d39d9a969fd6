"""The Jupyter kernel nbgrader's autograde runs a student's notebook in: ipykernel inside the sandbox.

A notebook imports the student's modules and runs their code in its kernel, so that kernel is student code too.
`dlcore course init` installs the kernelspec `dlcore-sandbox` in the course folder and points nbgrader at it
(`c.Execute.kernel_name`, with the ZeroMQ sockets as Unix sockets: `c.KernelManager.transport = "ipc"`, since the
kernel has no network). nbgrader starts this launcher as the kernel (`python -m autograder.kernel -f CONN`); it
starts ipykernel confined by `confine.confined_command`, as the workers are: bubblewrap with no network, the
system and Python folders read-only, uid 65534, rlimits and a pids cgroup (`course_config.NOTEBOOK_KERNEL_LIMITS`).
Inside, the kernel sees only

- the student's own folder of the autograded step (`autograded/<student>/`, read-only: nbgrader's copy of the
  submission, with the earlier topics a topic imports beside it), its working folder being the topic's folder;
- the student edition (`release/`, on PYTHONPATH), which is what the notebook imports at home too: the toolkit,
  course_config and the public checks, so `check(...)` cells work as they do for the student;
- the course data (DLCORE_DATA), read-only, and a private folder holding the connection file and its sockets.

The repository (solutions/, hidden checks), nbgrader's database, the exchange and other students do not exist for
it. The socket files live in that private folder, and symbolic links at the paths nbgrader connects to lead there.
Interrupts travel as messages (`interrupt_mode: message`): the kernel runs in a session of its own.
Where bubblewrap is missing the launcher refuses to start, unless DLCORE_ALLOW_UNISOLATED=1 (set by
`dlcore course autograde --allow-unisolated-sandbox`); then it runs with the plain sandbox's protections.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import course_config
from autograder import confine

NAME = "dlcore-sandbox"
REPO = Path(__file__).resolve().parents[1]
EDITION = REPO / "release"       # the student edition (`dlcore release` writes it)
PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def kernelspec(course: Path) -> Path:
    """Write the kernelspec into COURSE/.dlcore/jupyter/kernels/ (found through JUPYTER_PATH); returns its file."""
    folder = course / ".dlcore" / "jupyter" / "kernels" / NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "autograder.kernel", "-f", "{connection_file}"],
            "display_name": "Python 3 (dlcore sandbox)", "language": "python", "interrupt_mode": "message",
            "metadata": {"debugger": False}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return folder / "kernel.json"


def nbgrader_config_lines(course: Path) -> list[str]:
    """Lines of nbgrader_config.py that make nbgrader run every notebook in the sandboxed kernel."""
    jupyter = str(course / ".dlcore" / "jupyter")
    return [
        "# Student notebooks run in the sandboxed kernel (autograder/kernel.py), found through JUPYTER_PATH; with no",
        "# network in the sandbox its sockets are Unix sockets.",
        "import os",
        f"os.environ['JUPYTER_PATH'] = os.pathsep.join([{jupyter!r}] + "
        "[p for p in os.environ.get('JUPYTER_PATH', '').split(os.pathsep) if p])",
        f"c.Execute.kernel_name = {NAME!r}",
        "c.KernelManager.transport = 'ipc'",
    ]


def _problem(msg: str) -> SystemExit:
    return SystemExit(f"dlcore kernel: {msg}")


def launch(connection_file: str, extra: list[str]) -> int:
    """Start ipykernel confined, serving `connection_file`; returns its exit status."""
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc":
        raise _problem("the sandboxed kernel has no network: set c.KernelManager.transport = 'ipc' in "
                       "nbgrader_config.py (`dlcore course init` writes it)")
    if not (EDITION / "autograder" / "notebook.py").is_file():
        raise _problem(f"{EDITION} holds no student edition; run `dlcore release`")
    mode = confine.sandbox_mode()
    if mode != "bwrap" and os.environ.get("DLCORE_ALLOW_UNISOLATED") != "1":
        why = confine.isolation_problem() or "bubblewrap is not in use"
        raise _problem(f"refusing to run a student notebook: {why}. Install bubblewrap "
                       f"(`{confine.INSTALL_BWRAP}`) or pass --allow-unisolated-sandbox")
    work = Path.cwd()                  # nbgrader runs the kernel in autograded/<student>/<topic>/
    if not os.path.isabs(info["ip"]):  # an IPC path relative to the folder of the client that started us
        info["ip"] = os.path.join(os.readlink(f"/proc/{os.getppid()}/cwd"), info["ip"])
    student = work.parent
    private = Path(tempfile.mkdtemp(prefix="dlcore-kernel-"))
    cgroup = None
    child = None
    try:
        inner = dict(info, ip=str(private / "kernel-ipc"))
        conn = private / Path(connection_file).name
        conn.write_text(json.dumps(inner))
        if os.geteuid() == 0:          # the kernel runs as nobody: it must read the file and make its sockets
            for path in (private, conn):
                os.chown(path, confine.NOBODY, confine.NOBODY)
        for key in PORTS:              # nbgrader connects to IP-PORT: lead it to the socket the kernel makes
            link = f"{info['ip']}-{info[key]}"  # jupyter_client chose a port whose path is free: never take another's
            os.symlink(f"{inner['ip']}-{info[key]}", link)
        data = os.environ.get("DLCORE_DATA", "")
        mounts = [(str(EDITION), str(EDITION), False), (str(student), str(student), False),
                  (str(private), str(private), True)]
        if data and os.path.isdir(data):
            mounts.append((os.path.realpath(data), os.path.realpath(data), False))
        cmd, cgroup = confine.confined_command(["-B", "-m", "ipykernel_launcher", "-f", str(conn), *extra],
                                               course_config.NOTEBOOK_KERNEL_LIMITS, mode, mounts=mounts,
                                               chdir=str(work), plain_tmp=private)
        env = confine.scrubbed_env(str(private))
        env.update(PYTHONPATH=str(EDITION), IPYTHONDIR=str(private / "ipython"), PYDEVD_DISABLE_FILE_VALIDATION="1",
                   DLCORE_SANDBOX="plain")  # check() cells: their workers run inside this sandbox
        if data:
            env["DLCORE_DATA"] = os.path.realpath(data)
        child = subprocess.Popen(cmd, env=env, cwd=str(work), stdin=subprocess.DEVNULL)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # nbgrader's terminate: clean up below
        signal.signal(signal.SIGINT, signal.SIG_IGN)                # interrupts arrive as messages
        return child.wait()
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        confine.release_cgroup(cgroup)
        for key in PORTS:
            link = f"{info['ip']}-{info[key]}"
            if os.path.islink(link) and os.readlink(link).startswith(str(private)):
                os.unlink(link)
        shutil.rmtree(private, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-f" not in args or args.index("-f") + 1 >= len(args):
        raise _problem("usage: python -m autograder.kernel -f CONNECTION_FILE [ipykernel arguments]")
    i = args.index("-f")
    return launch(args[i + 1], args[:i] + args[i + 2:])


if __name__ == "__main__":
    sys.exit(main())
