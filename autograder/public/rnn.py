"""The checks of topic 4 (rnn), one per task, and its public suite (`dlcore check rnn`).

Expected values come from `ctx.oracle`: PyTorch in float64 here (never the reference solution), the reference in
the hidden suite (autograder/hidden/rnn.py), which runs the same checks on other sizes (T = 1, N = 1), per-student
inputs and the full training runs on the Yoruba text. The recurrent layers are compared with nn.RNN, nn.LSTM and
nn.GRU after a weight transplant (transposed weights; the LSTM's gate blocks i, f, o, g mapped to torch's i, f, g, o),
and every gradient also with directional numerical derivatives of the oracle's forward pass.

The language-model checks build their own data (vocabulary, ids, the train/validation split) from the course's
documented rules, so a bug in the student's text functions costs points only there. The grader computes the bits
per character of a trained model itself, from the scores the model returns for validation text.
"""
from __future__ import annotations

import functools
import math
import unicodedata

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from autograder.check_kit import fit, grad_parts, one_panel
from autograder.checks import CheckFailed, Checks, describe, forward_part, train_to_bar
from toolkit.parity import torch_pair, torch_reference

CHECKS = Checks("rnn")

_F64 = torch.float64
_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

# -- the oracle: PyTorch with the reference's contract ----------------------------------------------------------


def lstm_perm(h: int) -> np.ndarray:
    """Columns that turn the course's LSTM gate blocks i, f, o, g into torch's i, f, g, o (and back)."""
    return np.r_[0:2 * h, 3 * h:4 * h, 2 * h:3 * h]


@functools.lru_cache(maxsize=None)
def _module(cell: str, d: int, h: int) -> nn.Module:
    return _CELLS[cell](d, h, batch_first=True, dtype=_F64)  # its parameters are replaced in every call


def torch_recurrent(cell, x, h0, Wx, Wh, b=None, c0=None, bx=None, bh=None):
    """nn.RNN / nn.LSTM / nn.GRU on tensors in the course layout: (h (N, T, H), final state tuple of (N, H))."""
    d, h = Wx.shape[0], Wh.shape[0]
    if cell == "lstm":
        perm = torch.as_tensor(lstm_perm(h))
        params = {"weight_ih_l0": Wx[:, perm].T, "weight_hh_l0": Wh[:, perm].T, "bias_ih_l0": b[perm],
                  "bias_hh_l0": torch.zeros(4 * h, dtype=_F64)}  # one course bias: torch's two add up
        c0 = torch.zeros_like(h0) if c0 is None else c0
        state = (h0[None], c0[None])
    elif cell == "gru":  # the same gate order r, z, n and the same two biases
        params = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": bx, "bias_hh_l0": bh}
        state = h0[None]
    else:
        params = {"weight_ih_l0": Wx.T, "weight_hh_l0": Wh.T, "bias_ih_l0": b, "bias_hh_l0": torch.zeros(h, dtype=_F64)}
        state = h0[None]
    out, final = functional_call(_module(cell, d, h), params, (x, state))
    return out, tuple(s[0] for s in final) if cell == "lstm" else (final[0],)


def _step(cell):
    """One time step of a cell: the sequence module on T = 1."""
    def rnn(x, prev_h, Wx, Wh, b):
        return torch_recurrent("rnn", x[:, None], prev_h, Wx, Wh, b=b)[1][0]

    def lstm(x, prev_h, prev_c, Wx, Wh, b):
        return torch_recurrent("lstm", x[:, None], prev_h, Wx, Wh, b=b, c0=prev_c)[1]

    def gru(x, prev_h, Wx, Wh, bx, bh):
        return torch_recurrent("gru", x[:, None], prev_h, Wx, Wh, bx=bx, bh=bh)[1][0]
    return {"rnn": rnn, "lstm": lstm, "gru": gru}[cell]


def _sequence(cell):
    def rnn(x, h0, Wx, Wh, b):
        return torch_recurrent("rnn", x, h0, Wx, Wh, b=b)[0]

    def lstm(x, h0, Wx, Wh, b, c0=None):
        return torch_recurrent("lstm", x, h0, Wx, Wh, b=b, c0=c0)[0]

    def gru(x, h0, Wx, Wh, bx, bh):
        return torch_recurrent("gru", x, h0, Wx, Wh, bx=bx, bh=bh)[0]
    return {"rnn": rnn, "lstm": lstm, "gru": gru}[cell]


_STEP_GRADS = {"rnn": ("x", "prev_h", "Wx", "Wh", "b"), "lstm": ("x", "prev_h", "prev_c", "Wx", "Wh", "b"),
               "gru": ("x", "prev_h", "Wx", "Wh", "bx", "bh")}
_SEQ_GRADS = {"rnn": ("x", "h0", "Wx", "Wh", "b"), "lstm": ("x", "h0", "Wx", "Wh", "b"),
              "gru": ("x", "h0", "Wx", "Wh", "bx", "bh")}  # lstm_backward returns no dc0, as in CS231n


def _lm_scores(P: dict, cell: str, x, state):
    """Embedding -> recurrent cell -> affine on tensors P in the NumPy layout: (scores (N, T, C), final state)."""
    emb = F.embedding(torch.as_tensor(np.asarray(x), dtype=torch.long), P["W_embed"])  # (N, T, D)
    n, h = emb.shape[0], P["Wh"].shape[0]
    state = tuple(torch.zeros(n, h, dtype=_F64) for _ in range(2 if cell == "lstm" else 1)) if state is None \
        else tuple(torch.as_tensor(np.asarray(s, dtype=np.float64)) if isinstance(s, np.ndarray) else s
                   for s in state)
    if cell == "lstm":
        hs, final = torch_recurrent("lstm", emb, state[0], P["Wx"], P["Wh"], b=P["b"], c0=state[1])
    else:
        hs, final = torch_recurrent("gru", emb, state[0], P["Wx"], P["Wh"], bx=P["bx"], bh=P["bh"])
    return hs @ P["W_out"] + P["b_out"], final


