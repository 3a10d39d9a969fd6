"""Hidden checks of topic 1 (feedforward). Never released: `dlcore release` refuses to copy this package.

Expected values come from the reference solution (solutions/feedforward), computed in this trusted process;
gradients are also checked against directional numerical derivatives of the reference forward. Inputs are
drawn from a seed derived from the grading seed, the task and the student, in float64, away from kinks.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from autograder.checks import Suite, backward_parts, forward_part
from autograder.mutants import mutant
from autograder.runner import accuracy
from course_config import FEEDFORWARD
from toolkit.data import load_mnist
from toolkit.gradcheck import away_from_kinks
from toolkit.parity import torch_reference

SUITE = Suite("feedforward", "hidden")
TRAINING = FEEDFORWARD.training


def _affine_inputs(ctx, square: bool):
    n, shape = ctx.rng.integers(3, 6), (3, 2) if square else (2, 4, 5)
    d = int(np.prod(shape))
    m = d if square else 7  # D == M makes a transposed dW the right shape but the wrong values
    return {"x": ctx.rng.standard_normal((n, *shape)), "w": ctx.rng.standard_normal((d, m)),
            "b": ctx.rng.standard_normal(m)}


@SUITE.check("feedforward.affine_forward")
def _(ctx):
    ref = ctx.ref("layers")
    for label, square in (("4-D input flattened", False), ("square weights", True)):
        inp = _affine_inputs(ctx, square)
        forward_part(ctx, "affine_forward", inp, ref.affine_forward(**inp)[0], label)


@SUITE.check("feedforward.affine_backward")
def _(ctx):
    ref = ctx.ref("layers")
    inp = _affine_inputs(ctx, square=True)
    backward_parts(ctx, "affine_forward", "affine_backward", inp,
                   lambda dout: dict(zip("xwb", ref.affine_backward(dout, ref.affine_forward(**inp)[1]))),
                   lambda **kw: ref.affine_forward(**kw)[0])


def _activation_checks(name: str, kinks: tuple[float, ...]):
    """Forward and backward checks of an elementwise activation, against the reference and torch."""
    torch_fn = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[name]

    def inputs(ctx):
        x = ctx.rng.standard_normal((4, 6)) * 3
        return {"x": away_from_kinks(x, ctx.tol.kink_margin, kinks)}

    @SUITE.check(f"feedforward.{name}_forward")
    def _(ctx):
        ref = getattr(ctx.ref("layers"), f"{name}_forward")
        inp = inputs(ctx)
        forward_part(ctx, f"{name}_forward", inp, ref(**inp)[0], "values")
        big = {"x": np.array([[-1000.0, -40.0, 0.5, 40.0, 1000.0]])}  # saturation must not give NaN
        forward_part(ctx, f"{name}_forward", big, torch_fn(torch.tensor(big["x"])).numpy(), "large |x|")

    @SUITE.check(f"feedforward.{name}_backward")
    def _(ctx):
        ref = ctx.ref("layers")
        fwd, bwd = getattr(ref, f"{name}_forward"), getattr(ref, f"{name}_backward")
        inp = inputs(ctx)
        backward_parts(ctx, f"{name}_forward", f"{name}_backward", inp,
                       lambda dout: {"x": bwd(dout, fwd(**inp)[1])}, lambda **kw: fwd(**kw)[0])


for _name in ("relu", "sigmoid", "tanh"):
    _activation_checks(_name, (0.0,) if _name == "relu" else ())


@SUITE.check("feedforward.softmax_loss")
def _(ctx):
    ref = ctx.ref("layers")
    n, c = 6, 5
    x, y = ctx.rng.standard_normal((n, c)), ctx.rng.integers(0, c, n)
    loss_ref, dx_ref = ref.softmax_loss(x, y)
    got = None
    with ctx.part("loss"):
        got = ctx.call("softmax_loss", x, y)
        ctx.compare("loss", got[0], loss_ref)
    with ctx.part("dx"):
        got = got or ctx.call("softmax_loss", x, y)
        ctx.compare_grad("dx", got[1], dx_ref)
        ctx.gradcheck(lambda x: ref.softmax_loss(x, y)[0], {"x": x}, {"x": got[1]}, 1.0)
    with ctx.part("scores of size 1e3 (stability)"):
        big = x * 1000
        loss_t, grads = torch_reference(lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(y)),
                                        {"x": big}, 1.0)
        loss, dx = ctx.call("softmax_loss", big, y)
        ctx.compare("loss", loss, loss_t, rtol=1e-6)
        ctx.compare_grad("dx", dx, grads["x"])


def _bn_inputs(ctx):
    n, d = 8, 5
    x = ctx.rng.standard_normal((n, d)) * 2 + ctx.rng.standard_normal(d)
    return x, ctx.rng.standard_normal(d), ctx.rng.standard_normal(d)


@SUITE.check("feedforward.batchnorm_forward")
def _(ctx):
    ref = ctx.ref("layers")
    x, gamma, beta = _bn_inputs(ctx)
    d = x.shape[1]
    start = {"mode": "train", "momentum": 0.8, "eps": 1e-5,
             "running_mean": ctx.rng.standard_normal(d), "running_var": ctx.rng.uniform(0.5, 2, d)}
    want_bn = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in start.items()}
    want_out = ref.batchnorm_forward(x, gamma, beta, want_bn)[0]
    got_bn = None
    with ctx.part("train-mode output"):
        (out, _), (got_bn,) = ctx.call("batchnorm_forward", x, gamma, beta, dict(start), keep=(1,), echo=(3,))
        ctx.compare("out", out, want_out)
    with ctx.part("running mean and variance updated"):
        if got_bn is None:
            (_, _), (got_bn,) = ctx.call("batchnorm_forward", x, gamma, beta, dict(start), keep=(1,), echo=(3,))
        for key in ("running_mean", "running_var"):
            if key not in got_bn:
                ctx.fail(f'bn_param["{key}"] is missing after a train-mode call')
            ctx.compare(f'bn_param["{key}"]', got_bn[key], want_bn[key])
    with ctx.part("test mode uses the running statistics"):
        test_bn = dict(start, mode="test")
        want = ref.batchnorm_forward(x, gamma, beta, dict(test_bn))[0]
        (out, _) = ctx.call("batchnorm_forward", x, gamma, beta, test_bn, keep=(1,))
        ctx.compare("out", out, want)


@SUITE.check("feedforward.batchnorm_backward")
def _(ctx):
    ref = ctx.ref("layers")
    x, gamma, beta = _bn_inputs(ctx)
    inp = {"x": x, "gamma": gamma, "beta": beta}

    def fwd(x, gamma, beta):
        return ref.batchnorm_forward(x, gamma, beta, {"mode": "train"})

    student_inp = dict(inp, bn_param={"mode": "train"})
    backward_parts(ctx, "batchnorm_forward", "batchnorm_backward", student_inp,
                   lambda dout: dict(zip(("x", "gamma", "beta"), ref.batchnorm_backward(dout, fwd(**inp)[1]))),
                   lambda x, gamma, beta, bn_param: fwd(x, gamma, beta)[0], grad_names=("x", "gamma", "beta"))


@SUITE.check("feedforward.init_weights")
def _(ctx):
    fan_in, fan_out = 400, 300
    expected_std = {"zero": 0.0, "normal": 0.05, "xavier": np.sqrt(2 / (fan_in + fan_out)), "he": np.sqrt(2 / fan_in)}
    for scheme, std in expected_std.items():
        with ctx.part(scheme):
            seed = int(ctx.rng.integers(1 << 31))
            w = ctx.array("w", ctx.call("init_weights", fan_in, fan_out, scheme, 0.05, seed), (fan_in, fan_out))
            if std == 0.0:
                ctx.expect(not np.any(w), f"{scheme}: expected all zeros, {np.count_nonzero(w)} entries are not")
                continue
            got_std = float(w.std())
            ctx.expect(abs(got_std - std) <= ctx.tol.stat_rtol * std,
                       f"{scheme}: standard deviation {got_std:.4g}, expected {std:.4g} for fan_in={fan_in}, "
                       f"fan_out={fan_out}")
            ctx.expect(abs(float(w.mean())) < 5 * std / np.sqrt(w.size), f"{scheme}: mean {w.mean():.3g} is not ~0")
            again = ctx.call("init_weights", fan_in, fan_out, scheme, 0.05, seed)
            ctx.expect(np.array_equal(again, w), f"{scheme}: the same seed gave different weights")


def _net_case(ctx, activation: str):
    """A small net built by the student, its parameters as data, and a batch away from ReLU kinks."""
    d, h, c, n = 9, 7, 4, 5
    handle = ctx.call("TwoLayerNet", d, h, c, activation, "normal", 0.5, 0.1, int(ctx.rng.integers(1 << 31)),
                      keep=True)
    params = ctx.attr(handle, "params")
    for key, shape in (("W1", (d, h)), ("b1", (h,)), ("W2", (h, c)), ("b2", (c,))):
        if key not in params:
            ctx.fail(f'params has no "{key}"')
        ctx.array(f'params["{key}"]', params[key], shape)
    x, y = ctx.rng.standard_normal((n, d)), ctx.rng.integers(0, c, n)
    return handle, params, x, y


def _reference_net(ref_net, params, activation, reg):
    net = ref_net.TwoLayerNet.__new__(ref_net.TwoLayerNet)
    net.activation, net.reg, net.params = activation, reg, {k: v.copy() for k, v in params.items()}
    return net


@SUITE.check("feedforward.TwoLayerNet")
def _(ctx):
    ref_net = ctx.ref("net")
    with ctx.part("params: shapes, zero biases, chosen init"):
        handle, params, x, y = _net_case(ctx, "relu")
        ctx.expect(not np.any(params["b1"]) and not np.any(params["b2"]), "biases should start at zero")
        ctx.expect(0.3 < params["W1"].std() < 0.7, f'"normal" init with weight_scale 0.5 gave W1 std '
                                                   f'{params["W1"].std():.3g}')
    for activation in ("relu", "tanh", "sigmoid"):
        with ctx.part(f"scores, loss and gradients ({activation})", 2 if activation == "relu" else 1):
            handle, params, x, y = _net_case(ctx, activation)
            ref = _reference_net(ref_net, params, activation, 0.1)
            ctx.compare("scores", ctx.method(handle, "loss", x), ref.loss(x))
            loss, grads = ctx.method(handle, "loss", x, y)
            want_loss, want_grads = ref.loss(x, y)
            ctx.compare("loss", loss, want_loss)
            for key in ("W1", "b1", "W2", "b2"):
                if key not in grads:
                    ctx.fail(f'grads has no "{key}"')
                ctx.compare_grad(f'grads["{key}"]', grads[key], want_grads[key])


@functools.lru_cache(maxsize=1)
def _mnist():
    return load_mnist(TRAINING.train_size, TRAINING.test_size)


@SUITE.check("feedforward.train")
def _(ctx):
    with ctx.part("history: one loss per step, accuracies per epoch, loss going down"):
        x, y = ctx.rng.standard_normal((60, 12)), ctx.rng.integers(0, 3, 60)
        model = ctx.call("TwoLayerNet", 12, 10, 3, "relu", "he", 1e-2, 0.0, 1, module="net", keep=True)
        hist = ctx.call("train", model, x, y, x[:20], y[:20], 0.5, 4, 16, 1.0, 3)
        if not isinstance(hist, dict) or not all(k in hist for k in ("loss", "train_acc", "val_acc")):
            ctx.fail('train should return a dict with "loss", "train_acc" and "val_acc"')
        steps = 4 * int(np.ceil(60 / 16))
        ctx.expect(len(hist["loss"]) == steps, f'history["loss"] has {len(hist["loss"])} entries, expected one '
                                               f"per step: {steps} (4 epochs of ceil(60 / 16) batches)")
        ctx.expect(len(hist["val_acc"]) == 4, f'history["val_acc"] has {len(hist["val_acc"])} entries, expected 4')
        loss = np.asarray(hist["loss"], dtype=np.float64)
        ctx.expect(loss.size > 8 and np.all(np.isfinite(loss)) and loss[-4:].mean() < loss[:4].mean(),
                   "the training loss does not go down on an easy problem")
    with ctx.part(f"test accuracy >= {TRAINING.min_accuracy} on MNIST", 2):
        _train_and_score(ctx, module="net", model_args=(784, TRAINING.hidden_dim, 10, "relu", "he", 1e-2,
                                                        TRAINING.reg, int(ctx.seed)), trainer="train")


def _train_and_score(ctx, module: str, model_args: tuple, trainer: str):
    """Train the student's model on the MNIST subset in the worker; score test images here (labels stay here)."""
    x_tr, y_tr, x_te, y_te = _mnist()
    t = TRAINING
    model = ctx.call("TwoLayerNet" if module == "net" else "TorchTwoLayerNet", *model_args, module=module, keep=True)
    ctx.call(trainer, model, x_tr, y_tr, x_tr[:1000], y_tr[:1000], t.learning_rate, t.epochs, t.batch_size,
             t.lr_decay, int(ctx.seed % 1000), module=module, timeout=t.time_budget_s)
    scores = ctx.method(model, "loss", x_te, module=module)
    acc = accuracy(scores, y_te)
    ctx.expect(acc >= t.min_accuracy, f"test accuracy {acc:.4f} is below {t.min_accuracy} "
                                      f"({t.train_size} training images, {t.epochs} epochs, seed {ctx.seed})")


