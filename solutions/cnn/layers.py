"""Convolution, pooling and a residual block as CS231n-style forward/backward pairs, in NumPy.

Each `*_forward` returns `(out, cache)` and each `*_backward(dout, cache)` returns the gradients in the order of
the forward's inputs. Shapes use the course letters: N batch, C channels, H/W height/width, F filters,
HH/WW kernel height/width; H', W' are output sizes. Like torch (and unlike the textbook convolution), every layer
here computes a cross-correlation: the kernel is not flipped.

Output sizes are floored, as in torch: with H' = 1 + (H + 2 * pad - HH) // stride, rows (columns) at the bottom
(right) that do not fill a whole window are skipped, and their gradient is zero. Pooling never pads.
The `*_naive` layers loop over output pixels; the `*_fast` ones loop only over the HH * WW kernel offsets and
must give the same results. Write only inside the marked regions; keep the signatures.
"""
from __future__ import annotations

import numpy as np

from feedforward.layers import relu_backward, relu_forward


def conv_output_shape(H, W, HH, WW, stride, pad):
    """Spatial output size of a convolution (or, with pad 0, of a pooling layer).

    Takes the sizes themselves rather than arrays so the same formula serves conv and pool layers, and so a
    network's shapes can be planned before any weights exist.

    Args:
        H, W: input height and width.  HH, WW: kernel (window) height and width.
        stride: step between windows (>= 1).  pad: zero padding added on each side (>= 0).
    Returns:
        (H', W'): ints, H' = 1 + (H + 2 * pad - HH) // stride and likewise W' (floored, as in torch).
    Raises:
        ValueError: if stride < 1, pad < 0, or the padded input is smaller than the kernel.
    """
    ### BEGIN SOLUTION
    if stride < 1 or pad < 0:
        raise ValueError(f"need stride >= 1 and pad >= 0, got stride={stride}, pad={pad}")
    if H + 2 * pad < HH or W + 2 * pad < WW:
        raise ValueError(f"a {HH}x{WW} kernel does not fit a {H}x{W} input padded by {pad}")
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    ### END SOLUTION
    return int(H_out), int(W_out)


def receptive_field(layers):
    """Side length, in input pixels, of the region one output unit of a conv/pool stack depends on.

    Args:
        layers: list of dicts, input side first, each {"kind": "conv" | "pool", "kernel": k, "stride": s}
            (square windows; k and s ints >= 1; "stride" may be left out and then is 1). Padding does not
            change the receptive field, only where it sits, so it is not needed.
    Returns:
        r: int. A layer adds (k - 1) times the product of the strides of the layers below it:
            r = 1 + sum_l (k_l - 1) * prod_{m < l} s_m. E.g. two 3x3 stride-1 convs give 5; conv 3, pool 2/2,
            conv 3 gives 8.
    Raises:
        ValueError: for an unknown "kind".
    """
    ### BEGIN SOLUTION
    r, jump = 1, 1  # jump: input-pixel distance between neighbouring units of the current layer
    for layer in layers:
        if layer["kind"] not in ("conv", "pool"):
            raise ValueError(f'layer kind must be "conv" or "pool", got {layer["kind"]!r}')
        r += (layer["kernel"] - 1) * jump
        jump *= layer.get("stride", 1)
    ### END SOLUTION
    return int(r)


