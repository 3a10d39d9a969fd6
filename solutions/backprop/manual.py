"""A two-layer network differentiated by hand, one named step at a time.

affine (W1, b1) - tanh - affine (W2, b2) - softmax cross-entropy, plus 0.5 * reg * (||W1||^2 + ||W2||^2).
tanh has no kinks, so every step can be checked with central differences.
Shapes: N batch, D features, H hidden, C classes.
"""
from __future__ import annotations

import numpy as np


def two_layer_forward(X, y, params, reg=0.0):
    """Forward pass that names every intermediate.

    Args:
        X: (N, D) inputs.  y: (N,) integer labels.
        params: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).
        reg: L2 strength.
    Returns:
        loss: float.
        cache: dict with X, y, params, reg and the intermediates z1 (N, H) = X W1 + b1, h1 (N, H) = tanh(z1),
            z2 (N, C) = h1 W2 + b2 and log_probs (N, C), the log-softmax of z2.
    """
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = X.shape[0]
    ### BEGIN SOLUTION
    z1 = X @ W1 + b1  # (N, H)
    h1 = np.tanh(z1)  # (N, H)
    z2 = h1 @ W2 + b2  # (N, C)
    shifted = z2 - z2.max(axis=1, keepdims=True)  # stable log-softmax
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
    loss = -log_probs[np.arange(n), y].mean() + 0.5 * reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    ### END SOLUTION
    cache = {"X": X, "y": y, "params": params, "reg": reg, "z1": z1, "h1": h1, "z2": z2, "log_probs": log_probs}
    return loss, cache


def two_layer_backward(cache):
    """Backward pass, applying the chain rule to each named step of two_layer_forward in reverse.

    Returns:
        grads: dict with the parameter gradients W1, b1, W2, b2 (shaped like params) and the gradients of the
            intermediates dz2 (N, C), dh1 (N, H) and dz1 (N, H).
    """
    X, y, reg = cache["X"], cache["y"], cache["reg"]
    W1, W2 = cache["params"]["W1"], cache["params"]["W2"]
    h1, log_probs = cache["h1"], cache["log_probs"]
    n = X.shape[0]
    ### BEGIN SOLUTION
    dz2 = np.exp(log_probs)  # softmax probabilities
    dz2[np.arange(n), y] -= 1
    dz2 /= n  # mean over the batch
    dW2 = h1.T @ dz2 + reg * W2  # (H, C)
    db2 = dz2.sum(axis=0)  # (C,)
    dh1 = dz2 @ W2.T  # (N, H)
    dz1 = dh1 * (1 - h1 ** 2)  # tanh' = 1 - tanh^2
    dW1 = X.T @ dz1 + reg * W1  # (D, H)
    db1 = dz1.sum(axis=0)  # (H,)
    ### END SOLUTION
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "dz2": dz2, "dh1": dh1, "dz1": dz1}