def _lm_objective(scores, y):
    """temporal_softmax_loss with a full mask: cross-entropy summed over time, averaged over the batch."""
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), y.reshape(-1), reduction="sum") / scores.shape[0]


def torch_lm_loss(params, cell, x, y=None, state=None):
    """CharLSTM.loss's contract for a model with NumPy params (an LSTM, or a GRU with bx, bh), in float64."""
    P = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=y is not None) for k, v in params.items()}
    scores, final = _lm_scores(P, cell, x, state)
    final = tuple(s.detach().numpy().copy() for s in final)
    if y is None:
        return scores.detach().numpy(), final
    loss = _lm_objective(scores, y)
    loss.backward()
    return loss.item(), {k: v.grad.numpy().copy() for k, v in P.items()}, final


def torch_train_lm(params, ids, seq_len, batch_size, epochs, learning_rate, lr_decay, clip):
    """Truncated BPTT with teacher forcing, torch.optim.Adam, clip_grad_norm_ and the learning rate decayed after
    each epoch, on an LSTM model with NumPy params: (training loss per step in nats per character, final params)."""
    P = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in params.items()}
    cols = len(ids) // batch_size
    rows = np.asarray(ids[:batch_size * cols]).reshape(batch_size, cols)  # (N, L // N)
    opt = torch.optim.Adam(list(P.values()), lr=learning_rate)
    losses = []
    for _ in range(epochs):
        state = None
        for s in range(0, cols - 1, seq_len):
            y = rows[:, s + 1:s + seq_len + 1]
            scores, state = _lm_scores(P, "lstm", rows[:, s:s + y.shape[1]], state)
            loss = _lm_objective(scores, y)
            opt.zero_grad()
            loss.backward()
            state = tuple(t.detach() for t in state)  # the next chunk's graph starts here
            nn.utils.clip_grad_norm_(list(P.values()), clip)
            opt.step()
            losses.append(loss.item() / y.shape[1])
        for group in opt.param_groups:
            group["lr"] *= lr_decay
    return losses, {k: v.detach().numpy().copy() for k, v in P.items()}


def bits_from_scores(scores_of, ids, batch_size: int = 16, seq_len: int = 100) -> float:
    """Bits per character of a model whose `scores_of(x, state) -> (scores, state)` runs in chunks over `ids`:
    batch_size rows (char_lm.batchify), each from the zero state, every character but a row's first predicted.
    Student scores are validated here (CheckFailed names what came back); the log-softmax runs in float64."""
    cols = len(ids) // batch_size
    rows = np.asarray(ids[:batch_size * cols]).reshape(batch_size, cols)
    state, nats, count = None, 0.0, 0
    for s in range(0, cols - 1, seq_len):
        y = rows[:, s + 1:s + seq_len + 1]
        scores, state = scores_of(rows[:, s:s + y.shape[1]], state)
        if not (isinstance(scores, np.ndarray) and scores.dtype.kind == "f" and scores.ndim == 3
                and scores.shape[:2] == y.shape):
            raise CheckFailed(f"the scores are {describe(scores)}; expected a float array of shape "
                              f"({y.shape[0]}, {y.shape[1]}, C)")
        z = scores.astype(np.float64)
        z = z - z.max(axis=2, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(axis=2, keepdims=True))  # (N, T, C)
        nats -= float(np.take_along_axis(log_probs, y[..., None], axis=2).sum())
        count += y.size
    return nats / count / math.log(2)


def split_rule(text: str, val_fraction: float, seed: int) -> tuple[str, str]:
    """char_lm.split_lines's documented rule: non-empty lines, a seeded permutation's first round(f * n) lines go
    to validation, both parts in the original order, each line ending in a newline."""
    lines = [line for line in text.split("\n") if line]
    is_val = np.zeros(len(lines), dtype=bool)
    is_val[np.random.default_rng(seed).permutation(len(lines))[:round(val_fraction * len(lines))]] = True
    return ("".join(line + "\n" for line, v in zip(lines, is_val) if not v),
            "".join(line + "\n" for line, v in zip(lines, is_val) if v))


class TorchOracle:
    """Expected values from PyTorch (float64) with the contract of solutions/rnn."""

    rnn_step_forward, rnn_step_backward = map(staticmethod, torch_pair(_step("rnn"), _STEP_GRADS["rnn"]))
    lstm_step_forward, lstm_step_backward = map(staticmethod, torch_pair(_step("lstm"), _STEP_GRADS["lstm"]))
    gru_step_forward, gru_step_backward = map(staticmethod, torch_pair(_step("gru"), _STEP_GRADS["gru"]))
    rnn_forward, rnn_backward = map(staticmethod, torch_pair(_sequence("rnn"), _SEQ_GRADS["rnn"]))
    lstm_forward, lstm_backward = map(staticmethod, torch_pair(_sequence("lstm"), _SEQ_GRADS["lstm"]))
    gru_forward, gru_backward = map(staticmethod, torch_pair(_sequence("gru"), _SEQ_GRADS["gru"]))
    word_embedding_forward, word_embedding_backward = map(staticmethod, torch_pair(
        lambda x, W: F.embedding(x.detach().long(), W), ("W",)))
    temporal_affine_forward, temporal_affine_backward = map(staticmethod, torch_pair(lambda x, w, b: x @ w + b))
    lm_loss = staticmethod(torch_lm_loss)
    train_lm = staticmethod(torch_train_lm)
    plot_gradient_norms = None  # no picture of the expected figure in the public feedback

    def __init__(self, ctx):
        pass

    @staticmethod
    def lstm_final_c(cache) -> np.ndarray:
        """The final cell state (N, H) of lstm_forward's inputs (torch's c_n)."""
        t = {k: None if v is None else torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in cache.items()}
        return torch_recurrent("lstm", t["x"], t["h0"], t["Wx"], t["Wh"], b=t["b"], c0=t["c0"])[1][1].numpy()

    @staticmethod
    def temporal_softmax_loss(x, y, mask):
        def loss(x):
            nll = F.cross_entropy(x.reshape(-1, x.shape[-1]), torch.as_tensor(y.reshape(-1)), reduction="none")
            return (nll * torch.as_tensor(mask.reshape(-1), dtype=_F64)).sum() / x.shape[0]
        value, grads = torch_reference(loss, {"x": x}, 1.0)
        return float(value), grads["x"]

    @staticmethod
    def bits_per_char(params, ids, batch_size, seq_len):
        return bits_from_scores(lambda x, st: torch_lm_loss(params, "lstm", x, None, st), ids, batch_size, seq_len)

    @staticmethod
    def sample(params, chars, start, length, temperature, seed):
        """The documented procedure: temperature, then softmax in float64, then rng.choice; NFC text."""
        rng = np.random.default_rng(seed)
        index = {ch: i for i, ch in enumerate(chars)}
        ids = [index[ch] for ch in unicodedata.normalize("NFC", start)]
        scores, state = torch_lm_loss(params, "lstm", np.array([ids]))
        for _ in range(length):
            logits = scores[0, -1] / temperature
            probs = np.exp(logits - logits.max())
            ids.append(int(rng.choice(len(chars), p=probs / probs.sum())))
            scores, state = torch_lm_loss(params, "lstm", np.array([[ids[-1]]]), None, state)
        return unicodedata.normalize("NFC", "".join(chars[i] for i in ids))

    @staticmethod
    def build_vocab(text):
        chars = sorted(set(unicodedata.normalize("NFC", text)))
        return chars, {ch: i for i, ch in enumerate(chars)}

    @staticmethod
    def encode(text, index):
        return np.array([index[ch] for ch in unicodedata.normalize("NFC", text)], dtype=np.int64)

    @staticmethod
    def decode(ids, chars):
        return unicodedata.normalize("NFC", "".join(chars[int(i)] for i in ids))

    split_lines = staticmethod(split_rule)


