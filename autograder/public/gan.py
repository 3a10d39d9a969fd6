"""The checks of topic 6 (gan), one per task, and its public suite (`dlcore check gan`).

Expected values come from `ctx.oracle`: formulas written here with PyTorch in float64 (never the reference
solution), or the reference in the hidden suite (autograder/hidden/gan.py), which runs the same checks on other
sizes and per-student inputs, and the full training run. Student code is PyTorch; the checks reach it through the
given helpers at the end of gan_pytorch.py (NumPy in, NumPy out; dcgan.py and plots.py import the ones they
need). Models the checks build (the MLPs of the penalty, step and grid checks) come from the given `mlp` helper
with the grader's weights, so each task is graded on its own. The public suite runs the full training run too.
The training run's samples are scored here, in the grader, by toolkit.image_metrics (FID and class coverage from
the course's MNIST classifier, through torchmetrics).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import Checks, describe, train_to_bar

CHECKS = Checks("gan")

# -- the oracle: formulas in PyTorch, with the contract of the given helpers -----------------------------------------


def _t(a):
    """A float64 tensor of an array (a tensor stays as it is, with its graph)."""
    return a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float64))


def torch_mlp(params, x, out="none", slope=0.01):
    """x @ W + b through the layers, LeakyReLU(slope) (ReLU for 0) between them, tanh after the last if asked."""
    h = _t(x)
    for i, (W, b) in enumerate(params):
        h = h @ _t(W) + _t(b)
        if i < len(params) - 1:
            h = F.leaky_relu(h, slope) if slope else torch.relu(h)
    return torch.tanh(h) if out == "tanh" else h


def _bce(logits, target):
    """Mean BCE of logits against a constant target: softplus(x) - t x, stable (softplus never overflows)."""
    return (F.softplus(logits) - target * logits).mean()


def _params(model):
    return [(m.weight.detach().T, m.bias.detach()) for m in model if isinstance(m, nn.Linear)]


class TorchOracle:
    """Expected values from PyTorch formulas: models on given weights, the losses, the penalty and one step."""

    def __init__(self, ctx):
        pass

    @staticmethod
    def mlp_forward(params, x, out="none", slope=0.01):
        return torch_mlp(params, x, out, slope).numpy()

    @staticmethod
    def dc_parameter_shapes(which, noise_dim):
        """Sorted parameter shapes of the documented DCGAN discriminator ("D") or generator ("G")."""
        if which == "D":
            shapes = [(32, 1, 5, 5), (32,), (64, 32, 5, 5), (64,), (1024, 1024), (1024,), (1, 1024), (1,)]
        else:
            shapes = [(1024, noise_dim), (1024,), (1024,), (1024,), (6272, 1024), (6272,), (6272,), (6272,),
                      (128, 64, 4, 4), (64,), (64,), (64,), (64, 1, 4, 4), (1,)]
        return sorted(shapes)

    @staticmethod
    def loss(name, *arrays, real_label=1.0):
        x = [_t(a).reshape(-1) for a in arrays]
        value = {"discriminator_loss": lambda: _bce(x[0], real_label) + _bce(x[1], 0.0),
                 "generator_loss": lambda: _bce(x[0], 1.0),
                 "ls_discriminator_loss": lambda: 0.5 * ((x[0] - 1) ** 2).mean() + 0.5 * (x[1] ** 2).mean(),
                 "ls_generator_loss": lambda: 0.5 * ((x[0] - 1) ** 2).mean()}[name]()
        return float(value)

    @classmethod
    def penalty(cls, d_params, real, fake, alpha):
        """(penalty, [(dW, db), ...] of the penalty with respect to D's weights)."""
        params = [(W.clone().requires_grad_(True), b.clone().requires_grad_(True)) for W, b in
                  ((_t(W), _t(b)) for W, b in d_params)]
        alpha = _t(alpha)
        x_hat = (alpha * _t(real) + (1 - alpha) * _t(fake)).requires_grad_(True)
        (grad,) = torch.autograd.grad(torch_mlp(params, x_hat).sum(), x_hat, create_graph=True)
        penalty = ((torch.linalg.vector_norm(grad, dim=1) - 1) ** 2).mean()
        flat = [p for pair in params for p in pair]
        grads = torch.autograd.grad(penalty, flat, allow_unused=True)
        out = [g.detach().numpy() if g is not None else np.zeros(p.shape) for g, p in zip(grads, flat)]
        return float(penalty), [(out[2 * i], out[2 * i + 1]) for i in range(len(params))]

    @classmethod
    def step(cls, which, d_params, g_params, real, noise, lr, real_label=1.0, gp_weight=0.0, loss="bce",
             alpha=None):
        """One SGD step of D or G: (values, D's params after, G's params after)."""
        d = [tuple(_t(a).clone().requires_grad_(True) for a in pair) for pair in d_params]
        g = [tuple(_t(a).clone().requires_grad_(True) for a in pair) for pair in g_params]
        fake = torch_mlp(g, noise, "tanh", 0.0)
        if which == "D":
            real_t, fake = _t(real), fake.detach()
            s_real, s_fake = torch_mlp(d, real_t), torch_mlp(d, fake)
            if loss == "bce":
                value = _bce(s_real.reshape(-1), real_label) + _bce(s_fake.reshape(-1), 0.0)
                values = {"d_real": float(torch.sigmoid(s_real).mean()), "d_fake": float(torch.sigmoid(s_fake).mean())}
            else:
                value = 0.5 * ((s_real - 1) ** 2).mean() + 0.5 * (s_fake ** 2).mean()
                values = {"d_real": float(s_real.mean()), "d_fake": float(s_fake.mean())}
            if gp_weight > 0:
                a = _t(alpha)
                x_hat = (a * real_t + (1 - a) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(torch_mlp(d, x_hat).sum(), x_hat, create_graph=True)
                value = value + gp_weight * ((torch.linalg.vector_norm(grad, dim=1) - 1) ** 2).mean()
            values["d_loss"] = float(value)
            updated = d
        else:
            s_fake = torch_mlp(d, fake).reshape(-1)
            value = _bce(s_fake, 1.0) if loss == "bce" else 0.5 * ((s_fake - 1) ** 2).mean()
            values, updated = {"g_loss": float(value)}, g
        flat = [p for pair in updated for p in pair]
        grads = torch.autograd.grad(value, flat, allow_unused=True)
        with torch.no_grad():
            for p, gr in zip(flat, grads):
                if gr is not None:
                    p -= lr * gr
        as_np = lambda ps: [tuple(a.detach().numpy() for a in pair) for pair in ps]  # noqa: E731
        return values, as_np(d), as_np(g)


# -- inputs -------------------------------------------------------------------------------------------------------


def _layers(ctx, sizes, scale=1.0) -> list:
    """Course-layout weights [(W (D_in, D_out), b (D_out,)), ...] for layer sizes, He-like scale."""
    return [(ctx.rng.standard_normal((a, b)) * scale * np.sqrt(2.0 / a), 0.1 * ctx.rng.standard_normal(b))
            for a, b in zip(sizes[:-1], sizes[1:])]


def _images(ctx, n):
    """(n, 784) images in [-1, 1]: mostly background at -1 with bright strokes, like MNIST."""
    x = -np.ones((n, 784))
    strokes = ctx.rng.random((n, 784)) < 0.2
    x[strokes] = ctx.rng.uniform(-0.5, 1.0, strokes.sum())
    return x


def _floats(ctx, name: str, got, shape) -> np.ndarray:
    """`got` as float64 after type and shape checks; float32 is fine here (torch models compute in float32)."""
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "biuf":
        ctx.fail(f"{name} should be a tensor or array of numbers, got {describe(got)}")
    if got.shape != tuple(shape):
        ctx.fail(f"{name} has shape {got.shape}, expected {tuple(shape)}")
    got = got.astype(np.float64)
    if not np.all(np.isfinite(got)):
        ctx.fail(f"{name} has {int(np.sum(~np.isfinite(got)))} NaN or infinite entries")
    return got


def _pairs(ctx, name: str, value, n: int) -> list:
    """`value` as n (weight, bias) pairs, the layout of the given helpers' [(W, b), ...] lists."""
    if not (isinstance(value, (list, tuple)) and len(value) == n
            and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value)):
        ctx.fail(f"{name} should be {n} (weight, bias) pairs, got {describe(value)}")
    return [tuple(p) for p in value]


def _close(ctx, name: str, got, expected, rtol: float) -> None:
    """max |got - expected| / max(1, |expected|) <= rtol, with shape and type checks for float32 or float64."""
    expected = np.asarray(expected, dtype=np.float64)
    got = _floats(ctx, name, got, expected.shape)
    err = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0))
    ctx.expect(err <= rtol, f"{name} differs from the expected values by {err:.3g} (relative, tolerance {rtol:g}; "
                            f"e.g. got {got.reshape(-1)[:3].round(5).tolist()}, expected "
                            f"{expected.reshape(-1)[:3].round(5).tolist()}; seed {ctx.seed})")


