"""The hidden suite of topic 3 (cnn) and its planted bugs. Never released.

The checks are the ones in autograder/public/cnn.py; here their oracle is the reference solution (solutions/cnn,
which imports the reference topic-1 layers), computed in this trusted process, on other sizes, per-student inputs
and the full CIFAR-10 training runs; the fast layers are timed against the reference's fast layers. The students'
code uses their own topic-1 layers and training loops.
"""
from __future__ import annotations

import functools

from autograder.mutants import mutant
from autograder.public.cnn import CHECKS
from autograder.runner import reference


class ReferenceOracle:
    """The reference layers and figures, plus the reference TinyCNN's loss on given parameters."""

    def __init__(self, ctx):
        self.layers = reference("cnn", "layers")
        self.net = reference("cnn", "net")
        self.plot_filters, self.plot_feature_maps = self.net.plot_filters, self.net.plot_feature_maps

    def __getattr__(self, name):
        return getattr(self.layers, name)

    def tiny_cnn_loss(self, params, reg, X, y=None):
        net = self.net.TinyCNN.__new__(self.net.TinyCNN)
        k = params["W1"].shape[2]
        net.reg, net.params = reg, {key: value.copy() for key, value in params.items()}
        net.conv_param = {"stride": 1, "pad": (k - 1) // 2}
        net.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        return net.loss(X, y)


SUITE = CHECKS.suite("hidden", ReferenceOracle)

_m = functools.partial(mutant, "cnn")

_TRAIN_IMPORT = ("from feedforward.net import predict, train  # noqa: F401  (re-exported: the CNN trains with the "
                 "topic-1 loop)")
_TORCH_TRAIN_IMPORT = ("from feedforward.torch_net import train_torch  # noqa: F401  (re-exported: the CNN trains with "
                       "the topic-1 loop)")

MUTANTS = (
    _m("conv_output_shape_pad_once", "layers", "H_out = 1 + (H + 2 * pad - HH) // stride",
       "H_out = 1 + (H + pad - HH) // stride", "conv_output_shape", "counts the padding on one side only (height)"),
    _m("receptive_field_stride_first", "layers",
       '        r += (layer["kernel"] - 1) * jump\n        jump *= layer.get("stride", 1)\n',
       '        jump *= layer.get("stride", 1)\n        r += (layer["kernel"] - 1) * jump\n', "receptive_field",
       "applies a layer's own stride to its kernel"),
    _m("conv_naive_stride_ignored", "layers",
       "window = x_pad[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]",
       "window = x_pad[:, :, i:i + HH, j:j + WW]", "conv_forward_naive", "windows start at i, j: stride ignored"),
    _m("conv_naive_kernel_flipped", "layers", "np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b",
       "np.tensordot(window, w[:, :, ::-1, ::-1], axes=([1, 2, 3], [1, 2, 3])) + b", "conv_forward_naive",
       "a true convolution (flipped kernel) instead of torch's cross-correlation"),
    _m("conv_naive_crop_minus_pad", "layers", "dx = dx_pad[:, :, pad:pad + H, pad:pad + W]  # drop the padding",
       "dx = dx_pad[:, :, pad:-pad, pad:-pad]  # drop the padding", "conv_backward_naive",
       "the classic [pad:-pad] crop: dx is empty at pad 0"),
    _m("conv_naive_pad_ignored_in_crop", "layers", "dx = dx_pad[:, :, pad:pad + H, pad:pad + W]  # drop the padding",
       "dx = dx_pad[:, :, :H, :W]  # drop the padding", "conv_backward_naive",
       "pad ignored in the backward crop: dx shifted by pad"),
    _m("conv_fast_weights_transposed", "layers", "w_flat = w.reshape(F, -1)",
       "w_flat = w.transpose(0, 1, 3, 2).reshape(F, -1)", "conv_forward_fast",
       "kernel rows and columns swapped when the weights are flattened"),
    _m("conv_fast_is_naive", "layers", "    for n in range(0, N, m):  # one im2col copy and one GEMM per chunk",
       "    return conv_forward_naive(x, w, b, conv_param)[0], cache\n"
       "    for n in range(0, N, m):  # one im2col copy and one GEMM per chunk", "conv_forward_fast",
       "the naive loop over output pixels passed off as the fast layer (right values, too slow)"),
    _m("conv_fast_dx_not_cropped", "layers",
       "dx = dx_pad[:, :, :Hp * Wp].reshape(N, C, Hp, Wp)[:, :, pad:pad + H, pad:pad + W]\n",
       "dx = dx_pad[:, :, :Hp * Wp].reshape(N, C, Hp, Wp)\n", "conv_backward_fast", "returns the padded dx"),
    _m("conv_fast_db_not_summed_over_positions", "layers", "db = dout.sum(axis=(0, 2, 3))  # (F,)\n",
       "db = dout.mean(axis=(2, 3)).sum(axis=0)  # (F,)\n", "conv_backward_fast",
       "db averaged over output positions instead of summed"),
    _m("maxpool_naive_stride_ignored", "layers",
       "out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(axis=(2, 3))",
       "out[:, :, i, j] = x[:, :, i:i + ph, j:j + pw].max(axis=(2, 3))", "max_pool_forward_naive",
       "windows start at i, j: stride ignored"),
    _m("maxpool_naive_overlap_overwritten", "layers",
       "dx[n_idx, c_idx, i * stride + k // pw, j * stride + k % pw] += dout[:, :, i, j]",
       "dx[n_idx, c_idx, i * stride + k // pw, j * stride + k % pw] = dout[:, :, i, j]", "max_pool_backward_naive",
       "assigns instead of adding: an input that is the maximum of overlapping windows keeps one gradient"),
    _m("maxpool_fast_last_row_skipped", "layers",
       "    for k in range(1, ph):\n        np.maximum(rows,",
       "    for k in range(1, ph - 1):\n        np.maximum(rows,", "max_pool_forward_fast",
       "off by one: the last row of each window is never compared"),
    _m("maxpool_fast_overlap_overwritten", "layers", "dx[:, :, rows, cols] += dout * hit",
       "dx[:, :, rows, cols] = dout * hit", "max_pool_backward_fast",
       "overlapping windows: assigns instead of adding"),
    _m("maxpool_fast_tiled_ties_all_paid", "layers", "if hits == out.size:",
       "if True:", "max_pool_backward_fast",
       "2x2 pooling: every tied maximum gets the window's whole gradient (ties not detected)"),
    _m("avgpool_not_divided", "layers", "    out /= ph * pw\n", "", "avg_pool_forward",
       "sum pooling: the window sum is not divided by PH * PW"),
    _m("avgpool_backward_not_divided", "layers", "share = dout / (ph * pw)", "share = dout", "avg_pool_backward",
       "the gradient is not divided by the window size"),
    _m("residual_skip_missing_forward", "layers", "out, relu2_cache = relu_forward(a2 + x)",
       "out, relu2_cache = relu_forward(a2)", "residual_block_forward", "the identity is never added"),
    _m("residual_skip_missing_backward", "layers", "    dx = dx + ds  # the identity path hands ds to x unchanged\n",
       "", "residual_block_backward", "the identity path is dropped from dx"),
    _m("net_relu_pool_backward_swapped", "net", "da2 = relu_backward(max_pool_backward_fast(dq2, pool2), relu2)",
       "da2 = max_pool_backward_fast(dq2, pool2)", "TinyCNN", "forgets the second ReLU in the backward pass"),
    _m("net_train_lr_over_batch", "net", _TRAIN_IMPORT,
       "from feedforward.net import predict  # noqa: F401\nfrom feedforward.net import train as _train\n\n\n"
       "def train(model, X, y, X_val, y_val, learning_rate=0.1, epochs=10, batch_size=100, lr_decay=1.0, seed=0):\n"
       "    return _train(model, X, y, X_val, y_val, learning_rate / batch_size, epochs, batch_size, lr_decay, seed)",
       "train", "divides the learning rate by the batch size (the loss is already a mean): steps 50 times too small"),
    _m("plot_filters_channels_first", "net", "img = img.transpose(1, 2, 0)  # (HH, WW, C)",
       "img = img.transpose(2, 1, 0)  # (HH, WW, C)", "plot_filters",
       "moves the channels last with the wrong transpose: each image transposed"),
    _m("plot_feature_maps_transposed", "net", 'ax.imshow(activations[c], cmap="viridis"',
       'ax.imshow(activations[c].T, cmap="viridis"', "plot_feature_maps", "shows each map transposed"),
    _m("torch_fc_not_transposed", "torch_net", 'self.fc.weight.copy_(torch.as_tensor(params["W3"]).T)',
       'self.fc.weight.copy_(torch.as_tensor(params["W3"]).reshape(self.fc.weight.shape))', "TorchTinyCNN",
       "reshapes W3 instead of transposing it"),
    _m("torch_train_lr_over_batch", "torch_net", _TORCH_TRAIN_IMPORT,
       "from feedforward.torch_net import train_torch as _train_torch\n\n\n"
       "def train_torch(model, X, y, X_val, y_val, learning_rate=0.1, epochs=10, batch_size=100, lr_decay=1.0, "
       "seed=0):\n"
       "    return _train_torch(model, X, y, X_val, y_val, learning_rate / batch_size, epochs, batch_size, lr_decay,\n"
       "                        seed)",
       "train_torch", "divides the learning rate by the batch size: steps 50 times too small"),
)
