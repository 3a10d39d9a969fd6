"""Public checks of topic 1 (feedforward), shipped to students and run by `dlcore check feedforward`.

The oracle is PyTorch in float64 (never the reference solution), plus numerical gradients of the student's own
forward pass. Inputs come from a fixed public seed. The hidden suite checks more, on other inputs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.checks import Suite, backward_parts, forward_part, student_forward
from autograder.runner import accuracy
from course_config import FEEDFORWARD
from toolkit.data import load_mnist
from toolkit.gradcheck import away_from_kinks
from toolkit.parity import torch_reference

SUITE = Suite("feedforward", "public")


def _torch_affine(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b


def _affine_inputs(ctx):
    return {"x": ctx.rng.standard_normal((2, 3, 4)), "w": ctx.rng.standard_normal((12, 5)),
            "b": ctx.rng.standard_normal(5)}


@SUITE.check("feedforward.affine_forward")
def _(ctx):
    inp = _affine_inputs(ctx)
    forward_part(ctx, "affine_forward", inp, torch_reference(_torch_affine, inp, np.ones((2, 5)))[0])


@SUITE.check("feedforward.affine_backward")
def _(ctx):
    inp = _affine_inputs(ctx)
    backward_parts(ctx, "affine_forward", "affine_backward", inp,
                   lambda dout: torch_reference(_torch_affine, inp, dout)[1], student_forward(ctx, "affine_forward"))


_TORCH_ACT = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def _act_inputs(ctx, name):
    x = ctx.rng.standard_normal((3, 4)) * 3
    return {"x": away_from_kinks(x, ctx.tol.kink_margin) if name == "relu" else x}


for _name, _fn in _TORCH_ACT.items():
    def _register(name=_name, fn=_fn):
        @SUITE.check(f"feedforward.{name}_forward")
        def _(ctx):
            inp = _act_inputs(ctx, name)
            forward_part(ctx, f"{name}_forward", inp, torch_reference(fn, inp, np.ones((3, 4)))[0])

        @SUITE.check(f"feedforward.{name}_backward")
        def _(ctx):
            inp = _act_inputs(ctx, name)
            backward_parts(ctx, f"{name}_forward", f"{name}_backward", inp,
                           lambda dout: torch_reference(fn, inp, dout)[1], student_forward(ctx, f"{name}_forward"))
    _register()


@SUITE.check("feedforward.softmax_loss")
def _(ctx):
    x, y = ctx.rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    for label, scale in (("loss and dx", 1.0), ("scores of size 1e3 (stability)", 1e3)):
        with ctx.part(label):
            xs = x * scale
            loss_t, grads = torch_reference(lambda x: F.cross_entropy(x, torch.tensor(y)), {"x": xs}, 1.0)
            loss, dx = ctx.call("softmax_loss", xs, y)
            ctx.compare("loss", loss, loss_t, rtol=1e-6)
            ctx.compare_grad("dx", dx, grads["x"])


@SUITE.check("feedforward.batchnorm_forward")
def _(ctx):
    x = ctx.rng.standard_normal((6, 3)) * 2 + 1
    gamma, beta = ctx.rng.standard_normal(3), ctx.rng.standard_normal(3)
    bn = {"mode": "train", "momentum": 0.9, "eps": 1e-5, "running_mean": np.zeros(3), "running_var": np.ones(3)}
    want = F.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta), training=True,
                        eps=1e-5).numpy()
    with ctx.part("train mode and running statistics"):
        (out, _), (after,) = ctx.call("batchnorm_forward", x, gamma, beta, dict(bn), keep=(1,), echo=(3,))
        ctx.compare("out", out, want)
        # running = momentum * running + (1 - momentum) * batch statistic, with the biased batch variance
        ctx.compare('bn_param["running_mean"]', after.get("running_mean"), 0.1 * x.mean(axis=0))
        ctx.compare('bn_param["running_var"]', after.get("running_var"), 0.9 + 0.1 * x.var(axis=0))
    with ctx.part("test mode"):
        rm, rv = ctx.rng.standard_normal(3), ctx.rng.uniform(0.5, 2, 3)
        test_bn = dict(bn, mode="test", running_mean=rm, running_var=rv)
        want = F.batch_norm(torch.tensor(x), torch.tensor(rm), torch.tensor(rv), torch.tensor(gamma),
                            torch.tensor(beta), training=False, eps=1e-5).numpy()
        (out, _) = ctx.call("batchnorm_forward", x, gamma, beta, test_bn, keep=(1,))
        ctx.compare("out", out, want)


@SUITE.check("feedforward.batchnorm_backward")
def _(ctx):
    x = ctx.rng.standard_normal((5, 4)) * 2 + 1
    inp = {"x": x, "gamma": ctx.rng.standard_normal(4), "beta": ctx.rng.standard_normal(4)}

    def torch_bn(x, gamma, beta):
        return F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)

    backward_parts(ctx, "batchnorm_forward", "batchnorm_backward", dict(inp, bn_param={"mode": "train"}),
                   lambda dout: torch_reference(torch_bn, inp, dout)[1], student_forward(ctx, "batchnorm_forward"),
                   grad_names=("x", "gamma", "beta"))


@SUITE.check("feedforward.init_weights")
def _(ctx):
    fan_in, fan_out = 300, 200
    for scheme, std in (("zero", 0.0), ("normal", 0.01), ("xavier", np.sqrt(2 / 500)), ("he", np.sqrt(2 / 300))):
        with ctx.part(scheme):
            w = ctx.array("w", ctx.call("init_weights", fan_in, fan_out, scheme, 0.01, 7), (fan_in, fan_out))
            ctx.expect(abs(w.std() - std) <= ctx.tol.stat_rtol * std,
                       f"{scheme}: standard deviation {w.std():.4g}, expected {std:.4g}")


def _torch_net_loss(x, y, reg):
    """The two-layer ReLU net's loss as a torch function of its params (the oracle for both nets)."""
    def loss(W1, b1, W2, b2):
        scores = torch.relu(torch.tensor(x) @ W1 + b1) @ W2 + b2
        return F.cross_entropy(scores, torch.tensor(y)) + 0.5 * reg * (W1.pow(2).sum() + W2.pow(2).sum())
    return loss