# -- noise, models, optimizer ------------------------------------------------------------------------------------


@CHECKS.task("gan.sample_noise")
def _(ctx):
    n, dim = ctx.pick((200, 100), (250, 96))
    seed = int(ctx.rng.integers(1 << 30))
    with ctx.part(f"shape ({n}, {dim}), uniform in (-1, 1): mean 0, std 1/sqrt(3), reaching both ends"):
        z = _floats(ctx, "noise", ctx.call("sample_noise", n, dim, seed, returns="array"), (n, dim))
        # <= 1, not < 1: 2 * torch.rand() - 1 and uniform_(-1, 1) can return exactly -1 (in float32)
        ctx.expect(bool(np.all(np.abs(z) <= 1)),
                   f"values must lie in (-1, 1); found min {z.min():.3f}, max {z.max():.3f}")
        # 20,000+ draws: the mean's standard error is 0.004 and the std's about 0.002, so these are 5 sigma and more
        ctx.expect(abs(z.mean()) < 0.02, f"the mean is {z.mean():.4f}, expected about 0 for U(-1, 1)")
        ctx.expect(abs(z.std() - 3 ** -0.5) < 0.02,
                   f"the std is {z.std():.4f}, expected 1/sqrt(3) = 0.5774 for U(-1, 1)")
        ctx.expect(z.min() < -0.95 and z.max() > 0.95, f"the draws span [{z.min():.3f}, {z.max():.3f}], not (-1, 1)")
    with ctx.part("the same seed gives the same noise, another seed other noise"):
        a = ctx.call("sample_noise", 4, dim, seed, returns="array")
        b = ctx.call("sample_noise", 4, dim, seed, returns="array")
        c = ctx.call("sample_noise", 4, dim, seed + 1, returns="array")
        ctx.expect(np.array_equal(a, b), "two calls with the same seed gave different noise (seed torch first)")
        ctx.expect(not np.array_equal(a, c), "seeds differ but the noise is the same")


