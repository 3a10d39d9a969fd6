"""The sandboxed worker: imports a student's modules and runs the calls the checker asks for.

It runs as `python -I -B worker.py IN_FD OUT_FD ROOT [BANNED,...]` inside the sandbox, never in the process that
decides a score. It is standalone (stdlib + NumPy; matplotlib only to turn a returned figure into data) because
the sandbox shows it nothing else.

Wire format, both ways: an 8-byte big-endian length, then a 4-byte header length, a JSON header, and the
concatenated `.npy` blobs the header points into. Arrays are written with np.save and read with
np.load(allow_pickle=False); nothing is ever pickled. In JSON values, {"__nd__": i} is array blob i,
{"__h__": n} a handle to an object kept in the worker ({"__h__": n, "parent": true}: one the grader kept),
{"__tuple__": [...]} a tuple (with "name" and "fields" for a named tuple, which the receiving side may rebuild as
its own class of that name, see `decode`), {"__dict__": [[k, v]]} a dict and {"__seedseq__": [entropy, spawn_key]}
a NumPy SeedSequence. Student return values become plain floats, ints, strings and base-class float/int arrays
here, so a returned ndarray subclass (with a lying __eq__, say) reaches the checker as a plain ndarray.

For isolated scoring the grader may replace some of the student's functions by proxies (op "patch"): a proxy's
call sends {"callback": name, "args", "kwargs"} to the grader mid-call and waits for the reference's result. A
proxy called with a live object of the student's (a model, a function: something that would cross as a handle) runs
the student's own function instead, since the reference cannot use an object that stays in the sandbox; it tells
the grader once per function ({"callback": name, "unreplaced": true}), so the score's note can say so.
"""
from __future__ import annotations

import io
import json
import os
import importlib.machinery
import struct
import sys
import threading
import traceback
import types

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


def decode(value, blobs: list[bytes], resolve, named=None):
    """JSON value -> Python value; `resolve(n)` turns a handle number into its object (or proxy).

    `named(name, fields)` returns the class to rebuild a named tuple with (e.g. the receiving module's own
    LSTMCache), or None for a plain tuple; without it every tuple arrives plain (what the checker gets).
    """
    if isinstance(value, list):
        return [decode(v, blobs, resolve, named) for v in value]
    if isinstance(value, dict):
        if "__nd__" in value:
            return blob_to_array(blobs[value["__nd__"]])
        if "__h__" in value:
            return resolve(value)
        if "__tuple__" in value:
            items = tuple(decode(v, blobs, resolve, named) for v in value["__tuple__"])
            fields, name = value.get("fields"), value.get("name")
            cls = named(name, tuple(fields)) if named and isinstance(fields, list) and isinstance(name, str) else None
            return cls(*items) if cls is not None and len(cls._fields) == len(items) else items
        if "__dict__" in value:
            return {k: decode(v, blobs, resolve, named) for k, v in value["__dict__"]}
        if "__seedseq__" in value:  # a NumPy SeedSequence, rebuilt from its entropy and spawn key
            import numpy as np

            entropy, spawn_key = value["__seedseq__"]
            return np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key))
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
    if type(value) is np.random.SeedSequence and isinstance(value.entropy, int):
        return {"__seedseq__": [value.entropy, [int(k) for k in value.spawn_key]]}
    if isinstance(value, np.ndarray):
        blobs.append(array_to_blob(value))
        return {"__nd__": len(blobs) - 1}
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor: numbers, not the object
        return encode(value.detach().cpu().numpy(), blobs, keep, depth + 1)
    if type(value).__name__ == "Figure" and type(value).__module__.startswith("matplotlib"):
        return encode(figure_data(value), blobs, keep, depth + 1)
    if isinstance(value, tuple):
        encoded = {"__tuple__": [encode(v, blobs, keep, depth + 1) for v in value]}
        fields = getattr(type(value), "_fields", None)  # a named tuple (a cache, say): its names travel too
        if isinstance(fields, tuple) and len(fields) == len(value) and all(type(f) is str for f in fields):
            encoded.update(name=type(value).__name__, fields=list(fields))
        return encoded
    if isinstance(value, list):
        return [encode(v, blobs, keep, depth + 1) for v in value]
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {"__dict__": [[k, encode(v, blobs, keep, depth + 1)] for k, v in value.items()]}
    return keep(value)


