"""The check vocabulary: one check per task, shared by the public and the hidden suite through an oracle.

A topic's checks live in `autograder/public/<slug>.py` (released), one function per automatic task:

    CHECKS = Checks("<slug>")

    @CHECKS.task("<slug>.affine_backward")
    def _(ctx):
        inp = affine_inputs(ctx)                     # other shapes when ctx.hidden
        grad_parts(ctx, "affine_forward", "affine_backward", inp, ("x", "w", "b"))  # autograder/check_kit.py

    SUITE = CHECKS.suite("public", TorchOracle)     # expected values from PyTorch

and `autograder/hidden/<slug>.py` (never released) builds the hidden suite from the same checks with the reference
as oracle: `SUITE = CHECKS.suite("hidden", ReferenceOracle)`. An oracle is an object whose functions have the
same contract as the student's (`oracle.affine_forward(x, w, b) -> (out, cache)`), made per task from the context.

A part passes when its block finishes without a failed comparison. Whatever a student's code does or returns
(raises, hangs, returns None, a scalar, a list, a wrong shape, NaN, an object) fails that part only, with a
message; the next part still runs. An exception in the grader's own code (reference, oracle, check) is recorded
as a grader error on the part, never as the student's mistake.
"""
from __future__ import annotations

import contextlib
import functools
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autograder.results import Part
from autograder.client import Handle, StudentError, WorkerLost
from course_config import TOLERANCES, Task, Topic, TrainingBar
from toolkit.gradcheck import diagnose, directional_errors, norm_rel_error


class CheckFailed(Exception):
    """A comparison failed or a returned value has the wrong type; the message says where and how."""


class GraderError(Exception):
    """The grader's own code failed (reference, oracle or check): not the student's fault."""


# -- the checks of a topic and its two suites ------------------------------------------------------------------


@dataclass
class Suite:
    """The checks of one topic with an oracle: the public suite (PyTorch) or the hidden one (the reference)."""

    topic: str
    visibility: str                                      # "public" or "hidden"
    checks: dict[str, Callable]
    oracle: Callable[["Context"], Any] | None = None     # context -> oracle object for that task


@dataclass
class Checks:
    """One check function per automatic task of a topic, written once for both suites."""

    topic: str
    checks: dict[str, Callable] = field(default_factory=dict)

    def task(self, task_name: str):
        def register(fn):
            if task_name in self.checks:
                raise ValueError(f"{task_name} has two checks")
            self.checks[task_name] = fn
            return fn
        return register

    def suite(self, visibility: str, oracle: Callable[["Context"], Any] | None) -> Suite:
        """The suite for `visibility`; every automatic task of the topic must have exactly one check."""
        import course_config

        auto = {t.name for t in course_config.topic(self.topic).tasks if t.kind == "auto"}
        missing, extra = sorted(auto - set(self.checks)), sorted(set(self.checks) - auto)
        if missing or extra:
            raise ValueError(f"{self.topic} checks do not match the configuration's automatic tasks: "
                             f"missing {missing}, not configured {extra}")
        return Suite(self.topic, visibility, dict(self.checks), oracle)


def task_seed(base: int, *keys: str) -> int:
    """A reproducible 32-bit seed from a base seed and names (task, student)."""
    return zlib.crc32(":".join([str(base), *keys]).encode()) & 0xFFFFFFFF


# -- what a value returned by student code must look like -------------------------------------------------------
# A spec is "array", "number", "kept" (an object left in the worker), "any", a tuple of specs (a tuple of that
# length), a dict of specs (a dict with at least those keys), or a type name checked by `describe`.