# -- recurrent layers ---------------------------------------------------------------------------------------------


def _sizes(ctx) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(label, (N, T, D, H)): D != H always; the hidden suite adds the one-step, one-sequence case."""
    if not ctx.hidden:
        return [("N=3, T=4, D=5, H=6", (3, 4, 5, 6))]
    n = int(ctx.rng.integers(3, 5))
    return [(f"N={n}, T=6, D=3, H=5", (n, 6, 3, 5)), ("T = 1, N = 1 (D=4, H=3)", (1, 1, 4, 3))]


def _weights(ctx, cell: str, d: int, h: int) -> dict:
    g = {"rnn": 1, "lstm": 4, "gru": 3}[cell] * h
    w = {"Wx": ctx.rng.standard_normal((d, g)) / np.sqrt(d), "Wh": ctx.rng.standard_normal((h, g)) / np.sqrt(h)}
    if cell == "gru":  # two biases that are not interchangeable (the reset gate scales b_hn only)
        return dict(w, bx=0.5 * ctx.rng.standard_normal(g), bh=0.5 * ctx.rng.standard_normal(g))
    return dict(w, b=0.5 * ctx.rng.standard_normal(g))


def step_inputs(ctx, cell: str, n: int, d: int, h: int) -> dict:
    """The arguments of <cell>_step_forward, in order, with a nonzero previous state."""
    inp = {"x": ctx.rng.standard_normal((n, d)), "prev_h": 0.5 * ctx.rng.standard_normal((n, h))}
    if cell == "lstm":
        inp["prev_c"] = ctx.rng.standard_normal((n, h))
    w = _weights(ctx, cell, d, h)
    return dict(inp, Wx=w.pop("Wx"), Wh=w.pop("Wh"), **w)


def seq_inputs(ctx, cell: str, n: int, t: int, d: int, h: int, c0: bool = True) -> dict:
    """The arguments of <cell>_forward, in order: a nonzero h0 (the state carried in), and for the LSTM c0."""
    inp = {"x": ctx.rng.standard_normal((n, t, d)), "h0": 0.5 * ctx.rng.standard_normal((n, h))}
    w = _weights(ctx, cell, d, h)
    inp = dict(inp, Wx=w.pop("Wx"), Wh=w.pop("Wh"), **w)
    if cell == "lstm":
        inp["c0"] = ctx.rng.standard_normal((n, h)) if c0 else None
    return inp


_OUTS = ("output 1", "output 2")  # how a shape message names a layer's returned arrays


def _step_checks(cell: str):
    n_out = 2 if cell == "lstm" else 1

    @CHECKS.task(f"rnn.{cell}_step_forward")
    def _(ctx):
        for label, (n, _, d, h) in _sizes(ctx):
            inp = step_inputs(ctx, cell, n, d, h)
            want = getattr(ctx.oracle, f"{cell}_step_forward")(**inp)
            if n_out == 1:
                forward_part(ctx, f"{cell}_step_forward", inp, want[0], f"next_h ({label})")
                continue
            with ctx.part(f"next_h and next_c ({label})"):
                next_h, next_c, _ = ctx.call("lstm_step_forward", *inp.values(), keep=(2,),
                                             returns=("array", "array", "kept"))
                ctx.compare("next_h", next_h, want[0])
                ctx.compare("next_c", next_c, want[1])

    @CHECKS.task(f"rnn.{cell}_step_backward")
    def _(ctx):
        for i, (label, (n, _, d, h)) in enumerate(_sizes(ctx)):
            wrt = _STEP_GRADS[cell]
            grad_parts(ctx, f"{cell}_step_forward", f"{cell}_step_backward", step_inputs(ctx, cell, n, d, h), wrt,
                       outs=_OUTS[:n_out], groups=None if i == 0 else {f"all gradients ({label})": wrt})


def _sequence_checks(cell: str):
    @CHECKS.task(f"rnn.{cell}_forward")
    def _(ctx):
        for i, (label, (n, t, d, h)) in enumerate(_sizes(ctx)):
            inp = seq_inputs(ctx, cell, n, t, d, h)
            if cell != "lstm":
                forward_part(ctx, f"{cell}_forward", inp, getattr(ctx.oracle, f"{cell}_forward")(**inp)[0],
                             f"h from a nonzero h0 ({label})")
                continue
            for with_c0 in (False, True) if i == 0 else (True,):
                _lstm_forward_part(ctx, dict(inp, c0=inp["c0"] if with_c0 else None), label)

    @CHECKS.task(f"rnn.{cell}_backward")
    def _(ctx):
        for i, (label, (n, t, d, h)) in enumerate(_sizes(ctx)):
            wrt = _SEQ_GRADS[cell]
            grad_parts(ctx, f"{cell}_forward", f"{cell}_backward", seq_inputs(ctx, cell, n, t, d, h), wrt,
                       outs=_OUTS[:1], groups=None if i == 0 else {f"all gradients ({label})": wrt},
                       weight=1.0 if i == 0 else 2.0)


def _lstm_forward_part(ctx, inp: dict, label: str) -> None:
    """h, and the final cell state the cache carries (cache.c[:, -1], what truncated BPTT hands on)."""
    start = "(h0, c0)" if inp["c0"] is not None else "h0 and c0 = None (zeros)"
    with ctx.part(f"h and the cache's final cell state from {start} ({label})"):
        ref_h, ref_cache = ctx.oracle.lstm_forward(**inp)
        h, cache = ctx.call("lstm_forward", *inp.values(), keep=(1,), returns=("array", "kept"))
        ctx.compare("h", h, ref_h)
        c = ctx.attr(cache, "c", returns="array")  # the provided LSTMCache has the cell states as .c
        n, t, hid = ref_h.shape
        c = ctx.array("cache.c", c, (n, t, hid))
        ctx.compare("cache.c[:, -1] (the final cell state)", c[:, -1], ctx.oracle.lstm_final_c(ref_cache))


for _cell in ("rnn", "lstm", "gru"):
    _step_checks(_cell)
    _sequence_checks(_cell)


# -- embedding, temporal affine, temporal softmax loss ---------------------------------------------------------


def _embedding_inputs(ctx) -> dict:
    """Indices (N, T) with N != T and repeated indices (fewer vocabulary entries than positions)."""
    n, t, c, d = ctx.pick((2, 5, 4, 3), (3, 7, 5, 4))
    x = ctx.rng.integers(0, c, (n, t))
    x[0, :2] = x[-1, -1] = 1  # index 1 at least three times
    return {"x": x, "W": ctx.rng.standard_normal((c, d))}


@CHECKS.task("rnn.word_embedding_forward")
def _(ctx):
    inp = _embedding_inputs(ctx)
    forward_part(ctx, "word_embedding_forward", inp, ctx.oracle.word_embedding_forward(**inp)[0],
                 f"out[n, t] = W[x[n, t]] (N={inp['x'].shape[0]}, T={inp['x'].shape[1]})")


@CHECKS.task("rnn.word_embedding_backward")
def _(ctx):
    grad_parts(ctx, "word_embedding_forward", "word_embedding_backward", _embedding_inputs(ctx), ("W",),
               outs=_OUTS[:1], groups={"dW: the rows of repeated indices add up": ("W",)})


def _affine_inputs(ctx) -> dict:
    n, t, d, m = ctx.pick((2, 3, 4, 5), (3, 4, 5, 5))
    return {"x": ctx.rng.standard_normal((n, t, d)), "w": ctx.rng.standard_normal((d, m)),
            "b": ctx.rng.standard_normal(m)}


@CHECKS.task("rnn.temporal_affine_forward")
def _(ctx):
    inp = _affine_inputs(ctx)
    forward_part(ctx, "temporal_affine_forward", inp, ctx.oracle.temporal_affine_forward(**inp)[0], "out")


@CHECKS.task("rnn.temporal_affine_backward")
def _(ctx):
    grad_parts(ctx, "temporal_affine_forward", "temporal_affine_backward", _affine_inputs(ctx), ("x", "w", "b"),
               outs=_OUTS[:1])


@CHECKS.task("rnn.temporal_softmax_loss")
def _(ctx):
    n, t, c = ctx.pick((3, 4, 5), (4, 6, 7))
    x, y = ctx.rng.standard_normal((n, t, c)), ctx.rng.integers(0, c, (n, t))
    mask = ctx.rng.random((n, t)) < 0.6
    mask[0, -2:] = False  # padding at the end of a sequence
    mask[1, 0] = True
    cases = {"loss and dx with zeros in the mask": (x, mask),
             "a full mask": (x, np.ones((n, t), dtype=bool)),
             "scores of size 1e3 (stability)": (1000 * x, mask)}
    for label, (scores, m) in cases.items():
        with ctx.part(label):
            want_loss, want_dx = ctx.oracle.temporal_softmax_loss(scores, y, m)
            loss, dx = ctx.call("temporal_softmax_loss", scores, y, m, returns=("number", "array"))
            ctx.compare("loss", loss, want_loss, rtol=ctx.tol.accumulated_rtol if "1e3" in label else None)
            dx = ctx.array("dx", dx, scores.shape)
            ctx.compare_grad("dx", dx, want_dx)
            if not ctx.expect(not np.any(dx[~m]), "dx is not zero at masked steps: they must add nothing"):
                continue
            if "1e3" not in label:
                ctx.gradcheck(lambda x: ctx.oracle.temporal_softmax_loss(x, y, m)[0], {"x": scores}, {"x": dx}, 1.0)


# -- text: vocabulary, encoding, split ---------------------------------------------------------------------------

# Yoruba in both normal forms: NFC has one code point for à, é, ẹ, ọ, ṣ ...; ẹ́ and ọ̀ keep a combining mark.
_PHRASES = ("Ẹ kú àárọ̀, ọmọ mi!", "Ọjà Ọba ń kún fún èrò.", "Ilé-ìwé wa dára gan-an.", "Ṣé o ti jẹun?",
            "Ọ̀rẹ́ mi ń lọ sí Ìbàdàn.", "Àwọn ọmọdé ń ṣeré ní òde.")


def _mixed_text(ctx, k: int) -> str:
    """k phrases in random order, every other one in NFD (decomposed), so the normal form matters."""
    picked = [_PHRASES[i] for i in ctx.rng.permutation(len(_PHRASES))[:k]]
    return " ".join(unicodedata.normalize("NFD" if i % 2 else "NFC", p) for i, p in enumerate(picked))


def _text_value(ctx, name: str, got) -> str:
    if not isinstance(got, str):
        ctx.fail(f"{name} is {describe(got)}; expected a str")
    return got


@CHECKS.task("rnn.build_vocab")
def _(ctx):
    text = _mixed_text(ctx, ctx.pick(3, 5))
    want_chars, want_index = ctx.oracle.build_vocab(text)
    got = None
    with ctx.part("chars: the distinct code points of the NFC text, sorted"):
        got = ctx.call("build_vocab", text, returns=("list", "dict"))
        chars = [str(ch) for ch in got[0]]
        if chars != list(want_chars):
            extra = [ch for ch in chars if ch not in want_chars]
            if sorted(set(chars)) == list(want_chars):
                ctx.fail("chars holds the right characters, but not once each in code-point order (sorted(set(...)))")
            ctx.fail(f"chars has {len(chars)} entries, expected {len(want_chars)}: {[ascii(ch) for ch in extra[:5]]} "
                     f"should not be there, {[ascii(ch) for ch in want_chars if ch not in chars][:5]} are missing "
                     f"(normalise the text to NFC first)")
    with ctx.part("index: character -> id, the inverse of chars"):
        if got is None:
            got = ctx.call("build_vocab", text, returns=("list", "dict"))
        ctx.expect(got[1] == want_index, "index is not {character: position in chars} for the NFC characters")


@CHECKS.task("rnn.encode")
def _(ctx):
    text = _mixed_text(ctx, ctx.pick(3, 5))
    chars, index = ctx.oracle.build_vocab(text)
    for label, form in (("ids of an NFC text", "NFC"), ("an NFD text gives the ids of its NFC form", "NFD")):
        with ctx.part(label):
            s = unicodedata.normalize(form, text)
            ids = ctx.call("encode", s, index, returns="array")
            want = ctx.oracle.encode(s, index)
            if ids.dtype.kind not in "iu":
                ctx.fail(f"the ids are {ids.dtype}; expected integers (int64)")
            ctx.compare("ids", ids, want, rtol=0.0)


@CHECKS.task("rnn.decode")
def _(ctx):
    text = unicodedata.normalize("NFC", _mixed_text(ctx, ctx.pick(2, 4)))
    chars = sorted(set(text) | {"e", "\u0301", "\u0323"})  # plus e, a combining acute and a combining dot below
    index = {ch: i for i, ch in enumerate(chars)}
    e, acute, dot = index["e"], index["\u0301"], index["\u0323"]
    cases = {"the text of ids": ctx.oracle.encode(text, index),
             "NFC: e + U+0301 composes to é; e + U+0323 + U+0301 to ẹ́ (ẹ and a mark)":
                 np.array([e, acute, index[" "], e, dot, acute])}
    for label, ids in cases.items():
        with ctx.part(label):
            got = _text_value(ctx, "the text", ctx.call("decode", ids, chars))
            want = ctx.oracle.decode(ids, chars)
            ctx.expect(got == want, f"decoded {got!r} ({len(got)} code points), expected {want!r} ({len(want)}; "
                                    f"is it NFC?)")


@CHECKS.task("rnn.split_lines")
def _(ctx):
    lines = [_PHRASES[i] for i in ctx.rng.integers(0, len(_PHRASES), ctx.pick(12, 23))]
    lines = [f"{i + 1}. {line}" for i, line in enumerate(lines)]  # every line different
    text = "\n".join(lines[:4] + [""] + lines[4:]) + "\n\n"  # empty lines are dropped
    frac, seed = ctx.pick(0.25, 0.2), int(ctx.rng.integers(1 << 20))
    for label, s in (("the documented split for this seed", seed), ("another seed, its own split", seed + 1)):
        with ctx.part(label):
            got = ctx.call("split_lines", text, frac, s, returns=("any", "any"))
            train, val = (_text_value(ctx, name, v) for name, v in zip(("train_text", "val_text"), got))
            want = ctx.oracle.split_lines(text, frac, s)
            ctx.expect(train.count("\n") + val.count("\n") == len(lines),
                       f"train and validation have {train.count(chr(10)) + val.count(chr(10))} lines together; "
                       f"expected the {len(lines)} non-empty lines, each ending in a newline")
            ctx.expect((train, val) == want, f"the split differs from the documented one (np.random.default_rng"
                                             f"(seed).permutation picks the {want[1].count(chr(10))} validation "
                                             f"lines; both parts keep the original order)")
    with ctx.part("the same seed gives the same split"):
        a = ctx.call("split_lines", text, frac, seed, returns=("any", "any"))
        b = ctx.call("split_lines", text, frac, seed, returns=("any", "any"))
        ctx.expect(a == b, "two calls with the same seed gave different splits (use np.random.default_rng(seed))")


# -- the NumPy language model ----------------------------------------------------------------------------------

_LM_CHARS = ("\n", " ", ",", "a", "b", "d", "e", "i", "k", "o", "ọ", "ẹ", "ṣ", "\u0300", "\u0301")
_PARAM_KEYS = ("W_embed", "Wx", "Wh", "b", "W_out", "b_out")


def _lm_params(ctx, handle, c: int, d: int, h: int, module: str = "char_lm") -> dict:
    """The model's params, read from the worker and validated (keys and shapes of the documented layout)."""
    params = ctx.attr(handle, "params", module=module, returns={k: "array" for k in _PARAM_KEYS})
    shapes = {"W_embed": (c, d), "Wx": (d, 4 * h), "Wh": (h, 4 * h), "b": (4 * h,), "W_out": (h, c), "b_out": (c,)}
    return {k: ctx.array(f'params["{k}"]', params[k], shapes[k]) for k in _PARAM_KEYS}


