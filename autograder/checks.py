"""The check vocabulary shared by the public and hidden suites.

A suite maps task names to check functions. A check function receives a Context: it calls student code
through the context (which forwards to the sandboxed worker), and scores named parts:

    @SUITE.check("feedforward.affine_backward")
    def _(ctx):
        out, cache = ctx.call("affine_forward", x, w, b, keep=(1,))
        with ctx.part("dx", 1):
            ctx.compare_grad("dx", got, expected)

A part passes when its block finishes without a failed comparison. Student exceptions, timeouts and crashes
inside a part fail that part only, with a readable message, and the next part still runs.
"""
from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from autograder.results import Part
from autograder.sandbox import StudentError, WorkerLost
from course_config import TOLERANCES, Task, Topic
from toolkit.gradcheck import diagnose, directional_errors, norm_rel_error


class CheckFailed(Exception):
    """A comparison failed; the message says where and how."""


@dataclass
class Suite:
    """Check functions of one topic, public or hidden."""

    topic: str
    visibility: str                                      # "public" or "hidden"
    checks: dict[str, Callable] = field(default_factory=dict)

    def check(self, task_name: str):
        def register(fn):
            if task_name in self.checks:
                raise ValueError(f"{task_name} registered twice in the {self.visibility} suite")
            self.checks[task_name] = fn
            return fn
        return register


def task_seed(base: int, *keys: str) -> int:
    """A reproducible 32-bit seed from a base seed and names (task, student)."""
    return zlib.crc32(":".join([str(base), *keys]).encode()) & 0xFFFFFFFF


class Context:
    """What a check function sees: the student's code (through `call`), a seeded RNG, tolerances, parts.

    Args:
        topic, task: configuration of what is graded.
        session: object with `call(module, target, *args, **kw)` and `getattr(module, handle, attr)`, which
            forward to the right sandboxed worker (autograder.runner.Session).
        seed: the input seed of this task (printed in feedback).
        reference: module stem -> reference module (hidden suite only; None in the public suite).
    """

    def __init__(self, topic: Topic, task: Task, session, seed: int, reference: dict | None = None):
        self.topic, self.task, self.session, self.seed = topic, task, session, seed
        self.rng = np.random.default_rng(seed)
        self.tol = TOLERANCES
        self.reference = reference
        self.parts: list[Part] = []
        self._failures: list[str] = []
        self.not_implemented = 0    # parts that failed because a stub raised NotImplementedError
        self.worker_errors = 0      # parts that failed because the worker hung, crashed or exited
        self.figures: list[dict] = []  # {"label", "student", "expected"}: base64 PNGs for the feedback page

    # -- student code -------------------------------------------------------------------------------
    def call(self, name: str, *args, module: str | None = None, **kwargs):
        """Call `name` (a function or class) of the task's module, or of `module`, in the worker."""
        return self.session.call(module or self.task.module, name, *args, **kwargs)

    def method(self, handle, name: str, *args, module: str | None = None, **kwargs):
        """Call a method of an object kept in the worker."""
        return self.session.call(module or self.task.module, (handle, name), *args, **kwargs)

    def attr(self, handle, name: str, module: str | None = None):
        return self.session.getattr(module or self.task.module, handle, name)

    def ref(self, module: str | None = None):
        """The reference module (hidden suite); raises if the suite has none."""
        if self.reference is None:
            raise RuntimeError("the public suite has no reference implementation")
        return self.reference[module or self.task.module]

    # -- scoring ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def part(self, label: str, weight: float = 1.0):
        """Score the enclosed block as one part: it passes if nothing in it fails."""
        self._failures = []
        try:
            yield
        except CheckFailed as exc:
            self._failures.append(str(exc))
        except StudentError as exc:
            if exc.not_implemented:
                self.not_implemented += 1
                self._failures.append(f"not attempted: {exc.info.get('message') or 'NotImplementedError'}")
            else:
                self._failures.append(exc.explain())
        except WorkerLost as exc:
            self.worker_errors += 1
            self._failures.append(f"your code {exc.message}")
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            # raised here while reading a malformed return value (a dict without "W1", a 2-tuple, ...)
            self._failures.append(f"the returned value could not be checked ({type(exc).__name__}: {exc})")
        msg = "; ".join(dict.fromkeys(self._failures))
        self.parts.append(Part(label, float(weight), not self._failures, msg))

    def fail(self, message: str):
        """Record a failure and stop the current part."""
        raise CheckFailed(message)

    def expect(self, ok: bool, message: str) -> bool:
        """Record a failure if not ok, but let the part go on."""
        if not ok:
            self._failures.append(message)
        return bool(ok)

    def array(self, name: str, got, shape: tuple | None = None) -> np.ndarray:
        """`got` as a float64 array after type and shape checks (no broadcasting: (1, M) is not (M,))."""
        if not isinstance(got, np.ndarray):
            self.fail(f"{name} should be a NumPy array, got {type(got).__name__}")
        if shape is not None and got.shape != tuple(shape):
            hint = " (transposed?)" if got.shape == tuple(shape)[::-1] else ""
            self.fail(f"{name} has shape {got.shape}, expected {tuple(shape)}{hint}")
        return got.astype(np.float64)

    def scalar(self, name: str, got) -> float:
        if isinstance(got, np.ndarray) and got.size == 1:
            got = got.reshape(()).item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            self.fail(f"{name} should be a number, got {type(got).__name__}")
        return float(got)

    def compare(self, name: str, got, expected, rtol: float | None = None) -> bool:
        """Values must match: max |got - expected| / max(1, |expected|) <= rtol (forward_rtol by default)."""
        rtol = self.tol.forward_rtol if rtol is None else rtol
        expected = np.asarray(expected, dtype=np.float64)
        got = self.array(name, got, expected.shape) if expected.ndim else np.asarray(self.scalar(name, got))
        if not np.all(np.isfinite(got)) and np.all(np.isfinite(expected)):
            return self.expect(False, diagnose(name, got, expected))
        err = np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0)
        return self.expect(bool(err <= rtol), diagnose(name, got, expected) + f" (error {err:.2e} > {rtol:g})")

    def compare_grad(self, name: str, got, expected, rtol: float | None = None) -> bool:
        """A gradient must match: norm-relative error <= rtol (grad_rtol by default)."""
        rtol = self.tol.grad_rtol if rtol is None else rtol
        expected = np.asarray(expected, dtype=np.float64)
        got = self.array(name, got, expected.shape)
        err = norm_rel_error(got, expected) if np.all(np.isfinite(got)) else np.inf
        return self.expect(err <= rtol, diagnose(name, got, expected) + f" (relative error {err:.2e} > {rtol:g})")

    def figure(self, name: str, got, expected_fig=None) -> dict:
        """A figure returned by student code, as data (see worker.figure_data); its picture, and that of the
        reference figure `expected_fig` (a matplotlib Figure made here), go to the feedback page."""
        if not (isinstance(got, dict) and got.get("figure") is True and isinstance(got.get("axes"), list)):
            self.fail(f"{name} should return a matplotlib Figure, got {type(got).__name__}")
        entry = {"label": name, "student": _b64(got.get("png")), "expected": ""}
        if expected_fig is not None:
            from autograder.worker import figure_data

            entry["expected"] = _b64(figure_data(expected_fig)["png"])
        self.figures.append(entry)
        return got

    def gradcheck(self, forward: Callable, inputs: dict, grads: dict, dout) -> None:
        """Directional numerical gradient check of `grads` against `forward(**inputs)`; names the failing tensors."""
        errors = directional_errors(forward, inputs, grads, dout, self.rng, self.tol.grad_h,
                                    self.tol.grad_directions)
        for name, err in errors.items():
            self.expect(err <= self.tol.grad_rtol,
                        f"d{name} disagrees with the numerical gradient (directional error {err:.2e} > "
                        f"{self.tol.grad_rtol:g}, seed {self.seed})")


