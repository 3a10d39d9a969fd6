"""A tiny CNN with the CS231n model contract, and figures of its filters and feature maps.

Model contract (the one of feedforward.net): the model keeps its weights in `self.params`, a dict of arrays,
and `loss(X, y=None)` returns the class scores when y is None, else `(loss, grads)` with `grads` shaped like
`params`. The network is built from your topic-1 affine, ReLU and softmax layers and your fast conv and pool
layers, all imported. Training reuses your topic-1 `train` (and `predict`) unchanged: that loop only touches
`model.params` and `model.loss`, so it fits a CNN as it is, and `cnn.net.train` is that same function.
Shapes: N batch, C channels, H/W height/width, F filters, HH/WW kernel.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure  # a bare Figure needs no backend and leaves no global pyplot state

from cnn.layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from feedforward.layers import (affine_backward, affine_forward, init_weights, relu_backward, relu_forward,
                                softmax_loss)
from feedforward.net import predict, train  # noqa: F401  (re-exported: the CNN trains with the topic-1 loop)


class TinyCNN:
    """conv - relu - 2x2 max pool - conv - relu - 2x2 max pool - affine - softmax.

    Convolutions use stride 1 and "same" padding (filter_size - 1) // 2; pools are 2x2 with stride 2. The loss
    adds 0.5 * reg * (||W1||^2 + ||W2||^2 + ||W3||^2).

    params: W1 (F1, C, HH, WW), b1 (F1,), W2 (F2, F1, HH, WW), b2 (F2,), W3 (F2 * (H // 4) * (W // 4), K), b3 (K,),
    with HH = WW = filter_size and K = num_classes. Weights come from topic 1's init_weights with fan_in the
    number of inputs of one unit (C * HH * WW for a conv, reshaped to the filter layout); biases start at zero.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=(16, 32), filter_size=3, num_classes=10, init="he",
                 weight_scale=1e-2, reg=0.0, seed=None):
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd for 'same' padding, got {filter_size}")
        C, H, W = input_dim
        F1, F2 = num_filters
        k = filter_size
        self.reg = reg
        self.conv_param = {"stride": 1, "pad": (k - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        seeds = np.random.SeedSequence(seed).spawn(3)  # independent streams for the three layers
        self.params = {
            # init_weights gives (fan_in, fan_out); transposing puts one filter per row, in (C, HH, WW) order
            "W1": init_weights(C * k * k, F1, init, weight_scale, seeds[0]).T.reshape(F1, C, k, k),
            "b1": np.zeros(F1),
            "W2": init_weights(F1 * k * k, F2, init, weight_scale, seeds[1]).T.reshape(F2, F1, k, k),
            "b2": np.zeros(F2),
            "W3": init_weights(F2 * (H // 4) * (W // 4), num_classes, init, weight_scale, seeds[2]),
            "b3": np.zeros(num_classes),
        }

    def loss(self, X, y=None):
        """Scores, or loss and gradients.

        Args:
            X: (N, C, H, W) images.
            y: (N,) integer labels, or None.
        Returns:
            scores (N, K) if y is None, else (loss, grads) with grads[k] shaped like params[k].
        """
        p = self.params
        ### BEGIN SOLUTION
        a1, conv1 = conv_forward_fast(X, p["W1"], p["b1"], self.conv_param)  # (N, F1, H, W)
        h1, relu1 = relu_forward(a1)
        q1, pool1 = max_pool_forward_fast(h1, self.pool_param)  # (N, F1, H/2, W/2)
        a2, conv2 = conv_forward_fast(q1, p["W2"], p["b2"], self.conv_param)  # (N, F2, H/2, W/2)
        h2, relu2 = relu_forward(a2)
        q2, pool2 = max_pool_forward_fast(h2, self.pool_param)  # (N, F2, H/4, W/4)
        scores, fc = affine_forward(q2, p["W3"], p["b3"])  # (N, K); affine flattens each example
        if y is None:
            return scores
        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + 0.5 * self.reg * sum(np.sum(p[k] ** 2) for k in ("W1", "W2", "W3"))
        dq2, dW3, db3 = affine_backward(dscores, fc)  # dq2 comes back as (N, F2, H/4, W/4)
        da2 = relu_backward(max_pool_backward_fast(dq2, pool2), relu2)
        dq1, dW2, db2 = conv_backward_fast(da2, conv2)
        da1 = relu_backward(max_pool_backward_fast(dq1, pool1), relu1)
        _, dW1, db1 = conv_backward_fast(da1, conv1)
        grads = {"W1": dW1 + self.reg * p["W1"], "b1": db1, "W2": dW2 + self.reg * p["W2"], "b2": db2,
                 "W3": dW3 + self.reg * p["W3"], "b3": db3}
        ### END SOLUTION
        return loss, grads


def _grid(n):
    """(rows, cols) of a grid for n images, at most 8 per row."""
    cols = min(n, 8)
    return -(-n // cols), cols


def plot_filters(w):
    """One image per filter of a first conv layer.

    Mapping (one filter at a time, so each shows its own pattern at full contrast): img = (w[f] - min) /
    (max - min) with min and max over that filter's C * HH * WW entries (a constant filter gives all zeros);
    then transposed to (HH, WW, C). C = 3 is shown as an RGB image; C = 1 as a grey image of img[..., 0] with
    cmap "gray" and colour limits 0..1.

    Args:
        w: (F, C, HH, WW) filters, C = 1 or 3.
    Returns:
        fig: a Figure with F axes on a grid of at most 8 columns (filter f at position f, row-major), each
            titled "filter f" (f from 0), holding one image, axis ticks off; suptitle "first-layer filters".
    Raises:
        ValueError: if C is not 1 or 3.
    """
    F, C = w.shape[:2]
    if C not in (1, 3):
        raise ValueError(f"filters must have 1 or 3 input channels to be shown as images, got {C}")
    rows, cols = _grid(F)
    fig = Figure(figsize=(1.5 * cols, 1.6 * rows))
    ### BEGIN SOLUTION
    for f in range(F):
        lo, hi = w[f].min(), w[f].max()
        img = (w[f] - lo) / (hi - lo) if hi > lo else np.zeros(w[f].shape)  # (C, HH, WW) in [0, 1]
        img = img.transpose(1, 2, 0)  # (HH, WW, C): imshow wants channels last
        ax = fig.add_subplot(rows, cols, f + 1)
        if C == 3:
            ax.imshow(img, interpolation="nearest")
        else:
            ax.imshow(img[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"filter {f}", fontsize="small")
        ax.axis("off")
    fig.suptitle("first-layer filters")
    ### END SOLUTION
    return fig


def plot_feature_maps(activations):
    """One image per channel of one example's activations, shown as they are (no rescaling).

    Args:
        activations: (C, H, W) activations of one example (e.g. relu(conv1(x))[0]).
    Returns:
        fig: a Figure with C axes on a grid of at most 8 columns (channel c at position c, row-major), each
            titled "channel c" (c from 0), holding one image of activations[c] with cmap "viridis" and its own
            colour limits, axis ticks off; suptitle "feature maps".
    """
    C = activations.shape[0]
    rows, cols = _grid(C)
    fig = Figure(figsize=(1.5 * cols, 1.6 * rows))
    ### BEGIN SOLUTION
    for c in range(C):
        ax = fig.add_subplot(rows, cols, c + 1)
        ax.imshow(activations[c], cmap="viridis", interpolation="nearest")
        ax.set_title(f"channel {c}", fontsize="small")
        ax.axis("off")
    fig.suptitle("feature maps")
    ### END SOLUTION
    return fig
