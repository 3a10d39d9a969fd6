"""The checks of topic 7 (attention), one per task, and its public suite (`dlcore check attention`).

Expected values come from `ctx.oracle`: PyTorch in float64 here (never the reference solution), the reference in
the hidden suite (autograder/hidden/attention.py), which runs the same checks on other shapes and per-student
inputs, and the full training run. The parity task always compares with torch itself (nn.MultiheadAttention with
transplanted weights, F.scaled_dot_product_attention). Masks are boolean, True = "may attend"; a fully masked row
must give zeros, where torch's own attention gives NaN, so the torch oracle masks by hand.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autograder.check_kit import fit, one_panel
from autograder.checks import CheckFailed, Checks, train_to_bar
from toolkit.parity import torch_pair, torch_reference

CHECKS = Checks("attention")

# -- the oracle: PyTorch with the reference's contract ----------------------------------------------------------


def _allowed(mask, shape) -> np.ndarray:
    """A mask as booleans broadcast to `shape` (the numerical gradient check passes masks as 0.0 / 1.0)."""
    return np.broadcast_to(np.asarray(mask) != 0, shape).copy()


def torch_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(D)) v on tensors, masked keys at -inf; a row with no allowed key gives zeros."""
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if mask is None:
        weights = torch.softmax(logits, dim=-1)
    else:
        allowed = torch.as_tensor(_allowed(mask, tuple(logits.shape)))
        live = allowed.any(dim=-1, keepdim=True)  # (..., T_q, 1): rows with at least one key
        # a dead row gets finite logits (then weight 0), so neither the value nor its gradient is NaN
        logits = logits.masked_fill(~allowed, -math.inf).masked_fill(~live, 0.0)
        weights = torch.softmax(logits, dim=-1) * live
    return weights @ v, weights


def _tensors(*arrays, grad=False):
    return [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad) for a in arrays]


def _blocked(mask, n, t_q, t_k, num_heads):
    """nn.MultiheadAttention's attn_mask for a course mask: True = may NOT attend, one (T_q, T_k) slice per
    (sequence, head), sequence-major."""
    if mask is None:
        return None
    return torch.as_tensor(np.repeat(~_allowed(mask, (n, t_q, t_k)), num_heads, axis=0))


def torch_multihead(x_q, x_kv, Wq, Wk, Wv, Wo, num_heads, mask=None, bq=None, bk=None, bv=None, bo=None,
                    dout=None):
    """nn.MultiheadAttention(batch_first, float64) given the course-layout weights: (out, per-head weights,
    gradients in multihead_backward's order, or None without dout)."""
    (n, t_q, d), t_k, d_kv = np.shape(x_q), np.shape(x_kv)[1], np.shape(Wk)[0]
    same = d_kv == d
    mha = nn.MultiheadAttention(d, num_heads, batch_first=True, dtype=torch.float64,
                                **({} if same else {"kdim": d_kv, "vdim": d_kv}))
    biases = [np.zeros(d) if b is None else np.asarray(b, dtype=np.float64) for b in (bq, bk, bv, bo)]
    with torch.no_grad():  # torch multiplies x @ W.T, so it holds the transposes of the course's weights
        if same:
            mha.in_proj_weight.copy_(torch.as_tensor(np.concatenate([np.transpose(W) for W in (Wq, Wk, Wv)])))
        else:
            for name, W in zip("qkv", (Wq, Wk, Wv)):
                getattr(mha, f"{name}_proj_weight").copy_(torch.as_tensor(np.transpose(W)))
        mha.in_proj_bias.copy_(torch.as_tensor(np.concatenate(biases[:3])))
        mha.out_proj.weight.copy_(torch.as_tensor(np.transpose(Wo)))
        mha.out_proj.bias.copy_(torch.as_tensor(biases[3]))
    xq, xkv = _tensors(x_q, x_kv, grad=dout is not None)
    out, weights = mha(xq, xkv, xkv, attn_mask=_blocked(mask, n, t_q, t_k, num_heads), need_weights=True,
                       average_attn_weights=False)
    if dout is None:
        return out.detach().numpy(), weights.detach().numpy(), None
    out.backward(torch.as_tensor(np.asarray(dout, dtype=np.float64)))
    if same:
        dW = [g.T for g in np.split(mha.in_proj_weight.grad.numpy(), 3)]
    else:
        dW = [getattr(mha, f"{name}_proj_weight").grad.numpy().T for name in "qkv"]
    db = np.split(mha.in_proj_bias.grad.numpy(), 3)
    grads = (xq.grad.numpy(), xkv.grad.numpy(), *dW, mha.out_proj.weight.grad.numpy().T, *db,
             mha.out_proj.bias.grad.numpy())
    return out.detach().numpy(), weights.detach().numpy(), grads


