"""A character-level language model of Yorùbá text in NumPy: vocabulary, LSTM model, truncated backpropagation
through time, bits per character and sampling; and a figure of how far gradients reach back in time.

Text. Yorùbá marks tones (à, á) and has letters with a dot below (ẹ, ọ, ṣ). All text is handled in Unicode NFC.
A letter with one mark is then one precomposed code point, but a dotted vowel with a tone (ẹ́, ọ̀) has no
precomposed form, so NFC leaves a base letter followed by a combining mark (U+0301, U+0300). The vocabulary is the
set of NFC code points, so such a combining mark is a character of its own; decoding normalises to NFC again, so
a letter and a following mark become one precomposed character wherever Unicode has one.

Model contract (the course's CS231n contract, extended by the recurrent state): a model keeps its weights in
`params`, its vocabulary in `chars` (id -> character) and `index` (character -> id), and
`loss(x, y=None, state=None)` maps integer inputs x (N, T) and an initial state to
    (scores (N, T, C), final state)                 when y is None, and
    (loss, grads, final state)                       when y (N, T) holds the target ids,
where a state is an opaque tuple of (N, H) arrays ((h, c) for an LSTM; None means zeros) and grads has the keys
and shapes of params. The model keeps nothing between calls.

Truncated backpropagation through time. The initial state is an input like x: grads are the gradients of this
chunk's loss with respect to params only, with the initial state held constant. (lstm_backward's dh0 is computed
and dropped: it would flow into the previous chunk, and that is exactly what truncation cuts.) Carrying the state
from one chunk to the next is the trainer's job. So a grader can check both halves separately: every loss call
covers one chunk of at most seq_len steps and receives the final state of the previous call; and a chunk's
gradient equals that of a fresh call on the same chunk and state.

Shapes: N batch (parallel streams of text), T time (characters per chunk), D embedding size, H hidden, C vocabulary
size (the classes of the next-character prediction).
"""
from __future__ import annotations

import math
import unicodedata

import numpy as np
from matplotlib.figure import Figure  # a bare Figure needs no backend and leaves no global pyplot state

from rnn.rnn_layers import (lstm_backward, lstm_forward, rnn_backward, rnn_forward, temporal_affine_backward,
                            temporal_affine_forward, temporal_softmax_loss, word_embedding_backward,
                            word_embedding_forward)


def build_vocab(text):
    """The characters of a text, in Unicode NFC.

    Args:
        text: str, any normalisation form.
    Returns:
        chars: list of the distinct code points of NFC(text), sorted by code point (so the ids do not depend on
            the order of the text).
        index: dict character -> id, the inverse of chars.
    """
    ### BEGIN SOLUTION
    chars = sorted(set(unicodedata.normalize("NFC", text)))
    index = {ch: i for i, ch in enumerate(chars)}
    ### END SOLUTION
    return chars, index


def encode(text, index):
    """Ids (L,) int64 of the code points of NFC(text); a character outside the vocabulary raises KeyError."""
    ### BEGIN SOLUTION
    ids = np.array([index[ch] for ch in unicodedata.normalize("NFC", text)], dtype=np.int64)
    ### END SOLUTION
    return ids


def decode(ids, chars):
    """The NFC text of a sequence of ids (a base letter and a following combining mark compose where they can)."""
    ### BEGIN SOLUTION
    text = unicodedata.normalize("NFC", "".join(chars[int(i)] for i in ids))
    ### END SOLUTION
    return text


def split_lines(text, val_fraction=0.1, seed=0):
    """Split a text by lines into training and validation text, deterministically.

    Empty lines are dropped. round(val_fraction * number of lines) lines, chosen by
    np.random.default_rng(seed).permutation, go to validation and the others to training; both keep the original
    order of their lines, and every line ends with "\\n" (the model learns where lines end).

    Returns:
        train_text, val_text: str, str.
    """
    lines = [line for line in text.split("\n") if line]
    rng = np.random.default_rng(seed)
    ### BEGIN SOLUTION
    n_val = round(val_fraction * len(lines))
    is_val = np.zeros(len(lines), dtype=bool)
    is_val[rng.permutation(len(lines))[:n_val]] = True
    train_text = "".join(line + "\n" for line, v in zip(lines, is_val) if not v)
    val_text = "".join(line + "\n" for line, v in zip(lines, is_val) if v)
    ### END SOLUTION
    return train_text, val_text