def conv_forward_naive(x, w, b, conv_param):
    """Convolution (cross-correlation) with a Python loop over output pixels.

    Args:
        x: (N, C, H, W) input.
        w: (F, C, HH, WW) filters.
        b: (F,) bias.
        conv_param: {"stride": s >= 1, "pad": p >= 0}; the input is zero-padded by p on every side.
    Returns:
        out: (N, F, H', W'), out[n, f, i, j] = sum_{c, k, l} x_pad[n, c, i*s + k, j*s + l] * w[f, c, k, l] + b[f].
        cache: (x, w, b, conv_param) for conv_backward_naive.
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = conv_output_shape(H, W, HH, WW, stride, pad)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # pad the spatial axes only
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    for i in range(H_out):
        for j in range(W_out):
            window = x_pad[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]  # (N, C, HH, WW)
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b  # (N, F)
    ### END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Backward pass of conv_forward_naive, with a Python loop over output pixels.

    Args:
        dout: (N, F, H', W') upstream gradient.
        cache: (x, w, b, conv_param) from conv_forward_naive.
    Returns:
        dx: (N, C, H, W).  dw: (F, C, HH, WW).  db: (F,).
    """
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = dout.shape[2:]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(dout, w))  # (N, C, H + 2 pad, W + 2 pad)
    dw = np.zeros(w.shape, dtype=np.result_type(dout, x))
    for i in range(H_out):
        for j in range(W_out):
            rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]  # (N, F)
            # windows overlap when stride < kernel, so contributions add up
            dx_pad[:, :, rows, cols] += np.tensordot(g, w, axes=(1, 0))  # (N, C, HH, WW)
            dw += np.tensordot(g, x_pad[:, :, rows, cols], axes=(0, 0))  # (F, C, HH, WW)
    db = dout.sum(axis=(0, 2, 3))  # (F,): each bias is added at every position of every example
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]  # drop the padding; pad:-pad would be empty at pad 0
    ### END SOLUTION
    return dx, dw, db