class TorchOracle:
    """Expected values from PyTorch with the contract of solutions/attention (attention.py, and the toy model's
    forward on given parameters); no reference figure."""

    plot_attention = None

    def __init__(self, ctx):
        pass

    attention_forward, attention_backward = map(staticmethod, torch_pair(
        lambda q, k, v, mask=None: torch_attention(q, k, v, mask)[0], ("q", "k", "v")))

    @staticmethod
    def attention_weights(cache):
        if "weights" in cache:  # multihead_forward's cache
            return cache["weights"]
        return torch_reference(lambda q, k, v, mask=None: torch_attention(q, k, v, mask)[1], cache, None)[0]

    @staticmethod
    def multihead_forward(x_q, x_kv, Wq, Wk, Wv, Wo, num_heads, mask=None, bq=None, bk=None, bv=None, bo=None):
        args = (x_q, x_kv, Wq, Wk, Wv, Wo, num_heads, mask, bq, bk, bv, bo)
        out, weights, _ = torch_multihead(*args)
        return out, {"inputs": args, "weights": weights}

    @staticmethod
    def multihead_backward(dout, cache):
        return torch_multihead(*cache["inputs"], dout=dout)[2]

    @staticmethod
    def tiny_model(params, src):
        """TinyAttentionModel's logits (N, T, C) and weights (N, T, T) on the parameters `params`."""
        p = {name: torch.tensor(value) for name, value in params.items()}
        source = p["tok_emb"][torch.as_tensor(src)] + p["src_pos"]  # (N, T, D) tokens plus positions
        queries = (p["tgt_pos"] @ p["Wq"]).expand(len(src), -1, -1)
        read, weights = torch_attention(queries, source @ p["Wk"], source @ p["Wv"])
        return (read @ p["W_out"] + p["b_out"]).numpy(), weights.numpy()


# -- inputs -------------------------------------------------------------------------------------------------------


def _causal(t_q: int, t_k: int) -> np.ndarray:
    """(T_q, T_k): query t may attend to keys up to t + T_k - T_q (every row keeps at least one key)."""
    return np.tril(np.ones((t_q, t_k), dtype=bool), k=t_k - t_q)


def _padding(ctx, n: int, t_k: int) -> np.ndarray:
    """(N, 1, T_k): each sequence's last few keys are padding (sequence 0 always has some, none is all padding)."""
    valid = np.ones((n, t_k), dtype=bool)
    for i in range(n):
        valid[i, t_k - int(ctx.rng.integers(1 if i == 0 else 0, t_k)):] = False
    return valid[:, None, :]


def _qkv(ctx, n, t_q, t_k, d, d_v, mask=None) -> dict:
    rng = ctx.rng
    return {"q": rng.standard_normal((n, t_q, d)), "k": rng.standard_normal((n, t_k, d)),
            "v": rng.standard_normal((n, t_k, d_v)), "mask": mask}


def _large_logits(ctx, n, t_q, t_k, d, d_v) -> dict:
    """Logits of size 1e3 (about +1000 in some rows, -1000 in others) whose differences within a row are O(1):
    exp overflows (or underflows to 0 / 0) unless the row max is subtracted, yet the softmax is well conditioned."""
    rng = ctx.rng
    c = rng.standard_normal(d)
    c /= np.linalg.norm(c)
    sign = rng.choice([-1.0, 1.0], size=(n, t_q, 1))
    q = sign * 100.0 * c + rng.standard_normal((n, t_q, d))
    k = 10.0 * np.sqrt(d) * c + 0.02 * np.sqrt(d) * rng.standard_normal((n, t_k, d))
    return {"q": q, "k": k, "v": rng.standard_normal((n, t_k, d_v)), "mask": None}


