"""Public checks of topic 2 (backprop), shipped to students and run by `dlcore check backprop`.

Oracles: torch.autograd in float64 and np.histogram; figures are read as data (lines, scales, labels, bars),
never as pixels. The helpers here (expression programs, figure checks) are reused by the hidden suite with other
inputs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.checks import Suite

SUITE = Suite("backprop", "public")

# -- the staged two-layer network ------------------------------------------------------------------------


def net_case(rng, n=5, d=4, h=6, c=3):
    params = {"W1": rng.standard_normal((d, h)), "b1": rng.standard_normal(h) * 0.1,
              "W2": rng.standard_normal((h, c)), "b2": rng.standard_normal(c) * 0.1}
    return rng.standard_normal((n, d)), rng.integers(0, c, n), params


def torch_two_layer(X, y, params, reg):
    """Loss, named intermediates and gradients (params and intermediates) from torch.autograd."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    z1 = torch.tensor(X) @ t["W1"] + t["b1"]
    h1 = torch.tanh(z1)
    z2 = h1 @ t["W2"] + t["b2"]
    for v in (z1, h1, z2):
        v.retain_grad()
    loss = F.cross_entropy(z2, torch.tensor(y)) + 0.5 * reg * (t["W1"].pow(2).sum() + t["W2"].pow(2).sum())
    loss.backward()
    values = {"z1": z1, "h1": h1, "z2": z2, "log_probs": F.log_softmax(z2, dim=1)}
    grads = {k: v.grad.numpy() for k, v in t.items()}
    grads.update(dz1=z1.grad.numpy(), dh1=h1.grad.numpy(), dz2=z2.grad.numpy())
    return loss.item(), {k: v.detach().numpy() for k, v in values.items()}, grads


def two_layer_forward_parts(ctx, X, y, params, reg, want_loss, want_values):
    loss, cache = None, None
    with ctx.part("loss"):
        loss, cache = ctx.call("two_layer_forward", X, y, params, reg)
        ctx.compare("loss", loss, want_loss)
    with ctx.part("named intermediates z1, h1, z2, log_probs"):
        if not isinstance(cache, dict):
            ctx.fail("the cache should be a dict of named intermediates")
        for name, want in want_values.items():
            if name not in cache:
                ctx.fail(f'cache has no "{name}"')
            ctx.compare(f'cache["{name}"]', cache[name], want)


def two_layer_backward_parts(ctx, X, y, params, reg, want_grads, groups):
    """One part per group of gradient names; the cache comes from the student's forward (kept in the worker)."""
    grads = problem = None
    try:
        _, cache = ctx.call("two_layer_forward", X, y, params, reg, keep=(1,))
        grads = ctx.call("two_layer_backward", cache)
    except Exception as exc:  # re-raised inside each part, which turns it into that part's message
        problem = exc
    for label, names in groups.items():
        with ctx.part(label):
            if problem is not None:
                raise problem
            if not isinstance(grads, dict):
                ctx.fail(f"two_layer_backward should return a dict, got {type(grads).__name__}")
            for name in names:
                if name not in grads:
                    ctx.fail(f'grads has no "{name}"')
                ctx.compare_grad(f'grads["{name}"]', grads[name], want_grads[name])


GRAD_GROUPS = {"dW1, db1": ("W1", "b1"), "dW2, db2": ("W2", "b2"), "intermediates dz2, dh1, dz1": ("dz2", "dh1", "dz1")}


@SUITE.check("backprop.two_layer_forward")
def _(ctx):
    X, y, params = net_case(ctx.rng)
    loss, values, _ = torch_two_layer(X, y, params, 0.1)
    two_layer_forward_parts(ctx, X, y, params, 0.1, loss, values)


@SUITE.check("backprop.two_layer_backward")
def _(ctx):
    X, y, params = net_case(ctx.rng)
    _, _, grads = torch_two_layer(X, y, params, 0.1)
    two_layer_backward_parts(ctx, X, y, params, 0.1, grads, GRAD_GROUPS)


# -- the scalar autograd ---------------------------------------------------------------------------------
# A program is a list of steps over a growing list of nodes (the leaves first): ("add", i, j), ("sub", i, j),
# ("mul", i, j), ("div", i, j) meaning n_i / (n_j ** 2 + 1), ("pow", i, k), ("exp", i) meaning exp(tanh(n_i)),
# ("log", i) meaning log(n_i ** 2 + 1), ("tanh", i), ("relu", i). Each step appends one node.

BINARY = {"add": "__add__", "sub": "__sub__", "mul": "__mul__"}


