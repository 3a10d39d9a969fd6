"""Scaled dot-product attention and multi-head attention as CS231n-style forward/backward pairs, in NumPy.

Shapes: N batch, T_q query positions, T_k key positions, D features (per head for attention_forward),
D_v value features. Every `*_forward` returns `(out, cache)` and every `*_backward(dout, cache)` returns the
gradients in the order of the forward's array inputs. Masks are boolean with True = "may attend" (the convention of
torch's F.scaled_dot_product_attention; nn.MultiheadAttention's attn_mask uses the opposite one).
The attention weights, for plotting, are `cache["weights"]` (or `attention_weights(cache)`).
Write only inside the marked regions; keep the signatures, the grader calls them as they are.
"""
from __future__ import annotations

import numpy as np


def attention_forward(q, k, v, mask=None):
    """Scaled dot-product attention for one head: softmax(q k^T / sqrt(D), masked) v.

    Args:
        q: (N, T_q, D) queries.
        k: (N, T_k, D) keys.
        v: (N, T_k, D_v) values.
            Further leading axes are batch axes too, e.g. (N, num_heads, T_q, D) in multihead_forward.
        mask: None, or a boolean array broadcastable to (N, T_q, T_k): True where query t may attend to key s.
            Causal: np.tril(np.ones((T_q, T_k), dtype=bool)). Padding: valid[:, None, :] for valid (N, T_k).
            A query whose row is all False gets a zero output row and zero gradients (never NaN).
    Returns:
        out: (N, T_q, D_v) attention output.
        cache: dict for attention_backward. cache["weights"] (N, T_q, T_k) holds the attention weights: each row
            sums to 1 over the allowed keys (or is all zero when fully masked); plot them with toy.plot_attention.
    """
    ### BEGIN SOLUTION
    scale = q.shape[-1] ** -0.5  # 1 / sqrt(D) as a Python float, so float32 inputs stay float32
    # scale q (N*T_q*D numbers) rather than the logits: cheaper, and float32 exp sees no denormals
    scores = (q * scale) @ k.swapaxes(-1, -2)  # (N, T_q, T_k)
    if mask is not None:
        np.copyto(scores, -np.inf, where=np.logical_not(mask))  # exp(-inf) = 0: masked keys get zero weight
    row_max = scores.max(axis=-1, keepdims=True)  # (N, T_q, 1)
    row_max[~np.isfinite(row_max)] = 0  # a fully masked row has max -inf, and -inf - (-inf) is NaN
    scores -= row_max  # subtract the row max: exp never overflows
    # in place from here on: a fresh (N, T_q, T_k) array costs more than the exp itself
    weights = np.exp(scores, out=scores)  # (N, T_q, T_k)
    denom = weights.sum(axis=-1, keepdims=True)  # (N, T_q, 1), 0 only for a fully masked row
    weights /= np.where(denom > 0, denom, 1)  # such a row stays all zero instead of 0 / 0
    out = weights @ v  # (N, T_q, D_v)
    ### END SOLUTION
    cache = {"q": q, "k": k, "v": v, "scale": scale, "weights": weights}
    return out, cache


def attention_backward(dout, cache):
    """Backward pass of attention_forward.

    Args:
        dout: (N, T_q, D_v) upstream gradient.
        cache: from attention_forward.
    Returns:
        dq: (N, T_q, D).  dk: (N, T_k, D).  dv: (N, T_k, D_v).
    """
    q, k, v, scale, weights = cache["q"], cache["k"], cache["v"], cache["scale"], cache["weights"]
    ### BEGIN SOLUTION
    dv = weights.swapaxes(-1, -2) @ dout  # (N, T_k, D_v)
    dscores = dout @ v.swapaxes(-1, -2)  # (N, T_q, T_k), for now the gradient of the weights
    # softmax backward per row: dscore_s = w_s (dw_s - sum_j w_j dw_j); a masked key has w_s = 0, so it gets 0.
    # In place, with einsum for the row sums: fresh (N, T_q, T_k) temporaries would cost more than the arithmetic
    dscores -= np.einsum("...ij,...ij->...i", dscores, weights)[..., None]
    dscores *= weights
    dq = scale * (dscores @ k)  # (N, T_q, D); the logits were scale * q k^T
    dk = scale * (dscores.swapaxes(-1, -2) @ q)  # (N, T_k, D)
    ### END SOLUTION
    return dq, dk, dv