def describe(value) -> str:
    """A short phrase for a value that crossed from the worker: what the student's code returned."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, tuple):
        inner = ", ".join(describe(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"a tuple of {len(value)} ({inner})"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))[:8]}"
    if isinstance(value, Handle):
        return f"an object of type {value.type}"
    return f"a {type(value).__name__}"


def _spec_text(spec) -> str:
    if isinstance(spec, tuple):
        return f"a tuple of {len(spec)} ({', '.join(_spec_text(s) for s in spec)})"
    if isinstance(spec, dict):
        return f"a dict with keys {sorted(spec)}"
    return {"array": "a NumPy array", "number": "a number", "kept": "an object", "any": "a value",
            "dict": "a dict", "list": "a list"}.get(spec, spec)


def check_value(value, spec, what: str) -> None:
    """Raise CheckFailed naming what came back unless `value` matches `spec` (see above)."""
    ok = True
    if spec in (None, "any", "kept"):
        return
    if spec == "array":
        ok = isinstance(value, np.ndarray)
    elif spec == "number":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or \
            (isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf")
    elif spec == "dict":
        ok = isinstance(value, dict)
    elif spec == "list":
        ok = isinstance(value, (list, tuple, np.ndarray))
    elif isinstance(spec, tuple):
        ok = isinstance(value, tuple) and len(value) == len(spec)
        if ok:
            for i, (v, s) in enumerate(zip(value, spec)):
                check_value(v, s, f"{what}[{i}]")
    elif isinstance(spec, dict):
        ok = isinstance(value, dict)
        if ok:
            for key, s in spec.items():
                if key not in value:
                    raise CheckFailed(f"{what} has no key {key!r} (keys: {sorted(map(str, value))})")
                check_value(value[key], s, f"{what}[{key!r}]")
    if not ok:
        hint = ""
        if spec == "array" and isinstance(value, tuple) and len(value) == 1:
            hint = "; return the array itself, not a 1-tuple (check for a trailing comma)"
        raise CheckFailed(f"{what} is {describe(value)}; expected {_spec_text(spec)}{hint}")


class Context:
    """What a check function sees: the student's code (through `call`), a seeded RNG, the oracle, settings, parts.

    Args:
        topic, task: configuration of what is graded.
        session: object with `call(module, target, *args, **kw)` and `getattr(module, handle, attr)`, which
            forward to the right sandboxed worker (autograder.runner.Session).
        seed: the input seed of this task (printed in feedback).
        suite: the suite being run (its visibility and oracle factory).
    """

    def __init__(self, topic: Topic, task: Task, session, seed: int, suite: Suite):
        self.topic, self.task, self.session, self.seed = topic, task, session, seed
        self.visibility = suite.visibility
        self.hidden = suite.visibility == "hidden"
        self.rng = np.random.default_rng(seed)
        self.tol = TOLERANCES
        self._oracle_factory = suite.oracle
        self._oracle = None
        self.parts: list[Part] = []
        self._failures: list[str] = []
        self.not_implemented = 0    # parts that failed because a stub raised NotImplementedError
        self.worker_errors = 0      # parts that failed because the worker hung, crashed or exited
        self.grader_errors: list[str] = []  # the grader's own exceptions (never charged to the student)
        self.figures: list[dict] = []  # {"label", "student", "expected"}: base64 PNGs for the feedback page
        self.metrics: dict[str, float] = {}  # measured values of training bars, e.g. {"net.accuracy": 0.957}

    # -- what the suite provides -------------------------------------------------------------------------------
    @property
    def oracle(self):
        """Expected values: functions with the student's contract, from PyTorch (public) or the reference (hidden)."""
        if self._oracle is None:
            if self._oracle_factory is None:
                raise GraderError(f"the {self.visibility} suite of {self.topic.slug} has no oracle")
            self._oracle = self._oracle_factory(self)
        return self._oracle

    def pick(self, public, hidden):
        """`hidden` in the hidden suite, else `public`: how checks choose other shapes and bigger runs."""
        return hidden if self.hidden else public

    def bar(self, model: str) -> TrainingBar:
        """The training bar of `model` for this suite (the public suite runs the short public variant)."""
        bar = self.topic.bar(model)
        return bar.public if not self.hidden and bar.public is not None else bar

    @property
    def device(self) -> str:
        """Where the student's torch code runs ("cpu", or "cuda" under `dlcore grade --device cuda`). The torch
        worker makes it torch's default device and every value comes back as NumPy, compared in float64 here, so
        checks need not move anything; they may read it to report or to size a run."""
        return getattr(self.session, "device", None) or "cpu"

    def metric(self, name: str, value: float) -> None:
        """Record a measured value (e.g. a trained model's accuracy) in the result, for calibration and reports."""
        self.metrics[name] = float(value)

    # -- student code -------------------------------------------------------------------------------------------
    def call(self, name: str, *args, module: str | None = None, returns=None, **kwargs):
        """Call `name` (a function or class) of the task's module, or of `module`, in the worker; with `returns`,
        the value must match that spec (see `check_value`) or the part fails naming what came back."""
        value = self.session.call(module or self.task.module, name, *args, **kwargs)
        if returns is not None:  # with echo, the value is (result, echoed arguments)
            check_value(value[0] if kwargs.get("echo") else value, returns, f"the value returned by {name}")
        return value

    def method(self, handle, name: str, *args, module: str | None = None, returns=None, **kwargs):
        """Call a method of an object kept in the worker."""
        if not isinstance(handle, Handle):
            raise CheckFailed(f"expected an object with a .{name}() method, got {describe(handle)}")
        value = self.session.call(module or self.task.module, (handle, name), *args, **kwargs)
        if returns is not None:
            check_value(value, returns, f"the value returned by .{name}()")
        return value

    def attr(self, handle, name: str, module: str | None = None, returns=None):
        if not isinstance(handle, Handle):
            raise CheckFailed(f"expected an object with an attribute .{name}, got {describe(handle)}")
        value = self.session.getattr(module or self.task.module, handle, name)
        if returns is not None:
            check_value(value, returns, f".{name}")
        return value

    # -- scoring ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def part(self, label: str, weight: float = 1.0):
        """Score the enclosed block as one part: it passes if nothing in it fails."""
        self._failures = []
        grader_error = ""
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
        except Exception as exc:  # the grader's own bug: say so, never charge the student with it
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" at {frames[-1].filename.rsplit('/', 2)[-1]}:{frames[-1].lineno}" if frames else ""
            grader_error = f"{type(exc).__name__}: {exc}{where}"
            self.grader_errors.append(f"[{label}] {grader_error}")
        msg = "; ".join(dict.fromkeys(self._failures))
        if grader_error:
            msg = f"grader error (not your mistake; the course staff will regrade): {grader_error}"
        self.parts.append(Part(label, float(weight), not self._failures and not grader_error, msg,
                               grader_error=bool(grader_error)))

    def fail(self, message: str):
        """Record a failure and stop the current part."""
        raise CheckFailed(message)

    def expect(self, ok: bool, message: str) -> bool:
        """Record a failure if not ok, but let the part go on."""
        if not ok:
            self._failures.append(message)
        return bool(ok)

    def array(self, name: str, got, shape: tuple | None = None) -> np.ndarray:
        """`got` as a float64 array after type, dtype and shape checks (no broadcasting: (1, M) is not (M,)).

        Rule: inputs are float64, so floating results must be float64 too; float32 rounding (about 1e-7
        relative) is above the course tolerances, so a float32 result fails with that reason.
        """
        if not isinstance(got, np.ndarray):
            hint = "; return the array itself, not a 1-tuple" if isinstance(got, tuple) and len(got) == 1 else ""
            self.fail(f"{name} should be a NumPy array, got {describe(got)}{hint}")
        if got.dtype.kind == "f" and got.dtype != np.float64:
            self.fail(f"{name} is {got.dtype}; the inputs are float64, so compute in float64 (float32 rounding "
                      f"is larger than the tolerance): do not cast to float32")
        if got.dtype.kind not in "biuf":
            self.fail(f"{name} has dtype {got.dtype}; expected float64 numbers")
        if shape is not None and got.shape != tuple(shape):
            hint = " (transposed?)" if got.shape == tuple(shape)[::-1] else ""
            self.fail(f"{name} has shape {got.shape}, expected {tuple(shape)}{hint}")
        return got.astype(np.float64)

    def scalar(self, name: str, got) -> float:
        if isinstance(got, np.ndarray) and got.size == 1 and got.dtype.kind in "biuf":
            got = got.reshape(()).item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            self.fail(f"{name} should be a number, got {describe(got)}")
        return float(got)

    def compare(self, name: str, got, expected, rtol: float | None = None) -> bool:
        """Values must match: max |got - expected| / max(1, |expected|) <= rtol (forward_rtol by default)."""
        rtol = self.tol.forward_rtol if rtol is None else rtol
        expected = np.asarray(expected, dtype=np.float64)
        got = self.array(name, got, expected.shape) if expected.ndim else np.asarray(self.scalar(name, got))
        if not np.all(np.isfinite(got)) and np.all(np.isfinite(expected)):
            return self.expect(False, diagnose(name, got, expected))
        with np.errstate(invalid="ignore"):
            err = np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0)
        return self.expect(bool(err <= rtol), diagnose(name, got, expected, rtol=rtol) + f" (error {err:.2e} > {rtol:g})")

    def compare_grad(self, name: str, got, expected, rtol: float | None = None) -> bool:
        """A gradient must match: norm-relative error <= rtol (grad_rtol by default)."""
        rtol = self.tol.grad_rtol if rtol is None else rtol
        expected = np.asarray(expected, dtype=np.float64)
        got = self.array(name, got, expected.shape)
        err = norm_rel_error(got, expected) if np.all(np.isfinite(got)) else np.inf
        return self.expect(err <= rtol, diagnose(name, got, expected, rtol=rtol, gradient=True)
                           + f" (relative error {err:.2e} > {rtol:g})")

    def figure(self, name: str, got, expected_fig=None) -> dict:
        """A figure returned by student code, as data (see figures.figure_data, plus "panels": the axes that are not
        colorbars); its picture, and that of the reference figure `expected_fig` (a matplotlib Figure made here),
        go to the feedback page."""
        if not (isinstance(got, dict) and got.get("figure") is True and isinstance(got.get("axes"), list)):
            self.fail(f"{name} should return a matplotlib Figure, got {describe(got)}")
        # the plotting panels: every axes except colorbars' own (a colorbar never counts as an extra panel)
        got["panels"] = [_tidy_axes(a) for a in got["axes"] if isinstance(a, dict) and not a.get("colorbar")]
        entry = {"label": name, "student": _b64(got.get("png")), "expected": ""}
        if expected_fig is not None:
            from autograder.figures import figure_data

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