def figure_data(fig) -> dict:
    """A matplotlib figure as plain data: per axes one entry per artist kind (AXES_EXTRACTORS), plus a PNG.

    Figures cross to the checker as this dict (never pickled), so checks read what was drawn, not pixels. Keys:
    figure level `figure` (True), `suptitle`, `axes` (one dict per axes, colorbar axes included), `naxes`,
    `colorbars` (how many axes are colorbars), `grid` ({"nrows", "ncols"} of the gridspec most non-colorbar axes
    use, or None) and `png` (uint8 bytes of the PNG, or None if the figure cannot be drawn). An extractor that
    fails records None for its key, and one artist that cannot be read is None in its list, so an odd figure
    fails only the checks that read it.
    """
    import numpy as np

    png = None
    try:  # draw first: tick labels and mapped scatter colours are only final after a draw
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=50)
        png = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    except Exception:
        pass
    axes = []
    for ax in list(getattr(fig, "axes", [])):
        entry = {}
        for key, extract in AXES_EXTRACTORS.items():
            try:
                entry[key] = extract(ax)
            except Exception:
                entry[key] = None
        axes.append(entry)
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:
        pass
    shapes = [(a["grid"]["nrows"], a["grid"]["ncols"]) for a in axes if isinstance(a["grid"], dict)]
    nrows, ncols = max(shapes, key=shapes.count) if shapes else (None, None)  # ties: the first axes' grid
    return {"figure": True, "suptitle": _text(getattr(fig, "_suptitle", None)), "axes": axes, "naxes": len(axes),
            "colorbars": sum(a["colorbar"] is True for a in axes),
            "grid": {"nrows": nrows, "ncols": ncols} if shapes else None, "png": png}


def _floats(values):
    """Any array-like -> a plain float64 ndarray; masked entries become NaN."""
    import numpy as np

    return np.ma.filled(np.ma.asarray(values).astype(np.float64), np.nan)


def _text(artist) -> str:
    return str(artist.get_text()) if artist is not None else ""


def _each(artists, read) -> list:
    """read(artist) for every artist; None for one that cannot be read, so the others still cross."""
    out = []
    for artist in artists:
        try:
            out.append(read(artist))
        except Exception:
            out.append(None)
    return out


def _lines(ax) -> list:
    """Line2D (plot, semilogy, ...): [{label, x: (k,), y: (k,)}]."""
    return _each(ax.get_lines(), lambda line: {"label": str(line.get_label()), "x": _floats(line.get_xdata()),
                                               "y": _floats(line.get_ydata())})


def _bars(ax):
    """Rectangle patches (bar, hist): (k, 3) rows of [x, width, height]."""
    import numpy as np
    from matplotlib.patches import Rectangle

    bars = [[p.get_x(), p.get_width(), p.get_height()] for p in ax.patches if isinstance(p, Rectangle)]
    return np.asarray(bars, dtype=np.float64).reshape(-1, 3)


def _legend(ax) -> list:
    legend = ax.get_legend()
    return [_text(t) for t in legend.get_texts()] if legend is not None else []


def _mapped(artist) -> dict:
    """Colour mapping of an image or mesh: colormap name, norm class, clim and whether a colorbar shows it."""
    vmin, vmax = artist.get_clim()
    return {"cmap": str(artist.get_cmap().name), "norm": type(artist.norm).__name__,
            "vmin": None if vmin is None else float(vmin), "vmax": None if vmax is None else float(vmax),
            "has_colorbar": getattr(artist, "colorbar", None) is not None}


