"""Layers of a feedforward network as CS231n-style forward/backward pairs.

Each `*_forward` returns `(out, cache)` and each `*_backward(dout, cache)` returns the gradients in the order of
the forward's inputs. Shapes use the course letters: N batch, D features, H hidden, C classes.
Write only inside the marked regions; keep the signatures, the grader calls them as they are.
"""
from __future__ import annotations

import numpy as np


def affine_forward(x, w, b):
    """Fully connected layer.

    Args:
        x: (N, d1, ..., dk) input; each example is flattened to D = d1 * ... * dk features.
        w: (D, M) weights.
        b: (M,) bias.
    Returns:
        out: (N, M) = x_flat @ w + b.
        cache: (x, w, b) for affine_backward.
    """
    ### BEGIN SOLUTION
    out = x.reshape(x.shape[0], -1) @ w + b  # (N, M)
    ### END SOLUTION
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of affine_forward.

    Args:
        dout: (N, M) upstream gradient.
        cache: (x, w, b) from affine_forward.
    Returns:
        dx: (N, d1, ..., dk), same shape as x.  dw: (D, M).  db: (M,).
    """
    x, w, b = cache
    ### BEGIN SOLUTION
    dx = (dout @ w.T).reshape(x.shape)  # (N, d1, ..., dk)
    dw = x.reshape(x.shape[0], -1).T @ dout  # (D, M)
    db = dout.sum(axis=0)  # (M,): the bias is shared by every example
    ### END SOLUTION
    return dx, dw, db


def relu_forward(x):
    """Rectified linear unit, max(0, x) elementwise.

    Args:
        x: input of any shape.
    Returns:
        out: same shape as x.  cache: x.
    """
    ### BEGIN SOLUTION
    out = np.maximum(0, x)
    ### END SOLUTION
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Backward pass of relu_forward: the gradient flows where x > 0.

    Returns:
        dx: same shape as dout.
    """
    x = cache
    ### BEGIN SOLUTION
    dx = dout * (x > 0)
    ### END SOLUTION
    return dx


def sigmoid_forward(x):
    """Logistic sigmoid 1 / (1 + exp(-x)), stable for large |x| (no overflow warnings).

    Returns:
        out: same shape as x.  cache: out (the backward pass needs only the output).
    """
    ### BEGIN SOLUTION
    z = np.exp(-np.abs(x))  # never overflows: exponent <= 0
    out = np.where(x >= 0, 1 / (1 + z), z / (1 + z))
    ### END SOLUTION
    cache = out
    return out, cache


def sigmoid_backward(dout, cache):
    """Backward pass of sigmoid_forward, using d sigmoid / dx = s (1 - s).

    Returns:
        dx: same shape as dout.
    """
    out = cache
    ### BEGIN SOLUTION
    dx = dout * out * (1 - out)
    ### END SOLUTION
    return dx


def tanh_forward(x):
    """Hyperbolic tangent.

    Returns:
        out: same shape as x.  cache: out.
    """
    ### BEGIN SOLUTION
    out = np.tanh(x)
    ### END SOLUTION
    cache = out
    return out, cache


def tanh_backward(dout, cache):
    """Backward pass of tanh_forward, using d tanh / dx = 1 - tanh^2.

    Returns:
        dx: same shape as dout.
    """
    out = cache
    ### BEGIN SOLUTION
    dx = dout * (1 - out ** 2)
    ### END SOLUTION
    return dx


def softmax_loss(x, y):
    """Mean softmax cross-entropy over the batch, and its gradient.

    Args:
        x: (N, C) class scores.
        y: (N,) integer labels in [0, C).
    Returns:
        loss: float, -mean_i log softmax(x_i)[y_i]; finite even for scores of size 1e3.
        dx: (N, C) gradient of the loss with respect to x.
    """
    ### BEGIN SOLUTION
    shifted = x - x.max(axis=1, keepdims=True)  # subtract the row max: exp never overflows
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    dx = np.exp(log_probs)  # (N, C) softmax probabilities
    dx[np.arange(n), y] -= 1
    dx /= n  # the loss is a mean over the batch
    ### END SOLUTION
    return loss, dx


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation over the batch axis.

    In "train" mode, normalise with the batch mean and (biased) variance and update the running statistics in
    bn_param in place: running = momentum * running + (1 - momentum) * batch statistic. In "test" mode,
    normalise with the running statistics.

    Args:
        x: (N, D) input.  gamma: (D,) scale.  beta: (D,) shift.
        bn_param: dict with "mode" ("train" | "test"), optional "eps" (default 1e-5), "momentum" (0.9),
            "running_mean" and "running_var" ((D,), zeros and ones when missing).
    Returns:
        out: (N, D).  cache: what batchnorm_backward needs (None in test mode).
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    d = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(d, dtype=x.dtype))
    cache = None
    if mode == "train":
        ### BEGIN SOLUTION
        mu = x.mean(axis=0)  # (D,)
        var = x.var(axis=0)  # (D,), biased, as in the CS231n and PyTorch forward
        inv_std = 1.0 / np.sqrt(var + eps)
        x_hat = (x - mu) * inv_std  # (N, D)
        out = gamma * x_hat + beta
        cache = (x_hat, gamma, inv_std)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        ### END SOLUTION
    elif mode == "test":
        ### BEGIN SOLUTION
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        ### END SOLUTION
    else:
        raise ValueError(f'bn_param["mode"] must be "train" or "test", got {mode!r}')
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of batchnorm_forward in train mode.

    Args:
        dout: (N, D) upstream gradient.
        cache: from batchnorm_forward.
    Returns:
        dx: (N, D).  dgamma: (D,).  dbeta: (D,).
    """
    ### BEGIN SOLUTION
    x_hat, gamma, inv_std = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma  # (N, D)
    # the batch mean and variance depend on every example, hence the two mean terms
    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))
    ### END SOLUTION
    return dx, dgamma, dbeta


def init_weights(fan_in, fan_out, scheme="he", weight_scale=1e-2, seed=None):
    """Initial weights for a (fan_in, fan_out) layer.

    Args:
        fan_in, fan_out: layer input and output sizes.
        scheme: "zero" (all zeros), "normal" (N(0, weight_scale^2)), "xavier" (N(0, 2 / (fan_in + fan_out)),
            Glorot) or "he" (N(0, 2 / fan_in), for ReLU).
        seed: seed of np.random.default_rng, so initialisation is reproducible.
    Returns:
        w: (fan_in, fan_out) float64 array.
    """
    rng = np.random.default_rng(seed)
    ### BEGIN SOLUTION
    std = {"zero": 0.0, "normal": weight_scale, "xavier": np.sqrt(2.0 / (fan_in + fan_out)),
           "he": np.sqrt(2.0 / fan_in)}.get(scheme)
    if std is None:
        raise ValueError(f"unknown init scheme {scheme!r}")
    w = std * rng.standard_normal((fan_in, fan_out))
    ### END SOLUTION
    return w


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
}