def conv_forward_fast(x, w, b, conv_param):
    """Convolution as one batched matrix product over im2col columns; same results as conv_forward_naive.

    Loops only over the HH * WW kernel offsets, never over pixels.

    Args:
        x: (N, C, H, W) input.  w: (F, C, HH, WW) filters.  b: (F,) bias.
        conv_param: {"stride": s >= 1, "pad": p >= 0}.
    Returns:
        out: (N, F, H', W'), equal to conv_forward_naive's.
        cache: whatever conv_backward_fast needs (it stays in your process).
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = conv_output_shape(H, W, HH, WW, stride, pad)
    Hp, Wp = H + 2 * pad, W + 2 * pad
    # Output rows are computed Wg wide. At stride 1, Wg = Wp: one kernel offset of a whole row of outputs is then a
    # contiguous run of the flattened padded image, so the im2col copy moves long runs; the Wp - W_out extra
    # columns of each row are junk, computed and dropped (and given zero gradient in the backward pass).
    Wg = Wp if stride == 1 else W_out
    x_pad = np.zeros((N, C, (Hp + 1) * Wp), dtype=x.dtype)  # flattened rows, one spare row for the junk reads
    x_pad[:, :, :Hp * Wp].reshape(N, C, Hp, Wp)[:, :, pad:pad + H, pad:pad + W] = x
    # windows[c, k, l, n, i, j] = x_pad[n, c, (i * stride + k) * Wp + j * stride + l]: a view, nothing copied
    steps = (x_pad.shape[2], Wp, 1, C * x_pad.shape[2], stride * Wp, stride)  # strides in elements
    windows = np.lib.stride_tricks.as_strided(x_pad, (C, HH, WW, N, H_out, Wg), [x.itemsize * s for s in steps])
    # examples per chunk, so that a chunk's columns (about 2 MiB) stay in cache between the copy and the GEMM
    m = max(1, (1 << 21) // (C * HH * WW * H_out * Wg * x.itemsize))
    out = np.empty((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    w_flat = w.reshape(F, -1)  # (F, C*HH*WW)
    cache = (x_pad, w, conv_param, x.shape)
    for n in range(0, N, m):  # one im2col copy and one GEMM per chunk of m examples
        cols = windows[:, :, :, n:n + m].reshape(C * HH * WW, -1)  # (C*HH*WW, m*H'*Wg), a copy
        prod = (w_flat @ cols).reshape(F, -1, H_out, Wg)  # (F, m, H', Wg)
        np.add(prod[..., :W_out].transpose(1, 0, 2, 3), b.reshape(1, F, 1, 1), out=out[n:n + m])
    ### END SOLUTION
    return out, cache


def conv_backward_fast(dout, cache):
    """Backward pass of conv_forward_fast; same results as conv_backward_naive.

    Args:
        dout: (N, F, H', W') upstream gradient.
        cache: from conv_forward_fast.
    Returns:
        dx: (N, C, H, W).  dw: (F, C, HH, WW).  db: (F,).
    """
    ### BEGIN SOLUTION
    x_pad, w, conv_param, (N, C, H, W) = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    H_out, W_out = dout.shape[2:]
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Wg = Wp if stride == 1 else W_out  # the forward's row width (junk columns at stride 1)
    dtype = np.result_type(dout, w, x_pad)
    dx_pad = np.zeros(x_pad.shape, dtype=dtype)
    shape = (C, HH, WW, N, H_out, Wg)
    steps = (x_pad.shape[2], Wp, 1, C * x_pad.shape[2], stride * Wp, stride)  # as in the forward pass
    windows = np.lib.stride_tricks.as_strided(x_pad, shape, [x_pad.itemsize * s for s in steps])
    # the same windows of dx_pad: they overlap across kernel offsets, but each += below touches distinct elements
    dx_windows = np.lib.stride_tricks.as_strided(dx_pad, shape, [dx_pad.itemsize * s for s in steps])
    m = max(1, (1 << 21) // (C * HH * WW * H_out * Wg * x_pad.itemsize))
    g = np.zeros((F, min(m, N), H_out, Wg), dtype=dout.dtype)  # dout in the columns' layout; junk columns stay 0
    dw = np.zeros((F, C * HH * WW), dtype=dtype)
    w_cols = w.reshape(F, -1).T  # (C*HH*WW, F)
    for n in range(0, N, m):
        k_n = min(m, N - n)
        cols = windows[:, :, :, n:n + m].reshape(C * HH * WW, -1)  # recomputed: cheaper than keeping them
        g[:, :k_n, :, :W_out] = dout[n:n + m].transpose(1, 0, 2, 3)
        g_flat = g[:, :k_n].reshape(F, -1)  # (F, m*H'*Wg)
        dw += g_flat @ cols.T  # the weights are shared by all positions, so their gradients add up
        dcols = (w_cols @ g_flat).reshape(C, HH, WW, k_n, H_out, Wg)
        for k in range(HH):  # col2im: scatter every kernel offset back; windows overlap when stride < kernel
            for l in range(WW):
                dx_windows[:, k, l, n:n + m] += dcols[:, k, l]
    db = dout.sum(axis=(0, 2, 3))  # (F,)
    dw = dw.reshape(w.shape)
    dx = dx_pad[:, :, :Hp * Wp].reshape(N, C, Hp, Wp)[:, :, pad:pad + H, pad:pad + W]
    ### END SOLUTION
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Max pooling with a Python loop over output pixels (no padding).

    Args:
        x: (N, C, H, W) input.
        pool_param: {"pool_height": PH, "pool_width": PW, "stride": s}; windows may overlap (s < PH or PW).
    Returns:
        out: (N, C, H', W'), H' = 1 + (H - PH) // s, W' = 1 + (W - PW) // s.
        cache: (x, pool_param) for max_pool_backward_naive.
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out, W_out = conv_output_shape(H, W, ph, pw, stride, 0)
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(axis=(2, 3))
    ### END SOLUTION
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Backward pass of max_pool_forward_naive.

    Each window sends its upstream gradient to ONE input: its first maximum in row-major window order (the
    torch convention; it matters only for ties, e.g. all-zero windows after a ReLU). Where windows overlap,
    an input that is the maximum of several windows receives the sum of their gradients.

    Args:
        dout: (N, C, H', W') upstream gradient.
        cache: (x, pool_param) from max_pool_forward_naive.
    Returns:
        dx: (N, C, H, W).
    """
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out, W_out = dout.shape[2:]
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    n_idx, c_idx = np.ogrid[:N, :C]  # (N, 1) and (1, C) index grids
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].reshape(N, C, ph * pw)
            k = window.argmax(axis=2)  # (N, C); argmax returns the first maximum
            # one target per (n, c) in this window, so fancy-index += cannot drop repeated indices
            dx[n_idx, c_idx, i * stride + k // pw, j * stride + k % pw] += dout[:, :, i, j]
    ### END SOLUTION
    return dx


def max_pool_forward_fast(x, pool_param):
    """Max pooling as the elementwise maximum of PH * PW strided slices; same results as the naive version.

    Args:
        x: (N, C, H, W) input.  pool_param: as in max_pool_forward_naive.
    Returns:
        out: (N, C, H', W').  cache: whatever max_pool_backward_fast needs.
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out, W_out = conv_output_shape(H, W, ph, pw, stride, 0)
    # the max is separable: first over the PH rows of each window, on whole rows (contiguous, fast), then over the
    # PW columns, on an array PH times smaller (strided, slower per element)
    rows = x[:, :, :stride * H_out:stride].copy()  # (N, C, H', W): row 0 of every window
    for k in range(1, ph):
        np.maximum(rows, x[:, :, k:k + stride * H_out:stride], out=rows)
    out = rows[:, :, :, :stride * W_out:stride].copy()  # (N, C, H', W'): column 0 of every window
    for l in range(1, pw):
        np.maximum(out, rows[:, :, :, l:l + stride * W_out:stride], out=out)
    cache = (x, out, ph, pw, stride)
    ### END SOLUTION
    return out, cache


def max_pool_backward_fast(dout, cache):
    """Backward pass of max_pool_forward_fast; same results (and tie convention) as max_pool_backward_naive.

    Args:
        dout: (N, C, H', W') upstream gradient.  cache: from max_pool_forward_fast.
    Returns:
        dx: (N, C, H, W).
    """
    ### BEGIN SOLUTION
    x, out, ph, pw, stride = cache
    N, C, H_out, W_out = out.shape
    if stride == ph == pw and stride * H_out == x.shape[2] and stride * W_out == x.shape[3]:
        # P x P windows with stride P tiling x (the usual 2x2 pooling): compare whole input rows (contiguous, fast)
        # with their windows' maxima repeated P times along W, in chunks of rows that stay in the CPU cache
        W, M = x.shape[3], N * C * H_out  # M window rows
        x_rows = x.reshape(M, ph, W)  # (M, P, W): the P input rows of each window row
        out_rows, dout_rows = out.reshape(M, W_out), dout.reshape(M, W_out)  # once: a strided dout would copy
        dx = np.empty((M, ph, W), dtype=np.result_type(x, dout))  # each input is in one window: all written below
        R = max(1, 2 ** 17 // (ph * W))  # window rows per chunk
        rep = np.empty((R, W_out, pw), dtype=dx.dtype)  # a chunk's maxima, then its gradients, P times each
        hit = np.empty((R, ph, W), dtype=bool)  # where a chunk's inputs hold their window's maximum
        hits = 0
        for r in range(0, M, R):
            n = min(R, M - r)
            for l in range(pw):
                rep[:n, :, l] = out_rows[r:r + n]
            np.equal(x_rows[r:r + n], rep[:n].reshape(n, 1, W), out=hit[:n])
            hits += np.count_nonzero(hit[:n])
            for l in range(pw):
                rep[:n, :, l] = dout_rows[r:r + n]
            np.multiply(hit[:n], rep[:n].reshape(n, 1, W), out=dx[r:r + n])
        if hits == out.size:  # one hit per window; otherwise a window holds its maximum twice: the loop below
            return dx.reshape(x.shape)  # breaks the tie
    overlap = stride < ph or stride < pw  # then one input can be in several windows
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    pending = np.ones(out.shape, dtype=bool)  # (N, C, H', W'): windows whose maximum is not found yet
    # visiting offsets in row-major window order and closing a window at its first hit gives torch's tie rule
    for k in range(ph):
        for l in range(pw):
            rows, cols = slice(k, k + stride * H_out, stride), slice(l, l + stride * W_out, stride)
            hit = x[:, :, rows, cols] == out  # (N, C, H', W')
            hit &= pending
            pending ^= hit  # hit is inside pending, so xor clears exactly the hits
            if overlap:
                dx[:, :, rows, cols] += dout * hit  # gradients of overlapping windows add up
            else:
                np.multiply(dout, hit, out=dx[:, :, rows, cols])  # no other window writes here: assign, faster
    ### END SOLUTION
    return dx


def avg_pool_forward(x, pool_param):
    """Average pooling (no padding): the mean of each window.

    Args:
        x: (N, C, H, W) input.  pool_param: as in max_pool_forward_naive; windows may overlap.
    Returns:
        out: (N, C, H', W').  cache: (x.shape, pool_param) for avg_pool_backward.
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out, W_out = conv_output_shape(H, W, ph, pw, stride, 0)
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for k in range(ph):  # sum the PH * PW strided slices: one per window offset
        for l in range(pw):
            out += x[:, :, k:k + stride * H_out:stride, l:l + stride * W_out:stride]
    out /= ph * pw
    ### END SOLUTION
    cache = (x.shape, pool_param)
    return out, cache


def avg_pool_backward(dout, cache):
    """Backward pass of avg_pool_forward: each input gets 1 / (PH * PW) of the gradient of every window it is in.

    Args:
        dout: (N, C, H', W') upstream gradient.  cache: (x.shape, pool_param) from avg_pool_forward.
    Returns:
        dx: (N, C, H, W).
    """
    x_shape, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    ### BEGIN SOLUTION
    H_out, W_out = dout.shape[2:]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    share = dout / (ph * pw)  # (N, C, H', W')
    for k in range(ph):
        for l in range(pw):
            dx[:, :, k:k + stride * H_out:stride, l:l + stride * W_out:stride] += share
    ### END SOLUTION
    return dx


def residual_block_forward(x, w1, b1, w2, b2, conv_param):
    """Residual block: relu(conv2(relu(conv1(x))) + x), with your fast convolution and topic-1 ReLU.

    Both convolutions must keep the shape ("same" padding), so the identity can be added.

    Args:
        x: (N, C, H, W) input.
        w1, w2: (C, C, HH, WW) filters (F = C), HH and WW odd.  b1, b2: (C,) biases.
        conv_param: {"stride": 1, "pad": (HH - 1) // 2}, shared by both convolutions (HH == WW).
    Returns:
        out: (N, C, H, W).
        cache: (conv1_cache, relu1_cache, conv2_cache, relu2_cache) for residual_block_backward.
    Raises:
        ValueError: if the convolutions would change the shape.
    """
    C, HH, WW = x.shape[1], w1.shape[2], w1.shape[3]
    if (w1.shape != (C, C, HH, WW) or w2.shape != w1.shape or conv_param["stride"] != 1 or HH != WW
            or 2 * conv_param["pad"] != HH - 1):
        raise ValueError("a residual block needs same-shape convolutions: w1, w2 of shape (C, C, k, k) with k "
                         "odd, stride 1 and pad (k - 1) // 2")
    ### BEGIN SOLUTION
    a1, conv1_cache = conv_forward_fast(x, w1, b1, conv_param)  # (N, C, H, W)
    h1, relu1_cache = relu_forward(a1)
    a2, conv2_cache = conv_forward_fast(h1, w2, b2, conv_param)  # (N, C, H, W)
    out, relu2_cache = relu_forward(a2 + x)  # the identity joins before the last ReLU
    ### END SOLUTION
    cache = (conv1_cache, relu1_cache, conv2_cache, relu2_cache)
    return out, cache


def residual_block_backward(dout, cache):
    """Backward pass of residual_block_forward.

    Args:
        dout: (N, C, H, W) upstream gradient.  cache: from residual_block_forward.
    Returns:
        dx: (N, C, H, W).  dw1, dw2: (C, C, HH, WW).  db1, db2: (C,).
    """
    conv1_cache, relu1_cache, conv2_cache, relu2_cache = cache
    ### BEGIN SOLUTION
    ds = relu_backward(dout, relu2_cache)  # (N, C, H, W): gradient of a2 + x
    dh1, dw2, db2 = conv_backward_fast(ds, conv2_cache)
    da1 = relu_backward(dh1, relu1_cache)
    dx, dw1, db1 = conv_backward_fast(da1, conv1_cache)
    dx = dx + ds  # the identity path hands ds to x unchanged
    ### END SOLUTION
    return dx, dw1, db1, dw2, db2