@SUITE.check("feedforward.TorchTwoLayerNet")
def _(ctx):
    ref_net = ctx.ref("net")
    d, h, c, n = 11, 6, 4, 7
    params = {"W1": ctx.rng.standard_normal((d, h)) * 0.5, "b1": ctx.rng.standard_normal(h) * 0.1,
              "W2": ctx.rng.standard_normal((h, c)) * 0.5, "b2": ctx.rng.standard_normal(c) * 0.1}
    x, y = ctx.rng.standard_normal((n, d)), ctx.rng.integers(0, c, n)
    for activation, weight in (("relu", 2), ("tanh", 1)):
        with ctx.part(f"same loss and gradients as NumPy on the same weights ({activation}, float64)", weight):
            model = ctx.call("TorchTwoLayerNet", d, h, c, activation, 0.05, "float64", keep=True)
            ctx.method(model, "load_numpy_params", params)
            ref = _reference_net(ref_net, params, activation, 0.05)
            ctx.compare("scores", ctx.method(model, "loss", x), ref.loss(x), rtol=ctx.tol.parity_rtol)
            loss, grads = ctx.method(model, "loss", x, y)
            want_loss, want_grads = ref.loss(x, y)
            ctx.compare("loss", loss, want_loss, rtol=ctx.tol.parity_rtol)
            for key in ("W1", "b1", "W2", "b2"):
                if key not in grads:
                    ctx.fail(f'grads has no "{key}"')
                ctx.compare_grad(f'grads["{key}"]', grads[key], want_grads[key], rtol=ctx.tol.parity_rtol)