def _images(ax) -> list:
    """AxesImage (imshow, matshow): array (H, W) or (H, W, 3|4) as float64, extent [left, right, bottom, top]."""
    def read(im):
        a = im.get_array()
        return {"array": None if a is None else _floats(a), "extent": [float(v) for v in im.get_extent()],
                "interpolation": str(im.get_interpolation()), **_mapped(im)}

    return _each(ax.get_images(), read)


def _meshes(ax) -> list:
    """QuadMesh (pcolormesh, a colorbar's own colour strip): the mapped values as float64."""
    from matplotlib.collections import QuadMesh

    def read(mesh):
        a = mesh.get_array()
        return {"array": None if a is None else _floats(a), **_mapped(mesh)}

    return _each([c for c in ax.collections if isinstance(c, QuadMesh)], read)


def _scatter(ax) -> list:
    """PathCollection (scatter): offsets (k, 2), facecolors (k, 4) RGBA, values (k,) from `c=` or None, sizes."""
    import numpy as np
    from matplotlib.collections import PathCollection

    def read(coll):
        coll.update_scalarmappable()  # `c=values` become facecolors only here (or at draw time)
        offsets = _floats(coll.get_offsets()).reshape(-1, 2)  # (k, 2)
        colors = _floats(coll.get_facecolors()).reshape(-1, 4)
        if len(colors) == 1:  # one colour for all points
            colors = np.repeat(colors, len(offsets), axis=0)  # (k, 4)
        values = coll.get_array()
        return {"offsets": offsets, "facecolors": colors, "values": None if values is None else _floats(values),
                "sizes": _floats(coll.get_sizes()), "label": str(coll.get_label()),
                "has_colorbar": getattr(coll, "colorbar", None) is not None}

    return _each([c for c in ax.collections if isinstance(c, PathCollection)], read)


def _texts(ax) -> list:
    """Text drawn with ax.text or ax.annotate: [{text, x, y}], (x, y) where the text sits."""
    def read(t):
        x, y = t.get_position()
        return {"text": _text(t), "x": float(x), "y": float(y)}

    return _each(ax.texts, read)


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None or hasattr(ax, "_colorbar_info")


def _has_colorbar(ax) -> bool:
    """A colorbar shows one of this axes' images, meshes or scatters."""
    return any(getattr(m, "colorbar", None) is not None for m in list(ax.images) + list(ax.collections))


def _grid(ax):
    """{nrows, ncols, row, col, rowspan, colspan} of the axes in its gridspec; None for a colorbar or add_axes.

    fig.colorbar(im) re-seats the parent axes in a small gridspec beside the bar, so walk back out of the
    gridspecs made for this axes' colorbars to the position the student chose.
    """
    ss = ax.get_subplotspec()
    if ss is None or _is_colorbar(ax):
        return None
    bar_grids = [cax.get_subplotspec().get_gridspec() for cax in getattr(ax, "_colorbars", [])
                 if cax.get_subplotspec() is not None]
    while any(ss.get_gridspec() is g for g in bar_grids):
        ss = ss.get_gridspec()._subplot_spec
    nrows, ncols = ss.get_gridspec().get_geometry()
    return {"nrows": int(nrows), "ncols": int(ncols), "row": int(ss.rowspan.start), "col": int(ss.colspan.start),
            "rowspan": len(ss.rowspan), "colspan": len(ss.colspan)}


# One row per key of an axes' entry: a new kind of artist is one function and one row here.
AXES_EXTRACTORS = {
    "title": lambda ax: str(ax.get_title()),
    "xlabel": lambda ax: str(ax.get_xlabel()),
    "ylabel": lambda ax: str(ax.get_ylabel()),
    "xscale": lambda ax: str(ax.get_xscale()),
    "yscale": lambda ax: str(ax.get_yscale()),
    "lines": _lines,
    "bars": _bars,
    "legend": _legend,
    "images": _images,
    "meshes": _meshes,
    "scatter": _scatter,
    "xticks": lambda ax: _floats(ax.get_xticks()),
    "yticks": lambda ax: _floats(ax.get_yticks()),
    "xticklabels": lambda ax: [_text(t) for t in ax.get_xticklabels()],
    "yticklabels": lambda ax: [_text(t) for t in ax.get_yticklabels()],
    "texts": _texts,
    "grid": _grid,
    "colorbar": _is_colorbar,
    "has_colorbar": _has_colorbar,
}


