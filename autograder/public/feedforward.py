"""The checks of topic 1 (feedforward), one per task, and its public suite (`dlcore check feedforward`).

Every check compares the student's code with `ctx.oracle`: PyTorch in float64 here (never the reference
solution), the reference solution in the hidden suite (autograder/hidden/feedforward.py), which runs the same
checks on other shapes, per-student inputs and the full training runs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.check_kit import fit, grad_parts
from autograder.checks import Checks, accuracy, forward_part, train_to_bar
from toolkit.gradcheck import away_from_kinks
from toolkit.parity import torch_pair, torch_reference

CHECKS = Checks("feedforward")


# -- the oracle: PyTorch with the reference's contract -----------------------------------------------------------


def _affine(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b


def _torch_net(params, activation, reg, X, y=None):
    """The two-layer net's scores, or (loss, grads), with torch.autograd (float64)."""
    act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]

    def scores(W1, b1, W2, b2):
        return act(torch.tensor(X).reshape(len(X), -1) @ W1 + b1) @ W2 + b2

    p = {k: params[k] for k in ("W1", "b1", "W2", "b2")}
    if y is None:
        return torch_reference(scores, p, None)[0]

    def loss(W1, b1, W2, b2):
        data = F.cross_entropy(scores(W1, b1, W2, b2), torch.tensor(y))
        return data + 0.5 * reg * (W1.pow(2).sum() + W2.pow(2).sum())

    value, grads = torch_reference(loss, p, 1.0)
    return float(value), grads


class TorchOracle:
    """Expected values from PyTorch with the contract of solutions/feedforward (layers and two_layer_loss)."""

    affine_forward, affine_backward = map(staticmethod, torch_pair(_affine))
    relu_forward, relu_backward = map(staticmethod, torch_pair(lambda x: torch.relu(x)))
    sigmoid_forward, sigmoid_backward = map(staticmethod, torch_pair(lambda x: torch.sigmoid(x)))
    tanh_forward, tanh_backward = map(staticmethod, torch_pair(lambda x: torch.tanh(x)))
    _bn_forward, batchnorm_backward = map(staticmethod, torch_pair(
        lambda x, gamma, beta: F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)))

    def __init__(self, ctx):
        pass

    @staticmethod
    def softmax_loss(x, y):
        loss, grads = torch_reference(lambda x: F.cross_entropy(x, torch.tensor(y)), {"x": x}, 1.0)
        return float(loss), grads["x"]

    @classmethod
    def batchnorm_forward(cls, x, gamma, beta, bn_param):
        """Train mode as F.batch_norm with CS231n's running averages (biased variance, momentum on the old value)."""
        eps, m = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
        d = x.shape[1]
        rm, rv = bn_param.get("running_mean", np.zeros(d)), bn_param.get("running_var", np.ones(d))
        if bn_param["mode"] == "test":
            out = F.batch_norm(*map(torch.tensor, (x, rm, rv, gamma, beta)), training=False, eps=eps).numpy()
            return out, None
        out, cache = cls._bn_forward(x, gamma, beta)
        bn_param["running_mean"] = m * rm + (1 - m) * x.mean(axis=0)
        bn_param["running_var"] = m * rv + (1 - m) * x.var(axis=0)
        return out, cache

    two_layer_loss = staticmethod(_torch_net)


# -- layers -------------------------------------------------------------------------------------------------------


def _affine_cases(ctx):
    """(label, inputs): a 4-D input to flatten, and (hidden) square weights, where a transposed dW has the right
    shape but the wrong values."""
    def case(shape, m):
        n = int(ctx.rng.integers(3, 6)) if ctx.hidden else 2
        d = int(np.prod(shape))
        return {"x": ctx.rng.standard_normal((n, *shape)), "w": ctx.rng.standard_normal((d, m)),
                "b": ctx.rng.standard_normal(m)}
    if not ctx.hidden:
        return [("out", case((3, 4), 5))]
    return [("4-D input flattened", case((2, 4, 5), 7)), ("square weights", case((3, 2), 6))]


@CHECKS.task("feedforward.affine_forward")
def _(ctx):
    for label, inp in _affine_cases(ctx):
        forward_part(ctx, "affine_forward", inp, ctx.oracle.affine_forward(**inp)[0], label)


