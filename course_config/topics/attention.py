"""Topic 7 of the course, attention: its student modules, graded tasks and points, training bars and limits.

The fields are documented in course_config/schema.py.
"""
from __future__ import annotations

from course_config.schema import Task, Topic, TrainingBar


def _at(fn: str, points: float, module: str = "attention", **kw) -> Task:
    return Task.named("attention", fn, points, module, **kw)


# The toy model learns to reverse sequences of 16 tokens (vocabulary 20) that the check draws: 3,000 for training,
# 1,000 held out. The reference predicts every held-out sequence exactly (1.000) at the 5 calibration seeds, in
# 180 Adam steps (about 1.5 s CPU); from about 40 steps on it is already at 0.999. The public run is 2 epochs.
_REVERSE = TrainingBar(
    model="toy", task="attention.train", metric="sequence_accuracy", higher_is_better=True, bar=0.95, dataset="",
    train_size=3_000, test_size=1_000, margin=0.04, time_budget_s=60.0,
    settings=dict(task="reverse", T=16, vocab=20, dim=32, epochs=3, batch_size=50, learning_rate=0.01),
    public=TrainingBar(model="toy", task="attention.train", metric="sequence_accuracy", higher_is_better=True,
                       bar=0.9, dataset="", train_size=2_000, test_size=500, time_budget_s=60.0,
                       settings=dict(task="reverse", T=16, vocab=20, dim=32, epochs=2, batch_size=50,
                                     learning_rate=0.01)))

_ATTN = ("attention_forward", "attention_backward")

TOPIC = Topic(
    slug="attention",
    number=7,
    title="Attention: scaled dot-product and multi-head attention, a toy sequence task",
    modules=("attention", "toy"),
    notebook="attention.ipynb",
    torch_modules=("toy",),
    min_mutants=20,
    demo_mutants=("attn_softmax_wrong_axis", "mha_wo_missing_in_backward", "toy_plot_transposed"),
    tasks=(
        _at("attention_forward", 3, description="softmax(q k^T / sqrt(D)) v with boolean masks, stable; a fully "
                                                "masked row gives zeros"),
        _at("attention_backward", 4, depends_on=("attention_forward",),
            description="dq, dk, dv with and without masks, T_q != T_k, D = 1"),
        _at("multihead_forward", 3, depends_on=("attention_forward",),
            description="project, split into heads, attend, merge the heads in order, project"),
        _at("multihead_backward", 4, depends_on=("multihead_forward",) + _ATTN,
            description="the ten gradients of multi-head attention (dbk is exactly 0)"),
        _at("mha_weights_from_torch", 3, category="comparative", depends_on=_ATTN + ("multihead_forward",
                                                                                     "multihead_backward"),
            description="nn.MultiheadAttention's weights transplanted: the same outputs, per-head weights and "
                        "gradients as torch; attention equals F.scaled_dot_product_attention"),
        _at("NumpyAttention", 2, module="toy", category="comparative", depends_on=_ATTN,
            description="your NumPy attention as a torch.autograd.Function: torch gets your gradients"),
        _at("TinyAttentionModel", 2, module="toy", depends_on=_ATTN + ("NumpyAttention",),
            description="the toy model's logits and attention weights on its own parameters"),
        _at("train", 3, module="toy", depends_on=_ATTN + ("NumpyAttention", "TinyAttentionModel"),
            description="make_task, sequence_accuracy, and the trained model reverses sequences (accuracy bar)"),
        _at("plot_attention", 3, module="toy", category="visualization",
            description="heatmap equal to the weights, tokens as tick labels, a colorbar"),
        _at("written_explanation", 3, category="comparative", kind="manual",
            description="attention explained in the style of Distill / Alammar, from your results (instructor "
                        "graded)"),
    ),
    bars=(_REVERSE,),
)
