"""Topic 2 of the course, backprop: its student modules, graded tasks and points, training bars and limits.

The fields are documented in course_config/schema.py.
"""
from __future__ import annotations

from course_config.schema import Task, Topic


def _bp(fn: str, points: float, module: str, **kw) -> Task:
    return Task.named("backprop", fn, points, module, **kw)


TOPIC = Topic(
    slug="backprop",
    number=2,
    title="Backpropagation by hand, autograd, and gradient flow",
    modules=("manual", "autograd", "gradflow"),
    notebook="backprop.ipynb",
    requires=("feedforward",),
    datasets=("mnist",),
    min_mutants=8,
    demo_mutants=("value_grad_not_accumulated", "flow_plot_linear_scale", "hist_wrong_bins"),
    tasks=(
        _bp("two_layer_forward", 2, "manual", description="staged forward pass naming every intermediate"),
        _bp("two_layer_backward", 4, "manual", depends_on=("two_layer_forward",),
            description="chain rule step by step; equals numerical gradients and torch.autograd"),
        _bp("Value", 3, "autograd", description="scalar values: + - * / **, exp, log, tanh, relu forward"),
        _bp("Value.backward", 4, "autograd", depends_on=("Value",),
            description="reverse mode over a topological order: shared nodes accumulate, deep chains work"),
        _bp("record_gradient_norms", 3, "gradflow",
            depends_on=("feedforward.affine_forward", "feedforward.affine_backward", "feedforward.relu_forward",
                        "feedforward.relu_backward", "feedforward.sigmoid_forward", "feedforward.sigmoid_backward",
                        "feedforward.softmax_loss", "feedforward.init_weights"),
            description="per-layer gradient norms of a deep MLP over training steps"),
        _bp("plot_gradient_flow", 3, "gradflow", category="visualization",
            description="one line per layer, log-scale y axis, labelled axes and legend"),
        _bp("plot_gradient_histograms", 3, "gradflow", category="visualization",
            description="one histogram panel per layer, counts as np.histogram with the same bins"),
        _bp("written_explanation", 3, "backprop", category="comparative", kind="manual",
            description="chain-rule intuition and autograd vs manual gradients (instructor graded)"),
    ),
)