def attention_weights(cache):
    """The attention weights kept in a cache of attention_forward (N, T_q, T_k) or multihead_forward
    (N, num_heads, T_q, T_k)."""
    return cache["weights"]


def multihead_forward(x_q, x_kv, Wq, Wk, Wv, Wo, num_heads, mask=None, bq=None, bk=None, bv=None, bo=None):
    """Multi-head attention: project, split into heads, attend per head, merge the heads, project.

    q = x_q @ Wq + bq, k = x_kv @ Wk + bk, v = x_kv @ Wv + bv; head i uses feature columns i*D_h:(i+1)*D_h of
    q, k and v (D_h = D // num_heads) and scales by sqrt(D_h); the head outputs are concatenated in head order
    and out = concat @ Wo + bo. This is nn.MultiheadAttention(D, num_heads, batch_first=True) with its
    parameters converted by mha_weights_from_torch.

    Args:
        x_q: (N, T_q, D) query-side input.
        x_kv: (N, T_k, D_kv) key/value-side input; pass x_q again for self-attention (D_kv = D).
        Wq: (D, D).  Wk: (D_kv, D).  Wv: (D_kv, D).  Wo: (D, D).
        num_heads: number of heads; D must be a multiple of it.
        mask: None or boolean, broadcastable to (N, T_q, T_k), True = may attend; the same for every head.
        bq, bk, bv, bo: (D,) biases, or None for no bias.
    Returns:
        out: (N, T_q, D).
        cache: dict for multihead_backward; cache["weights"] (N, num_heads, T_q, T_k) holds every head's weights.
    """
    n, t_q, d = x_q.shape
    t_k = x_kv.shape[1]
    if d % num_heads:
        raise ValueError(f"D = {d} is not a multiple of num_heads = {num_heads}")
    d_h = d // num_heads
    zero = np.zeros(d, dtype=x_q.dtype)
    bq, bk, bv, bo = (zero if b is None else b for b in (bq, bk, bv, bo))
    # (N, 1, T_q, T_k): the head axis broadcasts, so every head sees the same mask
    head_mask = None if mask is None else np.broadcast_to(mask, (n, t_q, t_k))[:, None]
    ### BEGIN SOLUTION
    # (N, T, D) -> (N, T, num_heads, D_h) -> (N, num_heads, T, D_h): head i owns columns i*D_h:(i+1)*D_h
    q = (x_q @ Wq + bq).reshape(n, t_q, num_heads, d_h).transpose(0, 2, 1, 3)
    k = (x_kv @ Wk + bk).reshape(n, t_k, num_heads, d_h).transpose(0, 2, 1, 3)
    v = (x_kv @ Wv + bv).reshape(n, t_k, num_heads, d_h).transpose(0, 2, 1, 3)
    heads, attn_cache = attention_forward(q, k, v, head_mask)  # (N, num_heads, T_q, D_h)
    merged = heads.transpose(0, 2, 1, 3).reshape(n, t_q, d)  # (N, T_q, D): heads side by side, in order
    out = merged @ Wo + bo  # (N, T_q, D)
    ### END SOLUTION
    cache = {"x_q": x_q, "x_kv": x_kv, "Wq": Wq, "Wk": Wk, "Wv": Wv, "Wo": Wo, "num_heads": num_heads,
             "merged": merged, "attn": attn_cache, "weights": attn_cache["weights"]}
    return out, cache