@CHECKS.task("feedforward.affine_backward")
def _(ctx):
    label, inp = _affine_cases(ctx)[-1]
    grad_parts(ctx, "affine_forward", "affine_backward", inp, ("x", "w", "b"))


def _activation_checks(name: str, kinks: tuple[float, ...]):
    """Forward and backward checks of an elementwise activation."""
    def inputs(ctx):
        x = ctx.rng.standard_normal(ctx.pick((3, 4), (4, 6))) * 3
        return {"x": away_from_kinks(x, ctx.tol.kink_margin, kinks)}

    @CHECKS.task(f"feedforward.{name}_forward")
    def _(ctx):
        fwd = getattr(ctx.oracle, f"{name}_forward")
        inp = inputs(ctx)
        forward_part(ctx, f"{name}_forward", inp, fwd(**inp)[0], "values")
        big = {"x": np.array([[-1000.0, -40.0, 0.5, 40.0, 1000.0]])}  # saturation must not give NaN
        forward_part(ctx, f"{name}_forward", big, fwd(**big)[0], "large |x|")

    @CHECKS.task(f"feedforward.{name}_backward")
    def _(ctx):
        grad_parts(ctx, f"{name}_forward", f"{name}_backward", inputs(ctx), ("x",))


for _name in ("relu", "sigmoid", "tanh"):
    _activation_checks(_name, (0.0,) if _name == "relu" else ())


@CHECKS.task("feedforward.softmax_loss")
def _(ctx):
    n, c = ctx.pick((4, 3), (6, 5))
    x, y = ctx.rng.standard_normal((n, c)), ctx.rng.integers(0, c, n)
    loss_ref, dx_ref = ctx.oracle.softmax_loss(x, y)
    with ctx.part("loss"):
        loss, _ = ctx.call("softmax_loss", x, y, returns=("number", "array"))
        ctx.compare("loss", loss, loss_ref)
    with ctx.part("dx"):
        _, dx = ctx.call("softmax_loss", x, y, returns=("number", "array"))
        ctx.compare_grad("dx", dx, dx_ref)
        ctx.gradcheck(lambda x: ctx.oracle.softmax_loss(x, y)[0], {"x": x}, {"x": ctx.array("dx", dx)}, 1.0)
    with ctx.part("scores of size 1e3 (stability)"):
        big = x * 1000
        loss_ref, dx_ref = ctx.oracle.softmax_loss(big, y)
        loss, dx = ctx.call("softmax_loss", big, y, returns=("number", "array"))
        ctx.compare("loss", loss, loss_ref, rtol=ctx.tol.accumulated_rtol)
        ctx.compare_grad("dx", dx, dx_ref)


def _bn_inputs(ctx):
    n, d = ctx.pick((6, 3), (8, 5))
    x = ctx.rng.standard_normal((n, d)) * 2 + ctx.rng.standard_normal(d)
    return x, ctx.rng.standard_normal(d), ctx.rng.standard_normal(d)


@CHECKS.task("feedforward.batchnorm_forward")
def _(ctx):
    x, gamma, beta = _bn_inputs(ctx)
    d = x.shape[1]
    start = {"mode": "train", "momentum": ctx.pick(0.9, 0.8), "eps": 1e-5,
             "running_mean": ctx.rng.standard_normal(d), "running_var": ctx.rng.uniform(0.5, 2, d)}
    want_bn = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in start.items()}
    want_out = ctx.oracle.batchnorm_forward(x, gamma, beta, want_bn)[0]
    got_bn = None
    with ctx.part("train-mode output"):
        (out, _), (got_bn,) = ctx.call("batchnorm_forward", x, gamma, beta, dict(start), keep=(1,), echo=(3,),
                                       returns=("array", "kept"))
        ctx.compare("out", out, want_out)
    with ctx.part("running mean and variance updated"):
        if got_bn is None:
            (_, _), (got_bn,) = ctx.call("batchnorm_forward", x, gamma, beta, dict(start), keep=(1,), echo=(3,))
        # running = momentum * running + (1 - momentum) * batch statistic, with the biased batch variance
        for key in ("running_mean", "running_var"):
            if not isinstance(got_bn, dict) or key not in got_bn:
                ctx.fail(f'bn_param["{key}"] is missing after a train-mode call')
            ctx.compare(f'bn_param["{key}"]', got_bn[key], want_bn[key])
    with ctx.part("test mode uses the running statistics"):
        test_bn = dict(start, mode="test")
        want = ctx.oracle.batchnorm_forward(x, gamma, beta, dict(test_bn))[0]
        out, _ = ctx.call("batchnorm_forward", x, gamma, beta, test_bn, keep=(1,), returns=("array", "kept"))
        ctx.compare("out", out, want)