def _dead_row(ctx, n, t_q, t_k, d, d_v) -> tuple[dict, tuple[int, int]]:
    """A random mask in which one query (returned as (sequence, position)) may attend to no key at all."""
    mask = ctx.rng.random((n, t_q, t_k)) < 0.6
    mask[np.arange(n)[:, None], np.arange(t_q), ctx.rng.integers(0, t_k, (n, t_q))] = True  # every row lives ...
    dead = (int(ctx.rng.integers(n)), int(ctx.rng.integers(t_q)))
    mask[dead] = False  # ... but this one
    return _qkv(ctx, n, t_q, t_k, d, d_v, mask), dead


def _attention_cases(ctx) -> list[tuple[str, dict]]:
    """(label, inputs): T_q != T_k, causal and padding masks, D = 1, a fully masked row, logits of size 1e3."""
    n = ctx.pick(2, 3)
    t_q, t_k, d, d_v = ctx.pick((3, 5, 4, 2), (4, 7, 6, 3))
    sq = ctx.pick(4, 5)
    dead, where = _dead_row(ctx, n, t_q, t_k, d, d_v)
    return [("no mask, T_q != T_k", _qkv(ctx, n, t_q, t_k, d, d_v)),
            ("causal mask", _qkv(ctx, n, sq, sq, d, d_v, _causal(sq, sq))),
            ("padding mask, T_q != T_k", _qkv(ctx, n, t_q, t_k, d, d_v, _padding(ctx, n, t_k))),
            ("D = 1", _qkv(ctx, n, t_q, t_k, 1, d_v, _causal(t_q, t_k))),
            (f"a fully masked row (query {where[1]} of sequence {where[0]}) gives zeros", dead),
            ("logits of size 1e3 (stability)", _large_logits(ctx, n, t_q, t_k, d, d_v))]


def _finite(ctx, name: str, got, label: str) -> None:
    """A fully masked row's usual failure, named: the row max is -inf, and -inf - (-inf) or 0 / 0 is NaN."""
    if label.startswith("a fully masked row") and isinstance(got, np.ndarray) and got.dtype.kind == "f" \
            and not np.all(np.isfinite(got)):
        ctx.fail(f"{name} has {int(np.sum(~np.isfinite(got)))} NaN or infinite entries: a query that may attend "
                 f"to no key must get zero weights and a zero output (its row max is -inf, and -inf - (-inf) and "
                 f"0 / 0 are NaN): guard that row")


# -- scaled dot-product attention ---------------------------------------------------------------------------------


@CHECKS.task("attention.attention_forward")
def _(ctx):
    for label, inp in _attention_cases(ctx):
        with ctx.part(label):
            want_out, want_cache = ctx.oracle.attention_forward(**inp)
            out, cache = ctx.call("attention_forward", *inp.values(), keep=(1,), returns=("array", "kept"))
            _finite(ctx, "out", out, label)
            ctx.compare("out", out, want_out)
            weights = ctx.call("attention_weights", cache, returns="array")
            _finite(ctx, 'cache["weights"]', weights, label)
            ctx.compare('cache["weights"]', weights, ctx.oracle.attention_weights(want_cache))