def multihead_backward(dout, cache):
    """Backward pass of multihead_forward.

    Args:
        dout: (N, T_q, D) upstream gradient.
        cache: from multihead_forward.
    Returns:
        dx_q: (N, T_q, D).  dx_kv: (N, T_k, D_kv), the sum of its key and value paths.
        dWq: (D, D).  dWk: (D_kv, D).  dWv: (D_kv, D).  dWo: (D, D).
        dbq, dbk, dbv, dbo: (D,) (returned also when the forward had no biases).
    """
    x_q, x_kv, Wq, Wk, Wv, Wo = (cache[name] for name in ("x_q", "x_kv", "Wq", "Wk", "Wv", "Wo"))
    num_heads, merged = cache["num_heads"], cache["merged"]
    n, t_q, d = x_q.shape
    t_k, d_kv = x_kv.shape[1:]
    d_h = d // num_heads
    ### BEGIN SOLUTION
    dWo = merged.reshape(-1, d).T @ dout.reshape(-1, d)  # (D, D), summed over batch and positions
    dbo = dout.sum(axis=(0, 1))  # (D,)
    dheads = (dout @ Wo.T).reshape(n, t_q, num_heads, d_h).transpose(0, 2, 1, 3)  # (N, num_heads, T_q, D_h)
    dq, dk, dv = attention_backward(dheads, cache["attn"])
    # undo the head split: (N, num_heads, T, D_h) -> (N, T, D)
    dq = dq.transpose(0, 2, 1, 3).reshape(n, t_q, d)
    dk = dk.transpose(0, 2, 1, 3).reshape(n, t_k, d)
    dv = dv.transpose(0, 2, 1, 3).reshape(n, t_k, d)
    dWq = x_q.reshape(-1, d).T @ dq.reshape(-1, d)  # (D, D)
    dWk = x_kv.reshape(-1, d_kv).T @ dk.reshape(-1, d)  # (D_kv, D)
    dWv = x_kv.reshape(-1, d_kv).T @ dv.reshape(-1, d)  # (D_kv, D)
    dbq, dbk, dbv = dq.sum(axis=(0, 1)), dk.sum(axis=(0, 1)), dv.sum(axis=(0, 1))
    dx_q = dq @ Wq.T  # (N, T_q, D)
    dx_kv = dk @ Wk.T + dv @ Wv.T  # (N, T_k, D_kv): x_kv feeds both the keys and the values
    ### END SOLUTION
    return dx_q, dx_kv, dWq, dWk, dWv, dWo, dbq, dbk, dbv, dbo


def mha_weights_from_torch(in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias):
    """The parameters of torch's nn.MultiheadAttention(D, num_heads, batch_first=True) in the layout of
    multihead_forward, so that both compute the same function (the same output and per-head weights).

    torch computes a projection as x @ W.T + b and keeps the query, key and value projections of the heads stacked
    in one matrix: rows 0..D-1 of in_proj_weight project the queries, rows D..2D-1 the keys and rows 2D..3D-1 the
    values; in_proj_bias is stacked the same way. out_proj is the output projection (also x @ W.T + b).

    Args (NumPy arrays, e.g. mha.in_proj_weight.detach().numpy()):
        in_proj_weight: (3D, D).  in_proj_bias: (3D,).  out_proj_weight: (D, D).  out_proj_bias: (D,).
    Returns:
        Wq, Wk, Wv, Wo: (D, D) each, multiplied as x @ W.  bq, bk, bv, bo: (D,) each.
    """
    ### BEGIN SOLUTION
    d = out_proj_weight.shape[0]
    # torch's W is our W.T: slice each projection's D rows, then transpose
    Wq, Wk, Wv = (in_proj_weight[i * d:(i + 1) * d].T for i in range(3))
    bq, bk, bv = (in_proj_bias[i * d:(i + 1) * d] for i in range(3))
    Wo, bo = out_proj_weight.T, out_proj_bias
    ### END SOLUTION
    return Wq, Wk, Wv, Wo, bq, bk, bv, bo
