"""The hidden suite of topic 7 (attention) and its planted bugs. Never released.

The checks are the ones in autograder/public/attention.py; here their oracle is the reference solution
(solutions/attention) in this trusted process, on other shapes, per-student inputs and the full training run.
The parity task compares with torch itself in both suites. MUTANTS are the planted bugs the tests require the suite
to catch.
"""
from __future__ import annotations

import functools

import torch

from autograder.mutants import mutant
from autograder.public.attention import CHECKS
from autograder.runner import reference


class ReferenceOracle:
    """The reference attention functions, the reference toy model on given parameters, and its figure."""

    def __init__(self, ctx):
        self.attention = reference("attention", "attention")

    def __getattr__(self, name):
        return getattr(self.attention, name)

    @property
    def plot_attention(self):
        return reference("attention", "toy").plot_attention

    @staticmethod
    def tiny_model(params, src):
        toy = reference("attention", "toy")
        (vocab, dim), t = params["tok_emb"].shape, params["src_pos"].shape[0]
        model = toy.TinyAttentionModel(vocab, t, dim)
        with torch.no_grad():
            for name, value in params.items():
                getattr(model, name).copy_(torch.as_tensor(value))
        return toy.model_outputs(model, src)


SUITE = CHECKS.suite("hidden", ReferenceOracle)

_m = functools.partial(mutant, "attention")