def _printable(data: bytes) -> str:
    """Student output as text: invalid UTF-8 replaced, control characters (NUL, escapes) removed."""
    text = data.decode("utf-8", errors="replace")
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


class _Capture:
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
                return _printable(self.result)
            self.token = b""  # the thread is gone or stuck: return what it has
            return _printable(self._cut())


# Dotted names of banned-library objects the student's code tried to use (see _Standin and _BanImports).
USED_BANNED: set[str] = set()


def _policy(name: str) -> str:
    return (f"'{name}' cannot be used here: this topic's NumPy functions are written from scratch, so "
            f"{name.split('.')[0]} is not available to them")


class FromScratchError(RuntimeError, AttributeError):
    """Any use of a banned library in a NumPy worker. Also an AttributeError, so that `hasattr` and
    `from torch import nn` see a missing name and the import system imports it as a submodule stand-in."""


class _Standin(types.ModuleType):
    """What `import torch` (or torch.nn, jax, ...) gives a NumPy module while it is imported: the module
    imports, its other functions are graded on their merits, and any use of the stand-in raises."""

    def __getattr__(self, attr):
        name = f"{self.__name__}.{attr}"
        if attr.startswith("__") and attr.endswith("__"):  # probes of module dunders (__file__) are no use
            raise AttributeError(_policy(name))
        USED_BANNED.add(name)
        raise FromScratchError(_policy(name))

    def __call__(self, *args, **kwargs):
        USED_BANNED.add(self.__name__)
        raise FromScratchError(_policy(self.__name__))

    def __repr__(self) -> str:
        return f"<stand-in for {self.__name__}, which this topic's NumPy functions may not use>"


class _BanImports:
    """meta_path finder for banned top-level packages (torch, jax, ...) in a NumPy worker.

    While a module is being imported (`standins` True) it hands out _Standin modules; an import at any other
    time (inside a function, during a call) raises ImportError with the policy message. Stand-ins leave
    sys.modules after each import, so only the student modules that imported one hold it.
    """

    def __init__(self, banned: set[str]):
        self.banned = banned
        self.standins = False

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in self.banned:
            return None
        if not self.standins:
            USED_BANNED.add(name)
            raise ImportError(_policy(name), name=name)
        USED_BANNED.discard(name)  # `from torch import nn` probed torch.nn with hasattr first: not a use
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        return _Standin(spec.name)

    def exec_module(self, module) -> None:
        pass

    @staticmethod
    def forget_standins() -> None:
        for name in [n for n, m in list(sys.modules.items()) if isinstance(m, _Standin)]:
            del sys.modules[name]


class ParentObject:
    """An object the grader kept on its side during a callback (the reference's cache, say): opaque here."""

    def __init__(self, n: int):
        self.n = n