@CHECKS.task("attention.attention_backward")
def _(ctx):
    for label, inp in _attention_cases(ctx):
        dout = ctx.rng.standard_normal((*inp["q"].shape[:-1], inp["v"].shape[-1]))
        with ctx.part(label):
            _, want_cache = ctx.oracle.attention_forward(**inp)
            out, cache = ctx.call("attention_forward", *inp.values(), keep=(1,), returns=("array", "kept"))
            if out.shape != dout.shape:
                ctx.fail(f"attention_forward returned out of shape {out.shape}, expected {dout.shape}; fix "
                         f"attention_forward first")
            grads = ctx.call("attention_backward", dout, cache, returns=("array",) * 3)
            want = ctx.oracle.attention_backward(dout, want_cache)
            got = {}
            for name, g, w in zip("qkv", grads, want):
                _finite(ctx, "d" + name, g, label)
                got[name] = ctx.array("d" + name, g, inp[name].shape)
                ctx.compare_grad("d" + name, got[name], w)
            if "1e3" not in label:  # central differences at logits of 1e3 are rounding noise: compare only
                ctx.gradcheck(lambda **kw: ctx.oracle.attention_forward(**kw)[0], inp, got, dout)


# -- multi-head attention ---------------------------------------------------------------------------------------

MHA_GRADS = ("x_q", "x_kv", "Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo")


def _mha_inputs(ctx, n, t_q, t_k, d, d_kv, heads, mask=None, bias=True, self_attention=False) -> dict:
    """multihead_forward's arguments (in order), weights scaled so the logits are O(1)."""
    rng = ctx.rng
    x_q = rng.standard_normal((n, t_q, d))
    x_kv = x_q.copy() if self_attention else rng.standard_normal((n, t_k, d_kv))
    inp = {"x_q": x_q, "x_kv": x_kv, "Wq": rng.standard_normal((d, d)) / np.sqrt(d),
           "Wk": rng.standard_normal((d_kv, d)) / np.sqrt(d_kv), "Wv": rng.standard_normal((d_kv, d)) / np.sqrt(d_kv),
           "Wo": rng.standard_normal((d, d)) / np.sqrt(d), "num_heads": heads, "mask": mask}
    for b in ("bq", "bk", "bv", "bo"):
        inp[b] = rng.standard_normal(d) * 0.5 if bias else None
    return inp


def _mha_cases(ctx) -> list[tuple[str, dict]]:
    n = ctx.pick(2, 3)
    t, d, heads = ctx.pick((4, 6, 3), (5, 8, 4))
    t_q, t_k, dc, d_kv, hc = ctx.pick((3, 5, 4, 3, 2), (4, 6, 6, 5, 3))
    return [(f"self-attention, {heads} heads, biases", _mha_inputs(ctx, n, t, t, d, d, heads, self_attention=True)),
            (f"cross-attention: T_q != T_k, D_kv != D, {hc} heads", _mha_inputs(ctx, n, t_q, t_k, dc, d_kv, hc)),
            ("causal mask, no biases", _mha_inputs(ctx, n, t, t, d, d, heads, _causal(t, t), bias=False,
                                                   self_attention=True)),
            ("padding mask, cross-attention", _mha_inputs(ctx, n, t_q, t_k, dc, d_kv, hc, _padding(ctx, n, t_k)))]


def _mha_forward_part(ctx, inp: dict, want_out, want_weights, rtol: float | None = None):
    """The student's multihead_forward(*inp) gives `want_out` and the per-head weights `want_weights`; returns the
    cache (kept in the worker)."""
    out, cache = ctx.call("multihead_forward", *inp.values(), keep=(1,), returns=("array", "kept"))
    ctx.compare("out", out, want_out, rtol)
    weights = ctx.call("attention_weights", cache, returns="array")
    ctx.compare('cache["weights"] (N, num_heads, T_q, T_k)', weights, want_weights, rtol)
    return cache


@CHECKS.task("attention.multihead_forward")
def _(ctx):
    for label, inp in _mha_cases(ctx):
        with ctx.part(label):
            want_out, want_cache = ctx.oracle.multihead_forward(**inp)
            _mha_forward_part(ctx, inp, want_out, ctx.oracle.attention_weights(want_cache))


