"""The check kit: one helper per job that the topics' checks repeat (R16), so a topic's public file is its oracle
plus a table of tasks.

- `grad_parts`: a backward pass on the cache of the student's own forward, against the oracle's gradients and
  directional numerical derivatives (several outputs, gradients grouped into parts, another oracle pair).
- `fit`: build the student's model and train it in the worker, calling both by keyword with the training bar's
  settings (`TrainingBar.settings`, named as the student's arguments); `checks.train_to_bar` scores it.
- `one_panel`, `image_panels`: the axes of a student's figure that a check reads.
- `speed_part`: the student's time in the worker against the oracle's, at most `Task.speed_limit` times.

Tolerances and speed limits come from the configuration (`ctx.tol`, `ctx.task`), never from the checks.
"""
from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

from autograder.checks import CheckFailed, Context, describe
from autograder.client import Handle
from course_config import TrainingBar

# -- gradients ---------------------------------------------------------------------------------------------------


def grad_parts(ctx: Context, forward: str, backward: str, inputs: dict, wrt: tuple[str, ...], *,
               outs: tuple[str, ...] = ("out",), groups: dict[str, tuple[str, ...]] | None = None,
               weight: float = 1.0, oracle: tuple[str, str] | None = None) -> None:
    """Parts for the student's `backward(*douts, cache)`, the cache made by the student's `forward(*inputs)`, which
    returns one array per name in `outs`, then the cache; the gradients come back in the order of `wrt`.

    Each gradient must have its input's shape, equal the oracle's (its backward on its own cache), and agree with
    directional numerical derivatives of the oracle's forward (its outputs, flattened, as a function of that part's
    inputs, the others held fixed). `groups` maps part labels to the gradients each part holds (default: one part
    "d<name>" per gradient); `oracle` names the oracle's (forward, backward) when they differ from the student's.
    Student code runs once, before the parts: a failure there fails every part with the same message.
    """
    ref_fwd, ref_bwd = (getattr(ctx.oracle, name) for name in (oracle or (forward, backward)))
    n_out = len(outs)
    # set together by the try below; where it fails, each part re-raises `problem` before using them
    grads: Any = None
    want: Any = None
    douts: Any = None
    problem: Exception | None = None
    try:
        got = ctx.call(forward, *inputs.values(), keep=(n_out,), returns=("array",) * n_out + ("kept",))
        ref = ref_fwd(**inputs)
        for name, g, r in zip(outs, got, ref):
            if g.shape != np.shape(r):
                raise CheckFailed(f"{forward} returned {name} of shape {g.shape}, expected {np.shape(r)}; "
                                  f"fix {forward} first")
        douts = [ctx.rng.standard_normal(np.shape(r)) for r in ref[:n_out]]
        grads = ctx.call(backward, *douts, got[n_out], returns=("array",) * len(wrt) if len(wrt) > 1 else "array")
        grads = grads if len(wrt) > 1 else (grads,)
        want = ref_bwd(*douts, ref[n_out])
        want = dict(zip(wrt, want if isinstance(want, tuple) else (want,)))
    except Exception as exc:  # noqa: BLE001 -- the student's failure or a grader bug: each part reports it
        problem = exc

    def oracle_out(**changed):  # the oracle's outputs, flattened into one vector, as a function of some inputs
        fixed = {k: copy.deepcopy(v) for k, v in inputs.items() if k not in changed}  # it may write to them
        return np.concatenate([np.ravel(o) for o in ref_fwd(**fixed, **changed)[:n_out]])

    for label, names in (groups or {"d" + name: (name,) for name in wrt}).items():
        with ctx.part(label, weight):
            if problem is not None:
                raise problem
            checked = {}
            for name in names:
                checked[name] = ctx.array("d" + name, grads[wrt.index(name)], np.shape(inputs[name]))
                ctx.compare_grad("d" + name, checked[name], want[name])
            ctx.gradcheck(oracle_out, {k: inputs[k] for k in names}, checked,
                          np.concatenate([np.ravel(d) for d in douts]))


# -- training ----------------------------------------------------------------------------------------------------


