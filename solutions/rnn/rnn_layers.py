"""Recurrent layers as CS231n-style forward/backward pairs: vanilla RNN, LSTM and GRU (one step and a whole
sequence), word embedding, temporal affine and the temporal softmax loss.

Each `*_forward` returns its output and a cache; each `*_backward(dout, cache)` returns the gradients in the order
of the forward's inputs. Shapes use the course letters: N batch, T time, D input features, H hidden, C classes
(for a language model: the characters of the vocabulary). Everything keeps the dtype of its inputs: float64 for
the checks, float32 where speed matters.

The sequence functions (`rnn_forward`, `lstm_forward`, `gru_forward` and their backward passes) may simply call
the step functions in a loop over time. The reference does not, for speed: the input projection x @ Wx of all T
steps is one matrix product before the loop, and dx, dWx, dWh and db are one matrix product each after the
backward loop, so only h @ Wh (forward) and da @ Wh.T (backward) stay inside the loop. Its buffers are time-major
in memory, (T, N, .), and for the LSTM feature-major, (T, ., N), so that every step (and every LSTM gate) is one
contiguous block; caches hand them around as (N, T, .) views.
Write only inside the marked regions; keep the signatures, the grader calls them as they are.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


def sigmoid(x, out=None):
    """Logistic sigmoid 1 / (1 + exp(-x)) in the dtype of x, without overflow warnings. Provided, not graded.

    out: optional array to write the result into (it may be x itself), which saves temporaries in a loop.
    """
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x still gives the right limit, 0
        out = np.negative(x, out=out)
        np.exp(out, out=out)
        out += 1
        return np.reciprocal(out, out=out)


def _time_major(x):
    """(N, T, ...) -> contiguous (T * N, ...): the rows of step t are rows t*N .. t*N + N - 1. Provided."""
    return np.ascontiguousarray(x.swapaxes(0, 1)).reshape(x.shape[0] * x.shape[1], *x.shape[2:])


# ----------------------------------------------------------------------------------------------------------------
# Vanilla RNN
# ----------------------------------------------------------------------------------------------------------------

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One step of a vanilla (tanh) RNN: next_h = tanh(x @ Wx + prev_h @ Wh + b), as torch.nn.RNN.

    Args:
        x: (N, D) inputs of this step.
        prev_h: (N, H) hidden state of the previous step.
        Wx: (D, H) input-to-hidden weights.  Wh: (H, H) hidden-to-hidden weights.  b: (H,) bias.
    Returns:
        next_h: (N, H).
        cache: (x, prev_h, Wx, Wh, next_h) for rnn_step_backward.
    """
    ### BEGIN SOLUTION
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)
    ### END SOLUTION
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward pass of rnn_step_forward.

    Args:
        dnext_h: (N, H) gradient of the loss with respect to next_h.
        cache: from rnn_step_forward.
    Returns:
        dx: (N, D).  dprev_h: (N, H).  dWx: (D, H).  dWh: (H, H).  db: (H,).
    """
    x, prev_h, Wx, Wh, next_h = cache
    ### BEGIN SOLUTION
    da = dnext_h * (1 - next_h ** 2)  # (N, H): through the tanh, d tanh(a) / da = 1 - tanh(a)^2
    dx = da @ Wx.T  # (N, D)
    dprev_h = da @ Wh.T  # (N, H)
    dWx = x.T @ da  # (D, H)
    dWh = prev_h.T @ da  # (H, H)
    db = da.sum(axis=0)  # (H,)
    ### END SOLUTION
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """A vanilla RNN over a whole sequence, starting from h0.

    Args:
        x: (N, T, D) inputs.
        h0: (N, H) initial hidden state.
        Wx: (D, H).  Wh: (H, H).  b: (H,).
    Returns:
        h: (N, T, H) hidden states of all steps; h[:, -1] is the final state.
        cache: (x, h0, Wx, Wh, h) for rnn_backward.
    """
    N, T, D = x.shape
    H = h0.shape[1]
    ### BEGIN SOLUTION
    xw = (_time_major(x) @ Wx + b).reshape(T, N, H)  # input projection of every step in one product
    hs = np.empty((T, N, H), dtype=np.result_type(xw, h0, Wh))  # time-major: step t is one block
    prev_h = h0
    for t in range(T):
        prev_h = hs[t] = np.tanh(xw[t] + prev_h @ Wh)
    h = hs.swapaxes(0, 1)  # (N, T, H) view
    ### END SOLUTION
    cache = (x, h0, Wx, Wh, h)
    return h, cache


def rnn_backward(dh, cache):
    """Backpropagation through time for rnn_forward.

    Args:
        dh: (N, T, H) upstream gradient on every hidden state (from the layer above, not through time).
        cache: from rnn_forward.
    Returns:
        dx: (N, T, D).  dh0: (N, H).  dWx: (D, H).  dWh: (H, H).  db: (H,).
    """
    x, h0, Wx, Wh, h = cache
    N, T, H = h.shape
    ### BEGIN SOLUTION
    hs = h.swapaxes(0, 1)  # (T, N, H)
    da = np.empty((T, N, H), dtype=np.result_type(dh, h))  # gradient on each step's pre-activation
    dprev_h = np.zeros_like(h0, dtype=da.dtype)
    for t in reversed(range(T)):
        # h_t reaches the loss directly (dh) and through h_{t+1} (dprev_h): both add up
        da[t] = (dh[:, t] + dprev_h) * (1 - hs[t] ** 2)
        dprev_h = da[t] @ Wh.T
    dh0 = dprev_h
    da = da.reshape(T * N, H)
    h_prev = np.concatenate([h0[None], hs[:-1]]).reshape(T * N, H)  # the state each step started from
    dx = (da @ Wx.T).reshape(T, N, -1).swapaxes(0, 1)  # (N, T, D)
    dWx = _time_major(x).T @ da  # (D, H): the weights are shared by all steps, so their gradients add up
    dWh = h_prev.T @ da  # (H, H)
    db = da.sum(axis=0)  # (H,)
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db


# ----------------------------------------------------------------------------------------------------------------
# LSTM (gates packed i, f, o, g as in CS231n; torch.nn.LSTM packs i, f, g, o)
# ----------------------------------------------------------------------------------------------------------------

def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step.

    a = x @ Wx + prev_h @ Wh + b is split into four (N, H) blocks, in this order: input gate i = sigmoid(a_i),
    forget gate f = sigmoid(a_f), output gate o = sigmoid(a_o), candidate g = tanh(a_g). Then
    next_c = f * prev_c + i * g and next_h = o * tanh(next_c).

    Args:
        x: (N, D) inputs.  prev_h: (N, H) hidden state.  prev_c: (N, H) cell state.
        Wx: (D, 4H) input-to-hidden weights.  Wh: (H, 4H) hidden-to-hidden weights.  b: (4H,) bias.
    Returns:
        next_h: (N, H).  next_c: (N, H).
        cache: (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c) with tanh_c = tanh(next_c), for lstm_step_backward.
    """
    H = prev_h.shape[1]
    ### BEGIN SOLUTION
    a = x @ Wx + prev_h @ Wh + b  # (N, 4H)
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g  # (N, H)
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c  # (N, H)
    ### END SOLUTION
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of lstm_step_forward.

    Args:
        dnext_h: (N, H) and dnext_c: (N, H) gradients of the loss with respect to next_h and next_c.
        cache: from lstm_step_forward.
    Returns:
        dx: (N, D).  dprev_h: (N, H).  dprev_c: (N, H).  dWx: (D, 4H).  dWh: (H, 4H).  db: (4H,).
    """
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    ### BEGIN SOLUTION
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)  # next_c reaches the loss directly and through next_h
    da = np.concatenate([dc * g * i * (1 - i),  # (N, 4H), blocks i, f, o, g like a
                         dc * prev_c * f * (1 - f),
                         dnext_h * tanh_c * o * (1 - o),
                         dc * i * (1 - g ** 2)], axis=1)
    dprev_c = dc * f  # the forget gate scales the old cell state
    dx = da @ Wx.T  # (N, D)
    dprev_h = da @ Wh.T  # (N, H)
    dWx = x.T @ da  # (D, 4H)
    dWh = prev_h.T @ da  # (H, 4H)
    db = da.sum(axis=0)  # (4H,)
    ### END SOLUTION
    return dx, dprev_h, dprev_c, dWx, dWh, db


class LSTMCache(NamedTuple):
    """What lstm_backward needs from lstm_forward. Provided. c[:, -1] is the final cell state, the one truncated
    backpropagation through time carries into the next chunk (with h[:, -1])."""
    x: np.ndarray  # (N, T, D) inputs
    h0: np.ndarray  # (N, H) initial hidden state
    c0: np.ndarray  # (N, H) initial cell state
    Wx: np.ndarray  # (D, 4H)
    Wh: np.ndarray  # (H, 4H)
    h: np.ndarray  # (N, T, H) hidden states
    c: np.ndarray  # (N, T, H) cell states
    gates: np.ndarray  # (N, T, 4H) activated gates i, f, o (sigmoid) and g (tanh)
    tanh_c: np.ndarray  # (N, T, H) tanh of the cell states


def lstm_forward(x, h0, Wx, Wh, b, c0=None):
    """An LSTM over a whole sequence (the equations of lstm_step_forward at every step).

    Args:
        x: (N, T, D) inputs.
        h0: (N, H) initial hidden state.
        Wx: (D, 4H).  Wh: (H, 4H).  b: (4H,), gates packed i, f, o, g.
        c0: (N, H) initial cell state; None (CS231n's case) means zeros.
    Returns:
        h: (N, T, H) hidden states of all steps.
        cache: an LSTMCache for lstm_backward; cache.c[:, -1] is the final cell state.
    """
    N, T, D = x.shape
    H = h0.shape[1]
    if c0 is None:
        c0 = np.zeros_like(h0)
    ### BEGIN SOLUTION
    # Feature-major buffers (T, ., N): the gates i, f, o, g of step t are four contiguous (H, N) blocks, so every
    # elementwise operation runs on contiguous memory (on the gate columns of an (N, 4H) array it is ~3x slower).
    dtype = np.result_type(x, h0, c0, Wx, Wh, b)
    # z_t = [x_t; h_{t-1}; 1] and W = [Wx; Wh; b] make a_t = W^T z_t a single GEMM per step, bias included
    z = np.empty((T + 1, D + H + 1, N), dtype=dtype)
    z[:T, :D] = x.transpose(1, 2, 0)
    z[0, D:D + H] = h0.T
    z[:, D + H] = 1
    WT = np.ascontiguousarray(np.concatenate([Wx, Wh, b[None]]).T, dtype=dtype)  # (4H, D + H + 1)
    gates = np.empty((T, 4 * H, N), dtype=dtype)
    cs, tanh_cs = (np.empty((T, H, N), dtype=dtype) for _ in range(2))
    hs = z[1:, D:D + H]  # (T, H, N): h_t is written where step t + 1 reads it
    prev_c = c0.T  # (H, N)
    for t in range(T):
        a = gates[t]  # (4H, N): the pre-activation, then (in place) the activated gates
        np.matmul(WT, z[t], out=a)
        sigmoid(a[:3 * H], out=a[:3 * H])  # i, f and o in one call
        np.tanh(a[3 * H:], out=a[3 * H:])  # g
        i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        np.multiply(f, prev_c, out=cs[t])
        cs[t] += i * g  # c_t = f * c_{t-1} + i * g
        np.tanh(cs[t], out=tanh_cs[t])
        np.multiply(o, tanh_cs[t], out=hs[t])  # h_t = o * tanh(c_t)
        prev_c = cs[t]
    h = np.ascontiguousarray(hs.transpose(2, 0, 1))  # (N, T, H), contiguous for the layers above
    c, gates, tanh_c = (arr.transpose(2, 0, 1) for arr in (cs, gates, tanh_cs))  # (N, T, .) views
    ### END SOLUTION
    cache = LSTMCache(x, h0, c0, Wx, Wh, h, c, gates, tanh_c)
    return h, cache


def lstm_backward(dh, cache):
    """Backpropagation through time for lstm_forward.

    Args:
        dh: (N, T, H) upstream gradient on every hidden state (from the layer above, not through time).
        cache: the LSTMCache from lstm_forward.
    Returns:
        dx: (N, T, D).  dh0: (N, H).  dWx: (D, 4H).  dWh: (H, 4H).  db: (4H,).
        (The gradient on c0 is not returned, as in CS231n.)
    """
    x, h0, c0, Wx, Wh, h, c, gates, tanh_c = cache
    N, T, H = h.shape
    ### BEGIN SOLUTION
    gs, cs, tanh_cs = (arr.transpose(1, 2, 0) for arr in (gates, c, tanh_c))  # feature-major (T, ., N), as built
    dtype = np.result_type(dh, h)
    i, f, o, g = gs[:, :H], gs[:, H:2 * H], gs[:, 2 * H:3 * H], gs[:, 3 * H:]  # (T, H, N) each
    prev_c = np.concatenate([c0.T[None], cs[:-1]])  # (T, H, N): the cell state each step began with
    # The local derivatives have no recurrence in them: computed for all steps at once, on big arrays, so the loop
    # below only multiplies them by the gradients arriving through time.
    local = np.empty((T, 4 * H, N), dtype=dtype)  # d a_t / d c_t for the blocks i, f, g; d a_t / d h_t for o
    sig = gs[:, :3 * H]
    np.multiply(sig, 1 - sig, out=local[:, :3 * H])  # the three sigmoids' derivatives at once
    local[:, :H] *= g
    local[:, H:2 * H] *= prev_c
    local[:, 2 * H:3 * H] *= tanh_cs
    np.multiply(i, 1 - g ** 2, out=local[:, 3 * H:])  # g, through its tanh
    dc_dh = o * (1 - tanh_cs ** 2)  # (T, H, N): h_t = o * tanh(c_t)
    dhs = np.ascontiguousarray(dh.transpose(1, 2, 0))  # (T, H, N)
    da = np.empty((4 * H, T, N), dtype=dtype)  # gradient on each step's pre-activation a; (4H, T * N) for the GEMMs
    dprev_h = np.zeros((H, N), dtype=dtype)
    dprev_c = np.zeros((H, N), dtype=dtype)
    for t in reversed(range(T)):
        dh_t = dhs[t] + dprev_h  # h_t reaches the loss directly and through step t + 1
        dc = dh_t * dc_dh[t]
        dc += dprev_c  # c_t: through h_t and through c_{t+1}
        da_t = da[:, t]  # (4H, N)
        np.multiply(dc, local[t, :2 * H].reshape(2, H, N), out=da_t[:2 * H].reshape(2, H, N))  # d i, d f
        np.multiply(dh_t, local[t, 2 * H:3 * H], out=da_t[2 * H:3 * H])  # d o
        np.multiply(dc, local[t, 3 * H:], out=da_t[3 * H:])  # d g
        dprev_c = dc * f[t]  # the forget gate scales the old cell state
        dprev_h = Wh @ da_t  # (H, N)
    dh0 = np.ascontiguousarray(dprev_h.T)
    da = da.reshape(4 * H, T * N)  # columns in (t, n) order
    D = x.shape[2]
    z = np.empty((T, N, D + H + 1), dtype=dtype)  # row (t, n): the input x_t, the state h_{t-1} and 1 of step t
    z[:, :, :D] = x.transpose(1, 0, 2)
    z[0, :, D:D + H] = h0
    z[1:, :, D:D + H] = h.transpose(1, 0, 2)[:-1]  # the state each step began with
    z[:, :, D + H] = 1
    # the weights are shared by all steps, so their gradients add up over the steps: one GEMM for Wx, Wh and b
    dW = da @ z.reshape(T * N, D + H + 1)  # (4H, D + H + 1)
    dWx, dWh, db = dW[:, :D].T, dW[:, D:D + H].T, dW[:, D + H]  # (D, 4H), (H, 4H), (4H,)
    dx = (Wx @ da).reshape(-1, T, N).transpose(2, 1, 0)  # (N, T, D)
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db


# ----------------------------------------------------------------------------------------------------------------
# GRU, following torch.nn.GRU (gates packed r, z, n; separate input and hidden biases)
# ----------------------------------------------------------------------------------------------------------------

def gru_step_forward(x, prev_h, Wx, Wh, bx, bh):
    """One GRU step with torch.nn.GRU's equations.

    With ax = x @ Wx + bx and ah = prev_h @ Wh + bh, each (N, 3H) and split into blocks r, z, n (in that order):
        r = sigmoid(ax_r + ah_r)          reset gate
        z = sigmoid(ax_z + ah_z)          update gate
        n = tanh(ax_n + r * ah_n)         candidate: the reset gate scales the hidden part W_hn h + b_hn only
        next_h = (1 - z) * n + z * prev_h
    Because r multiplies ah_n, which contains b_hn, the two biases are not interchangeable: bx and bh are separate
    parameters (torch's bias_ih and bias_hh).

    Args:
        x: (N, D).  prev_h: (N, H).
        Wx: (D, 3H) input weights (torch's weight_ih.T).  Wh: (H, 3H) hidden weights (weight_hh.T).
        bx: (3H,) input bias (bias_ih).  bh: (3H,) hidden bias (bias_hh).
    Returns:
        next_h: (N, H).
        cache: (x, prev_h, Wx, Wh, r, z, n, ah_n) for gru_step_backward.
    """
    H = prev_h.shape[1]
    ### BEGIN SOLUTION
    ax = x @ Wx + bx  # (N, 3H)
    ah = prev_h @ Wh + bh  # (N, 3H)
    r = sigmoid(ax[:, :H] + ah[:, :H])
    z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    ah_n = ah[:, 2 * H:]
    n = np.tanh(ax[:, 2 * H:] + r * ah_n)
    next_h = (1 - z) * n + z * prev_h  # (N, H)
    ### END SOLUTION
    cache = (x, prev_h, Wx, Wh, r, z, n, ah_n)
    return next_h, cache


def gru_step_backward(dnext_h, cache):
    """Backward pass of gru_step_forward.

    Args:
        dnext_h: (N, H).
        cache: from gru_step_forward.
    Returns:
        dx: (N, D).  dprev_h: (N, H).  dWx: (D, 3H).  dWh: (H, 3H).  dbx: (3H,).  dbh: (3H,).
    """
    x, prev_h, Wx, Wh, r, z, n, ah_n = cache
    ### BEGIN SOLUTION
    dn_pre = dnext_h * (1 - z) * (1 - n ** 2)  # gradient on the candidate's pre-activation
    dr_pre = dn_pre * ah_n * r * (1 - r)
    dz_pre = dnext_h * (prev_h - n) * z * (1 - z)
    dax = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)  # (N, 3H)
    dah = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)  # the reset gate scales the hidden n block
    dx = dax @ Wx.T  # (N, D)
    dprev_h = dnext_h * z + dah @ Wh.T  # prev_h reaches next_h directly (through z) and through Wh
    dWx = x.T @ dax  # (D, 3H)
    dWh = prev_h.T @ dah  # (H, 3H)
    dbx = dax.sum(axis=0)
    dbh = dah.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dWx, dWh, dbx, dbh


def gru_forward(x, h0, Wx, Wh, bx, bh):
    """A GRU over a whole sequence (the equations of gru_step_forward at every step), as torch.nn.GRU.

    Args:
        x: (N, T, D).  h0: (N, H).
        Wx: (D, 3H).  Wh: (H, 3H).  bx: (3H,).  bh: (3H,), all packed r, z, n.
    Returns:
        h: (N, T, H) hidden states of all steps.
        cache: (x, h0, Wx, Wh, h, rz, n, ah_n) for gru_backward, with rz (N, T, 2H) the gates r and z, n (N, T, H)
            the candidates and ah_n (N, T, H) the hidden part W_hn h + b_hn of each step.
    """
    N, T, D = x.shape
    H = h0.shape[1]
    ### BEGIN SOLUTION
    ax = (_time_major(x) @ Wx + bx).reshape(T, N, 3 * H)  # input projection of every step in one product
    dtype = np.result_type(ax, h0, Wh, bh)
    hs, ns, ah_ns = (np.empty((T, N, H), dtype=dtype) for _ in range(3))  # time-major: step t is one block
    rzs = np.empty((T, N, 2 * H), dtype=dtype)
    prev_h = h0
    for t in range(T):
        ah = prev_h @ Wh + bh  # (N, 3H)
        rzs[t] = sigmoid(ax[t, :, :2 * H] + ah[:, :2 * H])  # r and z in one call
        ah_ns[t] = ah[:, 2 * H:]
        ns[t] = np.tanh(ax[t, :, 2 * H:] + rzs[t, :, :H] * ah_ns[t])
        hs[t] = ns[t] + rzs[t, :, H:] * (prev_h - ns[t])  # (1 - z) * n + z * h
        prev_h = hs[t]
    h, rz, n, ah_n = (arr.swapaxes(0, 1) for arr in (hs, rzs, ns, ah_ns))  # (N, T, .) views
    ### END SOLUTION
    cache = (x, h0, Wx, Wh, h, rz, n, ah_n)
    return h, cache


def gru_backward(dh, cache):
    """Backpropagation through time for gru_forward.

    Args:
        dh: (N, T, H) upstream gradient on every hidden state.
        cache: from gru_forward.
    Returns:
        dx: (N, T, D).  dh0: (N, H).  dWx: (D, 3H).  dWh: (H, 3H).  dbx: (3H,).  dbh: (3H,).
    """
    x, h0, Wx, Wh, h, rz, n, ah_n = cache
    N, T, H = h.shape
    ### BEGIN SOLUTION
    hs, rzs, ns, ah_ns = (arr.swapaxes(0, 1) for arr in (h, rz, n, ah_n))  # time-major views
    dtype = np.result_type(dh, h)
    dax = np.empty((T, N, 3 * H), dtype=dtype)  # gradients on x @ Wx + bx and on h @ Wh + bh of each step
    dah = np.empty((T, N, 3 * H), dtype=dtype)
    dprev_h = np.zeros((N, H), dtype=dtype)
    WhT = np.ascontiguousarray(Wh.T)
    for t in reversed(range(T)):
        r, z = rzs[t, :, :H], rzs[t, :, H:]
        prev_h = hs[t - 1] if t > 0 else h0
        dh_t = dh[:, t] + dprev_h  # h_t reaches the loss directly and through step t + 1
        dn_pre = dh_t * (1 - z) * (1 - ns[t] ** 2)
        dax[t, :, :H] = dn_pre * ah_ns[t] * r * (1 - r)  # r
        dax[t, :, H:2 * H] = dh_t * (prev_h - ns[t]) * z * (1 - z)  # z
        dax[t, :, 2 * H:] = dn_pre
        dah[t, :, :2 * H] = dax[t, :, :2 * H]
        np.multiply(dn_pre, r, out=dah[t, :, 2 * H:])  # the reset gate scales the hidden n block
        dprev_h = dh_t * z + dah[t] @ WhT
    dh0 = dprev_h
    dax = dax.reshape(T * N, 3 * H)
    dah = dah.reshape(T * N, 3 * H)
    h_prev = np.concatenate([h0[None], hs[:-1]]).reshape(T * N, H)  # the state each step started from
    dx = (dax @ Wx.T).reshape(T, N, -1).swapaxes(0, 1)  # (N, T, D)
    dWx = _time_major(x).T @ dax  # (D, 3H)
    dWh = h_prev.T @ dah  # (H, 3H)
    dbx = dax.sum(axis=0)
    dbh = dah.sum(axis=0)
    ### END SOLUTION
    return dx, dh0, dWx, dWh, dbx, dbh


# ----------------------------------------------------------------------------------------------------------------
# Embedding, temporal affine, temporal softmax loss
# ----------------------------------------------------------------------------------------------------------------

def word_embedding_forward(x, W):
    """Look up a vector for every index: out[n, t] = W[x[n, t]].

    Args:
        x: (N, T) integer indices in [0, C).
        W: (C, D) one D-dimensional vector per vocabulary entry.
    Returns:
        out: (N, T, D).
        cache: (x, W) for word_embedding_backward.
    """
    ### BEGIN SOLUTION
    out = W[x]  # (N, T, D)
    ### END SOLUTION
    cache = (x, W)
    return out, cache


def word_embedding_backward(dout, cache):
    """Backward pass of word_embedding_forward (no gradient for the integer indices).

    Args:
        dout: (N, T, D).
        cache: from word_embedding_forward.
    Returns:
        dW: (C, D); an index that occurs several times in x receives the sum of its rows of dout.
    """
    x, W = cache
    ### BEGIN SOLUTION
    dW = np.zeros(W.shape, dtype=np.result_type(dout, W))
    np.add.at(dW, x, dout)  # unbuffered: repeated indices accumulate (dW[x] += dout would keep only one)
    ### END SOLUTION
    return dW


def temporal_affine_forward(x, w, b):
    """The same affine layer applied at every time step.

    Args:
        x: (N, T, D).  w: (D, M).  b: (M,).
    Returns:
        out: (N, T, M).
        cache: (x, w, b) for temporal_affine_backward.
    """
    ### BEGIN SOLUTION
    out = x @ w + b  # (N, T, M)
    ### END SOLUTION
    cache = (x, w, b)
    return out, cache


def temporal_affine_backward(dout, cache):
    """Backward pass of temporal_affine_forward.

    Args:
        dout: (N, T, M).
        cache: from temporal_affine_forward.
    Returns:
        dx: (N, T, D).  dw: (D, M).  db: (M,).
    """
    x, w, b = cache
    ### BEGIN SOLUTION
    D, M = w.shape
    dx = dout @ w.T  # (N, T, D)
    dw = x.reshape(-1, D).T @ dout.reshape(-1, M)  # (D, M): shared over batch and time
    db = dout.sum(axis=(0, 1))  # (M,)
    ### END SOLUTION
    return dx, dw, db


def temporal_softmax_loss(x, y, mask):
    """Softmax cross-entropy at every time step where mask is true, summed over time and averaged over the batch.

    loss = -(1 / N) * sum over n, t with mask[n, t] of log softmax(x[n, t])[y[n, t]]  (CS231n's normalisation).

    Args:
        x: (N, T, C) scores.
        y: (N, T) integer targets in [0, C).
        mask: (N, T) booleans; steps where it is false (padding) add nothing to the loss or the gradient.
    Returns:
        loss: float.
        dx: (N, T, C) gradient of the loss with respect to x.
    """
    N, T, C = x.shape
    ### BEGIN SOLUTION
    shifted = x - x.max(axis=2, keepdims=True)  # exp never overflows
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))  # (N, T, C)
    picked = np.take_along_axis(log_probs, y[..., None], axis=2)[..., 0]  # (N, T) log-probability of the target
    loss = -np.sum(picked * mask) / N
    dx = np.exp(log_probs)  # (N, T, C) probabilities
    np.put_along_axis(dx, y[..., None], np.take_along_axis(dx, y[..., None], axis=2) - 1, axis=2)
    dx *= mask[..., None] / N  # masked steps get no gradient; the loss is a mean over the batch only
    ### END SOLUTION
    return loss, dx
