"""Toy sequence tasks (reverse, copy, sort) learned by a tiny attention model whose attention step is YOUR NumPy code.

The model is PyTorch, but its attention runs attention_forward / attention_backward from attention.py (imported,
never copied) on float64 NumPy arrays, wrapped in a torch.autograd.Function. Shapes: N batch, T sequence length
(source and target have the same length), D model features, C vocabulary size (token classes 0..C-1).
Write only inside the marked regions; keep the signatures, the grader calls them as they are.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are built off screen; notebooks display them inline
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from attention.attention import attention_backward, attention_forward  # noqa: E402

TASKS = ("reverse", "copy", "sort")


def make_task(name, n, T, vocab, seed=0):
    """Source sequences and their targets for a toy task.

    The sources are np.random.default_rng(seed).integers(0, vocab, size=(n, T)). Targets: "copy" is the source,
    "reverse" the source read backwards, "sort" the source in ascending order.

    Args:
        name: one of TASKS.  n: number N of sequences.  T: sequence length.  vocab: number C of tokens.
    Returns:
        src: (N, T) int64 tokens in [0, C).
        tgt: (N, T) int64 tokens in [0, C).
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    src = np.random.default_rng(seed).integers(0, vocab, size=(n, T))
    ### BEGIN SOLUTION
    if name == "copy":
        tgt = src.copy()
    elif name == "reverse":
        tgt = src[:, ::-1].copy()
    else:
        tgt = np.sort(src, axis=1)
    ### END SOLUTION
    return src, tgt


class NumpyAttention(torch.autograd.Function):
    """Your attention_forward / attention_backward as a differentiable PyTorch operation.

    NumpyAttention.apply(q, k, v, mask=None) -> (out, weights), with q (N, T_q, D), k (N, T_k, D), v (N, T_k, D_v)
    tensors, mask None or a boolean NumPy array broadcastable to (N, T_q, T_k) (True = may attend), out
    (N, T_q, D_v) in q's dtype and weights (N, T_q, T_k), the attention weights (no gradient flows through them).
    The NumPy side always runs in float64.
    """

    @staticmethod
    def forward(ctx, q, k, v, mask=None):
        ### BEGIN SOLUTION
        out, cache = attention_forward(*(t.detach().cpu().numpy().astype(np.float64) for t in (q, k, v)), mask)
        ctx.cache, ctx.dtype = cache, q.dtype  # backward needs the NumPy cache, not tensors
        weights = torch.from_numpy(cache["weights"]).to(q.dtype)
        ctx.mark_non_differentiable(weights)
        return torch.from_numpy(out).to(q.dtype), weights
        ### END SOLUTION

    @staticmethod
    def backward(ctx, dout, dweights):
        ### BEGIN SOLUTION
        grads = attention_backward(dout.detach().cpu().numpy().astype(np.float64), ctx.cache)
        return (*(torch.from_numpy(g).to(ctx.dtype) for g in grads), None)  # None: the mask has no gradient
        ### END SOLUTION


class TinyAttentionModel(nn.Module):
    """Embed the source, let every target position attend to it once, read the token out.

    x = tok_emb[src] + src_pos (N, T, D) is the source; the queries are learned target-position vectors,
    q = tgt_pos @ Wq, the same for every sequence; k = x @ Wk and v = x @ Wv; one NumpyAttention step gives
    (N, T, D), and logits = out @ W_out + b_out (N, T, C). Reversing or copying is then "target position t reads
    source position T-1-t (or t)", which is exactly what one attention map can express.

    Parameters are in the course layout (x @ W), initialised from torch.Generator().manual_seed(seed): tok_emb
    (C, D), src_pos (T, D), tgt_pos (T, D) ~ N(0, 1); Wq, Wk, Wv (D, D) and W_out (D, C) ~ N(0, 1/D); b_out (C,) 0.
    """

    def __init__(self, vocab, T, dim=32, seed=0, dtype=torch.float64):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)

        def param(rows, cols, std):
            return nn.Parameter(std * torch.randn(rows, cols, generator=gen, dtype=dtype))

        self.tok_emb = param(vocab, dim, 1.0)
        self.src_pos = param(T, dim, 1.0)
        self.tgt_pos = param(T, dim, 1.0)
        self.Wq, self.Wk, self.Wv = (param(dim, dim, dim ** -0.5) for _ in range(3))
        self.W_out = param(dim, vocab, dim ** -0.5)
        self.b_out = nn.Parameter(torch.zeros(vocab, dtype=dtype))

    def forward(self, src):
        """src: (N, T) int64 tensor -> logits (N, T, C) and weights (N, T, T), rows = target positions."""
        ### BEGIN SOLUTION
        x = self.tok_emb[src] + self.src_pos  # (N, T, D)
        q = (self.tgt_pos @ self.Wq).expand(src.shape[0], -1, -1)  # (N, T, D): the same queries for every sequence
        out, weights = NumpyAttention.apply(q, x @ self.Wk, x @ self.Wv)  # (N, T, D), (N, T, T)
        logits = out @ self.W_out + self.b_out  # (N, T, C)
        ### END SOLUTION
        return logits, weights