def _mlp_part(ctx, fn: str, args: tuple, shapes: list, out: str, slope: float, in_dim: int):
    """The model made by fn(*args) has Linear layers of these (D_in, D_out) shapes and computes the documented MLP
    on its own weights."""
    n = ctx.pick(5, 7)
    with ctx.part(f"{fn}: Linear layers {' -> '.join(str(s[0]) for s in shapes)} -> {shapes[-1][1]}, and the "
                  f"forward pass on its own weights"):
        model = ctx.call(fn, *args, keep=True)
        layers = ctx.call("linear_layers", model, returns="list")
        layers = _pairs(ctx, "the Linear layers", layers, len(layers) if isinstance(layers, list) else -1)
        got = [tuple(np.shape(W)) for W, _ in layers]
        if got != shapes:
            ctx.fail(f"the Linear layers have weights (D_in, D_out) {got}; expected {shapes}")
        x = ctx.rng.uniform(-1, 1, (n, in_dim)) if in_dim != 784 else _images(ctx, n)
        want = ctx.oracle.mlp_forward(layers, x, out, slope)
        _close(ctx, "output", ctx.call("model_outputs", model, x), want, ctx.tol.float32_rtol)
    with ctx.part(f"{fn}: the same seed gives the same weights (first layer {shapes[0][0]} -> {shapes[0][1]})"):
        again = ctx.call("linear_layers", ctx.call(fn, *args, keep=True), returns="list")
        ctx.expect(all(np.array_equal(a[0], b[0]) for a, b in zip(layers, again)),
                   "two models built with the same seed differ (call torch.manual_seed(seed) before building)")