@CHECKS.task("feedforward.batchnorm_backward")
def _(ctx):
    x, gamma, beta = _bn_inputs(ctx)
    inp = {"x": x, "gamma": gamma, "beta": beta, "bn_param": {"mode": "train"}}
    grad_parts(ctx, "batchnorm_forward", "batchnorm_backward", inp, ("x", "gamma", "beta"))


@CHECKS.task("feedforward.init_weights")
def _(ctx):
    fan_in, fan_out = ctx.pick((300, 200), (400, 300))
    scale = ctx.pick(0.01, 0.05)
    expected_std = {"zero": 0.0, "normal": scale, "xavier": np.sqrt(2 / (fan_in + fan_out)), "he": np.sqrt(2 / fan_in)}
    for scheme, std in expected_std.items():
        with ctx.part(scheme):
            seed = int(ctx.rng.integers(1 << 31))
            w = ctx.array("w", ctx.call("init_weights", fan_in, fan_out, scheme, scale, seed), (fan_in, fan_out))
            if std == 0.0:
                ctx.expect(not np.any(w), f"{scheme}: expected all zeros, {np.count_nonzero(w)} entries are not")
                continue
            got_std = float(w.std())
            ctx.expect(abs(got_std - std) <= ctx.tol.stat_rtol * std,
                       f"{scheme}: standard deviation {got_std:.4g}, expected {std:.4g} for fan_in={fan_in}, "
                       f"fan_out={fan_out}")
            ctx.expect(abs(float(w.mean())) < 5 * std / np.sqrt(w.size), f"{scheme}: mean {w.mean():.3g} is not ~0")
            again = ctx.call("init_weights", fan_in, fan_out, scheme, scale, seed)
            ctx.expect(isinstance(again, np.ndarray) and np.array_equal(again, w),
                       f"{scheme}: the same seed gave different weights")


# -- the two-layer net ------------------------------------------------------------------------------------------

_PARAM_SPEC = {"W1": "array", "b1": "array", "W2": "array", "b2": "array"}


def _net_case(ctx, activation: str):
    """A small net built by the student, its parameters as data, and a batch (ReLU kinks have measure zero)."""
    d, h, c, n = ctx.pick((6, 5, 3, 4), (9, 7, 4, 5))
    handle = ctx.call("TwoLayerNet", d, h, c, activation, "normal", 0.5, 0.1, int(ctx.rng.integers(1 << 31)),
                      keep=True)
    params = ctx.attr(handle, "params", returns=_PARAM_SPEC)
    for key, shape in (("W1", (d, h)), ("b1", (h,)), ("W2", (h, c)), ("b2", (c,))):
        ctx.array(f'params["{key}"]', params[key], shape)
    x, y = ctx.rng.standard_normal((n, d)), ctx.rng.integers(0, c, n)
    return handle, params, x, y


def net_parts(ctx, make, activations: dict[str, float], reg: float, rtol: float | None = None) -> None:
    """One part per activation: scores, loss and gradients of the student's model (made by `make(activation)`
    -> (handle, params, x, y)) equal the oracle's two-layer net on the same params."""
    for activation, weight in activations.items():
        with ctx.part(f"scores, loss and gradients ({activation})", weight):
            handle, params, x, y = make(activation)
            ctx.compare("scores", ctx.method(handle, "loss", x), ctx.oracle.two_layer_loss(params, activation, reg, x),
                        rtol=rtol)
            loss, grads = ctx.method(handle, "loss", x, y, returns=("number", _PARAM_SPEC))
            want_loss, want_grads = ctx.oracle.two_layer_loss(params, activation, reg, x, y)
            ctx.compare("loss", loss, want_loss, rtol=rtol)
            for key in ("W1", "b1", "W2", "b2"):
                ctx.compare_grad(f'grads["{key}"]', grads[key], want_grads[key], rtol=rtol)


