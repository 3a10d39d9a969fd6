"""The hidden suite of topic 2 (backprop) and its planted bugs. Never released.

The checks are the ones in autograder/public/backprop.py; here their oracle is the reference (solutions/backprop,
which imports the reference topic-1 layers) in this trusted process, on other sizes and per-student inputs. The
students' code uses their own topic-1 layers.
"""
from __future__ import annotations

import functools

from autograder.mutants import mutant
from autograder.public.backprop import CHECKS
from autograder.runner import reference


class ReferenceOracle:
    """The reference staged net and gradient-flow functions."""

    def __init__(self, ctx):
        self.manual = reference("backprop", "manual")
        gradflow = reference("backprop", "gradflow")
        self.record_gradient_norms = gradflow.record_gradient_norms
        self.plot_gradient_flow = gradflow.plot_gradient_flow
        self.plot_gradient_histograms = gradflow.plot_gradient_histograms

    def two_layer(self, X, y, params, reg):
        loss, cache = self.manual.two_layer_forward(X, y, params, reg)
        values = {k: cache[k] for k in ("z1", "h1", "z2", "log_probs")}
        return loss, values, self.manual.two_layer_backward(cache)


SUITE = CHECKS.suite("hidden", ReferenceOracle)

_m = functools.partial(mutant, "backprop")

MUTANTS = (
    _m("staged_relu_instead_of_tanh", "manual", "h1 = np.tanh(z1)  # (N, H)", "h1 = np.maximum(0, z1)  # (N, H)",
       "two_layer_forward", "ReLU where the network uses tanh"),
    _m("staged_dz2_missing_1_over_N", "manual", "    dz2 /= n  # mean over the batch\n", "", "two_layer_backward",
       "softmax gradient of the sum"),
    _m("staged_tanh_derivative_wrong", "manual", "dz1 = dh1 * (1 - h1 ** 2)", "dz1 = dh1 * (1 - h1)",
       "two_layer_backward", "1 - tanh instead of 1 - tanh^2"),
    _m("staged_dW1_transposed_input", "manual", "dW1 = X.T @ dz1 + reg * W1", "dW1 = (dz1.T @ X).T * 0.5 + reg * W1",
       "two_layer_backward", "halves dW1"),
    _m("value_mul_grad_not_swapped", "autograd", "self.grad += other.data * out.grad",
       "self.grad += self.data * out.grad", "Value.backward", "product rule with the wrong factor"),
    _m("value_grad_not_accumulated", "autograd",
       "            self.grad += out.grad  # += : a node used twice collects both contributions\n"
       "            other.grad += out.grad\n",
       "            self.grad = out.grad\n            other.grad = out.grad\n", "Value.backward",
       "a reused node keeps only the last contribution"),
    _m("value_wrong_topological_order", "autograd", "for node in reversed(order):", "for node in order:",
       "Value.backward", "visits the graph inputs first"),
    _m("value_tanh_forward_wrong", "autograd", "out = Value(math.tanh(self.data), (self,), \"tanh\")",
       "out = Value(math.tanh(self.data / 2), (self,), \"tanh\")", "Value", "tanh of half the input"),
    _m("gradflow_norms_after_update", "gradflow",
       "            history[t, i] = np.linalg.norm(dw)\n            weights[i] -= learning_rate * dw",
       "            weights[i] -= learning_rate * dw\n            history[t, i] = np.linalg.norm(weights[i])",
       "record_gradient_norms", "records weight norms instead of gradient norms"),
    _m("gradflow_norm_over_wrong_axis", "gradflow", "history[t, i] = np.linalg.norm(dw)",
       "history[t, i] = np.linalg.norm(dw, axis=0).max()", "record_gradient_norms",
       "norm over one axis only"),
    _m("flow_plot_missing_layer", "gradflow", "for i in range(history.shape[1]):",
       "for i in range(history.shape[1] - 1):", "plot_gradient_flow", "a layer missing from the plot"),
    _m("flow_plot_linear_scale", "gradflow", '    ax.set_yscale("log")', "    pass", "plot_gradient_flow",
       "linear y axis"),
    _m("flow_plot_unlabelled", "gradflow", '    ax.set_xlabel("training step")\n', "", "plot_gradient_flow",
       "unlabelled x axis"),
    _m("hist_wrong_bins", "gradflow", "ax.hist(np.ravel(g), bins=bins)", "ax.hist(np.ravel(g), bins=bins + 5)",
       "plot_gradient_histograms", "ignores the bins argument"),
    _m("hist_one_panel", "gradflow", "for i, (ax, g) in enumerate(zip(axes[0], grads)):",
       "for i, (ax, g) in enumerate(zip(axes[0], [np.concatenate([np.ravel(x) for x in grads])])):",
       "plot_gradient_histograms", "all layers pooled into one panel"),
)