def _b64(png) -> str:
    import base64

    return base64.b64encode(np.asarray(png, dtype=np.uint8).tobytes()).decode() if png is not None else ""


def student_forward(ctx: Context, name: str) -> Callable:
    """f(**inputs) -> out running the student's `name` forward in the worker (positional, in inputs' order)."""
    def f(**inputs):
        out = ctx.call(name, *inputs.values(), keep=(1,))
        return np.asarray(out[0], dtype=np.float64)
    return f


def forward_part(ctx: Context, name: str, inputs: dict, expected, label: str = "out", weight: float = 1.0,
                 rtol: float | None = None) -> None:
    """A part: the student's `name(*inputs)` returns (out, cache) with out equal to `expected`."""
    with ctx.part(label, weight):
        result = ctx.call(name, *inputs.values(), keep=(1,))
        if not isinstance(result, tuple) or len(result) != 2:
            ctx.fail(f"{name} should return (out, cache), got {type(result).__name__}")
        ctx.compare("out", result[0], expected, rtol)


def backward_parts(ctx: Context, forward: str, backward: str, inputs: dict, expected: Callable | None,
                   numeric_forward: Callable, grad_names: tuple[str, ...] | None = None,
                   weights: dict | None = None) -> None:
    """One part per gradient of `backward(dout, cache)`, for a cache made by the student's `forward`.

    Each returned gradient must have its input's shape, match `expected(dout)[name]` (when given) and pass a
    directional numerical check against `numeric_forward(**inputs)` (a reference or the student's forward).
    """
    grad_names = grad_names or tuple(inputs)
    dout = problem = grads = None
    try:
        out, cache = ctx.call(forward, *inputs.values(), keep=(1,))
        dout = ctx.rng.standard_normal(np.shape(out))
        grads = ctx.call(backward, dout, cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
    except (StudentError, WorkerLost) as exc:
        problem = exc
    except (TypeError, ValueError):  # the forward did not return an (out, cache) pair
        problem = CheckFailed(f"{forward} should return (out, cache)")
    want = expected(dout) if expected is not None and problem is None else None
    for i, name in enumerate(grad_names):
        with ctx.part("d" + name, (weights or {}).get(name, 1.0)):
            if problem is not None:
                raise problem
            if len(grads) != len(grad_names):
                ctx.fail(f"{backward} should return {len(grad_names)} gradients "
                         f"({', '.join('d' + g for g in grad_names)}), got {len(grads)}")
            got = ctx.array("d" + name, grads[i], np.shape(inputs[name]))
            if want is not None:
                ctx.compare_grad("d" + name, got, want[name])
            ctx.gradcheck(numeric_forward, inputs, {name: got}, dout)
