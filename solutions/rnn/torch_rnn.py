"""The character language model again, in PyTorch: nn.Embedding -> nn.LSTM (or nn.GRU) -> nn.Linear, with the
same contract as char_lm.CharLSTM, and its own training loop.

`loss(x, y=None, state=None)` takes and returns NumPy arrays exactly like the NumPy model, so char_lm.sample and
char_lm.bits_per_char work on both, and both can be compared on the same weights: `load_numpy_params` copies NumPy
params in (gate order and layout mapped) and the gradients come back in the NumPy layout. Inside `train_torch`
everything stays in tensors, and the recurrent state is detached between chunks: that is where PyTorch cuts
backpropagation through time. The module imports nothing from the NumPy modules: it is graded on its own, so a
bug in your NumPy code never costs points here.

Layouts. NumPy LSTM: Wx (D, 4H), Wh (H, 4H), one bias b (4H,), gates i, f, o, g. nn.LSTM: weight_ih_l0 (4H, D),
weight_hh_l0 (4H, H), bias_ih_l0 and bias_hh_l0 (4H,), gates i, f, g, o; only the sum of its two biases matters,
so bias_hh_l0 is kept at zero and frozen, and bias_ih_l0 plays b. NumPy GRU (rnn_layers.gru_*): Wx (D, 3H),
Wh (H, 3H), bx, bh (3H,), gates r, z, n, the same order as nn.GRU, whose two biases are both needed.
Shapes: N batch, T time, D embedding size, H hidden, C vocabulary size.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def lstm_init_params(C, D, H, seed=None):
    """Initial NumPy params of an LSTM language model: the very numbers char_lm.CharLSTM(chars, D, H, seed) starts
    from (same draws in the same order), so the NumPy and the PyTorch model can start from the same point. Provided.

    Returns:
        dict: W_embed (C, D), Wx (D, 4H), Wh (H, 4H), b (4H,) with forget-gate bias 1, W_out (H, C), b_out (C,).
    """
    rng = np.random.default_rng(seed)
    b = np.zeros(4 * H)
    b[H:2 * H] = 1.0
    return {"W_embed": rng.standard_normal((C, D)), "Wx": rng.standard_normal((D, 4 * H)) / np.sqrt(D),
            "Wh": rng.standard_normal((H, 4 * H)) / np.sqrt(H), "b": b,
            "W_out": rng.standard_normal((H, C)) / np.sqrt(H), "b_out": np.zeros(C)}


def gru_init_params(C, D, H, seed=None):
    """Initial NumPy params of a GRU language model, drawn like lstm_init_params. Provided.

    Returns:
        dict: W_embed (C, D), Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,), W_out (H, C), b_out (C,).
    """
    rng = np.random.default_rng(seed)
    return {"W_embed": rng.standard_normal((C, D)), "Wx": rng.standard_normal((D, 3 * H)) / np.sqrt(D),
            "Wh": rng.standard_normal((H, 3 * H)) / np.sqrt(H), "bx": np.zeros(3 * H), "bh": np.zeros(3 * H),
            "W_out": rng.standard_normal((H, C)) / np.sqrt(H), "b_out": np.zeros(C)}


def _lstm_perm(H):
    """Column order that turns the NumPy gate blocks i, f, o, g into torch's i, f, g, o (and back: a swap of the
    last two blocks is its own inverse)."""
    return np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]


class TorchCharLM(nn.Module):
    """Character language model with nn.LSTM (cell="lstm") or nn.GRU (cell="gru").

    For the same chars, sizes and seed, the LSTM version starts from exactly the weights of
    CharLSTM(chars, wordvec_dim, hidden_dim, seed) (lstm_init_params), the GRU version from gru_init_params.
    """

    def __init__(self, chars, wordvec_dim=32, hidden_dim=128, cell="lstm", seed=None, dtype="float32"):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f'cell must be "lstm" or "gru", got {cell!r}')
        self.chars = list(chars)
        self.index = {ch: i for i, ch in enumerate(self.chars)}
        self.cell = cell
        self.dtype = getattr(torch, dtype)
        C, D, H = len(self.chars), wordvec_dim, hidden_dim
        self.embed = nn.Embedding(C, D, dtype=self.dtype)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(D, H, batch_first=True, dtype=self.dtype)
        self.out = nn.Linear(H, C, dtype=self.dtype)
        if cell == "lstm":
            self.rnn.bias_hh_l0.requires_grad_(False)  # redundant with bias_ih_l0 (see the module docstring)
            self.load_numpy_params(lstm_init_params(C, D, H, seed))
        else:
            self.load_numpy_params(gru_init_params(C, D, H, seed))

    def forward(self, x, state=None):
        """x: (N, T) long tensor; state: torch's recurrent state or None -> scores (N, T, C), final state."""
        ### BEGIN SOLUTION
        h, state = self.rnn(self.embed(x), state)  # (N, T, H)
        return self.out(h), state
        ### END SOLUTION

    def objective(self, scores, y):
        """Cross-entropy summed over time and averaged over the batch (temporal_softmax_loss with a full mask).

        scores: (N, T, C) tensor; y: (N, T) long tensor of targets.
        """
        ### BEGIN SOLUTION
        C = scores.shape[-1]
        return nn.functional.cross_entropy(scores.reshape(-1, C), y.reshape(-1), reduction="sum") / scores.shape[0]
        ### END SOLUTION

    def load_numpy_params(self, params):
        """Copy NumPy params (CharLSTM's for an LSTM, gru_init_params' layout for a GRU) into the torch layers."""
        with torch.no_grad():
            ### BEGIN SOLUTION
            p = {k: torch.as_tensor(np.asarray(v), dtype=self.dtype) for k, v in params.items()}
            self.embed.weight.copy_(p["W_embed"])
            self.out.weight.copy_(p["W_out"].T)  # nn.Linear stores (out, in)
            self.out.bias.copy_(p["b_out"])
            if self.cell == "lstm":
                perm = torch.as_tensor(_lstm_perm(self.rnn.hidden_size))
                self.rnn.weight_ih_l0.copy_(p["Wx"][:, perm].T)
                self.rnn.weight_hh_l0.copy_(p["Wh"][:, perm].T)
                self.rnn.bias_ih_l0.copy_(p["b"][perm])
                self.rnn.bias_hh_l0.zero_()
            else:  # nn.GRU has the NumPy gate order r, z, n
                self.rnn.weight_ih_l0.copy_(p["Wx"].T)
                self.rnn.weight_hh_l0.copy_(p["Wh"].T)
                self.rnn.bias_ih_l0.copy_(p["bx"])
                self.rnn.bias_hh_l0.copy_(p["bh"])
            ### END SOLUTION

    def numpy_grads(self):
        """The gradients after a backward pass, in the NumPy layout and keys of load_numpy_params."""
        ### BEGIN SOLUTION
        def g(param):
            return param.grad.detach().numpy().copy()
        grads = {"W_embed": g(self.embed.weight), "W_out": g(self.out.weight).T, "b_out": g(self.out.bias)}
        if self.cell == "lstm":
            perm = _lstm_perm(self.rnn.hidden_size)
            grads.update(Wx=g(self.rnn.weight_ih_l0).T[:, perm], Wh=g(self.rnn.weight_hh_l0).T[:, perm],
                         b=g(self.rnn.bias_ih_l0)[perm])
        else:
            grads.update(Wx=g(self.rnn.weight_ih_l0).T, Wh=g(self.rnn.weight_hh_l0).T,
                         bx=g(self.rnn.bias_ih_l0), bh=g(self.rnn.bias_hh_l0))
        ### END SOLUTION
        return grads

    def _state_to_torch(self, state):
        """NumPy state tuple ((h, c) for an LSTM, (h,) for a GRU; each (N, H)) -> torch's ((1, N, H) tensors)."""
        if state is None:
            return None
        t = [torch.as_tensor(np.asarray(s), dtype=self.dtype)[None] for s in state]
        return tuple(t) if self.cell == "lstm" else t[0]

    def _state_to_numpy(self, state):
        """torch's state -> NumPy state tuple of (N, H) arrays."""
        parts = state if self.cell == "lstm" else (state,)
        return tuple(s[0].detach().numpy().copy() for s in parts)

    def loss(self, x, y=None, state=None):
        """NumPy in, NumPy out, with the contract of char_lm: (scores, state) if y is None, else
        (loss, grads, state); grads in the NumPy layout; the state is held constant."""
        xt = torch.as_tensor(np.asarray(x), dtype=torch.long)
        st = self._state_to_torch(state)
        if y is None:
            with torch.no_grad():
                scores, st = self(xt, st)
            return scores.numpy(), self._state_to_numpy(st)
        ### BEGIN SOLUTION
        self.zero_grad()
        scores, st = self.forward(xt, st)  # with the graph this time
        loss = self.objective(scores, torch.as_tensor(np.asarray(y), dtype=torch.long))
        loss.backward()
        grads = self.numpy_grads()
        ### END SOLUTION
        return loss.item(), grads, self._state_to_numpy(st)