def _compare_mha_grads(ctx, names, got: dict, want: dict, inp: dict, dout, numeric: bool = True,
                       rtol: float | None = None) -> None:
    """Gradients `names` of multihead_backward against the expected ones (and, with `numeric`, against directional
    derivatives of the oracle); dbk against exactly 0 (absolute)."""
    d = inp["x_q"].shape[-1]
    checked = {}
    for name in names:
        shape = np.shape(inp[name]) if inp[name] is not None else (d,)
        g = ctx.array("d" + name, got[name], shape)
        if name == "bk":
            # a key bias adds q . bk to every logit of a query's row, which the softmax ignores: dbk is exactly 0,
            # so a relative comparison would compare rounding noise; compare absolutely
            worst = float(np.max(np.abs(g), initial=0.0))
            ctx.expect(worst <= ctx.tol.grad_rtol, f"dbk should be 0 (a key bias shifts a whole row of logits, "
                                                   f"which the softmax ignores); max |dbk| is {worst:.3g}")
            continue
        ctx.compare_grad("d" + name, g, want[name], rtol)
        if inp[name] is not None:
            checked[name] = g
    if numeric and checked:
        ctx.gradcheck(lambda **kw: ctx.oracle.multihead_forward(**kw)[0], inp, checked, dout)


def _mha_grads(ctx, inp: dict, dout):
    """(student gradients, expected gradients) by name, the student's from a cache of their own forward."""
    out, cache = ctx.call("multihead_forward", *inp.values(), keep=(1,), returns=("array", "kept"))
    if out.shape != np.shape(dout):
        raise CheckFailed(f"multihead_forward returned out of shape {out.shape}, expected {np.shape(dout)}; fix "
                          f"multihead_forward first")
    got = ctx.call("multihead_backward", dout, cache, returns=("array",) * len(MHA_GRADS))
    _, want_cache = ctx.oracle.multihead_forward(**inp)
    return dict(zip(MHA_GRADS, got)), dict(zip(MHA_GRADS, ctx.oracle.multihead_backward(dout, want_cache)))


GRAD_GROUPS = {"dx_q, dx_kv": ("x_q", "x_kv"), "dWq, dWk, dWv, dWo": ("Wq", "Wk", "Wv", "Wo"),
               "dbq, dbv, dbo, and dbk = 0": ("bq", "bk", "bv", "bo")}


@CHECKS.task("attention.multihead_backward")
def _(ctx):
    cases = _mha_cases(ctx)
    cross = cases[3][1]  # cross-attention, padding mask, biases: one part per group of gradients
    dout = ctx.rng.standard_normal(cross["x_q"].shape)
    grads = problem = None
    try:
        grads = _mha_grads(ctx, cross, dout)
    except Exception as exc:  # noqa: BLE001 -- re-raised in each part, which names it (student's or grader's)
        problem = exc
    for label, names in GRAD_GROUPS.items():
        with ctx.part(f"{label} ({cases[3][0]})"):
            if problem is not None:
                raise problem
            _compare_mha_grads(ctx, names, *grads, cross, dout)
    label, inp = cases[2]  # self-attention, causal mask, no biases: all ten gradients
    dout = ctx.rng.standard_normal(inp["x_q"].shape)
    with ctx.part(f"all ten gradients ({label}, self-attention)"):
        _compare_mha_grads(ctx, MHA_GRADS, *_mha_grads(ctx, inp, dout), inp, dout)


# -- parity with PyTorch ----------------------------------------------------------------------------------------