@SUITE.check("feedforward.TwoLayerNet")
def _(ctx):
    d, h, c = 6, 5, 3
    x, y = ctx.rng.standard_normal((4, d)), np.array([0, 2, 1, 1])
    with ctx.part("scores, loss and gradients match torch autograd on your params"):
        model = ctx.call("TwoLayerNet", d, h, c, "relu", "normal", 0.5, 0.1, 0, keep=True)
        p = ctx.attr(model, "params")

        want_loss, want_grads = torch_reference(_torch_net_loss(x, y, 0.1), {k: p[k] for k in ("W1", "b1", "W2", "b2")}, 1.0)
        scores = ctx.method(model, "loss", x)
        ctx.compare("scores", scores, np.maximum(0, x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"])
        loss, grads = ctx.method(model, "loss", x, y)
        ctx.compare("loss", loss, want_loss)
        for key, want in want_grads.items():
            ctx.compare_grad(f'grads["{key}"]', grads[key], want)


@SUITE.check("feedforward.train")
def _(ctx):
    t = FEEDFORWARD.training
    with ctx.part("a short run on 2,000 MNIST images reaches 0.85 test accuracy"):
        x_tr, y_tr, x_te, y_te = load_mnist(2000, 1000)
        model = ctx.call("TwoLayerNet", 784, 64, 10, "relu", "he", 1e-2, t.reg, 0, module="net", keep=True)
        hist = ctx.call("train", model, x_tr, y_tr, x_tr[:200], y_tr[:200], t.learning_rate, 3, t.batch_size,
                        t.lr_decay, 0, timeout=t.time_budget_s)
        ctx.expect(isinstance(hist, dict) and len(hist.get("loss", [])) == 3 * 2000 // t.batch_size,
                   f'history["loss"] should hold one value per step ({3 * 2000 // t.batch_size})')
        acc = accuracy(ctx.method(model, "loss", x_te), y_te)
        ctx.expect(acc >= 0.85, f"test accuracy {acc:.3f} < 0.85 after 3 epochs")


@SUITE.check("feedforward.TorchTwoLayerNet")
def _(ctx):
    d, h, c = 6, 5, 3
    x, y = ctx.rng.standard_normal((4, d)), np.array([0, 2, 1, 1])
    params = {"W1": ctx.rng.standard_normal((d, h)), "b1": ctx.rng.standard_normal(h),
              "W2": ctx.rng.standard_normal((h, c)), "b2": ctx.rng.standard_normal(c)}
    with ctx.part("NumPy params loaded; loss and gradients equal torch.nn.functional's (float64)"):
        model = ctx.call("TorchTwoLayerNet", d, h, c, "relu", 0.1, "float64", keep=True)
        ctx.method(model, "load_numpy_params", params)

        want_loss, want_grads = torch_reference(_torch_net_loss(x, y, 0.1), params, 1.0)
        loss, grads = ctx.method(model, "loss", x, y)
        ctx.compare("loss", loss, want_loss, rtol=ctx.tol.parity_rtol)
        for key, want in want_grads.items():
            ctx.compare_grad(f'grads["{key}"]', grads[key], want, rtol=ctx.tol.parity_rtol)


@SUITE.check("feedforward.train_torch")
def _(ctx):
    t = FEEDFORWARD.training
    with ctx.part("a short run on 2,000 MNIST images reaches 0.85 test accuracy"):
        x_tr, y_tr, x_te, y_te = load_mnist(2000, 1000)
        model = ctx.call("TorchTwoLayerNet", 784, 64, 10, "relu", t.reg, "float32", keep=True)
        ctx.call("train_torch", model, x_tr, y_tr, x_tr[:200], y_tr[:200], t.learning_rate, 3, t.batch_size,
                 t.lr_decay, 0, timeout=t.time_budget_s)
        acc = accuracy(ctx.method(model, "loss", x_te), y_te)
        ctx.expect(acc >= 0.85, f"test accuracy {acc:.3f} < 0.85 after 3 epochs")