@CHECKS.task("gan.discriminator")
def _(ctx):
    _mlp_part(ctx, "discriminator", (int(ctx.rng.integers(1000)),), [(784, 256), (256, 256), (256, 1)], "none",
              0.01, 784)


@CHECKS.task("gan.generator")
def _(ctx):
    dim = ctx.pick(96, int(ctx.rng.integers(20, 120)))
    _mlp_part(ctx, "generator", (dim, int(ctx.rng.integers(1000))), [(dim, 1024), (1024, 1024), (1024, 784)],
              "tanh", 0.0, dim)
    hidden = ctx.pick(256, int(ctx.rng.integers(100, 300)))
    _mlp_part(ctx, "generator", (dim, int(ctx.rng.integers(1000)), hidden),
              [(dim, hidden), (hidden, hidden), (hidden, 784)], "tanh", 0.0, dim)


def _dc_part(ctx, fn: str, args: tuple, which: str, in_dim: int, noise_dim: int):
    n = ctx.pick(3, 4)
    with ctx.part(f"{fn}: the documented layers (parameter shapes) and output shape"):
        model = ctx.call(fn, *args, keep=True)
        shapes = ctx.call("parameter_shapes", model, returns="list")
        if not all(isinstance(shape, (list, tuple)) and all(isinstance(d, int) for d in shape) for shape in shapes):
            ctx.fail(f"parameter_shapes returned {describe(shapes)}; expected a list of shapes")
        shapes = sorted(tuple(shape) for shape in shapes)
        want = ctx.oracle.dc_parameter_shapes(which, noise_dim)
        if shapes != want:
            ctx.fail(f"the parameter shapes are {shapes}; expected {want}")
        x = _images(ctx, n) if which == "D" else ctx.rng.uniform(-1, 1, (n, in_dim))
        out = _floats(ctx, "output", ctx.call("model_outputs", model, x), (n, 1) if which == "D" else (n, 784))
        if which == "G":
            ctx.expect(bool(np.all(np.abs(out) <= 1)), "the generator's images must lie in [-1, 1] (a final Tanh)")


@CHECKS.task("gan.build_dc_classifier")
def _(ctx):
    _dc_part(ctx, "build_dc_classifier", (int(ctx.rng.integers(1000)),), "D", 784, 0)


@CHECKS.task("gan.build_dc_generator")
def _(ctx):
    dim = ctx.pick(96, 64)
    _dc_part(ctx, "build_dc_generator", (dim, int(ctx.rng.integers(1000))), "G", dim, dim)


