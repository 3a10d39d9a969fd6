"""The checks of topic 2 (backprop), one per task, and its public suite (`dlcore check backprop`).

Expected values come from `ctx.oracle`: torch.autograd in float64 here, the reference solution in the hidden
suite (autograder/hidden/backprop.py), which runs the same checks on other sizes and per-student inputs. The scalar
autograd is always compared with torch.autograd on expressions that use every operation (per-student seeds vary
the values, never what is covered). Figures are read as data (lines, scales, labels, bars), never as pixels.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.check_kit import one_panel
from autograder.checks import Checks

CHECKS = Checks("backprop")

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


class TorchOracle:
    """The staged net from torch.autograd; no reference for the gradient-flow functions (the public checks test
    their properties instead)."""

    record_gradient_norms = plot_gradient_flow = plot_gradient_histograms = None

    def __init__(self, ctx):
        pass

    @staticmethod
    def two_layer(X, y, params, reg):
        """(loss, intermediates z1 h1 z2 log_probs, gradients W1 b1 W2 b2 dz2 dh1 dz1) of the staged net."""
        return torch_two_layer(X, y, params, reg)


GRAD_GROUPS = {"dW1, db1": ("W1", "b1"), "dW2, db2": ("W2", "b2"), "intermediates dz2, dh1, dz1": ("dz2", "dh1", "dz1")}


def _net_case(ctx):
    sizes = ctx.pick(dict(n=5, d=4, h=6, c=3), dict(n=7, d=5, h=8, c=4))
    X, y, params = net_case(ctx.rng, **sizes)
    return X, y, params, ctx.pick(0.1, 0.05)


@CHECKS.task("backprop.two_layer_forward")
def _(ctx):
    X, y, params, reg = _net_case(ctx)
    want_loss, want_values, _ = ctx.oracle.two_layer(X, y, params, reg)
    cache = None
    with ctx.part("loss"):
        loss, cache = ctx.call("two_layer_forward", X, y, params, reg, returns=("number", "dict"))
        ctx.compare("loss", loss, want_loss)
    with ctx.part("named intermediates z1, h1, z2, log_probs"):
        if cache is None:
            _, cache = ctx.call("two_layer_forward", X, y, params, reg, returns=("number", "dict"))
        for name, want in want_values.items():
            if name not in cache:
                ctx.fail(f'cache has no "{name}"')
            ctx.compare(f'cache["{name}"]', cache[name], want)


@CHECKS.task("backprop.two_layer_backward")
def _(ctx):
    """One part per group of gradients (the cache comes from the student's forward, kept in the worker), and one
    for the whole: equal to torch.autograd and to numerical gradients of the oracle's loss."""
    X, y, params, reg = _net_case(ctx)
    _, _, want = ctx.oracle.two_layer(X, y, params, reg)
    grads = problem = None
    try:
        _, cache = ctx.call("two_layer_forward", X, y, params, reg, keep=(1,), returns=("number", "kept"))
        grads = ctx.call("two_layer_backward", cache, returns="dict")
    except Exception as exc:  # re-raised inside each part, which turns it into that part's message
        problem = exc
    for label, names in GRAD_GROUPS.items():
        with ctx.part(label):
            if problem is not None:
                raise problem
            for name in names:
                if name not in grads:
                    ctx.fail(f'grads has no "{name}"')
                ctx.compare_grad(f'grads["{name}"]', grads[name], want[name])
    with ctx.part("equal to numerical gradients and to torch.autograd"):
        if problem is not None:
            raise problem
        _, _, torch_grads = torch_two_layer(X, y, params, reg)
        for name in ("W1", "b1", "W2", "b2"):
            if name not in grads:
                ctx.fail(f'grads has no "{name}"')
            ctx.compare_grad(f'grads["{name}"] vs torch', grads[name], torch_grads[name], rtol=ctx.tol.parity_rtol)

        def loss_of(**p):
            return ctx.oracle.two_layer(X, y, p, reg)[0]
        ctx.gradcheck(loss_of, params, {k: ctx.array(f'grads["{k}"]', grads[k]) for k in ("W1", "b1", "W2", "b2")},
                      1.0)


# -- the scalar autograd ---------------------------------------------------------------------------------
# A program is a list of steps over a growing list of nodes (the leaves first): ("add", i, j), ("sub", i, j),
# ("mul", i, j), ("div", i, j) meaning n_i / (n_j ** 2 + 1), ("pow", i, k), ("exp", i) meaning exp(tanh(n_i)),
# ("log", i) meaning log(n_i ** 2 + 1), ("tanh", i), ("relu", i). Each step appends one node.

BINARY = {"add": "__add__", "sub": "__sub__", "mul": "__mul__"}


OPS = ("add", "sub", "mul", "div", "pow", "exp", "log", "tanh", "relu")


def _step(rng, op: str, n: int) -> tuple:
    i, j = int(rng.integers(n)), int(rng.integers(n))
    if op in ("add", "sub", "mul", "div"):
        return (op, i, j)
    return (op, i, int(rng.integers(2, 4))) if op == "pow" else (op, i)


def random_program(rng, leaves: int, steps: int) -> list[tuple]:
    """A random expression over `leaves` inputs that uses EVERY operation at least once (in a random order, with
    random operands), padded with random steps to `steps`: per-student seeds vary values, never coverage."""
    ops = [OPS[k] for k in rng.permutation(len(OPS))] + [OPS[int(rng.integers(len(OPS)))]
                                                            for _ in range(max(0, steps - len(OPS)))]
    prog, n = [], leaves
    for op in ops:
        prog.append(_step(rng, op, n))
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
        elif op == "rawdiv":
            out = ctx.method(a, "__truediv__", nodes[step[2]], keep=True)
        else:  # tanh, relu, and rawexp / rawlog (exp and log applied directly, where the operand allows)
            out = ctx.method(a, op.removeprefix("raw"), keep=True)
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
        elif op == "rawdiv":
            out = a / nodes[step[2]]
        else:
            out = getattr(torch, op.removeprefix("raw"))(a)
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
        ctx.compare("data", ctx.attr(out, "data"), want, rtol=ctx.tol.scalar_rtol)


def backward_part(ctx, label, program, leaves, weight=1.0):
    with ctx.part(label, weight):
        out, leaf_nodes = run_program(ctx, program, leaves)
        ctx.method(out, "backward")
        _, want = torch_program(program, leaves)
        got = np.array([ctx.scalar("grad", ctx.attr(h, "grad")) for h in leaf_nodes])
        ctx.compare_grad("leaf grads", got, np.array(want), rtol=ctx.tol.formula_rtol)


def reuse_parts(ctx) -> None:
    """Reuse through every operation, two parts with the cause named:
    - an input used by an operation and elsewhere (op(x) + x): its gradient must be accumulated (+=) by the
      operation's backward, not overwritten (=);
    - an interior node used twice (t + t with t = op(x)): the topological order must visit it once, so its
      backward runs once (twice doubles every gradient below it)."""
    leaves = [abs(v) for v in leaf_values(ctx.rng, 2)]  # positive: log and division apply directly
    close = {"rtol": ctx.tol.formula_rtol, "atol": ctx.tol.exact_rtol}
    with ctx.part("an input used twice accumulates, through every operation (+= in each backward)"):
        for op in OPS:
            first = _first(op)
            prog = [first, ("add", 2, 0), ("add", 3, 1)]  # op(x, y) + x + y
            got, want = _leaf_grads(ctx, prog, leaves)
            if not np.allclose(got, want, **close):
                ctx.expect(False, f"{op}: leaf gradients {np.round(got, 6).tolist()}, expected "
                                  f"{np.round(want, 6).tolist()} for {op}(x[, y]) + x + y: a gradient that reaches a "
                                  f"node twice was overwritten instead of accumulated (use += in {op}'s backward)")
    with ctx.part("an interior node used twice runs its backward once, through every operation"):
        for op in OPS:
            first = _first(op)
            prog = [first, ("add", 2, 2)]  # t + t with t = op(x[, y])
            got, want = _leaf_grads(ctx, prog, leaves)
            if not np.allclose(got, want, **close):
                mask = np.abs(want) > ctx.tol.exact_rtol
                ratio = float(np.median(got[mask] / want[mask])) if mask.any() else np.nan
                cause = ("the node's backward ran twice: visit each node once when building the topological order"
                         if abs(ratio - 2) < ctx.tol.accumulated_rtol else
                         "a gradient was overwritten instead of accumulated (use += in every backward)"
                         if abs(ratio - 0.5) < ctx.tol.accumulated_rtol else
                         "the gradients through the reused node are wrong")
                ctx.expect(False, f"{op}: t = {op}(x[, y]) used twice (t + t) gives leaf gradients "
                                  f"{np.round(got, 6).tolist()}, expected {np.round(want, 6).tolist()}: {cause}")


def _first(op: str) -> tuple:
    """The step op(x, y) (binary) or op(x) over the positive leaves x = node 0, y = node 1, applied directly (x / y,
    x.exp(), x.log()), so the node that feeds the operation is the one that is reused."""
    direct = {"div": ("rawdiv", 0, 1), "exp": ("rawexp", 0), "log": ("rawlog", 0), "pow": ("pow", 0, 3)}
    return direct.get(op) or ((op, 0, 1) if op in BINARY else (op, 0))


def _leaf_grads(ctx, program, leaves):
    out, leaf_nodes = run_program(ctx, program, leaves)
    ctx.method(out, "backward")
    _, want = torch_program(program, leaves)
    got = np.array([ctx.scalar("grad", ctx.attr(h, "grad")) for h in leaf_nodes])
    return got, np.array(want)


def chain_part(ctx, length: int):
    """y = x * 1.0001 repeated `length` times: backward must not recurse once per node."""
    with ctx.part(f"a chain of {length} operations (no recursion limit)"):
        x = ctx.call("Value", 0.5, keep=True)
        y = x
        for _ in range(length):
            y = ctx.method(y, "__mul__", 1.0001, keep=True)
        ctx.method(y, "backward")
        ctx.compare("x.grad", ctx.attr(x, "grad"), 1.0001 ** length, rtol=ctx.tol.formula_rtol)


@CHECKS.task("backprop.Value")
def _(ctx):
    for label, ops in (("+ - * /", ["add", "sub", "mul", "div"]), ("** exp log", ["pow", "exp", "log"]),
                       ("tanh relu", ["tanh", "relu"])):
        prog = [(op, i % 2, (i + 1) % 2) if op in ("add", "sub", "mul", "div") else
                (op, i % 2, 3) if op == "pow" else (op, i % 2) for i, op in enumerate(ops)]
        value_part(ctx, label, prog + [("add", len(prog) + 1, len(prog))], leaf_values(ctx.rng, 2))


@CHECKS.task("backprop.Value.backward")
def _(ctx):
    for k in range(ctx.pick(1, 2)):
        backward_part(ctx, f"random expression {k + 1} using every operation, against torch.autograd",
                      random_program(ctx.rng, 4, ctx.pick(12, 14)), leaf_values(ctx.rng, 4), ctx.pick(2, 1))
    reuse_parts(ctx)
    chain_part(ctx, ctx.pick(1500, 2500))


# -- gradient flow ---------------------------------------------------------------------------------------


@CHECKS.task("backprop.record_gradient_norms")
def _(ctx):
    n, d = ctx.pick((120, 16), (90, 12))
    X, y = ctx.rng.standard_normal((n, d)), ctx.rng.integers(0, 4, n)
    setups = (("sigmoid, small normal init: gradients vanish towards the input", ("sigmoid", "normal", 1e-2)),
              ("ReLU, He init: gradients keep their size", ("relu", "he", 0)))
    for label, args in setups:
        with ctx.part(label):
            h = ctx.array("history", ctx.call("record_gradient_norms", X, y, 6, 24, *args, 0.1, 5, 32, 0), (5, 7))
            ctx.expect(bool(np.all(np.isfinite(h)) and np.all(h > 0)), "every norm should be finite and positive")
            ratio = float(h[0, 0] / h[0, -1])
            if args[0] == "sigmoid":
                ctx.expect(ratio < 1e-4, f"layer 1 / last layer norm is {ratio:.2g}; expected < 1e-4 (vanishing)")
            else:
                ctx.expect(1e-2 < ratio < 1e2, f"layer 1 / last layer norm is {ratio:.2g}; expected 0.01..100")
    if ctx.oracle.record_gradient_norms is None:
        return
    for label, args in (("sigmoid, small normal init", ("sigmoid", "normal", 1e-2)),
                        ("ReLU, He init", ("relu", "he", 0)), ("tanh, Xavier init", ("tanh", "xavier", 0))):
        with ctx.part(f"norms equal the reference ({label})"):
            call = (X, y, 4, 10, *args, 0.2, 4, 16, int(ctx.seed % 1000))
            got = ctx.call("record_gradient_norms", *call)
            ctx.compare("history", got, ctx.oracle.record_gradient_norms(*call), rtol=ctx.tol.forward_rtol)


def flow_figure_parts(ctx, history: np.ndarray, expected_fig=None) -> None:
    """plot_gradient_flow(history): one line per layer with the norms as y, log y axis, labels and legend."""
    fig = None
    with ctx.part("one line per layer, y = that layer's norms", 2):
        fig = ctx.figure("plot_gradient_flow", ctx.call("plot_gradient_flow", history), expected_fig)
        lines = one_panel(ctx, fig)["lines"]
        if len(lines) != history.shape[1]:
            ctx.fail(f"expected {history.shape[1]} lines (one per layer), found {len(lines)}")
        for i, line in enumerate(lines):
            if not isinstance(line, dict):
                ctx.fail(f"line {i + 1} could not be read (plot numbers against numbers)")
            ctx.compare(f"line {i + 1} y data", line["y"], history[:, i], rtol=ctx.tol.formula_rtol)
    with ctx.part("log-scale y axis"):
        if fig is None:
            ctx.fail("no figure")
        ctx.expect(fig["panels"][0]["yscale"] == "log", f"the y axis is {fig['panels'][0]['yscale']!r}, not 'log'")
    with ctx.part("axis labels, title and a legend entry per layer"):
        if fig is None:
            ctx.fail("no figure")
        ax = fig["panels"][0]
        ctx.expect(bool(ax["xlabel"].strip() and ax["ylabel"].strip()), "label both axes")
        ctx.expect(bool(ax["title"].strip()), "give the plot a title")
        ctx.expect(len(ax["legend"]) == history.shape[1],
                   f"the legend has {len(ax['legend'])} entries; expected one per layer ({history.shape[1]})")


def hist_figure_parts(ctx, grads: list, bins: int, expected_fig=None) -> None:
    """plot_gradient_histograms(grads, bins): one panel per layer whose bars are np.histogram(g, bins)."""
    fig = None
    with ctx.part("one panel per layer"):
        fig = ctx.figure("plot_gradient_histograms", ctx.call("plot_gradient_histograms", grads, bins), expected_fig)
        ctx.expect(len(fig["panels"]) == len(grads), f"found {len(fig['panels'])} panels, expected {len(grads)}")
    with ctx.part("bar heights and edges equal np.histogram with the same bins", 2):
        if fig is None:
            ctx.fail("no figure")
        for i, (ax, g) in enumerate(zip(fig["panels"], grads)):
            counts, edges = np.histogram(np.ravel(g), bins=bins)
            bars = ax.get("bars")
            if not isinstance(bars, np.ndarray):
                ctx.fail(f"panel {i + 1}'s bars could not be read")
            if bars.shape != (bins, 3):
                ctx.fail(f"panel {i + 1} has {len(bars)} bars, expected {bins}")
            ctx.compare(f"panel {i + 1} counts", bars[:, 2], counts, rtol=ctx.tol.exact_rtol)
            ctx.compare(f"panel {i + 1} left edges", bars[:, 0], edges[:-1], rtol=ctx.tol.formula_rtol)
    with ctx.part("panel titles and axis labels"):
        if fig is None:
            ctx.fail("no figure")
        for i, ax in enumerate(fig["panels"]):
            ctx.expect(bool(ax["title"].strip()), f"panel {i + 1} has no title")
            ctx.expect(bool(ax["xlabel"].strip()), f"panel {i + 1} has no x label")


def _expected_figure(ctx, name: str, *args):
    fn = getattr(ctx.oracle, name)
    return fn(*args) if fn is not None else None


@CHECKS.task("backprop.plot_gradient_flow")
def _(ctx):
    history = np.exp(ctx.rng.standard_normal(ctx.pick((6, 4), (7, 5))) * 3)
    flow_figure_parts(ctx, history, _expected_figure(ctx, "plot_gradient_flow", history))


@CHECKS.task("backprop.plot_gradient_histograms")
def _(ctx):
    scales, shape, bins = ctx.pick(((1e-3, 1e-1, 1.0), (5, 4), 10), ((1e-4, 1e-2, 1.0, 10.0), (6, 5), 12))
    grads = [ctx.rng.standard_normal(shape) * s for s in scales]
    hist_figure_parts(ctx, grads, bins, _expected_figure(ctx, "plot_gradient_histograms", grads, bins))


SUITE = CHECKS.suite("public", TorchOracle)
