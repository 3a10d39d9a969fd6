"""The checks of topic 3 (cnn), one per task, and its public suite (`dlcore check cnn`).

Expected values come from `ctx.oracle`: PyTorch in float64 here (F.conv2d, F.max_pool2d, F.avg_pool2d and
autograd; never the reference solution), the reference solution in the hidden suite (autograder/hidden/cnn.py),
which runs the same checks on other sizes, per-student inputs and the full training runs.

Each shape that catches a classic bug is its own part: pad 0 (where a `dx_pad[:, :, pad:-pad, pad:-pad]` crop is
empty), stride 2 with a non-square input and a kernel larger than the stride, a stride that leaves rows out,
overlapping pooling windows (stride < window), non-square windows, N = 1 and C = 1. Naive functions are graded on
such tiny shapes only. Max-pool inputs are tie-free (a permutation), except in the part about ties, which accepts
any split of a window's gradient among its tied maxima (the course's rule, the first maximum, is one of them).

The fast functions are also graded on a realistic size, against the naive result, and timed: the student's call,
with its inputs and outputs kept in the worker so that no data crosses, minus the worker's round trip, may take at
most the task's `speed_limit` (course_config) times the oracle's time on the same input, measured in the same run:
the reference's fast layer in the hidden suite, and PyTorch's conv / pool (float64, autograd for the backward pass)
in this public suite. On these sizes (measured on the 2-core development machine, quiet and loaded) a loop over
output pixels is 60-200 times slower than the oracle for conv and 70-1,000 times for max pooling; honest fast layers
are 1-13 times for conv (CS231n's index-array im2col with np.add.at: 6-13) and 1-27 times for pooling (CS231n's
im2col pooling: 26-27; the reference's strided maxima are unusually fast), hence the two limits.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from autograder.check_kit import fit, grad_parts, image_panels, kept_copies, speed_part
from autograder.checks import Checks, accuracy, describe, forward_part, train_to_bar
from autograder.client import StudentError
from toolkit.parity import torch_pair, torch_reference

CHECKS = Checks("cnn")

# Timed sizes: many pixels and few channels, so a loop over pixels is 60+ times slower than the reference, and
# enough work (several ms) that the noise of a loaded machine's process switches stays small beside it.
TIMED_CONV = (2, 3, 256, 256, 4, 3, 3, 1, 1)  # N, C, H, W, F, HH, WW, stride, pad: 65,536 output pixels
TIMED_POOL = (1, 2, 512, 512, 2, 2, 2)  # N, C, H, W, PH, PW, stride: 131,072 output values
SCORE_BATCH = 500  # test images scored per call: a CNN forward of 2,000 images would hold ~1 GB of im2col columns

# -- the oracle: PyTorch with the reference's contract -----------------------------------------------------------


def _conv(x, w, b, conv_param):
    return F.conv2d(x, w, b, stride=conv_param["stride"], padding=conv_param["pad"])


def _max_pool(x, pool_param):
    return F.max_pool2d(x, (pool_param["pool_height"], pool_param["pool_width"]), pool_param["stride"])


def _avg_pool(x, pool_param):
    return F.avg_pool2d(x, (pool_param["pool_height"], pool_param["pool_width"]), pool_param["stride"])


def _residual(x, w1, b1, w2, b2, conv_param):
    return torch.relu(_conv(torch.relu(_conv(x, w1, b1, conv_param)), w2, b2, conv_param) + x)


def torch_tiny_cnn(params, reg, X, y=None):
    """The tiny CNN's scores, or (loss, grads), with torch.autograd (float64): conv - relu - 2x2 max pool twice
    ("same" padding), affine, mean cross-entropy plus 0.5 * reg * (||W1||^2 + ||W2||^2 + ||W3||^2)."""
    pad = (np.shape(params["W1"])[2] - 1) // 2

    def scores(W1, b1, W2, b2, W3, b3):
        h = F.max_pool2d(torch.relu(F.conv2d(torch.tensor(X), W1, b1, padding=pad)), 2, 2)
        h = F.max_pool2d(torch.relu(F.conv2d(h, W2, b2, padding=pad)), 2, 2)
        return h.flatten(1) @ W3 + b3

    p = {k: params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")}
    if y is None:
        return torch_reference(scores, p, None)[0]

    def loss(W1, b1, W2, b2, W3, b3):
        penalty = W1.pow(2).sum() + W2.pow(2).sum() + W3.pow(2).sum()
        return F.cross_entropy(scores(W1, b1, W2, b2, W3, b3), torch.tensor(y)) + 0.5 * reg * penalty

    value, grads = torch_reference(loss, p, 1.0)
    return float(value), grads


class TorchOracle:
    """Expected values from PyTorch with the contract of solutions/cnn (layers, and the tiny CNN's loss on given
    parameters). No reference figures: the figure checks test the documented mapping instead."""

    plot_filters = plot_feature_maps = None
    conv_forward_naive, conv_backward_naive = map(staticmethod, torch_pair(_conv))
    conv_forward_fast, conv_backward_fast = conv_forward_naive, conv_backward_naive
    max_pool_forward_naive, max_pool_backward_naive = map(staticmethod, torch_pair(_max_pool))
    max_pool_forward_fast, max_pool_backward_fast = max_pool_forward_naive, max_pool_backward_naive
    avg_pool_forward, avg_pool_backward = map(staticmethod, torch_pair(_avg_pool))
    residual_block_forward, residual_block_backward = map(staticmethod, torch_pair(_residual))
    tiny_cnn_loss = staticmethod(torch_tiny_cnn)

    def __init__(self, ctx):
        pass

    @staticmethod
    def conv_output_shape(H, W, HH, WW, stride, pad):
        out = F.conv2d(torch.zeros(1, 1, H, W, dtype=torch.float64), torch.zeros(1, 1, HH, WW, dtype=torch.float64),
                       stride=stride, padding=pad)
        return tuple(int(s) for s in out.shape[2:])

    @staticmethod
    def receptive_field(layers):
        """The extent of the input positions one output unit depends on, found by autograd on a 1-D stack with
        all-ones conv kernels and average pools (every weight positive, so nothing cancels)."""
        n = 1 + sum(layer["kernel"] for layer in layers) * int(np.prod([layer.get("stride", 1) for layer in layers]))
        x = torch.ones(1, 1, n, dtype=torch.float64, requires_grad=True)
        h = x
        for layer in layers:
            k, s = layer["kernel"], layer.get("stride", 1)
            h = (F.conv1d(h, torch.ones(1, 1, k, dtype=torch.float64), stride=s) if layer["kind"] == "conv"
                 else F.avg_pool1d(h, k, s))
        h[0, 0, 0].backward()
        hit = np.flatnonzero(x.grad[0, 0].numpy())
        return int(hit[-1] - hit[0] + 1)


# -- inputs ---------------------------------------------------------------------------------------------------


def _conv_inputs(ctx, n, c, h, w, f, hh, ww, stride, pad):
    return {"x": ctx.rng.standard_normal((n, c, h, w)), "w": ctx.rng.standard_normal((f, c, hh, ww)),
            "b": ctx.rng.standard_normal(f), "conv_param": {"stride": stride, "pad": pad}}


def _conv_cases(ctx):
    """(label, inputs) of the tiny shapes that catch the classic conv bugs; sizes vary per student (hidden)."""
    r = ctx.rng.integers
    n, c, h = ctx.pick((2, 3, 5), (int(r(2, 4)), int(r(2, 4)), int(r(5, 8))))
    h2, m = ctx.pick((7, 2), (int(r(7, 10)), int(r(2, 4))))
    cases = [
        ("pad 0", (n, c, h, h + 1, 2, 3, 3, 1, 0)),
        ("stride 2, non-square input and 3x4 kernel (larger than the stride), pad 1",
         (2, 2, h2, h2 + 1, 3, 3, 4, 2, 1)),
        # (H + 2 - 4) % 3 = (W + 2 - 2) % 3 = 2: the last two padded rows (columns), one of them real, fit no window
        ("stride 3 that leaves rows and columns out, 4x2 kernel, pad 1", (2, 2, 3 * m + 1, 3 * m + 2, 2, 4, 2, 3, 1)),
        ("N = 1, C = 1, 2x3 kernel, pad 2", (1, 1, h + 1, h, 2, 2, 3, 1, 2)),
    ]
    return [(label, _conv_inputs(ctx, *dims)) for label, dims in cases]


def _distinct(ctx, shape):
    """Values in [-2, 2) with no two equal (a permutation), so every pooling window has one maximum."""
    size = int(np.prod(shape))
    return ctx.rng.permutation(size).reshape(shape) * (4.0 / size) - 2.0


def _pool_cases(ctx, tie_free: bool):
    """(label, inputs) of the tiny pooling shapes: plain 2x2 windows, overlapping and non-square windows, N = C = 1."""
    r = ctx.rng.integers
    n, c, h = ctx.pick((2, 3, 6), (int(r(2, 4)), int(r(2, 4)), 2 * int(r(3, 5))))  # h even
    cases = [
        ("2x2 windows, stride 2", (n, c, h, h + 2, 2, 2, 2)),
        ("overlapping 3x3 windows, stride 2", (2, 2, h + 1, h + 3, 3, 3, 2)),
        ("non-square 3x2 windows, stride 1 (overlapping)", (2, 2, h - 1, h, 3, 2, 1)),
        # H - 1 odd and W even: (H - 1 - 2) % 2 = 1 and (W - 3) % 2 = 1, so the last row and column fit no window
        ("N = 1, C = 1, 2x3 windows, stride 2 that leaves a row and a column out", (1, 1, h - 1, h + 2, 2, 3, 2)),
    ]
    out = []
    for label, (n_, c_, h_, w_, ph, pw, s) in cases:
        shape = (n_, c_, h_, w_)
        x = _distinct(ctx, shape) if tie_free else ctx.rng.standard_normal(shape)
        out.append((label, {"x": x, "pool_param": {"pool_height": ph, "pool_width": pw, "stride": s}}))
    return out


def _pool_inputs(ctx, n, c, h, w, ph, pw, stride):
    return {"x": _distinct(ctx, (n, c, h, w)), "pool_param": {"pool_height": ph, "pool_width": pw, "stride": stride}}


# -- sizes ------------------------------------------------------------------------------------------------------


@CHECKS.task("cnn.conv_output_shape")
def _(ctx):
    cases = [(5, 6, 3, 3, 1, 0), (7, 8, 3, 4, 2, 1), (8, 7, 4, 2, 3, 1), (6, 5, 2, 3, 1, 2), (4, 4, 6, 6, 1, 1)]
    if ctx.hidden:  # per-student sizes on top of the fixed kinds (floored strides, pad > 0, kernel = padded input)
        while len(cases) < 12:
            h, w, hh, ww, s, p = (int(v) for v in ctx.rng.integers([3, 3, 1, 1, 1, 0], [13, 13, 6, 6, 4, 3]))
            if h + 2 * p >= hh and w + 2 * p >= ww:
                cases.append((h, w, hh, ww, s, p))
    with ctx.part("output sizes (floored like torch, padding on both sides, non-square)", 3):
        for args in cases:
            want = ctx.oracle.conv_output_shape(*args)
            got = ctx.call("conv_output_shape", *args)
            call = "conv_output_shape(H={}, W={}, HH={}, WW={}, stride={}, pad={})".format(*args)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                ctx.fail(f"{call} returned {describe(got)}; expected a tuple (H', W')")
            got = (ctx.scalar("H'", got[0]), ctx.scalar("W'", got[1]))
            ctx.expect(got == tuple(want), f"{call} = {got[0]:g}, {got[1]:g}; expected {want[0]}, {want[1]}")
    with ctx.part("impossible sizes raise ValueError"):
        for args, why in (((5, 5, 3, 3, 0, 0), "stride 0"), ((5, 5, 3, 3, 1, -1), "pad -1"),
                          ((4, 6, 7, 3, 1, 1), "a 7-row kernel on 4 rows padded by 1")):
            try:
                got = ctx.call("conv_output_shape", *args)
            except StudentError as exc:
                if exc.not_implemented:
                    raise
                ctx.expect(exc.info.get("type") == "ValueError",
                           f"for {why}, conv_output_shape raised {exc.info.get('type')}; expected ValueError")
                continue
            ctx.expect(False, f"for {why}, conv_output_shape returned {describe(got)}; expected a ValueError")


def _stack(ctx, depth: int) -> list[dict]:
    layers = []
    for _ in range(depth):
        layer = {"kind": str(ctx.rng.choice(["conv", "pool"])), "kernel": int(ctx.rng.integers(1, 6))}
        stride = int(ctx.rng.integers(1, 4))
        if stride > 1 or ctx.rng.random() < 0.5:  # "stride" may be left out when it is 1
            layer["stride"] = stride
        layers.append(layer)
    return layers


@CHECKS.task("cnn.receptive_field")
def _(ctx):
    conv3, pool2 = {"kind": "conv", "kernel": 3}, {"kind": "pool", "kernel": 2, "stride": 2}
    groups = {
        "stride-1 stacks (two 3x3 convs see 5x5)": [[conv3], [conv3, conv3], [conv3, {"kind": "conv", "kernel": 5,
                                                                                     "stride": 1}, conv3]],
        "strided stacks (a stride widens every layer above it)": [
            [conv3, pool2, conv3], [{"kind": "conv", "kernel": 5, "stride": 2}, {"kind": "pool", "kernel": 3,
                                                                                 "stride": 2}, conv3],
            [{"kind": "conv", "kernel": 3, "stride": 2}], [conv3, pool2, conv3, pool2, conv3, conv3]],
    }
    if ctx.hidden:
        groups["strided stacks (a stride widens every layer above it)"] += [_stack(ctx, d) for d in (3, 4, 5)]
    for label, stacks in groups.items():
        with ctx.part(label):
            for layers in stacks:
                want = ctx.oracle.receptive_field(layers)
                got = ctx.scalar("receptive_field", ctx.call("receptive_field", layers))
                ctx.expect(got == want, f"receptive_field({layers}) = {got:g}, expected {want}")


# -- the layers: one table ---------------------------------------------------------------------------------------


def _speed_part(ctx, forward: str, backward: str | None) -> None:
    """Time the task's fast layer (`forward`, or `backward` on the cache of the student's forward) on its TIMED
    size, with the inputs kept in the worker, against the oracle's same layer."""
    dims, make, size = TIMED[forward]
    inp, name = make(ctx, *dims), backward or forward
    with ctx.part(f"speed: at most {ctx.task.speed_limit:g} times the {ctx.pick('PyTorch', 'reference')} time on "
                  f"{size.format(*dims)}"):
        out_h, cache_h = ctx.call(forward, *inp.values(), keep=(0, 1), returns=("kept", "kept"))
        arrays = [k for k, v in inp.items() if isinstance(v, np.ndarray)]
        kept = dict(zip(arrays, kept_copies(ctx, out_h, *(inp[k] for k in arrays))))
        probe = lambda: ctx.attr(kept["x"], "shape")  # noqa: E731
        hint = "loop over the window offsets only, never over examples, channels or pixels"
        if backward is None:
            args = [kept.get(k, v) for k, v in inp.items()]
            speed_part(ctx, name, lambda: ctx.call(name, *args, keep=True),
                       lambda: getattr(ctx.oracle, forward)(**inp), probe, size.format(*dims), hint)
            return
        ref_out, ref_cache = getattr(ctx.oracle, forward)(**inp)
        dout = ctx.rng.standard_normal(np.shape(ref_out))
        (dout_h,) = kept_copies(ctx, out_h, dout)
        speed_part(ctx, name, lambda: ctx.call(name, dout_h, cache_h, keep=True),
                   lambda: getattr(ctx.oracle, name)(dout, ref_cache), probe, size.format(*dims), hint)


