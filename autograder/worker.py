"""The sandboxed worker: imports a student's modules and runs the calls the checker asks for.

It runs as `python -I -B worker.py IN_FD OUT_FD ROOT [BANNED,...]` inside the sandbox, never in the process that
decides a score. It is standalone (stdlib + NumPy) because the sandbox shows it nothing else.

Wire format, both ways: an 8-byte big-endian length, then a 4-byte header length, a JSON header, and the
concatenated `.npy` blobs the header points into. Arrays are written with np.save and read with
np.load(allow_pickle=False); nothing is ever pickled. In JSON values, {"__nd__": i} is array blob i,
{"__h__": n} a handle to an object kept in the worker, {"__tuple__": [...]} a tuple and {"__dict__": [[k, v]]}
a dict. Student return values become plain floats, ints, strings and base-class float/int arrays here, so a
returned ndarray subclass (with a lying __eq__, say) reaches the checker as a plain ndarray.
"""
from __future__ import annotations

import io
import json
import os
import struct
import sys
import traceback

MAX_MESSAGE = 1 << 30  # 1 GiB: larger messages are refused rather than allocated
ARRAY_KINDS = "biuf"   # bool, signed, unsigned, float: the only dtypes that cross


class WireError(Exception):
    """A malformed or oversized message."""


def read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_message(fd: int, header: dict, blobs: list[bytes]) -> None:
    header = dict(header, __blobs__=[len(b) for b in blobs])
    head = json.dumps(header).encode()
    body = struct.pack(">I", len(head)) + head + b"".join(blobs)
    data = struct.pack(">Q", len(body)) + body
    view = memoryview(data)
    while view:
        n = os.write(fd, view[: 1 << 20])
        view = view[n:]


def read_message(fd: int) -> tuple[dict, list[bytes]]:
    (size,) = struct.unpack(">Q", read_exact(fd, 8))
    if size > MAX_MESSAGE:
        raise WireError(f"message of {size} bytes is over the {MAX_MESSAGE}-byte limit")
    body = read_exact(fd, size)
    (hlen,) = struct.unpack(">I", body[:4])
    if hlen > size - 4:
        raise WireError("header length past the end of the message")
    header = json.loads(body[4:4 + hlen])
    if not isinstance(header, dict) or not isinstance(header.get("__blobs__"), list):
        raise WireError("header is not an object with a blob table")
    blobs, pos = [], 4 + hlen
    for n in header.pop("__blobs__"):
        if not isinstance(n, int) or n < 0 or pos + n > size:
            raise WireError("blob table does not match the message")
        blobs.append(body[pos:pos + n])
        pos += n
    return header, blobs


def array_to_blob(a) -> bytes:
    """Plain-array bytes; refuses object and structured dtypes."""
    import numpy as np

    a = np.array(a, copy=True, subok=False)  # drops ndarray subclasses
    if a.dtype.kind not in ARRAY_KINDS or a.dtype.fields is not None:
        raise TypeError(f"an array of dtype {a.dtype} cannot be graded; return numbers")
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def blob_to_array(blob: bytes):
    import numpy as np

    a = np.load(io.BytesIO(blob), allow_pickle=False)
    if type(a) is not np.ndarray or a.dtype.kind not in ARRAY_KINDS:
        raise WireError("a blob is not a plain numeric array")
    return a


def decode(value, blobs: list[bytes], resolve):
    """JSON value -> Python value; `resolve(n)` turns a handle number into its object (or proxy)."""
    if isinstance(value, list):
        return [decode(v, blobs, resolve) for v in value]
    if isinstance(value, dict):
        if "__nd__" in value:
            return blob_to_array(blobs[value["__nd__"]])
        if "__h__" in value:
            return resolve(value)
        if "__tuple__" in value:
            return tuple(decode(v, blobs, resolve) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: decode(v, blobs, resolve) for k, v in value["__dict__"]}
        raise WireError(f"unknown JSON object {sorted(value)[:3]}")
    return value