@CHECKS.task("attention.mha_weights_from_torch")
def _(ctx):
    """nn.MultiheadAttention's parameters, converted by the student's mha_weights_from_torch, must make the
    student's multihead attention compute what torch computes: outputs, per-head weights (average_attn_weights
    False) and gradients, in float64. Expected values come from torch in both suites."""
    n = ctx.pick(2, 3)
    t, d, heads = ctx.pick((4, 6, 2), (5, 8, 4))
    t_q, t_k = ctx.pick((3, 5), (4, 7))
    cases = [("self-attention, causal mask", _mha_inputs(ctx, n, t, t, d, d, heads, _causal(t, t),
                                                         self_attention=True)),
             ("cross-attention (T_q != T_k), padding mask", _mha_inputs(ctx, n, t_q, t_k, d, d, heads,
                                                                       _padding(ctx, n, t_k)))]
    douts = [ctx.rng.standard_normal(inp["x_q"].shape) for _, inp in cases]
    caches = {}
    for (label, inp), dout in zip(cases, douts):
        with ctx.part(f"{label}: output and per-head weights equal nn.MultiheadAttention's"):
            # the parameters as nn.MultiheadAttention holds them (its layout), then converted by the student
            torch_params = (np.concatenate([inp["Wq"].T, inp["Wk"].T, inp["Wv"].T]),
                            np.concatenate([inp["bq"], inp["bk"], inp["bv"]]), inp["Wo"].T, inp["bo"])
            mine = ctx.call("mha_weights_from_torch", *torch_params, returns=("array",) * 8)
            for name, got in zip(("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo"), mine):
                ctx.array(name, got, inp[name].shape)
            converted = dict(inp, **dict(zip(("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo"), mine)))
            want_out, want_weights, want_grads = torch_multihead(**inp, dout=dout)
            caches[label] = (_mha_forward_part(ctx, converted, want_out, want_weights, ctx.tol.parity_rtol),
                             dict(zip(MHA_GRADS, want_grads)))
    label, inp = cases[1]
    with ctx.part(f"gradients equal torch.autograd's through nn.MultiheadAttention ({label})"):
        if label not in caches:
            ctx.fail("the forward pass above failed; fix it first")
        cache, want = caches[label]
        got = ctx.call("multihead_backward", douts[1], cache, returns=("array",) * len(MHA_GRADS))
        _compare_mha_grads(ctx, MHA_GRADS, dict(zip(MHA_GRADS, got)), want, inp, douts[1], numeric=False,
                           rtol=ctx.tol.parity_rtol)
    with ctx.part("attention_forward and attention_backward equal F.scaled_dot_product_attention (4-D batch, "
                  "boolean mask)"):
        shape_q, shape_k = ctx.pick(((2, 2, 3, 4), (2, 2, 5, 4)), ((2, 3, 4, 6), (2, 3, 6, 6)))
        q, k, v = (ctx.rng.standard_normal(s) for s in (shape_q, shape_k, shape_k))
        mask = _causal(shape_q[2], shape_k[2])
        dout = ctx.rng.standard_normal(shape_q)
        tq, tk, tv = _tensors(q, k, v, grad=True)
        want = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.as_tensor(mask))
        want.backward(torch.as_tensor(dout))
        out, cache = ctx.call("attention_forward", q, k, v, mask, keep=(1,), returns=("array", "kept"))
        ctx.compare("out", out, want.detach().numpy(), rtol=ctx.tol.parity_rtol)
        grads = ctx.call("attention_backward", dout, cache, returns=("array",) * 3)
        for name, g, t in zip("qkv", grads, (tq, tk, tv)):
            ctx.compare_grad("d" + name, g, t.grad.numpy(), rtol=ctx.tol.parity_rtol)


# -- the toy model (PyTorch, with the student's NumPy attention inside) -------------------------------------------


@CHECKS.task("attention.NumpyAttention")
def _(ctx):
    n, t_q, t_k, d, d_v = ctx.pick((2, 3, 5, 4, 2), (3, 4, 6, 5, 3))
    cases = [("T_q != T_k, no mask", _qkv(ctx, n, t_q, t_k, d, d_v)),
             ("causal mask", _qkv(ctx, n, t_k, t_k, d, d_v, _causal(t_k, t_k)))]
    for label, inp in cases:
        dout = ctx.rng.standard_normal((n, inp["q"].shape[1], d_v))
        want_out, want_cache = ctx.oracle.attention_forward(**inp)
        want_grads = ctx.oracle.attention_backward(dout, want_cache)
        with ctx.part(f"{label}: out and weights equal attention's"):
            out, weights, *_ = ctx.call("attention_and_grads", *inp.values(), None,  # forward only
                                        returns=("array", "array", "any", "any", "any"))
            ctx.compare("out", out, want_out)
            ctx.compare("weights", weights, ctx.oracle.attention_weights(want_cache))
        with ctx.part(f"{label}: the gradients torch.autograd gets from backward are dq, dk, dv"):
            _, _, *grads = ctx.call("attention_and_grads", *inp.values(), dout,
                                    returns=("array", "array", "any", "any", "any"))
            for name, g, w in zip("qkv", grads, want_grads):
                if g is None:
                    ctx.fail(f"no gradient reached {name}: backward must return one gradient per input of forward "
                             f"(dq, dk, dv, then None for the mask)")
                ctx.compare_grad("d" + name, g, w)


