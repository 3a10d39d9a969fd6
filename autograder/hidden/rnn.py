"""The hidden suite of topic 4 (rnn) and its planted bugs. Never released.

The checks are the ones in autograder/public/rnn.py; here their oracle is the reference solution (solutions/rnn),
computed in this trusted process, on other sizes (T = 1, N = 1), per-student inputs and the full training runs on
the Yoruba text.
"""
from __future__ import annotations

import functools

import numpy as np

from autograder.mutants import mutant
from autograder.public.rnn import CHECKS
from autograder.runner import reference


class ReferenceOracle:
    """The reference layers, text functions and figure, plus the reference language models on given params."""

    def __init__(self, ctx):
        self.layers = reference("rnn", "rnn_layers")
        self.lm = reference("rnn", "char_lm")
        self.build_vocab, self.encode, self.decode = self.lm.build_vocab, self.lm.encode, self.lm.decode
        self.split_lines, self.plot_gradient_norms = self.lm.split_lines, self.lm.plot_gradient_norms

    def __getattr__(self, name):
        return getattr(self.layers, name)

    @staticmethod
    def lstm_final_c(cache) -> np.ndarray:
        return cache.c[:, -1]

    def _model(self, params: dict, chars=None):
        """A reference CharLSTM holding copies of `params` (float64)."""
        model = self.lm.CharLSTM.__new__(self.lm.CharLSTM)
        model.params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        model.chars = list(chars) if chars is not None else [chr(0x100 + i) for i in range(len(params["b_out"]))]
        model.index = {ch: i for i, ch in enumerate(model.chars)}
        return model

    def lm_loss(self, params, cell, x, y=None, state=None):
        """CharLSTM.loss for an LSTM; for a GRU, the reference PyTorch model in float64 (there is no NumPy one)."""
        if cell == "lstm":
            return self._model(params).loss(x, y, state)
        torch_rnn = reference("rnn", "torch_rnn")
        c, d = params["W_embed"].shape
        model = torch_rnn.TorchCharLM([chr(0x100 + i) for i in range(c)], d, params["Wh"].shape[0], "gru",
                                      dtype="float64")
        model.load_numpy_params(params)
        return model.loss(x, y, state)

    def train_lm(self, params, ids, **settings):
        model = self._model(params)
        history = self.lm.train(model, ids, **settings)
        return history["loss"], model.params

    def bits_per_char(self, params, ids, batch_size, seq_len):
        return self.lm.bits_per_char(self._model(params), ids, batch_size, seq_len)

    def sample(self, params, chars, start, length, temperature, seed):
        return self.lm.sample(self._model(params, chars), start, length, temperature, seed)


SUITE = CHECKS.suite("hidden", ReferenceOracle)

_m = functools.partial(mutant, "rnn")

_SOFTMAX_TAIL = ("    loss = -np.sum(picked * mask) / N\n"
                 "    dx = np.exp(log_probs)  # (N, T, C) probabilities\n"
                 "    np.put_along_axis(dx, y[..., None], np.take_along_axis(dx, y[..., None], axis=2) - 1, axis=2)\n"
                 "    dx *= mask[..., None] / N")