def encode(value, blobs: list[bytes], keep, depth: int = 0):
    """Python value -> JSON value; `keep(obj)` stores an object that cannot cross and returns its handle dict."""
    import numpy as np

    if depth > 20:
        raise TypeError("return value nested too deeply")
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        blobs.append(array_to_blob(value))
        return {"__nd__": len(blobs) - 1}
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor: numbers, not the object
        return encode(value.detach().cpu().numpy(), blobs, keep, depth + 1)
    if type(value).__name__ == "Figure" and type(value).__module__.startswith("matplotlib"):
        return encode(figure_data(value), blobs, keep, depth + 1)
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, blobs, keep, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, blobs, keep, depth + 1) for v in value]
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {"__dict__": [[k, encode(v, blobs, keep, depth + 1)] for k, v in value.items()]}
    return keep(value)


def figure_data(fig) -> dict:
    """A matplotlib figure as plain data: per axes its texts, scales, lines, bars and legend, plus a PNG.

    Figures cross to the checker as this dict (never pickled), so checks read what was drawn, not pixels.
    """
    import numpy as np
    from matplotlib.patches import Rectangle

    axes = []
    for ax in fig.axes:
        legend = ax.get_legend()
        bars = [[p.get_x(), p.get_width(), p.get_height()] for p in ax.patches if isinstance(p, Rectangle)]
        axes.append({
            "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
            "xscale": ax.get_xscale(), "yscale": ax.get_yscale(),
            "lines": [{"label": str(line.get_label()), "x": np.asarray(line.get_xdata(), dtype=np.float64),
                       "y": np.asarray(line.get_ydata(), dtype=np.float64)} for line in ax.get_lines()],
            "bars": np.asarray(bars, dtype=np.float64).reshape(-1, 3),
            "legend": [t.get_text() for t in legend.get_texts()] if legend is not None else [],
        })
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"figure": True, "suptitle": fig._suptitle.get_text() if fig._suptitle else "", "axes": axes,
            "png": np.frombuffer(buf.getvalue(), dtype=np.uint8)}