_MODEL_PARAMS = ("tok_emb", "src_pos", "tgt_pos", "Wq", "Wk", "Wv", "W_out", "b_out")


@CHECKS.task("attention.TinyAttentionModel")
def _(ctx):
    sizes = ctx.pick([(7, 5, 8, 3), (5, 4, 6, 1)], [(9, 6, 12, 4), (6, 5, 8, 1)])  # (C, T, D, N)
    for vocab, t, dim, n in sizes:
        seed = int(ctx.rng.integers(1 << 31))
        src = ctx.rng.integers(0, vocab, (n, t))
        with ctx.part(f"logits and attention weights on the model's own parameters (C={vocab}, T={t}, D={dim}, "
                      f"N={n})"):
            model = ctx.call("TinyAttentionModel", vocab, t, dim, seed, keep=True)
            params = {name: ctx.attr(model, name, returns="array") for name in _MODEL_PARAMS}
            logits, weights = ctx.call("model_outputs", model, src, returns=("array", "array"))
            want_logits, want_weights = ctx.oracle.tiny_model(params, src)
            ctx.compare("logits", logits, want_logits)
            ctx.compare("weights", weights, want_weights)


def expected_targets(task: str, src: np.ndarray) -> np.ndarray:
    """The documented targets of a toy task for sources (N, T)."""
    return {"copy": src, "reverse": src[:, ::-1], "sort": np.sort(src, axis=1)}[task]


def _train_and_score(ctx):
    """Train the student's model on sequences drawn here, predict held-out ones; the accuracy is computed here."""
    def run(bar, _):
        s = bar.settings
        rng = np.random.default_rng([ctx.seed, 7])  # the data do not depend on the other parts' draws
        src, src_test = (rng.integers(0, s["vocab"], (size, s["T"])) for size in (bar.train_size, bar.test_size))
        seed = int(ctx.seed % 100_000)
        model = fit(ctx, bar, "TinyAttentionModel", "train", (src, expected_targets(s["task"], src)),
                    model_keys=("vocab", "T", "dim"), own_keys=("task",), model_kw={"seed": seed},
                    train_kw={"seed": seed})
        pred, weights = ctx.call("predict", model, src_test, returns=("array", "array"))
        pred = ctx.array("predictions", pred, src_test.shape)
        want = expected_targets(s["task"], np.arange(s["T"])[None])[0]  # source position each target reads
        if weights.shape == (bar.test_size, s["T"], s["T"]):
            ctx.metric("toy.alignment_weight", float(weights[:, np.arange(s["T"]), want].mean()))
        return float(np.mean(np.all(pred == expected_targets(s["task"], src_test), axis=1)))
    return run