MUTANTS = (
    # attention_forward
    _m("attn_no_scaling", "attention", "scores = (q * scale) @ k.swapaxes(-1, -2)", "scores = q @ k.swapaxes(-1, -2)",
       "attention_forward", "logits not divided by sqrt(D)"),
    _m("attn_scale_by_d", "attention", "scale = q.shape[-1] ** -0.5", "scale = 1.0 / q.shape[-1]",
       "attention_forward", "divides the logits by D instead of sqrt(D) (invisible at D = 1)"),
    _m("attn_softmax_wrong_axis", "attention", "denom = weights.sum(axis=-1, keepdims=True)",
       "denom = weights.sum(axis=-2, keepdims=True)", "attention_forward",
       "normalises over the queries instead of the keys"),
    _m("attn_mask_after_softmax", "attention",
       "    if mask is not None:\n"
       "        np.copyto(scores, -np.inf, where=np.logical_not(mask))  # exp(-inf) = 0: masked keys get zero weight\n"
       "    row_max = scores.max(axis=-1, keepdims=True)  # (N, T_q, 1)\n"
       "    row_max[~np.isfinite(row_max)] = 0  # a fully masked row has max -inf, and -inf - (-inf) is NaN\n"
       "    scores -= row_max  # subtract the row max: exp never overflows\n"
       "    # in place from here on: a fresh (N, T_q, T_k) array costs more than the exp itself\n"
       "    weights = np.exp(scores, out=scores)  # (N, T_q, T_k)\n"
       "    denom = weights.sum(axis=-1, keepdims=True)  # (N, T_q, 1), 0 only for a fully masked row\n"
       "    weights /= np.where(denom > 0, denom, 1)  # such a row stays all zero instead of 0 / 0\n",
       "    scores -= scores.max(axis=-1, keepdims=True)\n"
       "    weights = np.exp(scores, out=scores)  # (N, T_q, T_k)\n"
       "    weights /= weights.sum(axis=-1, keepdims=True)\n"
       "    if mask is not None:\n"
       "        weights = weights * mask  # masked after the softmax: rows no longer sum to 1\n",
       "attention_forward", "masks the probabilities after the softmax, without renormalising"),
    _m("attn_mask_as_multiplication", "attention", "np.copyto(scores, -np.inf, where=np.logical_not(mask))",
       "scores *= mask", "attention_forward", "multiplies the logits by the mask instead of setting them to -inf"),
    _m("attn_no_max_shift", "attention", "    scores -= row_max  # subtract the row max: exp never overflows\n", "",
       "attention_forward", "softmax without the row max: inf / inf = NaN at logits of size 1e3"),
    _m("attn_fully_masked_row_nan", "attention", "    row_max[~np.isfinite(row_max)] = 0  #", "    #",
       "attention_forward", "a fully masked row gives -inf - (-inf) = NaN"),
    # attention_backward
    _m("attn_dv_from_unmasked_weights", "attention", "    dv = weights.swapaxes(-1, -2) @ dout  # (N, T_k, D_v)\n",
       "    logits = (q * scale) @ k.swapaxes(-1, -2)  # recomputed without the mask\n"
       "    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))\n"
       "    probs /= probs.sum(axis=-1, keepdims=True)\n"
       "    dv = probs.swapaxes(-1, -2) @ dout  # (N, T_k, D_v)\n",
       "attention_backward", "dv from a softmax recomputed without the mask"),
    _m("attn_dv_not_transposed", "attention", "dv = weights.swapaxes(-1, -2) @ dout", "dv = weights @ dout",
       "attention_backward", "dv = W dout instead of W^T dout (runs only when T_q == T_k)"),
    _m("attn_dq_missing_scale", "attention", "dq = scale * (dscores @ k)", "dq = dscores @ k", "attention_backward",
       "dq misses the 1 / sqrt(D) factor"),
    _m("attn_softmax_backward_no_rowsum", "attention",
       '    dscores -= np.einsum("...ij,...ij->...i", dscores, weights)[..., None]\n', "", "attention_backward",
       "softmax backward as w * dw, without the - sum_j w_j dw_j term"),
    # multihead_forward
    _m("mha_heads_merged_interleaved", "attention", "merged = heads.transpose(0, 2, 1, 3).reshape(n, t_q, d)",
       "merged = heads.transpose(0, 2, 3, 1).reshape(n, t_q, d)", "multihead_forward",
       "merges the heads in the wrong order (their features interleaved)"),
    _m("mha_split_without_transpose", "attention",
       "q = (x_q @ Wq + bq).reshape(n, t_q, num_heads, d_h).transpose(0, 2, 1, 3)",
       "q = (x_q @ Wq + bq).reshape(n, num_heads, t_q, d_h)", "multihead_forward",
       "splits the query heads with a bare reshape"),
    _m("mha_mask_ignored", "attention", "attention_forward(q, k, v, head_mask)", "attention_forward(q, k, v)",
       "multihead_forward", "the mask never reaches the heads"),
    # multihead_backward
    _m("mha_wo_missing_in_backward", "attention", "dheads = (dout @ Wo.T).reshape(", "dheads = dout.reshape(",
       "multihead_backward", "backpropagates into the heads without the output projection Wo"),
    _m("mha_dWo_transposed", "attention", "dWo = merged.reshape(-1, d).T @ dout.reshape(-1, d)",
       "dWo = dout.reshape(-1, d).T @ merged.reshape(-1, d)", "multihead_backward", "dWo transposed"),
    _m("mha_dx_kv_missing_value_path", "attention", "dx_kv = dk @ Wk.T + dv @ Wv.T", "dx_kv = dk @ Wk.T",
       "multihead_backward", "dx_kv forgets that x_kv also feeds the values"),
    _m("mha_dbo_mean", "attention", "dbo = dout.sum(axis=(0, 1))", "dbo = dout.mean(axis=(0, 1))",
       "multihead_backward", "output bias gradient averaged instead of summed"),
    # mha_weights_from_torch
    _m("torch_in_proj_not_transposed", "attention", "(in_proj_weight[i * d:(i + 1) * d].T for i in range(3))",
       "(in_proj_weight[i * d:(i + 1) * d] for i in range(3))", "mha_weights_from_torch",
       "torch's x @ W.T read as x @ W for the input projections"),
    # toy.py: NumpyAttention, TinyAttentionModel, train (with make_task and sequence_accuracy), plot_attention
    _m("toy_function_grads_swapped", "toy", "for g in grads), None)",
       "for g in (grads[1], grads[0], grads[2])), None)", "NumpyAttention",
       "the autograd.Function returns dk for q and dq for k"),
    _m("toy_model_self_attention_queries", "toy", "q = (self.tgt_pos @ self.Wq).expand(src.shape[0], -1, -1)",
       "q = x @ self.Wq", "TinyAttentionModel",
       "queries from the source (self-attention) instead of the target positions"),
    _m("toy_model_values_from_positions", "toy", "NumpyAttention.apply(q, x @ self.Wk, x @ self.Wv)",
       "NumpyAttention.apply(q, x @ self.Wk, self.src_pos.expand_as(x) @ self.Wv)", "TinyAttentionModel",
       "values carry positions only, so no token can be read out"),
    _m("toy_reverse_wrong_axis", "toy", "tgt = src[:, ::-1].copy()", "tgt = src[::-1].copy()", "train",
       "make_task reverses the order of the sequences instead of their tokens"),
    _m("toy_train_no_zero_grad", "toy", "            opt.zero_grad()\n", "", "train",
       "gradients accumulate across steps"),
    _m("toy_train_one_batch_per_epoch", "toy", '            history["loss"].append(loss.item())\n',
       '            history["loss"].append(loss.item())\n            break\n', "train",
       "only the first mini-batch of every epoch is used"),
    _m("toy_accuracy_per_token", "toy", "np.mean(np.all(np.asarray(pred) == np.asarray(tgt), axis=1))",
       "np.mean(np.asarray(pred) == np.asarray(tgt))", "train",
       "sequence_accuracy counts tokens instead of whole sequences"),
    _m("toy_plot_transposed", "toy", "image = ax.imshow(weights, cmap=", "image = ax.imshow(weights.T, cmap=",
       "plot_attention", "heatmap of the transposed map"),
    _m("toy_plot_ticks_swapped", "toy",
       "    ax.set_xticks(np.arange(len(src_tokens)), [str(t) for t in src_tokens])\n"
       "    ax.set_yticks(np.arange(len(tgt_tokens)), [str(t) for t in tgt_tokens])\n",
       "    ax.set_xticks(np.arange(len(tgt_tokens)), [str(t) for t in tgt_tokens])\n"
       "    ax.set_yticks(np.arange(len(src_tokens)), [str(t) for t in src_tokens])\n", "plot_attention",
       "source and target tokens swapped on the axes"),
    _m("toy_plot_no_colorbar", "toy", '    fig.colorbar(image, ax=ax, label="attention weight")\n', "",
       "plot_attention", "no colorbar"),
)
