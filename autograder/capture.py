"""Output capture in the sandboxed worker: everything student code writes to file descriptors 1 and 2, op by op,
bounded, as printable text."""
from __future__ import annotations

import os
import sys
import threading

def printable(data: bytes) -> str:
    """Student output as text: invalid UTF-8 replaced, control characters (NUL, escapes) removed."""
    text = data.decode("utf-8", errors="replace")
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


class Capture:
    """Everything written to file descriptors 1 and 2, op by op: print, sys.stdout.buffer, os.write(1, ...),
    C code and child processes alike, since both fds are one pipe. sys.stdout and sys.stderr stay the
    interpreter's real streams (fileno, buffer, flush, isatty all work).

    A thread drains the pipe as it fills and keeps about the first and the last `limit` // 2 bytes of the op: any
    amount of output costs neither memory nor disk (RLIMIT_FSIZE would kill a growing file). At the end of an
    op a random marker written behind the output tells the thread where the op's output ends.
    """

    def __init__(self, limit: int):
        self.half = max((limit - 100) // 2, 1)  # head + note + tail stay within the sandbox's own output cap
        self.read_fd, self.write_fd = os.pipe()  # not inheritable: children of student code get only fds 1 and 2
        try:
            import fcntl

            fcntl.fcntl(self.write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # fewer wake-ups for a heavy printer
        except (ImportError, AttributeError, OSError):
            pass
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.token = b""              # the end-of-op marker the thread is looking for, b"" when none
        self.result = b""             # the finished op's output, set by the thread when it meets the marker
        self.head, self.tail, self.after_head = bytearray(), bytearray(), 0
        self.redirect()
        threading.Thread(target=self._drain, daemon=True).start()

    def redirect(self) -> None:
        """Point fds 1 and 2 at the pipe and sys.stdout/stderr at the real streams, whatever an op did to them."""
        for fd in (1, 2):
            os.dup2(self.write_fd, fd)
        for name, fd in (("stdout", 1), ("stderr", 2)):
            stream = getattr(sys, f"__{name}__", None)
            try:
                usable = stream is not None and not stream.closed and stream.fileno() == fd
            except Exception:
                usable = False
            if not usable:  # closed or replaced by the student: a fresh stream over the same fd
                stream = open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
                setattr(sys, f"__{name}__", stream)
            setattr(sys, name, stream)

    def _keep(self, data: bytes) -> None:
        """Add output to the current op (lock held): the head fills first, then a bounded tail."""
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.after_head += len(data)
            self.tail += data
            if len(self.tail) > 2 * self.half:  # trim now and then, not on every write
                del self.tail[:-self.half]

    def _cut(self) -> bytes:
        """The current op's output, shortened with a note if needed, and a fresh start (lock held)."""
        tail = bytes(self.tail[-self.half:])
        dropped = self.after_head - len(tail)
        note = f"\n[... {dropped} bytes of output left out ...]\n".encode() if dropped else b""
        out = bytes(self.head) + note + tail
        self.head, self.tail, self.after_head = bytearray(), bytearray(), 0
        return out

    def _drain(self) -> None:
        pending = b""  # bytes held back because an end marker may start in them
        while True:
            try:
                chunk = os.read(self.read_fd, 1 << 20)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                data, token, pending = pending + chunk, self.token, b""
                at = data.find(token) if token else -1
                if at >= 0:
                    self._keep(data[:at])
                    self.result, self.token = self._cut(), b""
                    data = data[at + len(token):]  # written after the marker: the next op's output
                    self.done.set()
                elif token:
                    split = max(0, len(data) - len(token) + 1)
                    data, pending = data[:split], data[split:]
                self._keep(data)

    def collect(self, timeout: float = 10.0) -> str:
        """The output of the op that just ended (flushed, drained up to this point), as printable text."""
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                if stream is not None:  # sys.__stdout__ is None without a console (flush() of None raised here)
                    stream.flush()
            except Exception:
                pass
        token = b"\0dlcore-end-of-op:" + os.urandom(12).hex().encode() + b"\0"
        with self.lock:
            self.token, self.result = token, b""
            self.done.clear()
        try:
            os.write(self.write_fd, token)  # the same pipe as fds 1 and 2, so it arrives after all earlier output
            self.done.wait(timeout)
        except OSError:
            pass
        with self.lock:
            if self.done.is_set():
                return printable(self.result)
            self.token = b""  # the thread is gone or stuck: return what it has
            return printable(self._cut())