MUTANTS = (
    # -- vanilla RNN
    _m("rnn_step_Wh_transposed", "rnn_layers", "next_h = np.tanh(x @ Wx + prev_h @ Wh + b)",
       "next_h = np.tanh(x @ Wx + prev_h @ Wh.T + b)", "rnn_step_forward", "uses Wh transposed (square, so it runs)"),
    _m("rnn_step_tanh_derivative", "rnn_layers", "da = dnext_h * (1 - next_h ** 2)", "da = dnext_h * (1 - next_h)",
       "rnn_step_backward", "1 - tanh instead of 1 - tanh^2"),
    _m("rnn_forward_state_not_updated", "rnn_layers", "prev_h = hs[t] = np.tanh(xw[t] + prev_h @ Wh)",
       "hs[t] = np.tanh(xw[t] + prev_h @ Wh)", "rnn_forward",
       "every step starts from h0: the hidden state is never carried"),
    _m("rnn_backward_dh_not_accumulated", "rnn_layers", "da[t] = (dh[:, t] + dprev_h) * (1 - hs[t] ** 2)",
       "da[t] = dh[:, t] * (1 - hs[t] ** 2)", "rnn_backward",
       "gradient through time dropped: only the upstream dh of each step is used"),
    _m("rnn_backward_dh0_dropped", "rnn_layers", "    dh0 = dprev_h\n    da = da.reshape(T * N, H)",
       "    dh0 = np.zeros_like(h0)\n    da = da.reshape(T * N, H)", "rnn_backward", "dh0 returned as zeros"),
    # -- LSTM
    _m("lstm_step_gate_order_torch", "rnn_layers",
       "    o = sigmoid(a[:, 2 * H:3 * H])\n    g = np.tanh(a[:, 3 * H:])\n",
       "    g = np.tanh(a[:, 2 * H:3 * H])\n    o = sigmoid(a[:, 3 * H:])\n", "lstm_step_forward",
       "gate order i, f, g, o (torch's) instead of CS231n's i, f, o, g"),
    _m("lstm_step_no_tanh_on_c", "rnn_layers", "next_h = o * tanh_c  # (N, H)", "next_h = o * next_c  # (N, H)",
       "lstm_step_forward", "h = o * c: tanh missing on the cell state"),
    _m("lstm_step_backward_forget_missing", "rnn_layers",
       "    dprev_c = dc * f  # the forget gate scales the old cell state\n    dx = da @ Wx.T",
       "    dprev_c = dc  # the forget gate scales the old cell state\n    dx = da @ Wx.T", "lstm_step_backward",
       "gradient to prev_c not multiplied by the forget gate"),
    _m("lstm_forward_gates_i_f_swapped", "rnn_layers", "i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]",
       "f, i, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]", "lstm_forward", "input and forget gates swapped"),
    _m("lstm_forward_no_tanh_on_c", "rnn_layers", "np.multiply(o, tanh_cs[t], out=hs[t])",
       "np.multiply(o, cs[t], out=hs[t])", "lstm_forward", "h = o * c: tanh missing on the cell state"),
    _m("lstm_forward_c0_ignored", "rnn_layers", "prev_c = c0.T  # (H, N)",
       "prev_c = np.zeros_like(c0.T)  # (H, N)", "lstm_forward",
       "the cell state carried in (c0) is ignored"),
    _m("lstm_backward_forget_carry_missing", "rnn_layers",
       "        dprev_c = dc * f[t]  # the forget gate scales the old cell state\n        dprev_h = Wh @ da_t",
       "        dprev_c = dc  # the forget gate scales the old cell state\n        dprev_h = Wh @ da_t",
       "lstm_backward", "cell-state gradient carried through time without the forget gate"),
    _m("lstm_backward_dh_not_accumulated", "rnn_layers", "dh_t = dhs[t] + dprev_h", "dh_t = dhs[t]",
       "lstm_backward", "gradient through h_{t+1} dropped"),
    _m("lstm_backward_dh0_dropped", "rnn_layers", "dh0 = np.ascontiguousarray(dprev_h.T)", "dh0 = np.zeros_like(h0)",
       "lstm_backward", "dh0 returned as zeros"),
    _m("lstm_backward_dWh_off_by_one", "rnn_layers",
       "    z[0, :, D:D + H] = h0\n    z[1:, :, D:D + H] = h.transpose(1, 0, 2)[:-1]",
       "    z[:, :, D:D + H] = h.transpose(1, 0, 2)", "lstm_backward",
       "dWh uses h_t instead of h_{t-1} (off by one step)"),
    # -- GRU
    _m("gru_step_reset_on_input_term", "rnn_layers", "n = np.tanh(ax[:, 2 * H:] + r * ah_n)",
       "n = np.tanh(r * ax[:, 2 * H:] + ah_n)", "gru_step_forward",
       "reset gate multiplies the input term instead of W_hn h + b_hn"),
    _m("gru_step_backward_update_sign", "rnn_layers", "dz_pre = dnext_h * (prev_h - n) * z * (1 - z)",
       "dz_pre = dnext_h * (n - prev_h) * z * (1 - z)", "gru_step_backward",
       "update-gate gradient of h = z n + (1 - z) h (the other convention)"),
    _m("gru_forward_reset_on_input_term", "rnn_layers",
       "ns[t] = np.tanh(ax[t, :, 2 * H:] + rzs[t, :, :H] * ah_ns[t])",
       "ns[t] = np.tanh(rzs[t, :, :H] * ax[t, :, 2 * H:] + ah_ns[t])", "gru_forward",
       "reset gate multiplies the input term instead of W_hn h + b_hn"),
    _m("gru_backward_hidden_bias_grad_unscaled", "rnn_layers",
       "np.multiply(dn_pre, r, out=dah[t, :, 2 * H:])  # the reset gate scales the hidden n block",
       "dah[t, :, 2 * H:] = dn_pre  # the reset gate scales the hidden n block", "gru_backward",
       "the gradient of W_hn h + b_hn not scaled by the reset gate"),
    # -- embedding, temporal layers, loss
    _m("embedding_time_major_lookup", "rnn_layers", "out = W[x]  # (N, T, D)",
       "out = W[x.T].reshape(x.shape + W.shape[1:])  # (N, T, D)", "word_embedding_forward",
       "looks up x.T and reshapes: the sequences get mixed up"),
    _m("embedding_backward_overwrites_duplicates", "rnn_layers", "np.add.at(dW, x, dout)", "dW[x] += dout",
       "word_embedding_backward", "buffered += : a repeated index keeps one row of dout instead of their sum"),
    _m("temporal_affine_no_bias", "rnn_layers", "out = x @ w + b  # (N, T, M)", "out = x @ w  # (N, T, M)",
       "temporal_affine_forward", "forgets the bias"),
    _m("temporal_affine_db_mean_over_time", "rnn_layers", "db = dout.sum(axis=(0, 1))  # (M,)",
       "db = dout.sum(axis=0).mean(axis=0)  # (M,)", "temporal_affine_backward", "db averaged over time"),
    _m("temporal_softmax_mask_ignored", "rnn_layers", _SOFTMAX_TAIL,
       _SOFTMAX_TAIL.replace("picked * mask", "picked").replace("mask[..., None] / N", "1 / N"),
       "temporal_softmax_loss", "mask ignored in the loss and the gradient"),
    _m("temporal_softmax_divided_by_NT", "rnn_layers", _SOFTMAX_TAIL, _SOFTMAX_TAIL.replace("/ N", "/ (N * T)"),
       "temporal_softmax_loss", "mean over N * T instead of CS231n's sum over time / N"),
    # -- text
    _m("vocab_not_nfc", "char_lm", 'chars = sorted(set(unicodedata.normalize("NFC", text)))',
       "chars = sorted(set(text))", "build_vocab", "vocabulary of the raw text: NFD gives letters + marks"),
    _m("encode_not_nfc", "char_lm", 'for ch in unicodedata.normalize("NFC", text)], dtype=np.int64)',
       "for ch in text], dtype=np.int64)", "encode", "text not normalised before the lookup"),
    _m("decode_not_nfc", "char_lm", 'text = unicodedata.normalize("NFC", "".join(chars[int(i)] for i in ids))',
       'text = "".join(chars[int(i)] for i in ids)', "decode", "a letter + combining mark stays decomposed"),
    _m("split_uses_global_rng", "char_lm", "is_val[rng.permutation(len(lines))[:n_val]] = True",
       "is_val[np.random.permutation(len(lines))[:n_val]] = True", "split_lines",
       "global, unseeded RNG: the split changes from call to call"),
    # -- the language model and its training
    _m("lm_cell_state_not_returned", "char_lm", "final_state = (h[:, -1].copy(), cache_lstm.c[:, -1].copy())",
       "final_state = (h[:, -1].copy(), c0)", "CharLSTM", "returns the initial cell state: only h is carried"),
    _m("lm_c0_ignored", "char_lm", 'h, cache_lstm = lstm_forward(emb, h0, p["Wx"], p["Wh"], p["b"], c0)',
       'h, cache_lstm = lstm_forward(emb, h0, p["Wx"], p["Wh"], p["b"])', "CharLSTM",
       "the incoming cell state is ignored (every chunk starts with c = 0)"),
    _m("tbptt_not_truncated", "char_lm",
       "            x = rows[:, s:s + y.shape[1]]  # teacher forcing: the true previous characters\n"
       "            loss, grads, state = model.loss(x, y, state)  # the state is carried, never differentiated "
       "through\n",
       "            x = rows[:, max(0, s - seq_len):s + y.shape[1]]  # this chunk and the one before it\n"
       "            loss, grads, state = model.loss(x, rows[:, max(0, s - seq_len) + 1:s + y.shape[1] + 1], None)\n",
       "train", "truncation not at the chunk boundary: each step backpropagates through the previous chunk too"),
    _m("tbptt_state_not_carried", "char_lm", "loss, grads, state = model.loss(x, y, state)  # the state is carried",
       "loss, grads, _ = model.loss(x, y, None)  # the state is carried", "train",
       "every chunk starts from the zero state"),
    _m("teacher_forcing_targets_not_shifted", "char_lm",
       "            x = rows[:, s:s + y.shape[1]]  # teacher forcing: the true previous characters\n",
       "            x = y  # teacher forcing: the true previous characters\n", "train",
       "inputs equal the targets: the model learns to copy its input"),
    _m("bpc_in_nats", "char_lm", "bpc = nats / count / math.log(2)", "bpc = nats / count", "bits_per_char",
       "reports nats per character, not bits"),
    _m("sample_temperature_after_softmax", "char_lm",
       "        logits = scores[0, -1].astype(np.float64) / temperature  # temperature first, then the softmax\n"
       "        probs = np.exp(logits - logits.max())\n"
       "        probs /= probs.sum()\n",
       "        logits = scores[0, -1].astype(np.float64)\n"
       "        probs = np.exp(logits - logits.max())\n"
       "        probs /= probs.sum()\n"
       "        probs = probs / temperature  # temperature after the softmax: renormalising cancels it\n"
       "        probs /= probs.sum()\n", "sample", "temperature applied after the softmax (it has no effect)"),
    _m("norms_plot_linear_scale", "char_lm",
       "    ax.set_yscale(\"log\")  # vanishing gradients shrink geometrically: a straight line on a log scale\n", "",
       "plot_gradient_norms", "linear y axis: the vanishing RNN curve is a flat line at zero"),
    _m("norms_plot_steps_from_zero", "char_lm", "ax.plot(np.arange(1, len(values) + 1), values, label=name)",
       "ax.plot(values, label=name)", "plot_gradient_norms", "x from 0 instead of the time steps 1..T"),
    # -- PyTorch
    _m("torch_gates_not_reordered", "torch_rnn",
       '                self.rnn.weight_ih_l0.copy_(p["Wx"][:, perm].T)\n'
       '                self.rnn.weight_hh_l0.copy_(p["Wh"][:, perm].T)\n'
       '                self.rnn.bias_ih_l0.copy_(p["b"][perm])\n',
       '                self.rnn.weight_ih_l0.copy_(p["Wx"].T)\n'
       '                self.rnn.weight_hh_l0.copy_(p["Wh"].T)\n'
       '                self.rnn.bias_ih_l0.copy_(p["b"])\n', "TorchCharLM",
       "NumPy i, f, o, g blocks copied into torch's i, f, g, o slots unmapped"),
    _m("torch_objective_mean", "torch_rnn", 'reduction="sum") / scores.shape[0]', 'reduction="mean")',
       "TorchCharLM", "mean over N * T (torch's default) instead of the sum over time / N"),
    _m("torch_gru_biases_swapped", "torch_rnn",
       '                self.rnn.bias_ih_l0.copy_(p["bx"])\n                self.rnn.bias_hh_l0.copy_(p["bh"])\n',
       '                self.rnn.bias_ih_l0.copy_(p["bh"])\n                self.rnn.bias_hh_l0.copy_(p["bx"])\n',
       "TorchCharLM", "GRU biases swapped: they differ because the reset gate scales b_hn"),
    _m("torch_state_not_detached", "torch_rnn",
       "            loss.backward()\n"
       "            state = _detach(state)  # truncation: the next chunk's graph starts here\n",
       "            loss.backward(retain_graph=True)  # keeps the graph so the next chunk can backprop into it\n",
       "train_torch", "state not detached between chunks: backward runs into the previous chunk"),
    _m("torch_state_reset_each_chunk", "torch_rnn", "            scores, state = model(x, state)\n",
       "            scores, state = model(x, None)\n", "train_torch", "every chunk starts from the zero state"),
)