_TEXT_KEYS = ("title", "xlabel", "ylabel", "xscale", "yscale")
_LIST_KEYS = ("lines", "legend", "images", "scatter", "texts", "xticklabels", "yticklabels")


def _tidy_axes(ax: dict) -> dict:
    """An axes entry of a student's figure with its text and list fields of the documented types (an extractor
    that could not read an artist leaves None), so checks read them without type tests."""
    for key in _TEXT_KEYS:
        if not isinstance(ax.get(key), str):
            ax[key] = ""
    for key in _LIST_KEYS:
        if not isinstance(ax.get(key), list):
            ax[key] = []
    if not isinstance(ax.get("bars"), np.ndarray):
        ax["bars"] = np.zeros((0, 3))
    return ax


def _b64(png) -> str:
    import base64

    if not isinstance(png, np.ndarray):
        return ""
    return base64.b64encode(np.asarray(png, dtype=np.uint8).tobytes()).decode()


# -- shared check shapes ---------------------------------------------------------------------------------------


def forward_part(ctx: Context, name: str, inputs: dict, expected, label: str = "out", weight: float = 1.0,
                 rtol: float | None = None) -> None:
    """A part: the student's `name(*inputs)` returns (out, cache) with out equal to `expected`."""
    with ctx.part(label, weight):
        out, _ = ctx.call(name, *inputs.values(), keep=(1,), returns=("array", "kept"))
        ctx.compare("out", out, expected, rtol)


