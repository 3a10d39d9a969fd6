"""A two-layer network with the CS231n contract, and mini-batch SGD training.

Model contract (shared by every network in the course): the model keeps its weights in `self.params`, a dict
of arrays, and `loss(X, y=None)` returns the class scores when y is None, else `(loss, grads)` where `grads` has
the same keys and shapes as `params`. The training loop only relies on that contract.
"""
from __future__ import annotations

import numpy as np

from feedforward.layers import ACTIVATIONS, affine_backward, affine_forward, init_weights, softmax_loss


class TwoLayerNet:
    """affine - activation - affine - softmax, with L2 regularisation 0.5 * reg * (||W1||^2 + ||W2||^2).

    params: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,). Biases start at zero.
    """

    def __init__(self, input_dim=784, hidden_dim=100, num_classes=10, activation="relu", init="he",
                 weight_scale=1e-2, reg=0.0, seed=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.reg = reg
        seeds = np.random.SeedSequence(seed).spawn(2)  # independent streams for the two layers
        self.params = {
            "W1": init_weights(input_dim, hidden_dim, init, weight_scale, seeds[0]),
            "b1": np.zeros(hidden_dim),
            "W2": init_weights(hidden_dim, num_classes, init, weight_scale, seeds[1]),
            "b2": np.zeros(num_classes),
        }

    def loss(self, X, y=None):
        """Scores, or loss and gradients.

        Args:
            X: (N, D) inputs (or (N, d1, ..., dk), flattened).
            y: (N,) integer labels, or None.
        Returns:
            scores (N, C) if y is None, else (loss, grads) with grads[k] shaped like params[k].
        """
        act_forward, act_backward = ACTIVATIONS[self.activation]
        p = self.params
        ### BEGIN SOLUTION
        a1, cache1 = affine_forward(X, p["W1"], p["b1"])  # (N, H)
        h1, cache_act = act_forward(a1)  # (N, H)
        scores, cache2 = affine_forward(h1, p["W2"], p["b2"])  # (N, C)
        if y is None:
            return scores
        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + 0.5 * self.reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        dh1, dW2, db2 = affine_backward(dscores, cache2)
        da1 = act_backward(dh1, cache_act)
        _, dW1, db1 = affine_backward(da1, cache1)
        grads = {"W1": dW1 + self.reg * p["W1"], "b1": db1, "W2": dW2 + self.reg * p["W2"], "b2": db2}
        ### END SOLUTION
        return loss, grads


def predict(model, X, batch_size=1000):
    """Predicted labels (N,) of any model with the CS231n contract, scored in batches to bound memory."""
    return np.concatenate([np.argmax(model.loss(X[i:i + batch_size]), axis=1)
                           for i in range(0, len(X), batch_size)])


def train(model, X, y, X_val, y_val, learning_rate=0.1, epochs=10, batch_size=100, lr_decay=1.0, seed=0):
    """Mini-batch stochastic gradient descent on a CS231n-contract model.

    Each epoch visits the training examples once, in an order shuffled with np.random.default_rng(seed).
    After every epoch the learning rate is multiplied by lr_decay.

    Args:
        X: (N, D) training inputs.  y: (N,) labels.  X_val: (M, D), y_val: (M,) validation data.
    Returns:
        history: dict with "loss" (one float per step), "train_acc" and "val_acc" (one float per epoch).
    """
    rng = np.random.default_rng(seed)
    history = {"loss": [], "train_acc": [], "val_acc": []}
    n = X.shape[0]
    for _ in range(epochs):
        ### BEGIN SOLUTION
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss, grads = model.loss(X[idx], y[idx])
            for k, g in grads.items():
                model.params[k] -= learning_rate * g  # step against the gradient
            history["loss"].append(float(loss))
        learning_rate *= lr_decay
        ### END SOLUTION
        # accuracy on a fixed slice of the training set keeps the epoch cheap
        history["train_acc"].append(float(np.mean(predict(model, X[:1000]) == y[:1000])))
        history["val_acc"].append(float(np.mean(predict(model, X_val) == y_val)))
    return history


def deep_gradient_norms(X, y, depth=8, hidden_dim=64, activation="sigmoid", init="normal", weight_scale=1e-2,
                        seed=0):
    """Gradient norm of each layer's weights in a deep MLP, for the vanishing/exploding-gradient experiment.

    Provided code (not graded): it chains your affine and activation layers `depth` times, then softmax_loss,
    and backpropagates once.

    Args:
        X: (N, D) inputs.  y: (N,) labels.
    Returns:
        norms: (depth + 1,) Frobenius norm of dW for each affine layer, input side first.
    """
    act_forward, act_backward = ACTIVATIONS[activation]
    rng = np.random.SeedSequence(seed).spawn(depth + 1)
    sizes = [X.shape[1]] + [hidden_dim] * depth + [int(y.max()) + 1]
    weights = [init_weights(sizes[i], sizes[i + 1], init, weight_scale, rng[i]) for i in range(depth + 1)]
    h, caches = X, []
    for i, w in enumerate(weights):
        h, c_aff = affine_forward(h, w, np.zeros(w.shape[1]))
        c_act = None
        if i < depth:
            h, c_act = act_forward(h)
        caches.append((c_aff, c_act))
    _, dh = softmax_loss(h, y)
    norms = np.zeros(depth + 1)
    for i in reversed(range(depth + 1)):
        c_aff, c_act = caches[i]
        if c_act is not None:
            dh = act_backward(dh, c_act)
        dh, dw, _ = affine_backward(dh, c_aff)
        norms[i] = np.linalg.norm(dw)
    return norms