@CHECKS.task("attention.train")
def _(ctx):
    n, t, vocab = ctx.pick((6, 5, 4), (9, 7, 6))
    with ctx.part("make_task: the documented sources, and copy, reverse and sort targets"):
        seed = int(ctx.rng.integers(1 << 31))
        want_src = np.random.default_rng(seed).integers(0, vocab, size=(n, t))
        for task in ("copy", "reverse", "sort"):
            src, tgt = ctx.call("make_task", task, n, t, vocab, seed, returns=("array", "array"))
            ctx.compare(f"{task}: src", src, want_src, rtol=0.0)
            ctx.compare(f"{task}: tgt", tgt, expected_targets(task, want_src), rtol=0.0)
    with ctx.part("sequence_accuracy: the fraction of sequences with every token right"):
        tgt = ctx.rng.integers(0, vocab, (4 * n, t))
        pred = tgt.copy()
        wrong = ctx.rng.choice(4 * n, n + 1, replace=False)
        pred[wrong, ctx.rng.integers(0, t, n + 1)] += 1  # one wrong token in each of n + 1 sequences
        acc = ctx.call("sequence_accuracy", pred, tgt, returns="number")
        ctx.compare("accuracy", acc, (3 * n - 1) / (4 * n), rtol=ctx.tol.exact_rtol)
    with ctx.part("train: one loss per mini-batch, the loss goes down"):
        size, batch, epochs = 200, 50, 3
        src = ctx.rng.integers(0, vocab, (size, t))
        model = ctx.call("TinyAttentionModel", vocab, t, 16, int(ctx.rng.integers(1 << 31)), keep=True)
        hist = ctx.call("train", model, src, expected_targets("copy", src), epochs, batch, 0.05, 0,
                        returns={"loss": "list"})
        loss = ctx.array('history["loss"]', np.asarray(hist["loss"], dtype=np.float64))
        steps = epochs * size // batch
        ctx.expect(loss.shape == (steps,), f'history["loss"] has {loss.size} entries, expected one per step: {steps} '
                                           f"({epochs} epochs of {size // batch} mini-batches of {batch})")
        ctx.expect(bool(np.all(np.isfinite(loss)) and loss[-3:].mean() < loss[:3].mean()),
                   f"the training loss does not go down when copying ({np.round(loss, 3).tolist()})")
    train_to_bar(ctx, "toy", _train_and_score(ctx), weight=2)


# -- the attention map ------------------------------------------------------------------------------------------

_WORDS = ("ọmọ", "ilé", "ọjà", "owó", "iṣẹ́", "omi", "ìwé", "oúnjẹ", "ọ̀nà", "ọkọ̀")
_ENGLISH = ("child", "house", "market", "money", "work", "water", "book", "food", "road", "vehicle")


@CHECKS.task("attention.plot_attention")
def _(ctx):
    t_q, t_k = ctx.pick((4, 6), (5, 7))
    logits = 2.0 * ctx.rng.standard_normal((t_q, t_k))
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)  # (T_q, T_k), rows sum to 1
    src = [_WORDS[i] for i in ctx.rng.permutation(len(_WORDS))[:t_k]]
    tgt = [_ENGLISH[i] for i in ctx.rng.permutation(len(_ENGLISH))[:t_q]]
    title = ctx.pick("Where each word looks", "Attention of each target word")
    expected = ctx.oracle.plot_attention(weights, src, tgt, title) if ctx.oracle.plot_attention else None
    fig = ax = None
    with ctx.part("one heatmap whose array is the weights: rows = target positions, columns = source", 2):
        fig = ctx.figure("plot_attention", ctx.call("plot_attention", weights, src, tgt, title), expected)
        ax = one_panel(ctx, fig, "the heatmap (and its colorbar)")
        images = [im for im in ax["images"] if isinstance(im, dict) and im.get("array") is not None]
        if not images:
            ctx.fail("the axes has no image: draw the weights with ax.imshow(weights, ...)")
        ctx.compare("the heatmap's array", images[0]["array"], weights, rtol=ctx.tol.exact_rtol)
    with ctx.part("x tick labels are the source tokens, y tick labels the target tokens"):
        if ax is None:
            ctx.fail("no figure")
        for axis, want, what in (("x", src, "source"), ("y", tgt, "target")):
            got = [str(s).strip() for s in ax[f"{axis}ticklabels"]]
            ctx.expect(got == want, f"the {axis} tick labels are {got}; expected the {what} tokens {want} (one tick "
                                    f"per position: ax.set_{axis}ticks(range(len(tokens)), tokens))")
    with ctx.part("a colorbar, axis labels and the title"):
        if ax is None:
            ctx.fail("no figure")
        ctx.expect(bool(fig["colorbars"]) and any(isinstance(im, dict) and im.get("has_colorbar")
                                                  for im in ax["images"]),
                   "add a colorbar for the heatmap (fig.colorbar(image, ax=ax))")
        ctx.expect(bool(ax["xlabel"].strip() and ax["ylabel"].strip()), "label both axes")
        ctx.expect(ax["title"].strip() == title, f"the title is {ax['title']!r}; expected the title argument {title!r}")


SUITE = CHECKS.suite("public", TorchOracle)
