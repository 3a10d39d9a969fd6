"""Hidden checks of topic 2 (backprop). Never released.

Expected values come from the reference (solutions/backprop, which imports the reference topic-1 layers) in this
trusted process, and from torch.autograd; the students' code uses their own topic-1 layers. Inputs are seeded
per student and task.
"""
from __future__ import annotations

import functools

import numpy as np

from autograder.checks import Suite
from autograder.mutants import mutant
from autograder.public import backprop as pub

SUITE = Suite("backprop", "hidden")


def _reference_case(ctx):
    X, y, params = pub.net_case(ctx.rng, n=7, d=5, h=8, c=4)
    return X, y, params, 0.05


@SUITE.check("backprop.two_layer_forward")
def _(ctx):
    X, y, params, reg = _reference_case(ctx)
    loss, cache = ctx.ref("manual").two_layer_forward(X, y, params, reg)
    pub.two_layer_forward_parts(ctx, X, y, params, reg, loss,
                                {k: cache[k] for k in ("z1", "h1", "z2", "log_probs")})


@SUITE.check("backprop.two_layer_backward")
def _(ctx):
    ref = ctx.ref("manual")
    X, y, params, reg = _reference_case(ctx)
    want = ref.two_layer_backward(ref.two_layer_forward(X, y, params, reg)[1])
    pub.two_layer_backward_parts(ctx, X, y, params, reg, want, pub.GRAD_GROUPS)
    with ctx.part("equal to numerical gradients and to torch.autograd"):
        _, cache = ctx.call("two_layer_forward", X, y, params, reg, keep=(1,))
        grads = ctx.call("two_layer_backward", cache)
        _, _, torch_grads = pub.torch_two_layer(X, y, params, reg)
        for name in ("W1", "b1", "W2", "b2"):
            ctx.compare_grad(f'grads["{name}"] vs torch', grads[name], torch_grads[name], rtol=ctx.tol.parity_rtol)

        def loss_of(**p):
            return ref.two_layer_forward(X, y, p, reg)[0]
        ctx.gradcheck(loss_of, params, {k: grads[k] for k in ("W1", "b1", "W2", "b2")}, 1.0)


@SUITE.check("backprop.Value")
def _(ctx):
    for label, ops in (("+ - * /", ["add", "sub", "mul", "div"]), ("** exp log", ["pow", "exp", "log"]),
                       ("tanh relu", ["tanh", "relu"])):
        prog = [(op, i % 2, (i + 1) % 2) if op in ("add", "sub", "mul", "div") else
                (op, i % 2, 3) if op == "pow" else (op, i % 2) for i, op in enumerate(ops)]
        pub.value_part(ctx, label, prog + [("add", len(prog) + 1, len(prog))], pub.leaf_values(ctx.rng, 2))


@SUITE.check("backprop.Value.backward")
def _(ctx):
    for k in range(2):
        pub.backward_part(ctx, f"random expression {k + 1}, against torch.autograd",
                          pub.random_program(ctx.rng, 4, 14), pub.leaf_values(ctx.rng, 4))
    pub.backward_part(ctx, "nodes used several times accumulate ((x * y + x) * x)",
                      [("mul", 0, 1), ("add", 2, 0), ("mul", 3, 0)], pub.leaf_values(ctx.rng, 2))
    pub.chain_part(ctx, 2500)


@SUITE.check("backprop.record_gradient_norms")
def _(ctx):
    ref = ctx.ref("gradflow")
    X, y = ctx.rng.standard_normal((90, 12)), ctx.rng.integers(0, 4, 90)
    for label, args in (("sigmoid, small normal init", ("sigmoid", "normal", 1e-2)),
                        ("ReLU, He init", ("relu", "he", 0)), ("tanh, Xavier init", ("tanh", "xavier", 0))):
        with ctx.part(f"norms equal the reference ({label})"):
            call = (X, y, 4, 10, *args, 0.2, 4, 16, int(ctx.seed % 1000))
            got = ctx.call("record_gradient_norms", *call)
            ctx.compare("history", got, ref.record_gradient_norms(*call), rtol=1e-7)