class _Capture:
    """A text stream that keeps the first and last 32 KiB written to it."""

    LIMIT = 32 << 10

    def __init__(self):
        self.head, self.tail, self.dropped = [], "", 0
        self.size = 0

    def write(self, text) -> int:
        text = str(text)
        if self.size < self.LIMIT:
            self.head.append(text)
            self.size += len(text)
        else:
            self.tail = (self.tail + text)[-self.LIMIT:]
            self.dropped += len(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        out = "".join(self.head)
        if self.dropped:
            out += f"\n[... output shortened ...]\n{self.tail}"
        return out


class _BanImports:
    """meta_path finder that refuses banned top-level packages (the policy is also checked via sys.modules)."""

    def __init__(self, banned: set[str]):
        self.banned = banned

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.banned:
            raise ImportError(f"'{name}' cannot be used here: this topic's NumPy functions are written from "
                              f"scratch, so torch and other autograd libraries are not available to them")
        return None


class Worker:
    def __init__(self, fd_in: int, fd_out: int, root: str, banned: set[str]):
        self.fd_in, self.fd_out, self.root = fd_in, fd_out, os.path.realpath(root)
        self.objects: dict[int, object] = {}
        self.next_handle = 1
        self.banned = banned

    # -- handles ---------------------------------------------------------------------------------
    def keep(self, obj) -> dict:
        n = self.next_handle
        self.next_handle += 1
        self.objects[n] = obj
        return {"__h__": n, "type": type(obj).__name__}

    def resolve(self, ref: dict):
        try:
            return self.objects[ref["__h__"]]
        except KeyError:
            raise WireError(f"unknown handle {ref.get('__h__')}") from None

    # -- error reports ---------------------------------------------------------------------------
    def describe(self, exc: BaseException, target=None) -> dict:
        """What went wrong, in the student's files only (grader frames are left out)."""
        where = []
        for fr in traceback.extract_tb(exc.__traceback__):
            path = os.path.realpath(fr.filename)
            if path.startswith(self.root + os.sep):
                where.append([os.path.relpath(path, self.root), fr.lineno, fr.name, (fr.line or "").strip()])
        if isinstance(exc, SyntaxError) and exc.filename:  # the error is in the student's file, not a frame
            path = os.path.realpath(exc.filename)
            if path.startswith(self.root + os.sep):
                where.append([os.path.relpath(path, self.root), exc.lineno, "<module>", (exc.text or "").strip()])
        info = {"type": type(exc).__name__, "message": str(exc)[:2000], "where": where[-5:],
                "not_implemented": isinstance(exc, NotImplementedError)}
        if isinstance(exc, TypeError) and target is not None:
            try:
                import inspect
                info["signature"] = f"{getattr(target, '__name__', '?')}{inspect.signature(target)}"
            except (TypeError, ValueError):
                pass
        return info

    # -- operations ------------------------------------------------------------------------------
    def target(self, spec):
        if isinstance(spec, dict):  # a method or attribute of a kept object
            return getattr(self.resolve(spec), spec["attr"])
        module, _, name = spec.rpartition(".")
        obj = sys.modules[module]
        return getattr(obj, name)

    def op_import(self, header, blobs):
        __import__(header["module"])
        return {}, []

    def op_call(self, header, blobs):
        fn = self.target(header["target"])
        args = decode(header.get("args", []), blobs, self.resolve)
        kwargs = decode(header.get("kwargs", {"__dict__": []}), blobs, self.resolve)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: they are the student's errors
            return {"ok": False, "error": self.describe(exc, fn)}, []
        keep = header.get("keep")
        out_blobs: list[bytes] = []
        if keep is True:
            value = self.keep(result)
        elif keep:
            if not isinstance(result, tuple):
                return {"ok": False, "error": {"type": "BadReturn", "message":
                        f"returned {type(result).__name__}, expected a tuple", "where": [],
                        "not_implemented": False}}, []
            value = {"__tuple__": [self.keep(v) if i in keep else encode(v, out_blobs, self.keep)
                                   for i, v in enumerate(result)]}
        else:
            value = encode(result, out_blobs, self.keep)
        echo = [encode(args[i], out_blobs, self.keep) for i in header.get("echo", [])]
        return {"value": value, "echo": echo}, out_blobs

    def op_getattr(self, header, blobs):
        blobs_out: list[bytes] = []
        return {"value": encode(self.target(header["target"]), blobs_out, self.keep)}, blobs_out

    def op_release(self, header, blobs):
        for n in header.get("handles", []):
            self.objects.pop(n, None)
        return {}, []

    def op_seed(self, header, blobs):
        """Seed every RNG a student might use implicitly, so grading is reproducible."""
        import random

        import numpy as np

        seed = int(header["seed"])
        random.seed(seed)
        np.random.seed(seed % (1 << 32))
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(seed)
        return {}, []

    def op_modules(self, header, blobs):
        return {"value": sorted(m for m in sys.modules if m.split(".")[0] in self.banned)}, []

    def serve(self) -> None:
        import numpy as np

        write_message(self.fd_out, {"ok": True, "hello": os.getpid(), "numpy": np.__version__}, [])
        while True:
            try:
                header, blobs = read_message(self.fd_in)
            except EOFError:
                return
            op = header.get("op")
            if op == "exit":
                return
            handler = getattr(self, f"op_{op}", None)
            capture = _Capture()
            sys.stdout = sys.stderr = capture  # the student's prints come back with the reply, in order
            try:
                if handler is None:
                    raise WireError(f"unknown op {op!r}")
                reply, out_blobs = handler(header, blobs)
                reply.setdefault("ok", True)
            except BaseException as exc:
                reply, out_blobs = {"ok": False, "error": self.describe(exc)}, []
            finally:
                sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            reply["output"] = capture.text()
            try:
                write_message(self.fd_out, reply, out_blobs)
            except (TypeError, ValueError) as exc:  # a value that cannot be encoded is a bad return
                write_message(self.fd_out, {"ok": False, "error": self.describe(exc)}, [])


def main(argv: list[str]) -> None:
    fd_in, fd_out, root = int(argv[1]), int(argv[2]), argv[3]
    banned = set(filter(None, argv[4].split(","))) if len(argv) > 4 else set()
    import numpy  # noqa: F401  (imported before the student's folder joins sys.path: no shadowing)

    if banned:
        sys.meta_path.insert(0, _BanImports(banned))
    sys.path.insert(0, root)
    Worker(fd_in, fd_out, root, banned).serve()
    sys.stdout.flush()
    os._exit(0)  # skip atexit handlers a submission may have registered


if __name__ == "__main__":
    main(sys.argv)