@CHECKS.task("gan.get_optimizer")
def _(ctx):
    with ctx.part("Adam over all the model's parameters, learning rate 1e-3, betas (0.5, 0.999)"):
        params = _layers(ctx, ctx.pick([20, 8, 1], [30, 12, 6, 1]))
        model = ctx.call("mlp", params, keep=True)
        opt = ctx.call("get_optimizer", model, keep=True)
        if getattr(opt, "type", "") != "Adam":
            ctx.fail(f"get_optimizer returned {describe(opt)}; expected a torch.optim.Adam")
        defaults = ctx.attr(opt, "defaults", returns="dict")
        lr, betas = defaults.get("lr"), defaults.get("betas")
        ctx.expect(isinstance(lr, (int, float)) and abs(float(lr) - 1e-3) < ctx.tol.exact_rtol,
                   f"the learning rate is {lr!r}; expected 1e-3")
        ctx.expect(isinstance(betas, (tuple, list)) and len(betas) == 2 and
                   np.allclose(np.asarray(betas, dtype=float), (0.5, 0.999), rtol=0, atol=ctx.tol.exact_rtol),
                   f"betas are {betas!r}; expected (0.5, 0.999)")
        groups = ctx.attr(opt, "param_groups", returns="list")
        sizes = sorted(int(np.size(p)) for g in groups if isinstance(g, dict) for p in g.get("params", []))
        want = sorted(int(np.size(a)) for pair in params for a in pair)
        ctx.expect(sizes == want, f"the optimizer holds parameters of sizes {sizes}; expected the model's {want}")


# -- losses -------------------------------------------------------------------------------------------------------


def _logits(ctx, n, scale=2.0, shift=0.0):
    return shift + scale * ctx.rng.standard_normal(n)


def _huge(ctx, n):
    """Logits of size 1e3 of both signs: exp overflows (log(sigmoid) gives -inf) unless the loss is stable."""
    return ctx.rng.choice([-1.0, 1.0], n) * ctx.rng.uniform(500, 1000, n)


def _loss_part(ctx, label: str, name: str, arrays: tuple, **kw):
    with ctx.part(label):
        want = ctx.oracle.loss(name, *arrays, **kw)
        got = ctx.scalar(name, ctx.call("loss_value", name, *arrays, **kw, returns="number"))
        if not np.isfinite(got):
            ctx.fail(f"{name} is {got} on these logits; compute it without log(sigmoid(x)) (e.g. the given bce_loss)")
        ctx.compare(name, got, want, ctx.tol.accumulated_rtol)


@CHECKS.task("gan.discriminator_loss")
def _(ctx):
    n = ctx.pick(8, 11)
    real, fake = _logits(ctx, n, shift=1.0), _logits(ctx, n, shift=-1.0)
    _loss_part(ctx, "logits (N,), default real_label: BCE(real, 1) + BCE(fake, 0)", "discriminator_loss",
               (real, fake))
    _loss_part(ctx, "logits (N, 1)", "discriminator_loss", (real[:, None], fake[:, None]))
    _loss_part(ctx, "real_label=0.9: one-sided smoothing, the real targets only (fake targets stay 0)",
               "discriminator_loss", (_logits(ctx, n, shift=1.5), _logits(ctx, n, shift=-0.5)), real_label=0.9)
    _loss_part(ctx, "logits of size 1e3 (stability), real_label=0.9", "discriminator_loss",
               (_huge(ctx, n), _huge(ctx, n)), real_label=0.9)


@CHECKS.task("gan.generator_loss")
def _(ctx):
    n = ctx.pick(8, 13)
    _loss_part(ctx, "logits (N,): the non-saturating loss BCE(fake, 1)", "generator_loss", (_logits(ctx, n),))
    _loss_part(ctx, "logits (N, 1)", "generator_loss", (_logits(ctx, n, shift=-2.0)[:, None],))
    _loss_part(ctx, "logits of size 1e3 (stability)", "generator_loss", (_huge(ctx, n),))


@CHECKS.task("gan.ls_discriminator_loss")
def _(ctx):
    n = ctx.pick(8, 9)
    _loss_part(ctx, "scores (N,)", "ls_discriminator_loss", (_logits(ctx, n, 1.0, 0.7), _logits(ctx, n, 1.0, 0.3)))
    _loss_part(ctx, "scores (N, 1)", "ls_discriminator_loss",
               (_logits(ctx, n, 1.0, 0.5)[:, None], _logits(ctx, n, 1.0, 0.5)[:, None]))


@CHECKS.task("gan.ls_generator_loss")
def _(ctx):
    n = ctx.pick(8, 9)
    _loss_part(ctx, "scores (N,)", "ls_generator_loss", (_logits(ctx, n, 1.0, 0.2),))
    _loss_part(ctx, "scores (N, 1)", "ls_generator_loss", (_logits(ctx, n, 1.0, -0.3)[:, None],))