def fit(ctx: Context, bar: TrainingBar, model: str, trainer: str, data: tuple, *, module: str | None = None,
        model_keys: tuple[str, ...], own_keys: tuple[str, ...] = (), model_kw: dict | None = None,
        train_kw: dict | None = None) -> Handle:
    """The student's `model` built and trained in the worker, both called by keyword: `model(**model_kw, **the
    settings named in model_keys)`, then `trainer(handle, *data, **train_kw, **the other settings)`, less
    `own_keys` (settings the check uses itself), within the bar's time budget, in `module` (default: the task's).
    Returns the model's handle."""
    settings = bar.settings
    handle = ctx.call(model, module=module, keep=True, **(model_kw or {}),
                      **{k: settings[k] for k in model_keys if k in settings})
    rest = {k: v for k, v in settings.items() if k not in model_keys and k not in own_keys}
    ctx.call(trainer, handle, *data, module=module, timeout=bar.time_budget_s, **(train_kw or {}), **rest)
    return handle


# -- figures -----------------------------------------------------------------------------------------------------


def one_panel(ctx: Context, fig: dict, what: str = "") -> dict:
    """The single plotting axes of a student's figure (colorbars do not count); `what` says what it should show."""
    if len(fig["panels"]) != 1:
        ctx.fail(f"expected one axes{' with ' + what if what else ''}, found {len(fig['panels'])}")
    return fig["panels"][0]


def image_panels(ctx: Context, fig: dict, n: int, what: str) -> list[dict]:
    """The axes that show an image, in grid order (row-major; creation order where the grid is unknown): exactly
    n, one readable image each. Empty axes (an unused corner of the grid) are ignored."""
    panels = [p for p in fig["panels"] if p["images"]]
    if len(panels) != n:
        ctx.fail(f"the figure shows images in {len(panels)} axes; expected one per {what}: {n}")
    if all(isinstance(p.get("grid"), dict) for p in panels):
        order = sorted(range(n), key=lambda i: (panels[i]["grid"].get("row", 0), panels[i]["grid"].get("col", 0), i))
        panels = [panels[i] for i in order]
    for i, p in enumerate(panels):
        if len(p["images"]) != 1 or not isinstance(p["images"][0], dict) or p["images"][0].get("array") is None:
            ctx.fail(f"the axes of {what} {i} should hold one readable image, found {len(p['images'])}")
    return panels


# -- speed -------------------------------------------------------------------------------------------------------


def _fastest(fn, tries: int) -> float:
    best = np.inf
    for _ in range(tries):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def kept_copies(ctx: Context, like, *arrays) -> list:
    """Copies of `arrays` kept in the student's worker, so timed calls move no data. `like` is an array that the
    student's code returned and the worker kept; its class's `copy` (NumPy's ndarray.copy) makes the copies."""
    if not isinstance(like, Handle) or like.type != "ndarray":
        ctx.fail(f"expected a NumPy array, got {describe(like)}")
    ndarray = ctx.attr(like, "__class__")
    return [ctx.method(ndarray, "copy", a, keep=True) for a in arrays]


def speed_part(ctx: Context, name: str, student_call, oracle_call, probe, size: str, hint: str) -> None:
    """Within a part: the student's time in the worker (`student_call`, minus the round trip of `probe`, a call that
    runs no student code and moves no arrays) at most `ctx.task.speed_limit` times the oracle's here: the fastest of
    5 oracle calls against the fastest of 3 student calls (1 when the first is hopelessly slow, to save time)."""
    limit = ctx.task.speed_limit
    if limit is None:  # a configuration gap, named before any timing (a grader error, not the student's)
        raise ValueError(f"{ctx.task.name} is timed but has no speed_limit in its topic's configuration")
    oracle_s = _fastest(oracle_call, 5)
    round_trip = _fastest(probe, 5)
    best = np.inf
    for _ in range(3):
        best = min(best, _fastest(student_call, 1))
        ratio = max(best - round_trip, 0.0) / oracle_s
        if ratio > 4 * limit:
            break
    ctx.metric(f"{name}.time_ratio", ratio)
    oracle = ctx.pick("PyTorch's", "reference's")
    within = ratio <= limit
    ctx.expect(within, f"{name} took {1e3 * (best - round_trip):.1f} ms on {size}, {ratio:.0f} times "
                       f"the {oracle} {1e3 * oracle_s:.2f} ms (the limit is {limit:g} times): {hint}")
