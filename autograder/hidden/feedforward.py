"""The hidden suite of topic 1 (feedforward) and its planted bugs. Never released.

The checks are the ones in autograder/public/feedforward.py; here their oracle is the reference solution
(solutions/feedforward), computed in this trusted process, and they run on other shapes, per-student inputs and
the full training runs (`ctx.hidden`). MUTANTS are the planted bugs the tests require the suite to catch.
"""
from __future__ import annotations

import functools

from autograder.mutants import mutant
from autograder.public.feedforward import CHECKS
from autograder.runner import reference


class ReferenceOracle:
    """The reference layers, plus the reference net's loss on given parameters."""

    def __init__(self, ctx):
        self.layers = reference("feedforward", "layers")
        self.net = reference("feedforward", "net")

    def __getattr__(self, name):
        return getattr(self.layers, name)

    def two_layer_loss(self, params, activation, reg, X, y=None):
        net = self.net.TwoLayerNet.__new__(self.net.TwoLayerNet)
        net.activation, net.reg, net.params = activation, reg, {k: v.copy() for k, v in params.items()}
        return net.loss(X, y)


SUITE = CHECKS.suite("hidden", ReferenceOracle)

_m = functools.partial(mutant, "feedforward")

MUTANTS = (
    _m("affine_no_bias", "layers", "@ w + b  # (N, M)", "@ w  # (N, M)", "affine_forward",
       "forgets the bias"),
    _m("affine_dw_transposed", "layers", "dw = x.reshape(x.shape[0], -1).T @ dout",
       "dw = (dout.T @ x.reshape(x.shape[0], -1))", "affine_backward", "dW transposed"),
    _m("affine_db_not_summed", "layers", "db = dout.sum(axis=0)", "db = dout.mean(axis=0)", "affine_backward",
       "db averaged instead of summed over the batch"),
    _m("relu_leaky", "layers", "out = np.maximum(0, x)", "out = np.maximum(0.01 * x, x)", "relu_forward",
       "leaky ReLU instead of ReLU"),
    _m("relu_mask_wrong_side", "layers", "dx = dout * (x > 0)", "dx = dout * (x < 0)", "relu_backward",
       "ReLU mask on the wrong side"),
    _m("sigmoid_forward_wrong_sign", "layers", "out = np.where(x >= 0, 1 / (1 + z), z / (1 + z))",
       "out = np.where(x >= 0, z / (1 + z), 1 / (1 + z))", "sigmoid_forward", "computes sigmoid(-x)"),
    _m("tanh_forward_half_argument", "layers", "out = np.tanh(x)", "out = 2 / (1 + np.exp(-x)) - 1",
       "tanh_forward", "2 sigmoid(x) - 1, which is tanh(x / 2)"),
    _m("sigmoid_backward_missing_term", "layers", "dx = dout * out * (1 - out)", "dx = dout * out",
       "sigmoid_backward", "drops the (1 - s) factor"),
    _m("tanh_backward_not_squared", "layers", "dx = dout * (1 - out ** 2)", "dx = dout * (1 - out)",
       "tanh_backward", "1 - tanh instead of 1 - tanh^2"),
    _m("softmax_missing_1_over_N", "layers", "dx /= n  # the loss is a mean over the batch", "",
       "softmax_loss", "gradient of the sum, loss of the mean"),
    _m("softmax_no_max_shift", "layers", "shifted = x - x.max(axis=1, keepdims=True)", "shifted = x",
       "softmax_loss", "no max subtraction: overflow for large scores"),
    _m("softmax_wrong_sign", "layers", "dx[np.arange(n), y] -= 1", "dx[np.arange(n), y] += 1", "softmax_loss",
       "wrong sign on the true class"),
    _m("batchnorm_running_not_updated", "layers",
       "        running_mean = momentum * running_mean + (1 - momentum) * mu\n"
       "        running_var = momentum * running_var + (1 - momentum) * var\n", "", "batchnorm_forward",
       "running statistics never updated"),
    _m("batchnorm_momentum_swapped", "layers", "running_mean = momentum * running_mean + (1 - momentum) * mu",
       "running_mean = (1 - momentum) * running_mean + momentum * mu", "batchnorm_forward",
       "momentum applied to the batch statistic"),
    _m("batchnorm_test_uses_batch_stats", "layers",
       "out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta",
       "out = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta", "batchnorm_forward",
       "test mode normalises with the batch statistics"),
    _m("batchnorm_backward_no_mean_terms", "layers",
       "dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))",
       "dx = inv_std * dx_hat", "batchnorm_backward", "ignores that the batch statistics depend on x"),
    _m("init_he_wrong_scale", "layers", '"he": np.sqrt(2.0 / fan_in)', '"he": np.sqrt(1.0 / fan_in)',
       "init_weights", "He init with variance 1/fan_in"),
    _m("net_reg_missing_in_grad", "net", '"W1": dW1 + self.reg * p["W1"]', '"W1": dW1', "TwoLayerNet", "regularisation gradient missing for W1"),
    _m("train_step_sign", "net", "model.params[k] -= learning_rate * g", "model.params[k] += learning_rate * g",
       "train", "gradient ascent"),
    _m("torch_load_not_transposed", "torch_net", 'self.fc1.weight.copy_(torch.as_tensor(params["W1"]).T)',
       'self.fc1.weight.copy_(torch.as_tensor(params["W1"]).reshape(self.fc1.weight.shape))',
       "TorchTwoLayerNet", "reshapes W1 instead of transposing it"),
    _m("torch_sum_reduction", "torch_net", "nn.functional.cross_entropy(scores, y) + penalty",
       'nn.functional.cross_entropy(scores, y, reduction="sum") + penalty', "TorchTwoLayerNet",
       "summed instead of mean cross-entropy"),
    _m("torch_no_optimizer_step", "torch_net", "            opt.step()\n", "", "train_torch",
       "never updates the weights"),
)
