"""Gradient flow in a deep MLP: record per-layer gradient norms while training, and plot them.

The MLP is built from your topic-1 layers (imported, never copied): `depth` hidden layers of affine + activation,
then an affine layer to the class scores and softmax cross-entropy. Shapes: N batch, D features, H hidden,
C classes, L = depth + 1 weight layers.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are built off screen; notebooks display them inline
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from feedforward.layers import ACTIVATIONS, affine_backward, affine_forward, init_weights, softmax_loss  # noqa: E402


def record_gradient_norms(X, y, depth=8, hidden_dim=32, activation="sigmoid", init="normal", weight_scale=1e-2,
                          learning_rate=0.1, steps=20, batch_size=64, seed=0):
    """Train a deep MLP with plain SGD and record the norm of every weight gradient at every step.

    Weights come from init_weights(fan_in, fan_out, init, weight_scale, seed_i) with seed_i the i-th child of
    np.random.SeedSequence(seed); biases start at zero. Step t uses the batch rng.choice(N, batch_size,
    replace=False) drawn from rng = np.random.default_rng(seed).

    Args:
        X: (N, D) inputs.  y: (N,) labels in [0, C), C = y.max() + 1.
    Returns:
        history: (steps, L) array, history[t, i] = Frobenius norm of dW of layer i (input side first) at step t,
            taken before that step's update.
    """
    act_forward, act_backward = ACTIVATIONS[activation]
    sizes = [X.shape[1]] + [hidden_dim] * depth + [int(y.max()) + 1]
    seeds = np.random.SeedSequence(seed).spawn(depth + 1)
    weights = [init_weights(sizes[i], sizes[i + 1], init, weight_scale, seeds[i]) for i in range(depth + 1)]
    biases = [np.zeros(sizes[i + 1]) for i in range(depth + 1)]
    rng = np.random.default_rng(seed)
    history = np.zeros((steps, depth + 1))
    for t in range(steps):
        idx = rng.choice(X.shape[0], batch_size, replace=False)
        ### BEGIN SOLUTION
        h, caches = X[idx], []
        for i, (w, b) in enumerate(zip(weights, biases)):
            h, c_aff = affine_forward(h, w, b)
            c_act = None
            if i < depth:  # no activation after the last affine layer
                h, c_act = act_forward(h)
            caches.append((c_aff, c_act))
        _, dh = softmax_loss(h, y[idx])
        for i in reversed(range(depth + 1)):
            c_aff, c_act = caches[i]
            if c_act is not None:
                dh = act_backward(dh, c_act)
            dh, dw, db = affine_backward(dh, c_aff)
            history[t, i] = np.linalg.norm(dw)
            weights[i] -= learning_rate * dw  # the gradient of layer i is done once we move below it
            biases[i] -= learning_rate * db
        ### END SOLUTION
    return history


def plot_gradient_flow(history, title="Gradient flow"):
    """One line per layer (label "layer i", i from 1) of gradient norm against step, on a log-scale y axis.

    Args:
        history: (steps, L) array from record_gradient_norms.
    Returns:
        fig: a matplotlib Figure with one axes: x label, y label, title and a legend.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    ### BEGIN SOLUTION
    steps = np.arange(history.shape[0])
    for i in range(history.shape[1]):
        ax.plot(steps, history[:, i], label=f"layer {i + 1}")
    ax.set_yscale("log")  # norms span orders of magnitude when gradients vanish or explode
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient norm ||dW||")
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    ### END SOLUTION
    return fig


def plot_gradient_histograms(grads, bins=30):
    """One histogram panel per layer of the entries of that layer's weight gradient.

    Args:
        grads: list of L arrays, the weight gradients input side first.
        bins: number of bins, as in np.histogram(g.ravel(), bins=bins).
    Returns:
        fig: a Figure with L axes in one row, titled "layer i" (i from 1), each with x and y labels.
    """
    fig, axes = plt.subplots(1, len(grads), figsize=(3 * len(grads), 3), squeeze=False)
    ### BEGIN SOLUTION
    for i, (ax, g) in enumerate(zip(axes[0], grads)):
        ax.hist(np.ravel(g), bins=bins)
        ax.set_title(f"layer {i + 1}")
        ax.set_xlabel("gradient entry")
        ax.set_ylabel("count")
    fig.tight_layout()
    ### END SOLUTION
    return fig