def _char_lstm(ctx, c: int, d: int, h: int, seed: int, module: str = "char_lm"):
    handle = ctx.call("CharLSTM", list(_LM_CHARS[:c]), d, h, seed, module=module, keep=True)
    return handle, _lm_params(ctx, handle, c, d, h, module)


def once(make):
    """`make()` the first time it succeeds, then the same value: a model built inside the first part that needs it
    (student code runs only inside parts), and built again, failing again, in the next part if it failed."""
    made = []

    def get():
        if not made:
            made.append(make())
        return made[0]
    return get


def _state(ctx, value, n: int, h: int, k: int, what: str) -> tuple:
    """A returned recurrent state: a tuple of k float64 arrays (N, H)."""
    if not isinstance(value, tuple) or len(value) != k:
        ctx.fail(f"{what} is {describe(value)}; expected a tuple of {k} arrays of shape ({n}, {h})")
    return tuple(ctx.array(f"{what}[{i}]", v, (n, h)) for i, v in enumerate(value))


def lm_parts(ctx, make, cell: str, sizes: tuple[int, int, int, int], module: str,
             rtol: float | None = None) -> None:
    """Scores and final state from a nonzero state; loss, gradients and final state; the zero state (None).
    `make()` gives the student's model (kept in the worker) and its params as data."""
    n, t, c, h = sizes
    k = 2 if cell == "lstm" else 1
    x, y = ctx.rng.integers(0, c, (n, t)), ctx.rng.integers(0, c, (n, t))
    state = tuple(ctx.rng.standard_normal((n, h)) * s for s in (0.5, 1.0)[:k])
    with ctx.part(f"{cell}: scores and final state from a nonzero state"):
        model, params = make()
        scores, final = ctx.method(model, "loss", x, None, state, module=module, returns=("array", "any"))
        want_scores, want_final = ctx.oracle.lm_loss(params, cell, x, None, state)
        ctx.compare("scores", scores, want_scores, rtol)
        for name, got, want in zip(("h", "c"), _state(ctx, final, n, h, k, "the final state"), want_final):
            ctx.compare(f"final {name}", got, want, rtol)
    with ctx.part(f"{cell}: loss, gradients of every parameter and final state (the state held constant)", 2):
        model, params = make()
        loss, grads, final = ctx.method(model, "loss", x, y, state, module=module,
                                         returns=("number", {key: "array" for key in params}, "any"))
        want_loss, want_grads, want_final = ctx.oracle.lm_loss(params, cell, x, y, state)
        ctx.compare("loss", loss, want_loss, rtol)
        for key in params:
            ctx.compare_grad(f'grads["{key}"]', grads[key], want_grads[key], rtol)
        for name, got, want in zip(("h", "c"), _state(ctx, final, n, h, k, "the final state"), want_final):
            ctx.compare(f"final {name}", got, want, rtol)
    with ctx.part(f"{cell}: state None is the zero state"):
        model, params = make()
        loss, _, _ = ctx.method(model, "loss", x, y, None, module=module, returns=("number", "dict", "any"))
        ctx.compare("loss", loss, ctx.oracle.lm_loss(params, cell, x, y, None)[0], rtol)