# -- gradient penalty ----------------------------------------------------------------------------------------------


@CHECKS.task("gan.gradient_penalty")
def _(ctx):
    n, h = ctx.pick((6, 16), (7, 24))
    d_params = _layers(ctx, [784, h, h, 1])
    real, fake = _images(ctx, n), np.tanh(ctx.rng.standard_normal((n, 784)))
    alpha = ctx.rng.random((n, 1))
    want, want_grads = ctx.oracle.penalty(d_params, real, fake, alpha)
    with ctx.part("value: mean over examples of (||grad D(x_hat)||_2 - 1)^2 at x_hat = alpha real + (1 - alpha) fake"):
        got, _ = ctx.call("penalty_and_grads", d_params, real, fake, alpha, False, returns=("number", "any"))
        ctx.compare("penalty", ctx.scalar("penalty", got), want, ctx.tol.accumulated_rtol)
    with ctx.part("its gradient reaches D's parameters (torch.autograd.grad with create_graph=True)", 2):
        _, grads = ctx.call("penalty_and_grads", d_params, real, fake, alpha, True, returns=("number", "list"))
        grads = _pairs(ctx, "the gradients of D's layers", grads, len(want_grads))
        for i, (pair, want_pair) in enumerate(zip(grads, want_grads)):
            for name, g, w in zip(("W", "b"), pair, want_pair):
                if g is None:
                    if np.any(w != 0):
                        ctx.fail(f"no gradient reached {name}{i + 1}: the penalty must be differentiable with "
                                 f"respect to D's parameters (create_graph=True)")
                    continue
                ctx.compare_grad(f"d{name}{i + 1}", g, w, ctx.tol.accumulated_rtol)


# -- one step of D and of G ----------------------------------------------------------------------------------------


def _step_inputs(ctx):
    n, dim, h = ctx.pick((6, 8, 16), (7, 10, 20))
    return {"d_params": _layers(ctx, [784, h, h, 1], 0.5), "g_params": _layers(ctx, [dim, 2 * h, 2 * h, 784]),
            "real": _images(ctx, n), "noise": ctx.rng.uniform(-1, 1, (n, dim)), "lr": 0.5}


def _untouched(ctx, model: str, before, after, grads) -> None:
    """`model`'s parameters are unchanged and hold no gradient (None or zero)."""
    for i, ((W0, b0), (W1, b1)) in enumerate(zip(before, after)):
        ctx.expect(np.array_equal(W0, W1) and np.array_equal(b0, b1), f"{model}'s layer {i + 1} changed")
    if not all(g is None or (isinstance(g, np.ndarray) and g.dtype.kind in "biuf") for pair in grads for g in pair):
        ctx.fail(f"{model}'s gradients should be arrays or None, got {describe(grads)}")
    stored = [float(np.abs(g.astype(np.float64)).max()) for pair in grads for g in pair if g is not None and g.size]
    ctx.expect(not any(v > 0 for v in stored), f"{model}'s parameters hold gradients after the step (largest "
                                               f"{max(stored, default=0):.3g}); {model} must receive none")