def random_program(rng, leaves: int, steps: int) -> list[tuple]:
    ops = ["add", "sub", "mul", "div", "pow", "exp", "log", "tanh", "relu"]
    prog, n = [], leaves
    for _ in range(steps):
        op = ops[int(rng.integers(len(ops)))]
        i, j = int(rng.integers(n)), int(rng.integers(n))
        prog.append((op, i, j) if op in ("add", "sub", "mul", "div") else (op, i, int(rng.integers(2, 4)))
                    if op == "pow" else (op, i))
        n += 1
    prog.append(("add", n - 1, n - 2))  # the output depends on the last two nodes
    return prog


def run_program(ctx, program, leaves: list[float]):
    """Build the expression from the student's Value in the worker; returns (output, leaf handles)."""
    nodes = [ctx.call("Value", v, keep=True) for v in leaves]
    for step in program:
        op, i = step[0], step[1]
        a = nodes[i]
        if op in BINARY:
            out = ctx.method(a, BINARY[op], nodes[step[2]], keep=True)
        elif op == "div":
            sq = ctx.method(nodes[step[2]], "__pow__", 2, keep=True)
            out = ctx.method(a, "__truediv__", ctx.method(sq, "__add__", 1.0, keep=True), keep=True)
        elif op == "pow":
            out = ctx.method(a, "__pow__", step[2], keep=True)
        elif op == "exp":
            out = ctx.method(ctx.method(a, "tanh", keep=True), "exp", keep=True)
        elif op == "log":
            sq = ctx.method(a, "__pow__", 2, keep=True)
            out = ctx.method(ctx.method(sq, "__add__", 1.0, keep=True), "log", keep=True)
        else:
            out = ctx.method(a, op, keep=True)
        nodes.append(out)
    return nodes[-1], nodes[:len(leaves)]


def torch_program(program, leaves: list[float]):
    """The same expression in torch float64: (output value, leaf gradients)."""
    nodes = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in leaves]
    for step in program:
        op, a = step[0], nodes[step[1]]
        if op == "add":
            out = a + nodes[step[2]]
        elif op == "sub":
            out = a - nodes[step[2]]
        elif op == "mul":
            out = a * nodes[step[2]]
        elif op == "div":
            out = a / (nodes[step[2]] ** 2 + 1)
        elif op == "pow":
            out = a ** step[2]
        elif op == "exp":
            out = torch.exp(torch.tanh(a))
        elif op == "log":
            out = torch.log(a ** 2 + 1)
        else:
            out = getattr(torch, op)(a)
        nodes.append(out)
    nodes[-1].backward()
    return nodes[-1].item(), [float(n.grad) if n.grad is not None else 0.0 for n in nodes[:len(leaves)]]


def leaf_values(rng, k: int) -> list[float]:
    """Leaves away from 0, so relu never sits at its kink."""
    v = rng.uniform(0.2, 1.5, k) * rng.choice([-1.0, 1.0], k)
    return [float(x) for x in v]


def value_part(ctx, label, program, leaves):
    with ctx.part(label):
        out, _ = run_program(ctx, program, leaves)
        want, _ = torch_program(program, leaves)
        ctx.compare("data", ctx.attr(out, "data"), want, rtol=1e-10)


def backward_part(ctx, label, program, leaves, weight=1.0):
    with ctx.part(label, weight):
        out, leaf_nodes = run_program(ctx, program, leaves)
        ctx.method(out, "backward")
        _, want = torch_program(program, leaves)
        got = np.array([ctx.scalar("grad", ctx.attr(h, "grad")) for h in leaf_nodes])
        ctx.compare_grad("leaf grads", got, np.array(want), rtol=1e-9)


def chain_part(ctx, length: int):
    """y = x * 1.0001 repeated `length` times: backward must not recurse once per node."""
    with ctx.part(f"a chain of {length} operations (no recursion limit)"):
        x = ctx.call("Value", 0.5, keep=True)
        y = x
        for _ in range(length):
            y = ctx.method(y, "__mul__", 1.0001, keep=True)
        ctx.method(y, "backward")
        ctx.compare("x.grad", ctx.attr(x, "grad"), 1.0001 ** length, rtol=1e-9)


@SUITE.check("backprop.Value")
def _(ctx):
    value_part(ctx, "+ - * /", [("add", 0, 1), ("sub", 2, 0), ("mul", 3, 1), ("div", 4, 0)], [1.5, -0.7])
    value_part(ctx, "** exp log", [("pow", 0, 3), ("exp", 1), ("log", 2)], [0.9, -1.2])
    value_part(ctx, "tanh relu", [("tanh", 0), ("relu", 1), ("relu", 2)], [0.4, -0.8])


@SUITE.check("backprop.Value.backward")
def _(ctx):
    backward_part(ctx, "an expression, against torch.autograd", random_program(ctx.rng, 3, 10),
                  leaf_values(ctx.rng, 3), 2)
    backward_part(ctx, "a node used twice accumulates (x * x + x)", [("mul", 0, 0), ("add", 1, 0)], [0.7])
    chain_part(ctx, 1500)