class Worker:
    def __init__(self, fd_in: int, fd_out: int, root: str, banned: set[str]):
        self.fd_in, self.fd_out, self.root = fd_in, fd_out, os.path.realpath(root)
        self.objects: dict[int, object] = {}
        self.next_handle = 1
        self.banned = banned

    # -- handles ---------------------------------------------------------------------------------
    def keep(self, obj) -> dict:
        if isinstance(obj, ParentObject):  # goes back to the grader as the grader's own object
            return {"__h__": obj.n, "parent": True}
        n = self.next_handle
        self.next_handle += 1
        self.objects[n] = obj
        return {"__h__": n, "type": type(obj).__name__}

    def resolve(self, ref: dict):
        if ref.get("parent"):
            return ParentObject(int(ref["__h__"]))
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
        elif keep and not (isinstance(result, tuple) and len(result) > max(keep)):
            value = encode(result, out_blobs, self.keep)  # not the promised tuple: the checker names what it is
        elif keep:
            value = {"__tuple__": [self.keep(v) if i in keep else encode(v, out_blobs, self.keep)
                                   for i, v in enumerate(result)]}
        else:
            value = encode(result, out_blobs, self.keep)
        echo = [encode(args[i], out_blobs, self.keep) for i in header.get("echo", [])]
        return {"value": value, "echo": echo}, out_blobs

    def op_getattr(self, header, blobs):
        blobs_out: list[bytes] = []
        return {"value": encode(self.target(header["target"]), blobs_out, self.keep)}, blobs_out

    # -- isolated scoring: functions replaced by proxies that call the grader's reference ------------------------
    def op_patch(self, header, blobs):
        """Replace each function "pkg.module.name" with a proxy that asks the grader for the reference's result.

        Every binding of the original in the student's modules is replaced: the module attribute, names taken with
        `from ... import`, and entries of module-level dicts, tuples and lists (e.g. a table of activations).
        Modules imported later see the proxy through the module attribute.
        """
        for name in header.get("names", []):
            module_name, _, attr = name.rpartition(".")
            module = __import__(module_name, fromlist=[attr])
            original = getattr(module, attr)
            proxy = self._proxy(name, original)
            setattr(module, attr, proxy)
            for mod in list(sys.modules.values()):
                path = os.path.realpath(getattr(mod, "__file__", None) or "/")
                if path.startswith(self.root + os.sep):
                    _replace_bindings(vars(mod), original, proxy)
        return {}, []

    def _proxy(self, name: str, original):
        worker = self
        module_name = name.rpartition(".")[0]
        unreplaced = []  # [True] once the grader has been told that this function kept the student's code

        def keep_live(obj, live):
            handle = worker.keep(obj)
            if not isinstance(obj, ParentObject):
                live.append(handle["__h__"])
            return handle

        def reference(*args, **kwargs):  # the grader runs the reference and sends back only its result
            blobs: list[bytes] = []
            live: list[int] = []  # handles of the student's own objects among the arguments
            request = {"callback": name, "args": [encode(a, blobs, lambda o: keep_live(o, live)) for a in args],
                       "kwargs": encode(kwargs, blobs, lambda o: keep_live(o, live))}
            if live:  # e.g. a training loop given the student's model: the reference cannot drive a sandbox object
                for n in live:
                    worker.objects.pop(n, None)
                if not unreplaced:
                    write_message(worker.fd_out, {"callback": name, "unreplaced": True}, [])
                    read_message(worker.fd_in)
                    unreplaced.append(True)
                return original(*args, **kwargs)
            write_message(worker.fd_out, request, blobs)
            reply, reply_blobs = read_message(worker.fd_in)
            if not reply.get("ok"):
                raise RuntimeError(f"the grader's reference {name} failed on these arguments: {reply.get('error')}")
            return decode(reply.get("value"), reply_blobs, worker.resolve,
                          lambda cls_name, fields: _named_tuple(module_name, cls_name, fields))

        reference.__name__ = reference.__qualname__ = name.rpartition(".")[2]
        return reference

    def op_release(self, header, blobs):
        if header.get("all"):
            self.objects.clear()
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

    def op_device(self, header, blobs):
        """Run the student's torch code on `device` (`dlcore grade --device cuda`), sent before any student module
        is imported: it becomes torch's default device, so the models and tensors the student's code makes live
        there. TF32 stays off (float32 means float32, as on the CPU); `Tensor.numpy()` and `torch.from_numpy` move
        between the device and the CPU, so code written for the CPU (`scores.numpy()`) runs unchanged. Every value
        still comes back to the grader as a NumPy array, compared in float64 as on the CPU."""
        import torch

        device = str(header["device"])
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"--device {device} requested but torch.cuda.is_available() is False in the "
                               f"sandboxed worker (are the /dev/nvidia* devices visible?)")
        torch.set_default_device(device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        to_numpy, from_numpy = torch.Tensor.numpy, torch.from_numpy

        def numpy(tensor, *, force=False):
            return to_numpy(tensor.cpu() if tensor.device.type != "cpu" else tensor, force=force)

        torch.Tensor.numpy = numpy
        torch.from_numpy = lambda array: from_numpy(array).to(torch.get_default_device())
        return {"value": str(torch.get_default_device())}, []

    def op_modules(self, header, blobs):
        """Banned top-level packages the student's code used (a stand-in raised, an import was refused) or
        loaded for real (past the import blocker)."""
        real = {m for m, mod in list(sys.modules.items())
                if m.split(".")[0] in self.banned and not isinstance(mod, _Standin)}
        return {"value": sorted({n.split(".")[0] for n in USED_BANNED | real})}, []

    def serve(self, capture: _Capture, ban: _BanImports | None = None) -> None:
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
            try:
                capture.redirect()  # the last op may have closed, replaced or re-pointed the streams
            except Exception:
                pass
            if ban is not None:
                ban.standins = op == "import"  # a module being imported may `import torch`; a call may not
            try:
                if handler is None:
                    raise WireError(f"unknown op {op!r}")
                reply, out_blobs = handler(header, blobs)
                reply.setdefault("ok", True)
            except BaseException as exc:
                reply, out_blobs = {"ok": False, "error": self.describe(exc)}, []
            finally:
                if ban is not None and ban.standins:
                    ban.standins = False
                    ban.forget_standins()
            reply["output"] = capture.collect()  # the student's prints come back with the reply, bounded
            try:
                write_message(self.fd_out, reply, out_blobs)
            except (TypeError, ValueError) as exc:  # a value that cannot be encoded is a bad return
                write_message(self.fd_out, {"ok": False, "error": self.describe(exc)}, [])


def _named_tuple(module_name: str, name: str, fields: tuple):
    """The class a named tuple from the grader's reference becomes here: the student module's own class of that
    name when it has the same fields (so `isinstance` and attribute access behave as in the student's code), else
    a named tuple made here with those fields."""
    import collections

    cls = getattr(sys.modules.get(module_name), name, None)
    if isinstance(cls, type) and issubclass(cls, tuple) and getattr(cls, "_fields", None) == fields:
        return cls
    try:
        return collections.namedtuple(name, fields)
    except (TypeError, ValueError):  # names that are not identifiers: the tuple arrives plain
        return None


def _replace_bindings(namespace: dict, original, proxy) -> None:
    """Point every name, and every entry of a module-level dict, tuple or list, that is `original` at `proxy`."""
    for key, value in list(namespace.items()):
        if value is original:
            namespace[key] = proxy
        elif isinstance(value, dict):
            for k, v in list(value.items()):
                if v is original:
                    value[k] = proxy
                elif isinstance(v, (tuple, list)) and any(x is original for x in v):
                    value[k] = type(v)(proxy if x is original else x for x in v)
        elif isinstance(value, (tuple, list)) and any(x is original for x in value):
            namespace[key] = type(value)(proxy if x is original else x for x in value)


def main(argv: list[str]) -> None:
    fd_in, fd_out, root = int(argv[1]), int(argv[2]), argv[3]
    banned = set(filter(None, argv[4].split(","))) if len(argv) > 4 else set()
    output_limit = int(argv[5]) if len(argv) > 5 else 64 << 10  # bytes of output kept per op (head + tail)
    capture = _Capture(output_limit)  # from here on fds 1 and 2 are the capture pipe, never the wire
    import numpy  # noqa: F401  (imported before the student's folder joins sys.path: no shadowing)

    ban = _BanImports(banned) if banned else None
    if ban is not None:
        sys.meta_path.insert(0, ban)
    sys.path.insert(0, root)
    Worker(fd_in, fd_out, root, banned).serve(capture, ban)
    os._exit(0)  # skip atexit handlers a submission may have registered


if __name__ == "__main__":
    main(sys.argv)
