"""The wire between the grader and its sandboxed worker: message framing and the value codec (stdlib + NumPy).

Both sides import this module: the trusted side (autograder.client, autograder.runner) and the worker inside the
sandbox (autograder.worker), which sees only the transport modules (see autograder.client.transport_files).

A message, both ways: an 8-byte big-endian length, then a 4-byte header length, a JSON header, and the concatenated
`.npy` blobs the header points into. Arrays are written with np.save and read with np.load(allow_pickle=False);
nothing is ever pickled. In JSON values, {"__nd__": i} is array blob i, {"__h__": n} a handle to an object kept on
the sending side ({"__h__": n, "parent": true}: one the grader kept), {"__tuple__": [...]} a tuple (with "name" and
"fields" for a named tuple, which the receiving side may rebuild as its own class of that name, see
`named_tuple_class`), {"__dict__": [[k, v]]} a dict and {"__seedseq__": [entropy, spawn_key]} a NumPy SeedSequence.
Values become plain floats, ints, strings and base-class float/int arrays on the way, so a returned ndarray
subclass (with a lying __eq__, say) reaches the checker as a plain ndarray; a matplotlib figure crosses as its data
(autograder.figures).
"""
from __future__ import annotations

import collections
import io
import json
import os
import struct
import weakref
from typing import Any

from autograder.figures import figure_data

MAX_MESSAGE = 1 << 30  # 1 GiB: larger messages are refused rather than allocated
ARRAY_KINDS = "biuf"   # bool, signed, unsigned, float: the only dtypes that cross


class WireError(Exception):
    """A malformed or oversized message."""


def read_exact(fd: int, n: int, deadline: float | None = None) -> bytes:
    """`n` bytes from `fd`; past `deadline` (time.monotonic()) a TimeoutError, for a writer that stalls."""
    chunks, left = [], n
    while left:
        if deadline is not None:
            import select
            import time

            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("the other side stalled mid-message")
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


def read_message(fd: int, deadline: float | None = None) -> tuple[dict, list[bytes]]:
    (size,) = struct.unpack(">Q", read_exact(fd, 8, deadline))
    if size > MAX_MESSAGE:
        raise WireError(f"message of {size} bytes is over the {MAX_MESSAGE}-byte limit")
    body = read_exact(fd, size, deadline)
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


class Memo:
    """The blobs of recent callback messages, kept alike on both sides, so an array that crosses back unchanged
    travels as {"__seq__": n} instead of its bytes (isolated scoring: a layer's cache goes to the grader and back
    at every call).

    Every blob that crosses in a callback message, either way, takes the next number on both sides (`commit`, in
    message order); both drop the oldest ones past `cap` bytes by the same rule, so each side knows what the other
    holds. A sender refers to a blob only when the array is an object it sent or received as that blob and its
    encoding now is byte for byte that blob, so the receiver decodes exactly what the full bytes would give."""

    def __init__(self, cap: int = 32 << 20):
        self.cap, self.size, self.next = cap, 0, 0
        self.blobs: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self.ids: dict[int, tuple] = {}   # id(array) -> (weak reference or array, seq)
        self.pending: list = []           # (blob index in the message, array) of the message being built/read

    def _remember(self, obj, seq: int) -> None:
        try:
            ref = weakref.ref(obj)
        except TypeError:
            return
        self.ids[id(obj)] = (ref, seq)

    def encode_array(self, a, blobs: list[bytes]) -> dict:
        blob = array_to_blob(a)
        hit = self.ids.get(id(a))
        if hit is not None and hit[0]() is a and self.blobs.get(hit[1]) == blob:
            return {"__seq__": hit[1]}
        blobs.append(blob)
        self.pending.append((len(blobs) - 1, a))
        return {"__nd__": len(blobs) - 1}

    def decode_ref(self, seq) -> object:
        blob = self.blobs.get(seq) if isinstance(seq, int) else None
        if blob is None:
            raise WireError(f"unknown blob {seq!r}")
        a = blob_to_array(blob)
        self._remember(a, seq)
        return a

    def commit(self, blobs: list[bytes]) -> None:
        """The message with these blobs crossed: number them, remember the arrays they came from or became."""
        for i, a in self.pending:
            self._remember(a, self.next + i)
        self.pending = []
        for blob in blobs:
            self.blobs[self.next] = blob
            self.size += len(blob)
            self.next += 1
        while self.size > self.cap and self.blobs:
            _, old = self.blobs.popitem(last=False)
            self.size -= len(old)
        if len(self.ids) > 4 * len(self.blobs) + 64:  # forget arrays whose blob is gone
            self.ids = {k: v for k, v in self.ids.items() if v[1] in self.blobs and v[0]() is not None}