def train_to_bar(ctx: Context, model: str, run: Callable[[TrainingBar, dict], Any],
                 label: str | None = None, weight: float = 1.0) -> None:
    """A part: train the student's model as `run(bar, data)` (in the worker) and compare the returned metric value
    with the bar of `model` (public or hidden run). `data` is the bar's dataset subset, loaded here once."""
    bar = ctx.bar(model)
    with ctx.part(label or f"{bar.describe()} on {bar.dataset or 'generated data'} ({bar.train_size:,} training "
                           f"examples)", weight):
        value = run(bar, load_bar_data(bar))
        value = float(value)
        ctx.metric(f"{model}.{bar.metric}", value)
        ctx.expect(bar.passes(value), f"{bar.metric} {value:.4f} does not reach the bar {bar.describe()} "
                                      f"({bar.train_size:,} training examples, seed {ctx.seed})")


@functools.lru_cache(maxsize=8)
def _images(name: str, train: int, test: int, flatten: bool, channels_first: bool):
    from toolkit.data import load_images

    return load_images(name, train, test, flatten=flatten, channels_first=channels_first)


def load_bar_data(bar: TrainingBar, flatten: bool = True, channels_first: bool = False):
    """The bar's dataset subset: (X_train, y_train, X_test, y_test) for image sets (cached per process), the text
    corpus (file name -> text) for text sets, or None for synthetic data (dataset "": the check makes it)."""
    import course_config

    if not bar.dataset:
        return None
    if course_config.DATASETS[bar.dataset].kind == "text":
        from toolkit.data import load_text

        return load_text(bar.dataset)
    return _images(bar.dataset, bar.train_size, bar.test_size, flatten, channels_first)


def accuracy(scores, labels) -> float:
    """Fraction of rows whose highest score is the true label (NaN scores count as wrong)."""
    if not isinstance(scores, np.ndarray) or scores.ndim != 2 or scores.shape[0] != len(labels):
        raise CheckFailed(f"the scores are {describe(scores)}; expected an array of shape ({len(labels)}, C)")
    scores = scores.astype(np.float64)
    pred = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1)
    return float(np.mean(pred == labels))