TIMED: dict[str, tuple[tuple[int, ...], Callable[..., Any], str]] = {
         "conv_forward_fast": (TIMED_CONV, _conv_inputs, "a {}x{}x{}x{} input with {} {}x{} filters"),
         "max_pool_forward_fast": (TIMED_POOL, _pool_inputs, "a {}x{}x{}x{} input with {}x{} windows, stride {}")}


def _tie_part(ctx, forward: str, backward: str | None) -> None:
    """In a max-pool backward check: tied maxima (integer values, many all-zero windows as after a ReLU), windows
    that do not overlap: each window's gradient must reach its maxima only and add up to dout there, in whatever
    split the student documents (first maximum, last, or shared); giving the full gradient to every tied maximum
    multiplies it."""
    if backward is None:
        return
    n, c, h, w = ctx.pick((2, 3, 6, 8), (int(ctx.rng.integers(2, 4)), 3, 6, 10))
    x = np.maximum(ctx.rng.integers(-2, 3, (n, c, h, w)), 0).astype(np.float64)
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    with ctx.part("tied maxima: each window's gradient goes to its maxima and sums to dout"):
        out, cache = ctx.call(forward, x, param, keep=(1,), returns=("array", "kept"))
        ctx.compare("out", out, ctx.oracle.max_pool_forward_naive(x, param)[0])
        dout = ctx.rng.uniform(0.5, 1.5, out.shape) * ctx.rng.choice([-1.0, 1.0], out.shape)
        dx = ctx.array("dx", ctx.call(backward, dout, cache), x.shape)
        windows = x.reshape(n, c, h // 2, 2, w // 2, 2)  # (N, C, H', 2, W', 2)
        grads = dx.reshape(windows.shape)
        at_max = windows == out[:, :, :, None, :, None]
        share = grads / dout[:, :, :, None, :, None]  # the fraction of each window's gradient an input got
        slack = ctx.tol.formula_rtol
        wrong = (~at_max & (grads != 0)) | (share < -slack) | (share > 1 + slack)
        total = np.where(at_max, share, 0.0).sum(axis=(3, 5))  # (N, C, H', W'): 1 where the split is complete
        bad = np.argwhere(np.any(wrong, axis=(3, 5)) | (np.abs(total - 1) > slack))
        if len(bad):
            i = tuple(int(v) for v in bad[0])
            ties = int(at_max[i[0], i[1], i[2], :, i[3], :].sum())
            ctx.fail(f"{len(bad)} of {out.size} windows pass on a wrong gradient; e.g. window {i} with {ties} tied "
                     f"maxima passes on {total[i]:.6g} times its dout (expected 1, all of it to its maxima): give "
                     f"a window's gradient to one maximum (the first, as torch does) or split it among them")



def _realistic_conv(ctx):
    n = ctx.pick(4, int(ctx.rng.integers(3, 6)))
    return [(f"realistic size: {n}x3x32x32 input, 8 filters 3x3, pad 1",
             _conv_inputs(ctx, n, 3, 32, 32, 8, 3, 3, 1, 1))]


def _realistic_pool(ctx):
    n = ctx.pick(4, int(ctx.rng.integers(3, 6)))
    return [(f"realistic size: {n}x8x31x31 input, overlapping 3x3 windows, stride 2",
             _pool_inputs(ctx, n, 8, 31, 31, 3, 3, 2))]


def _residual_cases(ctx):
    """(label, inputs) with no pre-activation within kink_margin of 0 (the numerical check would straddle a ReLU
    kink there): redrawn until both ReLU inputs, conv1(x) and conv2(relu(conv1(x))) + x, stay clear of 0."""
    r = ctx.rng.integers
    h = ctx.pick(5, int(r(5, 8)))
    cases = [("3x3 filters, pad 1, non-square input", (2, 3, h, h + 1, 3)),
             ("N = 1, C = 1, 5x5 filters, pad 2", (1, 1, h + 1, h, 5))]
    out = []
    for label, (n, c, hh, ww, k) in cases:
        param = {"stride": 1, "pad": (k - 1) // 2}
        for _ in range(100):
            inp = {"x": ctx.rng.standard_normal((n, c, hh, ww)), "w1": ctx.rng.standard_normal((c, c, k, k)) * 0.5,
                   "b1": ctx.rng.standard_normal(c) * 0.1, "w2": ctx.rng.standard_normal((c, c, k, k)) * 0.5,
                   "b2": ctx.rng.standard_normal(c) * 0.1, "conv_param": param}
            a1 = ctx.oracle.conv_forward_naive(inp["x"], inp["w1"], inp["b1"], param)[0]
            a2 = ctx.oracle.conv_forward_naive(np.maximum(a1, 0), inp["w2"], inp["b2"], param)[0] + inp["x"]
            if min(np.abs(a1).min(), np.abs(a2).min()) > ctx.tol.kink_margin:
                break
        out.append((label, inp))
    return out



def layer_tasks(forward: str, backward: str, cases, wrt: tuple[str, ...], oracle: str = "", extra=()) -> None:
    """The checks of a layer's forward and backward tasks: one part per case of `cases(ctx)` (label, inputs), equal
    to the oracle's layer (`oracle`: the naive one, for a fast layer), then each of `extra(ctx, forward, backward or
    None)` (ties, speed)."""
    pair = (oracle, oracle.replace("forward", "backward")) if oracle else None

    @CHECKS.task(f"cnn.{forward}")
    def _(ctx):
        for label, inp in cases(ctx):
            forward_part(ctx, forward, inp, getattr(ctx.oracle, oracle or forward)(**inp)[0], label)
        for add in extra:
            add(ctx, forward, None)

    @CHECKS.task(f"cnn.{backward}")
    def _(ctx):
        for label, inp in cases(ctx):
            grad_parts(ctx, forward, backward, inp, wrt, groups={label: wrt}, oracle=pair)
        for add in extra:
            add(ctx, forward, backward)


def _pool_tie_free(ctx):
    return _pool_cases(ctx, tie_free=True)


_XWB = ("x", "w", "b")
layer_tasks("conv_forward_naive", "conv_backward_naive", _conv_cases, _XWB)
layer_tasks("conv_forward_fast", "conv_backward_fast", lambda ctx: _conv_cases(ctx) + _realistic_conv(ctx), _XWB,
            oracle="conv_forward_naive", extra=(_speed_part,))
layer_tasks("max_pool_forward_naive", "max_pool_backward_naive", _pool_tie_free, ("x",), extra=(_tie_part,))
layer_tasks("max_pool_forward_fast", "max_pool_backward_fast", lambda ctx: _pool_tie_free(ctx) + _realistic_pool(ctx),
            ("x",), oracle="max_pool_forward_naive", extra=(_tie_part, _speed_part))
layer_tasks("avg_pool_forward", "avg_pool_backward", lambda ctx: _pool_cases(ctx, tie_free=False), ("x",))
layer_tasks("residual_block_forward", "residual_block_backward", _residual_cases, ("x", "w1", "b1", "w2", "b2"))


# -- the tiny CNN -------------------------------------------------------------------------------------------------

_PARAM_SPEC = {k: "array" for k in ("W1", "b1", "W2", "b2", "W3", "b3")}


def _param_shapes(input_dim, filters, k, classes) -> dict:
    (c, h, w), (f1, f2) = input_dim, filters
    return {"W1": (f1, c, k, k), "b1": (f1,), "W2": (f2, f1, k, k), "b2": (f2,),
            "W3": (f2 * (h // 4) * (w // 4), classes), "b3": (classes,)}


def _net_configs(ctx):
    """(label, input_dim, num_filters, filter_size, classes, N): RGB with 3x3 filters, and grey with 5x5 filters."""
    n = ctx.pick(3, int(ctx.rng.integers(3, 6)))
    return [("3x8x8 input, 3x3 filters", (3, 8, 8), (4, 6), 3, 5, n),
            ("1x12x8 input, 5x5 filters", (1, 12, 8), (3, 5), 5, 4, n + 1)]


def cnn_loss_parts(ctx, make, reg: float, rtol: float | None = None) -> None:
    """One part per configuration: scores, loss and gradients of the student's model (made by `make(config)` ->
    (handle, params)) equal the oracle's tiny CNN on the same params."""
    for i, config in enumerate(_net_configs(ctx)):
        label, input_dim, _, _, classes, n = config
        with ctx.part(f"scores, loss and gradients ({label}, reg {reg:g})", 2 if i == 0 else 1):
            handle, params = make(config)
            x, y = ctx.rng.standard_normal((n, *input_dim)), ctx.rng.integers(0, classes, n)
            ctx.compare("scores", ctx.method(handle, "loss", x), ctx.oracle.tiny_cnn_loss(params, reg, x), rtol=rtol)
            loss, grads = ctx.method(handle, "loss", x, y, returns=("number", _PARAM_SPEC))
            want_loss, want_grads = ctx.oracle.tiny_cnn_loss(params, reg, x, y)
            ctx.compare("loss", loss, want_loss, rtol=rtol)
            for key in _PARAM_SPEC:
                ctx.compare_grad(f'grads["{key}"]', grads[key], want_grads[key], rtol=rtol)


@CHECKS.task("cnn.TinyCNN")
def _(ctx):
    """The student's model on its own (He) initial weights; __init__ is given code, so only `loss` is graded."""
    reg = ctx.pick(0.1, 0.05)

    def make(config):
        _, input_dim, filters, k, classes, _ = config
        model = ctx.call("TinyCNN", input_dim, filters, k, classes, "he", 1e-2, reg, int(ctx.rng.integers(1 << 31)),
                         keep=True)
        params = ctx.attr(model, "params", returns=_PARAM_SPEC)
        for key, shape in _param_shapes(input_dim, filters, k, classes).items():
            ctx.array(f'params["{key}"]', params[key], shape)
        return model, params
    cnn_loss_parts(ctx, make, reg)


def _chw(x: np.ndarray) -> np.ndarray:
    """CIFAR-10 images as (N, 3, 32, 32): `train_to_bar` hands over the bar's data flattened from (N, 32, 32, 3)
    (toolkit.data.load_images), so this is a view, not a second copy of the data in this process."""
    return x.reshape(len(x), 32, 32, 3).transpose(0, 3, 1, 2)


def _train_and_score(ctx, module: str, model: str, trainer: str):
    """Train the student's model on the bar's CIFAR-10 subset in the worker; score the test images here, in batches
    of SCORE_BATCH (the labels never leave this process)."""
    def run(bar, data):
        x_tr, y_tr, x_te, y_te = _chw(data[0]), data[1], _chw(data[2]), data[3]
        init = {"init": "he", "weight_scale": 1e-2} if module == "net" else {}
        handle = fit(ctx, bar, model, trainer, (x_tr, y_tr, x_tr[:bar.val_size], y_tr[:bar.val_size]),
                     module=module, model_keys=("num_filters", "filter_size", "reg", "dtype"),
                     model_kw=dict(input_dim=x_tr.shape[1:], num_classes=10, **init, seed=int(ctx.seed)),
                     train_kw={"seed": int(ctx.seed % 1000)})
        scores = []
        for i in range(0, len(x_te), SCORE_BATCH):
            m = len(x_te[i:i + SCORE_BATCH])
            chunk = ctx.method(handle, "loss", x_te[i:i + SCORE_BATCH], module=module)
            if not (isinstance(chunk, np.ndarray) and chunk.shape == (m, 10) and chunk.dtype.kind in "fiu"):
                ctx.fail(f"loss(X) of {m} test images returned {describe(chunk)}; expected scores of shape ({m}, 10)")
            scores.append(chunk.astype(np.float64))  # the float32 torch model's scores are fine here
        return accuracy(np.concatenate(scores), y_te)
    return run


@CHECKS.task("cnn.train")
def _(ctx):
    train_to_bar(ctx, "net", _train_and_score(ctx, "net", "TinyCNN", "train"))


# -- figures ------------------------------------------------------------------------------------------------------


def _layout_part(ctx, fig, n: int, what: str) -> None:
    """At most 8 columns, each image its own axes, in order; titles name the index; a suptitle."""
    with ctx.part(f"one image per {what} on a grid of at most 8 columns, titled with its index"):
        if fig is None:
            ctx.fail("no figure")
        panels = image_panels(ctx, fig, n, what)
        grid = fig.get("grid")
        if isinstance(grid, dict) and isinstance(grid.get("ncols"), int):
            ctx.expect(grid["ncols"] <= 8, f"the grid has {grid['ncols']} columns; use at most 8")
        for i, p in enumerate(panels):
            ctx.expect(bool(re.search(rf"\b{i}\b", p["title"])), f"the title of {what} {i} is {p['title']!r}; it "
                                                                  f"should name the {what}, e.g. '{what} {i}'")
        ctx.expect(isinstance(fig.get("suptitle"), str) and bool(fig["suptitle"].strip()), "give the figure a title")


def _filter_images(w: np.ndarray) -> list[np.ndarray]:
    """The documented mapping: per filter, (w[f] - min) / (max - min) over its own entries (zeros if constant),
    channels last; a grey (C = 1) filter as its 2-D image."""
    out = []
    for f in w:
        lo, hi = f.min(), f.max()
        img = ((f - lo) / (hi - lo) if hi > lo else np.zeros(f.shape)).transpose(1, 2, 0)
        out.append(img[..., 0] if img.shape[2] == 1 else img)
    return out


def _filters_figure(ctx, w):
    fig = ctx.call("plot_filters", w)
    return ctx.figure("plot_filters", fig, ctx.oracle.plot_filters(w) if ctx.oracle.plot_filters else None)


@CHECKS.task("cnn.plot_filters")
def _(ctx):
    f_rgb, f_grey = ctx.pick((6, 4), (int(ctx.rng.integers(9, 13)), int(ctx.rng.integers(4, 7))))
    rgb, grey = ctx.rng.standard_normal((f_rgb, 3, 3, 3)), ctx.rng.standard_normal((f_grey, 1, 5, 4))
    fig = None
    with ctx.part("RGB filters: each image is its filter scaled to 0..1 on its own, channels last", 2):
        fig = _filters_figure(ctx, rgb)
        for f, (p, want) in enumerate(zip(image_panels(ctx, fig, f_rgb, "filter"), _filter_images(rgb))):
            ctx.compare(f"the image of filter {f}", p["images"][0]["array"], want, rtol=ctx.tol.formula_rtol)
    _layout_part(ctx, fig, f_rgb, "filter")
    with ctx.part('grey filters (C = 1): 2-D images, cmap "gray", colour limits 0..1'):
        fig = _filters_figure(ctx, grey)
        for f, (p, want) in enumerate(zip(image_panels(ctx, fig, f_grey, "filter"), _filter_images(grey))):
            image = p["images"][0]
            ctx.compare(f"the image of filter {f}", image["array"], want, rtol=ctx.tol.formula_rtol)
            ctx.expect(image.get("cmap") == "gray", f"filter {f} is drawn with cmap {image.get('cmap')!r}; use 'gray'")
            ctx.expect((image.get("vmin"), image.get("vmax")) == (0.0, 1.0),
                       f"filter {f} has colour limits {image.get('vmin')}..{image.get('vmax')}; use 0..1")
    with ctx.part("a constant filter is drawn as zeros (no division by zero)"):
        flat = np.concatenate([rgb[:1], np.full((1, 3, 3, 3), 0.7), rgb[1:2]])
        fig = _filters_figure(ctx, flat)
        ctx.compare("the image of the constant filter 1", image_panels(ctx, fig, 3, "filter")[1]["images"][0]["array"],
                    np.zeros((3, 3, 3)), rtol=ctx.tol.formula_rtol)


@CHECKS.task("cnn.plot_feature_maps")
def _(ctx):
    c, h, w = ctx.pick((6, 5, 6), (int(ctx.rng.integers(9, 13)), 6, 7))
    maps = np.maximum(ctx.rng.standard_normal((c, h, w)), 0) + ctx.rng.uniform(0, 1, (c, 1, 1))  # like relu + b
    fig = None
    with ctx.part("each image is its channel's activations, unchanged", 2):
        expected = ctx.oracle.plot_feature_maps(maps) if ctx.oracle.plot_feature_maps else None
        fig = ctx.figure("plot_feature_maps", ctx.call("plot_feature_maps", maps), expected)
        for i, p in enumerate(image_panels(ctx, fig, c, "channel")):
            ctx.compare(f"the image of channel {i}", p["images"][0]["array"], maps[i], rtol=ctx.tol.exact_rtol)
    _layout_part(ctx, fig, c, "channel")
    with ctx.part('cmap "viridis", each channel with its own colour limits'):
        if fig is None:
            ctx.fail("no figure")
        for i, p in enumerate(image_panels(ctx, fig, c, "channel")):
            image = p["images"][0]
            ctx.expect(image.get("cmap") == "viridis", f"channel {i} uses cmap {image.get('cmap')!r}; use 'viridis'")
            lo, hi = float(maps[i].min()), float(maps[i].max())
            got = (image.get("vmin"), image.get("vmax"))
            ctx.expect(all(isinstance(v, float) for v in got) and np.allclose(got, (lo, hi), rtol=ctx.tol.formula_rtol),
                       f"channel {i} has colour limits {got}; its own are {lo:.6g}..{hi:.6g} (leave vmin and vmax "
                       f"unset)")


# -- PyTorch ------------------------------------------------------------------------------------------------------


@CHECKS.task("cnn.TorchTinyCNN")
def _(ctx):
    reg = ctx.pick(0.1, 0.05)

    def make(config):
        _, input_dim, filters, k, classes, _ = config
        params = {key: ctx.rng.standard_normal(shape) * (0.1 if key.startswith("b") else 0.3)
                  for key, shape in _param_shapes(input_dim, filters, k, classes).items()}
        model = ctx.call("TorchTinyCNN", input_dim, filters, k, classes, reg, "float64", int(ctx.rng.integers(1 << 31)),
                         keep=True)
        ctx.method(model, "load_numpy_params", params)
        return model, params
    cnn_loss_parts(ctx, make, reg, rtol=ctx.tol.parity_rtol)


@CHECKS.task("cnn.train_torch")
def _(ctx):
    train_to_bar(ctx, "torch_net", _train_and_score(ctx, "torch_net", "TorchTinyCNN", "train_torch"))


SUITE = CHECKS.suite("public", TorchOracle)