@SUITE.check("backprop.plot_gradient_flow")
def _(ctx):
    history = np.exp(ctx.rng.standard_normal((7, 5)) * 3)
    pub.flow_figure_parts(ctx, history, ctx.ref("gradflow").plot_gradient_flow(history))


@SUITE.check("backprop.plot_gradient_histograms")
def _(ctx):
    grads = [ctx.rng.standard_normal((6, 5)) * s for s in (1e-4, 1e-2, 1.0, 10.0)]
    pub.hist_figure_parts(ctx, grads, 12, ctx.ref("gradflow").plot_gradient_histograms(grads, 12))


_m = functools.partial(mutant, "backprop")

MUTANTS = (
    _m("staged_relu_instead_of_tanh", "manual", "h1 = np.tanh(z1)  # (N, H)", "h1 = np.maximum(0, z1)  # (N, H)",
       "two_layer_forward", "ReLU where the network uses tanh"),
    _m("staged_dz2_missing_1_over_N", "manual", "    dz2 /= n  # mean over the batch\n", "", "two_layer_backward",
       "softmax gradient of the sum"),
    _m("staged_tanh_derivative_wrong", "manual", "dz1 = dh1 * (1 - h1 ** 2)", "dz1 = dh1 * (1 - h1)",
       "two_layer_backward", "1 - tanh instead of 1 - tanh^2"),
    _m("staged_dW1_transposed_input", "manual", "dW1 = X.T @ dz1 + reg * W1", "dW1 = (dz1.T @ X).T * 0.5 + reg * W1",
       "two_layer_backward", "halves dW1"),
    _m("value_mul_grad_not_swapped", "autograd", "self.grad += other.data * out.grad",
       "self.grad += self.data * out.grad", "Value.backward", "product rule with the wrong factor"),
    _m("value_grad_not_accumulated", "autograd",
       "            self.grad += out.grad  # += : a node used twice collects both contributions\n"
       "            other.grad += out.grad\n",
       "            self.grad = out.grad\n            other.grad = out.grad\n", "Value.backward",
       "a reused node keeps only the last contribution"),
    _m("value_wrong_topological_order", "autograd", "for node in reversed(order):", "for node in order:",
       "Value.backward", "visits the graph inputs first"),
    _m("value_tanh_forward_wrong", "autograd", "out = Value(math.tanh(self.data), (self,), \"tanh\")",
       "out = Value(math.tanh(self.data / 2), (self,), \"tanh\")", "Value", "tanh of half the input"),
    _m("gradflow_norms_after_update", "gradflow",
       "            history[t, i] = np.linalg.norm(dw)\n            weights[i] -= learning_rate * dw",
       "            weights[i] -= learning_rate * dw\n            history[t, i] = np.linalg.norm(weights[i])",
       "record_gradient_norms", "records weight norms instead of gradient norms"),
    _m("gradflow_norm_over_wrong_axis", "gradflow", "history[t, i] = np.linalg.norm(dw)",
       "history[t, i] = np.linalg.norm(dw, axis=0).max()", "record_gradient_norms",
       "norm over one axis only"),
    _m("flow_plot_missing_layer", "gradflow", "for i in range(history.shape[1]):",
       "for i in range(history.shape[1] - 1):", "plot_gradient_flow", "a layer missing from the plot"),
    _m("flow_plot_linear_scale", "gradflow", '    ax.set_yscale("log")', "    pass", "plot_gradient_flow",
       "linear y axis"),
    _m("flow_plot_unlabelled", "gradflow", '    ax.set_xlabel("training step")\n', "", "plot_gradient_flow",
       "unlabelled x axis"),
    _m("hist_wrong_bins", "gradflow", "ax.hist(np.ravel(g), bins=bins)", "ax.hist(np.ravel(g), bins=bins + 5)",
       "plot_gradient_histograms", "ignores the bins argument"),
    _m("hist_one_panel", "gradflow", "for i, (ax, g) in enumerate(zip(axes[0], grads)):",
       "for i, (ax, g) in enumerate(zip(axes[0], [np.concatenate([np.ravel(x) for x in grads])])):",
       "plot_gradient_histograms", "all layers pooled into one panel"),
)