def _step_parts(ctx, which: str, label: str, inp: dict, **kw):
    want, want_d, want_g = ctx.oracle.step(which, **inp, **kw)
    args = (which, inp["d_params"], inp["g_params"], inp["real"], inp["noise"], inp["lr"])
    keys = ("d_loss", "d_real", "d_fake") if which == "D" else ("g_loss",)
    # set by the try below; where it fails, each part re-raises `problem` before using `result`
    result: Any = None
    problem: Exception | None = None
    try:
        result = ctx.call("one_step", *args, **kw, returns=({k: "number" for k in keys}, "list", "list", "list",
                                                            "list"))
        result = (result[0], *(_pairs(ctx, what, value, 3) for what, value in zip(
            ("D's parameters", "G's parameters", "D's gradients", "G's gradients"), result[1:])))
    except Exception as exc:  # noqa: BLE001 -- each part re-raises it and names it
        problem = exc
    trained, other = ("D", "G") if which == "D" else ("G", "D")
    with ctx.part(f"{label}: {trained}'s parameters after one SGD step on the loss"):
        if problem is not None:
            raise problem
        got = result[1] if which == "D" else result[2]
        for i, (pair, want_pair) in enumerate(zip(got, want_d if which == "D" else want_g)):
            for name, g, w in zip(("W", "b"), pair, want_pair):
                _close(ctx, f"{trained}'s {name}{i + 1}", g, w, ctx.tol.formula_rtol)
    with ctx.part(f"{label}: {other} gets no gradient and no update"
                  + (" (the fake images are detached from G)" if which == "D" else " (D frozen or its gradients "
                                                                                     "cleared)")):
        if problem is not None:
            raise problem
        before = inp["g_params"] if which == "D" else inp["d_params"]
        after, grads = (result[2], result[4]) if which == "D" else (result[1], result[3])
        _untouched(ctx, other, before, after, grads)
    with ctx.part(f"{label}: the returned {', '.join(keys)}", 0.5):
        if problem is not None:
            raise problem
        for k in keys:
            ctx.compare(k, ctx.scalar(k, result[0][k]), want[k], ctx.tol.accumulated_rtol)


@CHECKS.task("gan.discriminator_step")
def _(ctx):
    inp = _step_inputs(ctx)
    _step_parts(ctx, "D", "BCE", inp)
    alpha = ctx.rng.random((len(inp["real"]), 1))
    _step_parts(ctx, "D", "BCE, real_label=0.9, gp_weight=10", _step_inputs(ctx), real_label=0.9, gp_weight=10.0,
                alpha=alpha)
    _step_parts(ctx, "D", "least squares", _step_inputs(ctx), loss="ls")


@CHECKS.task("gan.generator_step")
def _(ctx):
    _step_parts(ctx, "G", "BCE", _step_inputs(ctx))
    _step_parts(ctx, "G", "least squares", _step_inputs(ctx), loss="ls")


# -- training ------------------------------------------------------------------------------------------------------

HISTORY = ("d_loss", "g_loss", "d_real", "d_fake")


def _real_images(bar, train: bool) -> np.ndarray:
    """uint8 (N, 784) images of the bar's dataset: the first train_size training or test_size test images."""
    from toolkit.data import load

    d = load(bar.dataset)
    x = d["x_train"][:bar.train_size] if train else d["x_test"][:bar.test_size]
    return x.reshape(len(x), -1)


def _trained_samples(ctx):
    """Train the student's GAN once (per task) at the bar's settings; the samples as float64 (test_size, 784)."""
    cache = {}

    def samples(bar):
        if not cache:
            s = dict(bar.settings)
            num_samples = s.pop("num_samples")
            seed = int(ctx.seed % 100_000)
            try:
                _, x = ctx.call("train_and_sample", _real_images(bar, True), s, seed, num_samples,
                                timeout=bar.time_budget_s, returns=("dict", "array"))
                x = _floats(ctx, "the generated samples", x, (num_samples, 784))
                if np.abs(x).max() > 1 + ctx.tol.accumulated_rtol:  # the given generator ends in tanh
                    ctx.fail(f"the generated samples reach {np.abs(x).max():.3g}, outside [-1, 1]")
                cache["x"] = x
            except Exception as exc:  # noqa: BLE001 -- one failed run fails both bars, without training twice
                cache["error"] = exc
        if "error" in cache:
            raise cache["error"]
        return cache["x"]
    return samples