@CHECKS.task("feedforward.TwoLayerNet")
def _(ctx):
    with ctx.part("params: shapes, zero biases, chosen init"):
        _, params, _, _ = _net_case(ctx, "relu")
        ctx.expect(not np.any(params["b1"]) and not np.any(params["b2"]), "biases should start at zero")
        ctx.expect(0.3 < params["W1"].std() < 0.7, f'"normal" init with weight_scale 0.5 gave W1 std '
                                                   f'{params["W1"].std():.3g}')
    net_parts(ctx, lambda a: _net_case(ctx, a), {"relu": 2, "tanh": 1, "sigmoid": 1}, 0.1)


def _train_and_score(ctx, module: str, model: str, trainer: str):
    """Train the student's model on the bar's MNIST subset in the worker; score the test images here (the labels
    never leave this process)."""
    def run(bar, data):
        x_tr, y_tr, x_te, y_te = data
        own = {"init": "he", "weight_scale": 1e-2, "seed": int(ctx.seed)} if module == "net" else {}
        handle = fit(ctx, bar, model, trainer, (x_tr, y_tr, x_tr[:bar.val_size], y_tr[:bar.val_size]),
                     module=module, model_keys=("hidden_dim", "reg", "dtype"),
                     model_kw=dict(input_dim=x_tr.shape[1], num_classes=10, activation="relu", **own),
                     train_kw={"seed": int(ctx.seed % 1000)})
        return accuracy(ctx.method(handle, "loss", x_te, module=module), y_te)
    return run


@CHECKS.task("feedforward.train")
def _(ctx):
    with ctx.part("history: one loss per step, accuracies per epoch, loss going down"):
        x, y = ctx.rng.standard_normal((60, 12)), ctx.rng.integers(0, 3, 60)
        model = ctx.call("TwoLayerNet", 12, 10, 3, "relu", "he", 1e-2, 0.0, 1, module="net", keep=True)
        hist = ctx.call("train", model, x, y, x[:20], y[:20], 0.5, 4, 16, 1.0, 3,
                        returns={"loss": "list", "train_acc": "list", "val_acc": "list"})
        steps = 4 * int(np.ceil(60 / 16))
        ctx.expect(len(hist["loss"]) == steps, f'history["loss"] has {len(hist["loss"])} entries, expected one '
                                               f"per step: {steps} (4 epochs of ceil(60 / 16) batches)")
        ctx.expect(len(hist["val_acc"]) == 4, f'history["val_acc"] has {len(hist["val_acc"])} entries, expected 4')
        loss = ctx.array('history["loss"]', np.asarray(hist["loss"], dtype=np.float64))
        ctx.expect(loss.size > 8 and np.all(np.isfinite(loss)) and loss[-4:].mean() < loss[:4].mean(),
                   "the training loss does not go down on an easy problem")
    train_to_bar(ctx, "net", _train_and_score(ctx, "net", "TwoLayerNet", "train"), weight=2)


@CHECKS.task("feedforward.TorchTwoLayerNet")
def _(ctx):
    d, h, c, n = ctx.pick((6, 5, 3, 4), (11, 6, 4, 7))
    params = {"W1": ctx.rng.standard_normal((d, h)) * 0.5, "b1": ctx.rng.standard_normal(h) * 0.1,
              "W2": ctx.rng.standard_normal((h, c)) * 0.5, "b2": ctx.rng.standard_normal(c) * 0.1}
    x, y = ctx.rng.standard_normal((n, d)), ctx.rng.integers(0, c, n)

    def make(activation):
        model = ctx.call("TorchTwoLayerNet", d, h, c, activation, 0.05, "float64", keep=True)
        ctx.method(model, "load_numpy_params", params)
        return model, params, x, y
    net_parts(ctx, make, {"relu": 2, "tanh": 1}, 0.05, rtol=ctx.tol.parity_rtol)


@CHECKS.task("feedforward.train_torch")
def _(ctx):
    train_to_bar(ctx, "torch_net", _train_and_score(ctx, "torch_net", "TorchTwoLayerNet", "train_torch"))


SUITE = CHECKS.suite("public", TorchOracle)