@SUITE.check("feedforward.train_torch")
def _(ctx):
    with ctx.part(f"test accuracy >= {TRAINING.min_accuracy} on MNIST"):
        _train_and_score(ctx, module="torch_net", model_args=(784, TRAINING.hidden_dim, 10, "relu", TRAINING.reg,
                                                              "float32"), trainer="train_torch")


_m = functools.partial(mutant, "feedforward")

MUTANTS = (
    _m("affine_no_bias", "layers", "@ w + b  # (N, M)", "@ w  # (N, M)", "affine_forward",
       "forgets the bias"),
    _m("affine_dw_transposed", "layers", "dw = x.reshape(x.shape[0], -1).T @ dout",
       "dw = (dout.T @ x.reshape(x.shape[0], -1))", "affine_backward", "dW transposed"),
    _m("affine_db_not_summed", "layers", "db = dout.sum(axis=0)", "db = dout.mean(axis=0)", "affine_backward",
       "db averaged instead of summed over the batch"),
    _m("relu_leaky", "layers", "out = np.maximum(0, x)", "out = np.maximum(0.01 * x, x)", "relu_forward",
       "leaky ReLU instead of ReLU"),
    _m("relu_mask_wrong_side", "layers", "dx = dout * (x > 0)", "dx = dout * (x < 0)", "relu_backward",
       "ReLU mask on the wrong side"),
    _m("sigmoid_forward_wrong_sign", "layers", "out = np.where(x >= 0, 1 / (1 + z), z / (1 + z))",
       "out = np.where(x >= 0, z / (1 + z), 1 / (1 + z))", "sigmoid_forward", "computes sigmoid(-x)"),
    _m("tanh_forward_half_argument", "layers", "out = np.tanh(x)", "out = 2 / (1 + np.exp(-x)) - 1",
       "tanh_forward", "2 sigmoid(x) - 1, which is tanh(x / 2)"),
    _m("sigmoid_backward_missing_term", "layers", "dx = dout * out * (1 - out)", "dx = dout * out",
       "sigmoid_backward", "drops the (1 - s) factor"),
    _m("tanh_backward_not_squared", "layers", "dx = dout * (1 - out ** 2)", "dx = dout * (1 - out)",
       "tanh_backward", "1 - tanh instead of 1 - tanh^2"),
    _m("softmax_missing_1_over_N", "layers", "dx /= n  # the loss is a mean over the batch", "",
       "softmax_loss", "gradient of the sum, loss of the mean"),
    _m("softmax_no_max_shift", "layers", "shifted = x - x.max(axis=1, keepdims=True)", "shifted = x",
       "softmax_loss", "no max subtraction: overflow for large scores"),
    _m("softmax_wrong_sign", "layers", "dx[np.arange(n), y] -= 1", "dx[np.arange(n), y] += 1", "softmax_loss",
       "wrong sign on the true class"),
    _m("batchnorm_running_not_updated", "layers",
       "        running_mean = momentum * running_mean + (1 - momentum) * mu\n"
       "        running_var = momentum * running_var + (1 - momentum) * var\n", "", "batchnorm_forward",
       "running statistics never updated"),
    _m("batchnorm_momentum_swapped", "layers", "running_mean = momentum * running_mean + (1 - momentum) * mu",
       "running_mean = (1 - momentum) * running_mean + momentum * mu", "batchnorm_forward",
       "momentum applied to the batch statistic"),
    _m("batchnorm_test_uses_batch_stats", "layers",
       "out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta",
       "out = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta", "batchnorm_forward",
       "test mode normalises with the batch statistics"),
    _m("batchnorm_backward_no_mean_terms", "layers",
       "dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))",
       "dx = inv_std * dx_hat", "batchnorm_backward", "ignores that the batch statistics depend on x"),
    _m("init_he_wrong_scale", "layers", '"he": np.sqrt(2.0 / fan_in)', '"he": np.sqrt(1.0 / fan_in)',
       "init_weights", "He init with variance 1/fan_in"),
    _m("net_reg_missing_in_grad", "net", '"W1": dW1 + self.reg * p["W1"]', '"W1": dW1', "TwoLayerNet", "regularisation gradient missing for W1"),
    _m("train_step_sign", "net", "model.params[k] -= learning_rate * g", "model.params[k] += learning_rate * g",
       "train", "gradient ascent"),
    _m("torch_load_not_transposed", "torch_net", 'self.fc1.weight.copy_(torch.as_tensor(params["W1"]).T)',
       'self.fc1.weight.copy_(torch.as_tensor(params["W1"]).reshape(self.fc1.weight.shape))',
       "TorchTwoLayerNet", "reshapes W1 instead of transposing it"),
    _m("torch_sum_reduction", "torch_net", "nn.functional.cross_entropy(scores, y) + penalty",
       'nn.functional.cross_entropy(scores, y, reduction="sum") + penalty', "TorchTwoLayerNet",
       "summed instead of mean cross-entropy"),
    _m("torch_no_optimizer_step", "torch_net", "            opt.step()\n", "", "train_torch",
       "never updates the weights"),
)