def batchify(ids, batch_size):
    """Cut a stream of ids (L,) into batch_size rows of equal length (N, L // N), dropping the remainder. Provided.

    Row n holds the n-th consecutive piece of the stream, so chunk k + 1 of a row continues chunk k of that row and
    the state can be carried from one to the next.
    """
    n_cols = len(ids) // batch_size
    return np.asarray(ids[:batch_size * n_cols]).reshape(batch_size, n_cols)


class CharLSTM:
    """Embedding -> LSTM (lstm_forward) -> temporal affine -> temporal softmax loss, predicting the next character.

    params: W_embed (C, D), Wx (D, 4H), Wh (H, 4H), b (4H,) with gates packed i, f, o, g, W_out (H, C), b_out (C,).
    """

    def __init__(self, chars, wordvec_dim=32, hidden_dim=128, seed=None, dtype=np.float64):
        self.chars = list(chars)
        self.index = {ch: i for i, ch in enumerate(self.chars)}
        C, D, H = len(self.chars), wordvec_dim, hidden_dim
        rng = np.random.default_rng(seed)
        b = np.zeros(4 * H)
        b[H:2 * H] = 1.0  # forget-gate bias 1: the cell keeps its memory by default early in training
        params = {
            "W_embed": rng.standard_normal((C, D)),
            "Wx": rng.standard_normal((D, 4 * H)) / np.sqrt(D),
            "Wh": rng.standard_normal((H, 4 * H)) / np.sqrt(H),
            "b": b,
            "W_out": rng.standard_normal((H, C)) / np.sqrt(H),
            "b_out": np.zeros(C),
        }
        self.params = {k: v.astype(dtype) for k, v in params.items()}

    def loss(self, x, y=None, state=None):
        """Scores and final state, or loss, gradients and final state (see the module docstring for the contract).

        Args:
            x: (N, T) input ids.
            y: (N, T) target ids (x shifted by one character), or None.
            state: (h0, c0), each (N, H), or None for zeros; held constant (no gradient flows into it).
        Returns:
            y is None: scores (N, T, C), (hT, cT).
            otherwise: loss (temporal_softmax_loss: summed over time, averaged over N), grads (keys and shapes of
                params), (hT, cT), the state after the last step, to start the next chunk from.
        """
        p = self.params
        N, T = x.shape
        if state is None:
            H = p["Wh"].shape[0]
            state = (np.zeros((N, H), dtype=p["Wh"].dtype), np.zeros((N, H), dtype=p["Wh"].dtype))
        h0, c0 = state
        ### BEGIN SOLUTION
        emb, cache_emb = word_embedding_forward(x, p["W_embed"])  # (N, T, D)
        h, cache_lstm = lstm_forward(emb, h0, p["Wx"], p["Wh"], p["b"], c0)  # (N, T, H)
        scores, cache_out = temporal_affine_forward(h, p["W_out"], p["b_out"])  # (N, T, C)
        final_state = (h[:, -1].copy(), cache_lstm.c[:, -1].copy())  # copies: nothing ties them to the caches
        if y is None:
            return scores, final_state
        loss, dscores = temporal_softmax_loss(scores, y, np.ones(y.shape, dtype=bool))
        dh, dW_out, db_out = temporal_affine_backward(dscores, cache_out)
        demb, _dh0, dWx, dWh, db = lstm_backward(dh, cache_lstm)  # _dh0 is dropped: truncation at the chunk start
        dW_embed = word_embedding_backward(demb, cache_emb)
        grads = {"W_embed": dW_embed, "Wx": dWx, "Wh": dWh, "b": db, "W_out": dW_out, "b_out": db_out}
        ### END SOLUTION
        return loss, grads, final_state


def clip_gradients(grads, max_norm):
    """Scale all gradients in place by min(1, max_norm / (norm + 1e-6)), norm being their joint L2 norm, as
    torch.nn.utils.clip_grad_norm_. Provided. Returns the norm before clipping."""
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    coef = min(1.0, max_norm / (norm + 1e-6))
    for g in grads.values():
        g *= coef
    return norm