def _detach(state):
    """The recurrent state cut from the graph: a tensor, or a tuple of tensors for an LSTM. Provided."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def train_torch(model, ids, seq_len=50, batch_size=32, epochs=2, learning_rate=3e-2, lr_decay=0.3, clip=5.0):
    """char_lm.train in PyTorch: the same chunks in the same order, teacher forcing, state carried and detached
    between chunks, torch.nn.utils.clip_grad_norm_ and torch.optim.Adam over the trainable parameters,
    ExponentialLR(lr_decay) after each epoch.

    Returns:
        history: "loss" per step in nats per character (char_lm.bits_per_char scores the trained model).
    """
    n_cols = len(ids) // batch_size  # the rows of char_lm.batchify: row n continues in chunk k + 1
    rows = torch.as_tensor(np.asarray(ids[:batch_size * n_cols]).reshape(batch_size, n_cols), dtype=torch.long)
    params = [p for p in model.parameters() if p.requires_grad]
    history = {"loss": []}
    ### BEGIN SOLUTION
    opt = torch.optim.Adam(params, lr=learning_rate)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay)
    ### END SOLUTION
    for _ in range(epochs):
        ### BEGIN SOLUTION
        state = None  # every epoch starts from the zero state
        for s in range(0, rows.shape[1] - 1, seq_len):
            y = rows[:, s + 1:s + seq_len + 1]
            x = rows[:, s:s + y.shape[1]]  # teacher forcing
            scores, state = model(x, state)
            loss = model.objective(scores, y)
            opt.zero_grad()
            loss.backward()
            state = _detach(state)  # truncation: the next chunk's graph starts here
            nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            history["loss"].append(loss.item() / y.shape[1])
        sched.step()
        ### END SOLUTION
    return history