@CHECKS.task("rnn.CharLSTM")
def _(ctx):
    n, t, c, d, h = ctx.pick((3, 5, 9, 4, 6), (4, 7, 12, 5, 7))
    seed = int(ctx.rng.integers(1 << 31))
    lm_parts(ctx, once(lambda: _char_lstm(ctx, c, d, h, seed)), "lstm", (n, t, c, h), "char_lm")


def trajectory_part(ctx, model, params: dict, train, settings: dict, module: str) -> None:
    """A part: `train(model, ids, **settings)` on a short stream follows truncated BPTT: its per-step losses and
    the trained model equal the oracle's (same start, same chunks, Adam, clipping and decay)."""
    c = params["W_embed"].shape[0]
    cols = 3 * settings["seq_len"] + 3  # three full chunks and a short last one (of 2 steps)
    ids = ctx.rng.integers(0, c, settings["batch_size"] * cols + 1)  # one id left over: batchify drops it
    want_losses, want_params = ctx.oracle.train_lm(params, ids, **settings)
    hist = train(model, ids)
    if not isinstance(hist, dict) or "loss" not in hist:
        ctx.fail(f"train returned {describe(hist)}; expected a history dict with a \"loss\" list")
    try:
        losses = np.asarray(hist["loss"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        ctx.fail(f'history["loss"] is {describe(hist["loss"])}; expected a list of numbers')
    steps = len(want_losses)
    if losses.size != steps:
        ctx.fail(f'history["loss"] has {losses.size} entries; expected one per step: {steps} ({settings["epochs"]} '
                 f"epochs of 4 chunks of at most seq_len = {settings['seq_len']} steps, the last one shorter)")
    want_losses = np.asarray(want_losses, dtype=np.float64)
    rtol = ctx.tol.accumulated_rtol
    bad = np.flatnonzero(~(np.abs(losses - want_losses) <= rtol * np.maximum(1.0, np.abs(want_losses))))  # NaN too
    if bad.size:
        k = int(bad[0])
        why = {0: "the first chunk already differs: check the chunks, the targets (y = x shifted by one: teacher "
                  "forcing) and that the loss is divided by T",
               1: "the second chunk differs: is the final state of chunk 1 carried into chunk 2?"}.get(
            k, "gradients or updates differ from truncated BPTT: each step must backpropagate through its own "
               "chunk only (from the carried, constant state), then clip, then one Adam step; the state restarts "
               "at zero every epoch and the learning rate decays after it")
        ctx.fail(f'history["loss"] differs from step {k + 1} on (got {losses[k]:.10g}, expected '
                 f"{want_losses[k]:.10g}): {why}")
    trained = module_params(ctx, model, module)
    for key, value in want_params.items():
        ctx.compare(f'trained params["{key}"]', trained[key], value, rtol=rtol)


def module_params(ctx, model, module: str) -> dict:
    """The model's params in the NumPy layout: CharLSTM's own dict, or TorchCharLM's weights mapped back."""
    if module == "char_lm":
        return {k: ctx.array(f'params["{k}"]', v) for k, v in
                ctx.attr(model, "params", module=module, returns={k: "array" for k in _PARAM_KEYS}).items()}
    layers = {name: ctx.attr(model, name, module=module, returns="kept") for name in ("embed", "rnn", "out")}

    def weight(layer, attr):
        return ctx.array(f"{layer}.{attr}", ctx.attr(layers[layer], attr, module=module, returns="array"))
    h = weight("rnn", "weight_hh_l0").shape[1]
    perm = lstm_perm(h)
    return {"W_embed": weight("embed", "weight"), "Wx": weight("rnn", "weight_ih_l0").T[:, perm],
            "Wh": weight("rnn", "weight_hh_l0").T[:, perm],
            "b": (weight("rnn", "bias_ih_l0") + weight("rnn", "bias_hh_l0"))[perm],
            "W_out": weight("out", "weight").T, "b_out": weight("out", "bias")}


def _lm_corpus(bar, texts: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The bar's data: the corpus's vocabulary, the first train_size training ids and test_size validation ids."""
    return _corpus(bar.dataset, tuple(texts.items()), bar.train_size, bar.test_size)


@functools.lru_cache(maxsize=4)
def _corpus(name: str, texts: tuple, train_size: int, test_size: int):
    text = "\n".join(t for _, t in texts)  # files joined by a newline, in file-name order
    chars = sorted(set(text))  # load_text normalised it to NFC
    index = {ch: i for i, ch in enumerate(chars)}
    train_text, val_text = split_rule(text, 0.1, 0)  # the course's fixed split
    ids = [np.array([index[ch] for ch in part], dtype=np.int64) for part in (train_text, val_text)]
    return chars, ids[0][:train_size], ids[1][:test_size]


def _train_and_score(ctx, module: str, model: str, trainer: str, **model_kw):
    """Train the student's model on the bar's Yoruba text in the worker; score its validation scores here."""
    def run(bar, texts):
        chars, train_ids, val_ids = _lm_corpus(bar, texts)
        handle = fit(ctx, bar, model, trainer, (train_ids,), module=module,
                     model_keys=("wordvec_dim", "hidden_dim", "dtype"),
                     model_kw=dict(chars=chars, seed=int(ctx.seed % 100_000), **model_kw))
        return bits_from_scores(lambda x, st: ctx.method(handle, "loss", x, None, st, module=module,
                                                         returns=("any", "any")), val_ids)
    return run


def _small_lm(ctx) -> tuple[int, int, int, dict]:
    """(C, D, H, settings) of the short training run that shows how training cuts and carries the state."""
    c, d, h = ctx.pick((8, 4, 6), (10, 5, 7))
    return c, d, h, dict(seq_len=ctx.pick(5, 6), batch_size=3, epochs=2, learning_rate=0.05, lr_decay=0.5, clip=1.0)


@CHECKS.task("rnn.train")
def _(ctx):
    with ctx.part("truncated BPTT: per-step losses and trained weights equal the oracle's (state carried, "
                  "gradient cut at each chunk, teacher forcing)"):
        c, d, h, settings = _small_lm(ctx)
        model, params = _char_lstm(ctx, c, d, h, int(ctx.rng.integers(1 << 31)))
        trajectory_part(ctx, model, params, lambda m, ids: ctx.call("train", m, ids, **settings), settings,
                        "char_lm")
    train_to_bar(ctx, "char_lstm", _train_and_score(ctx, "char_lm", "CharLSTM", "train"), weight=2)


@CHECKS.task("rnn.bits_per_char")
def _(ctx):
    c, d, h = ctx.pick((9, 4, 5), (12, 5, 6))
    make = once(lambda seed=int(ctx.rng.integers(1 << 31)): _char_lstm(ctx, c, d, h, seed))
    cases = {"3 rows, chunks of 4 (the state carried across chunks)": (3, 4, 3 * ctx.pick(11, 13) + 2),
             "the defaults' sizes (16 rows, chunks of 100)": (16, 100, 16 * 130 + 5)}
    for label, (rows, seq_len, size) in cases.items():
        with ctx.part(label):
            ids = ctx.rng.integers(0, c, size)  # the remainder after size // rows full columns is dropped
            model, params = make()
            want = ctx.oracle.bits_per_char(params, ids, rows, seq_len)
            got = ctx.call("bits_per_char", model, ids, rows, seq_len, returns="number")
            got = ctx.scalar("bpc", got)
            nats = abs(got - want * math.log(2)) < ctx.tol.formula_rtol
            hint = " (that is the value in nats: divide by ln 2)" if nats else ""
            ctx.expect(abs(got - want) <= ctx.tol.formula_rtol * max(1.0, want),
                       f"bits per character {got!r}, expected {want!r}{hint}")


@CHECKS.task("rnn.sample")
def _(ctx):
    c, d, h = ctx.pick((15, 6, 8), (15, 7, 9))
    make = once(lambda seed=int(ctx.rng.integers(1 << 31)): _char_lstm(ctx, c, d, h, seed))
    chars = list(_LM_CHARS[:c])
    start = ctx.pick("ọkọ", "ṣe o")
    length = ctx.pick(20, 30)
    seed = int(ctx.rng.integers(1 << 20))
    texts = {}
    for temperature in (1.0, 0.5, 1e-3):
        with ctx.part(f"temperature {temperature:g}: the seeded text (logits / temperature, then the softmax)"):
            model, params = make()
            want = ctx.oracle.sample(params, chars, start, length, temperature, seed)
            got = _text_value(ctx, "the sample", ctx.call("sample", model, start, length, temperature, seed))
            texts[temperature] = got
            ctx.expect(got == want, f"sampled {got!r}, expected {want!r} (seed {seed})")
    with ctx.part("an NFC string over the vocabulary, starting with the start text"):
        got = texts.get(1.0)
        if got is None:
            model, _ = make()
            got = _text_value(ctx, "the sample", ctx.call("sample", model, start, length, 1.0, seed))
        ctx.expect(unicodedata.is_normalized("NFC", got), "the sample is not in Unicode NFC: normalise the text")
        ctx.expect(set(unicodedata.normalize("NFD", got)) <= set(unicodedata.normalize("NFD", "".join(chars))),
                   "the sample has characters outside the vocabulary")
        ctx.expect(got.startswith(unicodedata.normalize("NFC", start)), f"the sample does not start with {start!r}")


# -- the figure ---------------------------------------------------------------------------------------------------


@CHECKS.task("rnn.plot_gradient_norms")
def _(ctx):
    t = ctx.pick(12, 20)
    steps_back = np.arange(t)[::-1]
    names = ctx.pick(("rnn", "lstm"), ("rnn", "lstm", "gru"))
    norms = {name: np.exp(-rate * steps_back + ctx.rng.normal(0, 0.1, t))
             for name, rate in zip(names, ctx.rng.uniform([0.5, 0.02, 0.1], [0.9, 0.1, 0.3])[:len(names)])}
    expected = ctx.oracle.plot_gradient_norms(norms) if ctx.oracle.plot_gradient_norms else None
    fig = ax = None
    with ctx.part("one line per cell: x = time steps 1..T, y = its norms", 2):
        fig = ctx.figure("plot_gradient_norms", ctx.call("plot_gradient_norms", norms), expected)
        ax = one_panel(ctx, fig)
        lines = [line for line in ax["lines"] if isinstance(line, dict)]
        if len(lines) != len(norms):
            ctx.fail(f"expected {len(norms)} lines (one per cell: {', '.join(norms)}), found {len(ax['lines'])}")
        for (name, values), line in zip(norms.items(), lines):
            ctx.compare(f"{name} line x data", line["x"], np.arange(1, t + 1), rtol=ctx.tol.exact_rtol)
            ctx.compare(f"{name} line y data", line["y"], values, rtol=ctx.tol.formula_rtol)
    with ctx.part("log-scale y axis"):
        if ax is None:
            ctx.fail("no figure")
        ctx.expect(ax["yscale"] == "log", f"the y axis is {ax['yscale']!r}, not 'log': a vanishing gradient shrinks "
                                          f"geometrically, a straight line on a log scale")
    with ctx.part("axis labels, a title and a legend naming each cell"):
        if ax is None:
            ctx.fail("no figure")
        ctx.expect(bool(ax["xlabel"].strip() and ax["ylabel"].strip()), "label both axes")
        ctx.expect(bool(ax["title"].strip()), "give the plot a title")
        ctx.expect([str(s) for s in ax["legend"]] == list(norms),
                   f"the legend reads {ax['legend']}; expected the names {list(norms)}, in order")


# -- PyTorch ------------------------------------------------------------------------------------------------------


def _gru_params(ctx, c: int, d: int, h: int) -> dict:
    return {"W_embed": ctx.rng.standard_normal((c, d)), "Wx": ctx.rng.standard_normal((d, 3 * h)) / np.sqrt(d),
            "Wh": ctx.rng.standard_normal((h, 3 * h)) / np.sqrt(h), "bx": 0.5 * ctx.rng.standard_normal(3 * h),
            "bh": 0.5 * ctx.rng.standard_normal(3 * h), "W_out": ctx.rng.standard_normal((h, c)) / np.sqrt(h),
            "b_out": 0.1 * ctx.rng.standard_normal(c)}


def _lstm_params(ctx, c: int, d: int, h: int) -> dict:
    b = 0.5 * ctx.rng.standard_normal(4 * h)
    b[h:2 * h] += 1.0  # the forget-gate bias of CharLSTM's initialisation, plus noise
    return {"W_embed": ctx.rng.standard_normal((c, d)), "Wx": ctx.rng.standard_normal((d, 4 * h)) / np.sqrt(d),
            "Wh": ctx.rng.standard_normal((h, 4 * h)) / np.sqrt(h), "b": b,
            "W_out": ctx.rng.standard_normal((h, c)) / np.sqrt(h), "b_out": 0.1 * ctx.rng.standard_normal(c)}


def _torch_lm(ctx, cell: str, params: dict, c: int, d: int, h: int):
    """The student's TorchCharLM in float64 with `params` transplanted by its load_numpy_params."""
    model = ctx.call("TorchCharLM", list(_LM_CHARS[:c]), d, h, cell, 0, "float64", keep=True)
    ctx.method(model, "load_numpy_params", params)
    return model


@CHECKS.task("rnn.TorchCharLM")
def _(ctx):
    n, t, c, d, h = ctx.pick((3, 5, 9, 4, 6), (4, 6, 11, 5, 7))
    for cell, draw in (("lstm", _lstm_params), ("gru", _gru_params)):
        params = draw(ctx, c, d, h)
        make = once(lambda cell=cell, params=params: (_torch_lm(ctx, cell, params, c, d, h), params))
        lm_parts(ctx, make, cell, (n, t, c, h), "torch_rnn", rtol=ctx.tol.parity_rtol)


@CHECKS.task("rnn.train_torch")
def _(ctx):
    with ctx.part("truncated BPTT in PyTorch: per-step losses and trained weights equal the oracle's (state "
                  "detached between chunks)"):
        c, d, h, settings = _small_lm(ctx)
        params = _lstm_params(ctx, c, d, h)
        model = _torch_lm(ctx, "lstm", params, c, d, h)
        trajectory_part(ctx, model, params, lambda m, ids: ctx.call("train_torch", m, ids, **settings), settings,
                        "torch_rnn")
    train_to_bar(ctx, "torch_lm", _train_and_score(ctx, "torch_rnn", "TorchCharLM", "train_torch", cell="lstm"))


SUITE = CHECKS.suite("public", TorchOracle)