@CHECKS.task("gan.train")
def _(ctx):
    size, batch, epochs = 300, 64, 2
    with ctx.part("history: d_loss, g_loss, d_real, d_fake, one finite value per step; D(x), D(G(z)) in [0, 1]"):
        images = (np.clip(_images(ctx, size), -1, 1) * 127.5 + 127.5).astype(np.uint8)
        settings = {"num_epochs": epochs, "batch_size": batch, "noise_size": 16, "hidden_dim": 32}
        hist, _ = ctx.call("train_and_sample", images, settings, int(ctx.rng.integers(1000)), 4,
                           returns=({k: "list" for k in HISTORY}, "array"))
        steps = {epochs * (size // batch), epochs * -(-size // batch)}  # the last, smaller batch dropped or not
        for key in HISTORY:
            values = np.asarray(hist[key], dtype=object)
            if values.ndim != 1 or len(values) not in steps:
                ctx.fail(f'history["{key}"] has {len(values)} entries; expected one per step: {min(steps)} '
                         f"({epochs} epochs of {size // batch} mini-batches of {batch})")
            try:
                values = np.asarray(values.tolist(), dtype=np.float64)
            except (TypeError, ValueError):
                ctx.fail(f'history["{key}"] should hold one number per step, got {describe(hist[key])}')
            values = _floats(ctx, f'history["{key}"]', values, (len(values),))
            if key in ("d_real", "d_fake"):
                ctx.expect(bool(np.all((values >= 0) & (values <= 1))),
                           f'history["{key}"] holds mean probabilities sigmoid(D(.)), but has values outside [0, 1]')
    samples = _trained_samples(ctx)

    def score(metric):
        def run(bar, _):
            from toolkit import image_metrics

            x = samples(bar)
            if metric == "fid":
                return image_metrics.fid(_real_images(bar, False), x, bar.dataset)
            return image_metrics.class_coverage(x, bar.dataset)
        return run

    train_to_bar(ctx, "gan", score("fid"), weight=2)
    train_to_bar(ctx, "gan_modes", score("class_coverage"), weight=2)


# -- the sample grid ------------------------------------------------------------------------------------------------


@CHECKS.task("gan.sample_grid")
def _(ctx):
    n, ncols, dim = ctx.pick((6, 4, 8), (10, 4, 12))
    g_params = _layers(ctx, [dim, 32, 32, 784])
    noise = ctx.rng.uniform(-1, 1, (n, dim))
    want = ctx.oracle.mlp_forward(g_params, noise, "tanh", 0.0).reshape(n, 28, 28)
    panels = []
    with ctx.part(f"one 28x28 image per sample, each equal to G(z) for the given z ({n} samples)", 2):
        G = ctx.call("mlp", g_params, "tanh", 0, keep=True)
        fig = ctx.figure("sample_grid", ctx.call("sample_grid", G, noise, ncols))
        panels = [ax for ax in fig["panels"] if any(isinstance(im, dict) and im.get("array") is not None
                                                    for im in ax["images"])]
        if len(panels) != n:
            ctx.fail(f"expected {n} axes with an image, one per sample; found {len(panels)}")
        for i, ax in enumerate(panels):
            img = next(im["array"] for im in ax["images"] if isinstance(im, dict) and im.get("array") is not None)
            img = np.asarray(img, dtype=np.float64) if isinstance(img, np.ndarray) else img
            ok = isinstance(img, np.ndarray) and img.shape == (28, 28) and any(
                np.max(np.abs(img - w)) <= ctx.tol.float32_rtol for w in (want[i], (want[i] + 1) / 2))  # or in [0, 1]
            if not ok:
                ctx.fail(f"image {i} is {describe(img)}, not G(z)[{i}] reshaped to 28x28 (in [-1, 1] or rescaled "
                         f"to [0, 1]); check the reshape and the order of the samples")
    with ctx.part(f"{ncols} images per row, in row-major order"):
        if len(panels) != n:
            ctx.fail("the images above are wrong; fix them first")
        where = [(ax["grid"]["row"], ax["grid"]["col"]) if isinstance(ax.get("grid"), dict) else None
                 for ax in panels]
        expected = [(i // ncols, i % ncols) for i in range(n)]
        ctx.expect(where == expected, f"the images sit at (row, column) {where}; expected {expected}")


SUITE = CHECKS.suite("public", TorchOracle)