# -- gradient flow ---------------------------------------------------------------------------------------


@SUITE.check("backprop.record_gradient_norms")
def _(ctx):
    X, y = ctx.rng.standard_normal((120, 16)), ctx.rng.integers(0, 4, 120)
    hist = {}
    for label, args in (("sigmoid, small normal init: gradients vanish towards the input",
                         ("sigmoid", "normal", 1e-2)), ("ReLU, He init: gradients keep their size", ("relu", "he", 0))):
        with ctx.part(label):
            h = ctx.array("history", ctx.call("record_gradient_norms", X, y, 6, 24, *args, 0.1, 5, 32, 0), (5, 7))
            ctx.expect(bool(np.all(np.isfinite(h)) and np.all(h > 0)), "every norm should be finite and positive")
            hist[args[0]] = h
            ratio = float(h[0, 0] / h[0, -1])
            if args[0] == "sigmoid":
                ctx.expect(ratio < 1e-4, f"layer 1 / last layer norm is {ratio:.2g}; expected < 1e-4 (vanishing)")
            else:
                ctx.expect(1e-2 < ratio < 1e2, f"layer 1 / last layer norm is {ratio:.2g}; expected 0.01..100")


def flow_figure_parts(ctx, history: np.ndarray, expected_fig=None) -> None:
    """plot_gradient_flow(history): one line per layer with the norms as y, log y axis, labels and legend."""
    fig = None
    with ctx.part("one line per layer, y = that layer's norms", 2):
        fig = ctx.figure("plot_gradient_flow", ctx.call("plot_gradient_flow", history), expected_fig)
        if len(fig["axes"]) != 1:
            ctx.fail(f"expected one axes, found {len(fig['axes'])}")
        lines = fig["axes"][0]["lines"]
        if len(lines) != history.shape[1]:
            ctx.fail(f"expected {history.shape[1]} lines (one per layer), found {len(lines)}")
        for i, line in enumerate(lines):
            ctx.compare(f"line {i + 1} y data", line["y"], history[:, i], rtol=1e-9)
    with ctx.part("log-scale y axis"):
        if fig is None:
            ctx.fail("no figure")
        ctx.expect(fig["axes"][0]["yscale"] == "log", f"the y axis is {fig['axes'][0]['yscale']!r}, not 'log'")
    with ctx.part("axis labels, title and a legend entry per layer"):
        if fig is None:
            ctx.fail("no figure")
        ax = fig["axes"][0]
        ctx.expect(bool(ax["xlabel"].strip() and ax["ylabel"].strip()), "label both axes")
        ctx.expect(bool(ax["title"].strip()), "give the plot a title")
        ctx.expect(len(ax["legend"]) == history.shape[1],
                   f"the legend has {len(ax['legend'])} entries; expected one per layer ({history.shape[1]})")


def hist_figure_parts(ctx, grads: list, bins: int, expected_fig=None) -> None:
    """plot_gradient_histograms(grads, bins): one panel per layer whose bars are np.histogram(g, bins)."""
    fig = None
    with ctx.part("one panel per layer"):
        fig = ctx.figure("plot_gradient_histograms", ctx.call("plot_gradient_histograms", grads, bins), expected_fig)
        ctx.expect(len(fig["axes"]) == len(grads), f"found {len(fig['axes'])} panels, expected {len(grads)}")
    with ctx.part("bar heights and edges equal np.histogram with the same bins", 2):
        if fig is None:
            ctx.fail("no figure")
        for i, (ax, g) in enumerate(zip(fig["axes"], grads)):
            counts, edges = np.histogram(np.ravel(g), bins=bins)
            bars = np.asarray(ax["bars"])
            if bars.shape != (bins, 3):
                ctx.fail(f"panel {i + 1} has {len(bars)} bars, expected {bins}")
            ctx.compare(f"panel {i + 1} counts", bars[:, 2], counts, rtol=1e-12)
            ctx.compare(f"panel {i + 1} left edges", bars[:, 0], edges[:-1], rtol=1e-9)
    with ctx.part("panel titles and axis labels"):
        if fig is None:
            ctx.fail("no figure")
        for i, ax in enumerate(fig["axes"]):
            ctx.expect(bool(ax["title"].strip()), f"panel {i + 1} has no title")
            ctx.expect(bool(ax["xlabel"].strip()), f"panel {i + 1} has no x label")


@SUITE.check("backprop.plot_gradient_flow")
def _(ctx):
    flow_figure_parts(ctx, np.exp(ctx.rng.standard_normal((6, 4)) * 3))


@SUITE.check("backprop.plot_gradient_histograms")
def _(ctx):
    hist_figure_parts(ctx, [ctx.rng.standard_normal((5, 4)) * s for s in (1e-3, 1e-1, 1.0)], 10)
