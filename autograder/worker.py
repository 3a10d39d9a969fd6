"""The sandboxed worker: imports a student's modules and runs the calls the checker asks for (the RPC server).

It runs inside the sandbox, never in the process that decides a score, started by autograder.client as
`python -I -B -c BOOT ENGINE IN_FD OUT_FD ROOT [BANNED,...] [OUTPUT_LIMIT]`, where ENGINE is a folder holding only
the transport modules (this one and the autograder modules it imports: wire, figures, capture, import_policy;
stdlib + NumPy, matplotlib only to turn a returned figure into data). The sandbox shows it nothing else of the
course. Requests and replies are wire messages (autograder.wire); the student's prints come back with each reply
(autograder.capture); NumPy workers refuse banned packages (autograder.import_policy).

For isolated scoring the grader may replace some of the student's functions by proxies (op "patch"): a proxy's
call sends {"callback": name, "args", "kwargs"} to the grader mid-call and waits for the reference's result. A
proxy called with a live object of the student's (a model, a function: something that would cross as a handle) runs
the student's own function instead, since the reference cannot use an object that stays in the sandbox; it tells
the grader once per function ({"callback": name, "unreplaced": true}), so the score's note can say so.
"""
from __future__ import annotations

import os
import sys
import traceback

from autograder.capture import Capture
from autograder.import_policy import USED_BANNED, BanImports, Standin
from autograder.wire import Memo, WireError, decode, encode, named_tuple_class, read_message, write_message


class ParentObject:
    """An object the grader kept on its side during a callback (the reference's cache, say): opaque here."""

    def __init__(self, n: int):
        self.n = n


class WorkerServer:
    """Answers the grader's requests (op "import", "call", "getattr", "patch", ...) until it says "exit"; objects
    that cannot cross stay here behind handles."""

    def __init__(self, fd_in: int, fd_out: int, root: str, banned: set[str]):
        self.fd_in, self.fd_out, self.root = fd_in, fd_out, os.path.realpath(root)
        self.objects: dict[int, object] = {}
        self.next_handle = 1
        self.banned = banned
        self.memo = Memo()  # the blobs of recent callback messages (see autograder.wire.Memo)

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
        unreplaced: list[bool] = []  # [True] once the grader has been told that this function kept the student's code

        def keep_live(obj, live):
            handle = worker.keep(obj)
            if not isinstance(obj, ParentObject):
                live.append(handle["__h__"])
            return handle

        def reference(*args, **kwargs):  # the grader runs the reference and sends back only its result
            blobs: list[bytes] = []
            live: list[int] = []  # handles of the student's own objects among the arguments
            memo = worker.memo
            try:
                request = {"callback": name,
                           "args": [encode(a, blobs, lambda o: keep_live(o, live), memo=memo) for a in args],
                           "kwargs": encode(kwargs, blobs, lambda o: keep_live(o, live), memo=memo)}
            except BaseException:
                memo.pending = []
                raise
            if live:  # e.g. a training loop given the student's model: the reference cannot drive a sandbox object
                memo.pending = []
                for n in live:
                    worker.objects.pop(n, None)
                if not unreplaced:
                    write_message(worker.fd_out, {"callback": name, "unreplaced": True}, [])
                    read_message(worker.fd_in)
                    unreplaced.append(True)
                return original(*args, **kwargs)
            write_message(worker.fd_out, request, blobs)
            memo.commit(blobs)
            reply, reply_blobs = read_message(worker.fd_in)
            try:
                if not reply.get("ok"):
                    raise RuntimeError(f"the grader's reference {name} failed on these arguments: "
                                       f"{reply.get('error')}")
                return decode(reply.get("value"), reply_blobs, worker.resolve,
                              lambda cls_name, fields: named_tuple_class(sys.modules.get(module_name), cls_name,
                                                                         fields), memo)
            finally:
                memo.commit(reply_blobs)

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
                if m.split(".")[0] in self.banned and not isinstance(mod, Standin)}
        return {"value": sorted({n.split(".")[0] for n in USED_BANNED | real})}, []

    def serve(self, capture: Capture, ban: BanImports | None = None) -> None:
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
    capture = Capture(output_limit)  # from here on fds 1 and 2 are the capture pipe, never the wire
    import numpy  # noqa: F401  (imported before the student's folder joins sys.path: no shadowing)

    ban = BanImports(banned) if banned else None
    if ban is not None:
        sys.meta_path.insert(0, ban)
    sys.path.insert(0, root)
    WorkerServer(fd_in, fd_out, root, banned).serve(capture, ban)
    os._exit(0)  # skip atexit handlers a submission may have registered