def decode(value, blobs: list[bytes], resolve, named=None, memo: Memo | None = None):
    """JSON value -> Python value; `resolve(n)` turns a handle number into its object (or proxy).

    `named(name, fields)` returns the class to rebuild a named tuple with (usually `named_tuple_class` of the
    receiving module), or None for a plain tuple; without it every tuple arrives plain (what the checker gets).
    """
    if isinstance(value, list):
        return [decode(v, blobs, resolve, named, memo) for v in value]
    if isinstance(value, dict):
        if "__nd__" in value:
            a = blob_to_array(blobs[value["__nd__"]])
            if memo is not None:
                memo.pending.append((value["__nd__"], a))
            return a
        if "__seq__" in value and memo is not None:
            return memo.decode_ref(value["__seq__"])
        if "__h__" in value:
            return resolve(value)
        if "__tuple__" in value:
            items = tuple(decode(v, blobs, resolve, named, memo) for v in value["__tuple__"])
            fields, name = value.get("fields"), value.get("name")
            cls = named(name, tuple(fields)) if named and isinstance(fields, list) and isinstance(name, str) else None
            return cls(*items) if cls is not None and len(cls._fields) == len(items) else items
        if "__dict__" in value:
            return {k: decode(v, blobs, resolve, named, memo) for k, v in value["__dict__"]}
        if "__seedseq__" in value:  # a NumPy SeedSequence, rebuilt from its entropy and spawn key
            import numpy as np

            entropy, spawn_key = value["__seedseq__"]
            return np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key))
        raise WireError(f"unknown JSON object {sorted(value)[:3]}")
    return value


def encode(value, blobs: list[bytes], keep, depth: int = 0, memo: Memo | None = None):
    """Python value -> JSON value; `keep(obj)` stores an object that cannot cross and returns its handle dict.
    With `memo` (callback messages), an array the other side already holds crosses as its number."""
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
        if memo is not None:
            return memo.encode_array(value, blobs)
        blobs.append(array_to_blob(value))
        return {"__nd__": len(blobs) - 1}
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor: numbers, not the object
        return encode(value.detach().cpu().numpy(), blobs, keep, depth + 1, memo)
    if type(value).__name__ == "Figure" and type(value).__module__.startswith("matplotlib"):
        return encode(figure_data(value), blobs, keep, depth + 1, memo)
    if isinstance(value, tuple):
        encoded: dict[str, Any] = {"__tuple__": [encode(v, blobs, keep, depth + 1, memo) for v in value]}
        fields = getattr(type(value), "_fields", None)  # a named tuple (a cache, say): its names travel too
        if isinstance(fields, tuple) and len(fields) == len(value) and all(type(f) is str for f in fields):
            encoded.update(name=type(value).__name__, fields=list(fields))
        return encoded
    if isinstance(value, list):
        return [encode(v, blobs, keep, depth + 1, memo) for v in value]
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {"__dict__": [[k, encode(v, blobs, keep, depth + 1, memo)] for k, v in value.items()]}
    return keep(value)


def named_tuple_class(module, name: str, fields: tuple, fresh: bool = True):
    """The class a named tuple that crossed the wire becomes on the receiving side: `module`'s own class of that name
    when it has the same fields (so `isinstance` and attribute access behave as in that module's code), else a named
    tuple made here with those fields (None, a plain tuple, with `fresh` False or names that are not identifiers)."""
    cls = getattr(module, name, None) if module is not None else None
    if isinstance(cls, type) and issubclass(cls, tuple) and getattr(cls, "_fields", None) == fields:
        return cls
    if not fresh:
        return None
    try:
        return collections.namedtuple(name, fields)
    except (TypeError, ValueError):
        return None