def attention_and_grads(q, k, v, mask=None, dout=None):
    """NumpyAttention on float64 tensors made from NumPy arrays and, given dout, the gradients torch.autograd sends
    back to q, k and v for the loss sum(out * dout). Given; the grader calls it.

    Returns:
        out: (N, T_q, D_v).  weights: (N, T_q, T_k).  dq: (N, T_q, D).  dk: (N, T_k, D).  dv: (N, T_k, D_v);
        a gradient is None without dout, or when none reached that input.
    """
    q, k, v = (torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in (q, k, v))
    out, weights = NumpyAttention.apply(q, k, v, mask)
    if dout is not None:
        out.backward(torch.as_tensor(np.asarray(dout, dtype=np.float64)))
    grads = (None if t.grad is None else t.grad.numpy() for t in (q, k, v))
    return (out.detach().numpy(), weights.detach().numpy(), *grads)


def model_outputs(model, src):
    """model(src) for NumPy sources, without gradients: logits (N, T, C) and weights (N, T, T) as NumPy arrays.
    Given; the grader calls it."""
    with torch.no_grad():
        logits, weights = model(torch.as_tensor(np.asarray(src)))
    return logits.numpy(), weights.numpy()


def predict(model, src, batch_size=1000):
    """Greedy predictions and attention maps of a TinyAttentionModel for NumPy sources.

    Args:
        src: (N, T) int tokens.
    Returns:
        pred: (N, T) int64 argmax tokens.  weights: (N, T, T) float64 attention weights.
    """
    preds, maps = [], []
    with torch.no_grad():
        for start in range(0, len(src), batch_size):
            logits, weights = model(torch.as_tensor(np.asarray(src[start:start + batch_size])))
            preds.append(logits.argmax(dim=-1).numpy())
            maps.append(weights.double().numpy())
    return np.concatenate(preds), np.concatenate(maps)


def train(model, src, tgt, epochs=3, batch_size=50, learning_rate=0.01, seed=0):
    """Adam on the mean cross-entropy over every target token, in mini-batches.

    Each epoch visits the sequences once, in an order shuffled with np.random.default_rng(seed).

    Args:
        model: a TinyAttentionModel.  src: (N, T) int sources.  tgt: (N, T) int targets.
    Returns:
        history: dict with "loss" (one float per step).
    """
    rng = np.random.default_rng(seed)
    src_t, tgt_t = torch.as_tensor(np.asarray(src)), torch.as_tensor(np.asarray(tgt))
    history = {"loss": []}
    ### BEGIN SOLUTION
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(src_t)))
        for start in range(0, len(src_t), batch_size):
            idx = order[start:start + batch_size]
            logits, _ = model(src_t[idx])  # (B, T, C)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_t[idx].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            history["loss"].append(loss.item())
    ### END SOLUTION
    return history


def sequence_accuracy(pred, tgt):
    """Fraction of sequences predicted exactly: every one of the T tokens right.

    Args:
        pred: (N, T) predicted tokens.  tgt: (N, T) target tokens.
    Returns:
        accuracy: float in [0, 1].
    """
    ### BEGIN SOLUTION
    return float(np.mean(np.all(np.asarray(pred) == np.asarray(tgt), axis=1)))
    ### END SOLUTION


def plot_attention(weights, src_tokens, tgt_tokens, title="Attention weights"):
    """Heatmap of one attention map: rows are target (query) positions, columns source (key) positions.

    Args:
        weights: (T_q, T_k) attention weights of one sequence.
        src_tokens: T_k source tokens, the x tick labels (in order).
        tgt_tokens: T_q target tokens, the y tick labels (in order).
    Returns:
        fig: a Figure with one heatmap (imshow) whose array is `weights`, tick labels as above, axis labels, the
            title, and a colorbar.
    """
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ### BEGIN SOLUTION
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0)  # weights are probabilities
    ax.set_xticks(np.arange(len(src_tokens)), [str(t) for t in src_tokens])
    ax.set_yticks(np.arange(len(tgt_tokens)), [str(t) for t in tgt_tokens])
    ax.set_xlabel("source token (key)")
    ax.set_ylabel("target token (query)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="attention weight")
    ### END SOLUTION
    return fig