def adam_step(params, grads, opt_state, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of params in place, with torch.optim.Adam's formula. Provided.

    opt_state: a dict, empty before the first step, that keeps the step count and the moment estimates.
    """
    t = opt_state["t"] = opt_state.get("t", 0) + 1
    m, v = opt_state.setdefault("m", {}), opt_state.setdefault("v", {})
    step_size = learning_rate / (1 - beta1 ** t)
    root_bias2 = math.sqrt(1 - beta2 ** t)  # Python floats keep float32 params in float32
    for k, g in grads.items():
        m[k] = beta1 * m.get(k, 0) + (1 - beta1) * g
        v[k] = beta2 * v.get(k, 0) + (1 - beta2) * g * g
        params[k] -= step_size * m[k] / (np.sqrt(v[k]) / root_bias2 + eps)


def train(model, ids, seq_len=50, batch_size=32, epochs=2, learning_rate=3e-2, lr_decay=0.3, clip=5.0,
          val_ids=None):
    """Train a language model with truncated backpropagation through time, teacher forcing and Adam.

    The stream ids is cut into batch_size rows (batchify). Each epoch walks the rows in chunks of seq_len steps:
    chunk k has inputs x = rows[:, s:s + T] and targets y = rows[:, s + 1:s + T + 1] with s = k * seq_len (the last
    chunk may be shorter). Teacher forcing: the inputs are the true previous characters, never the model's own
    predictions. The state starts at None (zeros) each epoch; the final state of chunk k is the initial state of
    chunk k + 1, and gradients stop at the chunk boundary (model.loss treats its state as a constant). Each chunk
    is one step: model.loss, clip_gradients(grads, clip), adam_step (one opt_state for the whole run). After each
    epoch the learning rate is multiplied by lr_decay. The defaults are the course's calibrated settings.

    Args:
        model: a model with the contract of the module docstring.
        ids: (L,) training ids.  val_ids: (M,) validation ids or None.
    Returns:
        history: "loss", the training loss of every step in nats per character (loss / T); "val_bpc", the
            validation bits per character after each epoch (empty without val_ids).
    """
    rows = batchify(ids, batch_size)  # (N, L // N)
    opt_state = {}
    history = {"loss": [], "val_bpc": []}
    for _ in range(epochs):
        ### BEGIN SOLUTION
        state = None  # every epoch starts from the zero state
        for s in range(0, rows.shape[1] - 1, seq_len):
            y = rows[:, s + 1:s + seq_len + 1]
            x = rows[:, s:s + y.shape[1]]  # teacher forcing: the true previous characters
            loss, grads, state = model.loss(x, y, state)  # the state is carried, never differentiated through
            clip_gradients(grads, clip)
            adam_step(model.params, grads, opt_state, learning_rate)
            history["loss"].append(float(loss) / y.shape[1])
        learning_rate *= lr_decay
        ### END SOLUTION
        if val_ids is not None:
            history["val_bpc"].append(bits_per_char(model, val_ids))
    return history


def bits_per_char(model, ids, batch_size=16, seq_len=100):
    """Average number of bits the model needs per character of a text: cross-entropy in nats / ln 2.

    The ids are cut into batch_size rows (batchify), each read from the zero state, and every character of a row
    but the first is predicted from all the characters before it in the row (the state carried across chunks of
    seq_len, which only bound the memory).

    Args:
        model: a model with the contract of the module docstring.
        ids: (L,) ids.
    Returns:
        bpc: float, sum of -log2 p(next character) / number of predicted characters.
    """
    rows = batchify(ids, batch_size)
    ### BEGIN SOLUTION
    state, nats, count = None, 0.0, 0
    for s in range(0, rows.shape[1] - 1, seq_len):
        y = rows[:, s + 1:s + seq_len + 1]
        scores, state = model.loss(rows[:, s:s + y.shape[1]], None, state)
        loss, _ = temporal_softmax_loss(scores, y, np.ones(y.shape, dtype=bool))
        nats += float(loss) * y.shape[0]  # the loss is summed over time but averaged over the rows
        count += y.size
    bpc = nats / count / math.log(2)
    ### END SOLUTION
    return bpc


def sample(model, start, length, temperature=1.0, seed=0):
    """Generate text: read `start`, then draw `length` characters one at a time, each fed back as the next input.

    At each step the logits (the scores of the last step) are divided by the temperature BEFORE the softmax:
    temperature < 1 sharpens the distribution (near 0 it becomes argmax decoding), temperature > 1 flattens it.
    The next id is rng.choice(C, p=probs) with rng = np.random.default_rng(seed), the probabilities computed in
    float64, so a given seed always gives the same text.

    Args:
        model: a model with the contract of the module docstring.
        start: non-empty str whose characters are in model.index.
        length: number of characters (code points) to draw.
        temperature: float > 0.
    Returns:
        text: NFC string of start followed by the drawn characters (NFC may merge a drawn combining mark with the
            letter before it, so the string can be shorter than len(start) + length).
    """
    rng = np.random.default_rng(seed)
    ids = list(encode(start, model.index))
    if not ids:
        raise ValueError("sample needs a non-empty start string")
    ### BEGIN SOLUTION
    scores, state = model.loss(np.array([ids]), None, None)  # read the start; keep its final state
    for _ in range(length):
        logits = scores[0, -1].astype(np.float64) / temperature  # temperature first, then the softmax
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        next_id = int(rng.choice(len(probs), p=probs))
        ids.append(next_id)
        scores, state = model.loss(np.array([[next_id]]), None, state)
    ### END SOLUTION
    return decode(ids, model.chars)


def gradient_norms_through_time(cell, T=60, N=16, D=16, H=64, forget_bias=2.0, seed=0):
    """How far back a gradient reaches: ||dL/dx_t|| for every step t when the loss sees only the last step. Provided.

    Random inputs x (N, T, D) run through your rnn_forward or lstm_forward from h0 = 0, with weights drawn at the
    usual 1 / sqrt(fan_in) scale (the LSTM's forget-gate bias set to forget_bias); then the backward pass (your
    rnn_backward / lstm_backward) starts from a random gradient on the last hidden state only (dh[:, t] = 0 for
    t < T - 1). The norm of dx[:, t] says how much the loss at the end still depends on the input at step t.

    Args:
        cell: "rnn" or "lstm".
    Returns:
        norms: (T,) array, norms[t] = ||dx[:, t]|| over the batch and the features.
    """
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "lstm": 4}[cell]
    x = rng.standard_normal((N, T, D))
    Wx = rng.standard_normal((D, gates * H)) / np.sqrt(D)
    Wh = rng.standard_normal((H, gates * H)) / np.sqrt(H)
    b = np.zeros(gates * H)
    if cell == "lstm":
        b[H:2 * H] = forget_bias  # gates i, f, o, g: a larger forget bias keeps the cell state longer
    forward, backward = (rnn_forward, rnn_backward) if cell == "rnn" else (lstm_forward, lstm_backward)
    h, cache = forward(x, np.zeros((N, H)), Wx, Wh, b)
    dh = np.zeros_like(h)  # (N, T, H)
    dh[:, -1] = rng.standard_normal((N, H))  # the loss looks at the last step only
    dx = backward(dh, cache)[0]  # (N, T, D)
    return np.linalg.norm(dx, axis=(0, 2))


def plot_gradient_norms(norms, title="Gradient norm through time"):
    """One line per cell of gradient norm against time step, on a log-scale y axis.

    Args:
        norms: dict name -> (T,) array, e.g. {"rnn": ..., "lstm": ...} from gradient_norms_through_time.
        title: the axes title.
    Returns:
        fig: a matplotlib Figure with one axes: one line per entry of norms, x = time steps 1..T, y = its norms,
            labelled with its name (in the legend); x label, y label and title.
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ### BEGIN SOLUTION
    for name, values in norms.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_yscale("log")  # vanishing gradients shrink geometrically: a straight line on a log scale
    ax.set_xlabel("time step t (the loss is at the last step)")
    ax.set_ylabel("gradient norm ||dL/dx_t||")
    ax.set_title(title)
    ax.legend()
    ### END SOLUTION
    return fig
