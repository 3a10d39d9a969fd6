"""Topic 4 of the course, rnn: its student modules, graded tasks and points, training bars and limits.

The fields are documented in course_config/schema.py.
"""
from __future__ import annotations

from course_config.schema import Limits, Task, Topic, TrainingBar


def _rnn(fn: str, points: float, module: str = "rnn_layers", **kw) -> Task:
    return Task.named("rnn", fn, points, module, **kw)


# The character-level LSTM language model of Yoruba text. The corpus is the files of yoruba/ joined by newlines
# (in file-name order); char_lm.split_lines(text, 0.1, seed=0) puts 10 % of its lines in validation, and the
# vocabulary is the corpus's 134 NFC code points. For this text bar, train_size is the number of training
# characters trained on (the first ones of the training split; here all 232,460) and test_size the number of
# validation characters scored (here all 23,896). The grader computes the bits per character itself, from the
# scores the trained model returns for the validation text (16 rows, each read from the zero state, the state
# carried across chunks of 100 characters), so the student's code never scores itself.
# Calibration by the reference through the grader (one thread, grading seeds 0-4): NumPy 2.563-2.580, PyTorch
# 2.536-2.608 bits per character (uniform guess: log2(134) = 7.07; after one epoch about 2.74), about 12 s CPU per
# run; the bar is the worst of the ten runs plus 0.09 (1.3 times their spread). The wall-clock budget leaves room
# for a loaded machine (runs took up to 80 s there). The public run is a smoke test: 40,000 characters, one epoch,
# H = 64 (about 1 s CPU in NumPy; the reference reaches 3.37-3.44 on 5,000 validation characters).
_YORUBA_LM = TrainingBar(
    model="char_lstm", task="rnn.train", metric="bits_per_char", higher_is_better=False, bar=2.70, dataset="yoruba",
    train_size=232_460, test_size=23_896, margin=0.07, time_budget_s=150.0,
    settings=dict(wordvec_dim=32, hidden_dim=128, seq_len=50, batch_size=32, epochs=2, learning_rate=3e-2,
                  lr_decay=0.3, clip=5.0, dtype="float32"),
    public=TrainingBar(model="char_lstm", task="rnn.train", metric="bits_per_char", higher_is_better=False, bar=3.6,
                       dataset="yoruba", train_size=40_000, test_size=5_000, time_budget_s=120.0,
                       settings=dict(wordvec_dim=32, hidden_dim=64, seq_len=50, batch_size=32, epochs=1,
                                     learning_rate=3e-2, lr_decay=0.3, clip=5.0, dtype="float32")))

# What the language model calls: the embedding, the LSTM over a sequence (which may loop over the step functions),
# the temporal affine layer and the temporal softmax loss.
_LM_LAYERS = ("word_embedding_forward", "word_embedding_backward", "lstm_step_forward", "lstm_step_backward",
              "lstm_forward", "lstm_backward", "temporal_affine_forward", "temporal_affine_backward",
              "temporal_softmax_loss")

TOPIC = Topic(
    slug="rnn",
    number=4,
    title="Recurrent networks: RNN, LSTM and GRU in NumPy, a Yoruba character language model, and PyTorch",
    modules=("rnn_layers", "char_lm", "torch_rnn"),
    notebook="rnn.ipynb",
    torch_modules=("torch_rnn",),
    datasets=("yoruba",),
    # one NumPy and one torch training run of about 12 s CPU each dominate (the wall-clock limits leave room for a
    # loaded machine); the NumPy worker needs well under its 1.5 GiB of address space
    limits=Limits(wall_s=300.0, memory_mb=1536),
    torch_limits=Limits(memory_mb=8192, wall_s=300.0, call_s=60.0, import_s=60.0, cpu_s=300),
    min_mutants=40,
    demo_mutants=("lstm_backward_forget_carry_missing", "temporal_softmax_mask_ignored", "tbptt_state_not_carried"),
    tasks=(
        _rnn("rnn_step_forward", 1, description="next_h = tanh(x Wx + prev_h Wh + b), as torch.nn.RNN"),
        _rnn("rnn_step_backward", 1, depends_on=("rnn_step_forward",), description="the five gradients of one step"),
        _rnn("rnn_forward", 1, depends_on=("rnn_step_forward",),
             description="the hidden state carried over T steps from h0 (T = 1 and N = 1 too)"),
        _rnn("rnn_backward", 2, depends_on=("rnn_forward", "rnn_step_backward"),
             description="backpropagation through time: dh accumulated across steps, dh0"),
        _rnn("lstm_step_forward", 1, description="gates i, f, o, g; next_c = f c + i g, next_h = o tanh(next_c)"),
        _rnn("lstm_step_backward", 1, depends_on=("lstm_step_forward",),
             description="the six gradients of one step, dprev_c through the forget gate"),
        _rnn("lstm_forward", 2, depends_on=("lstm_step_forward",),
             description="h over T steps from (h0, c0); the cache's final cell state equals torch's c_n"),
        _rnn("lstm_backward", 3, depends_on=("lstm_forward", "lstm_step_backward"),
             description="BPTT through h and c, dh0; equal to nn.LSTM with the gates reordered"),
        _rnn("gru_step_forward", 1, description="torch.nn.GRU's step: the reset gate scales W_hn h + b_hn"),
        _rnn("gru_step_backward", 1, depends_on=("gru_step_forward",), description="the six gradients of one step"),
        _rnn("gru_forward", 1, depends_on=("gru_step_forward",), description="the GRU over T steps, as nn.GRU"),
        _rnn("gru_backward", 2, depends_on=("gru_forward", "gru_step_backward"),
             description="BPTT through the GRU, dh0; equal to nn.GRU's gradients"),
        _rnn("word_embedding_forward", 1, description="out[n, t] = W[x[n, t]]"),
        _rnn("word_embedding_backward", 1, depends_on=("word_embedding_forward",),
             description="dW with repeated indices adding up"),
        _rnn("temporal_affine_forward", 1, description="the same affine layer at every time step"),
        _rnn("temporal_affine_backward", 1, depends_on=("temporal_affine_forward",),
             description="dx, dw, db summed over batch and time"),
        _rnn("temporal_softmax_loss", 2, description="masked cross-entropy summed over time, averaged over N; "
                                                    "stable for scores of size 1e3"),
        _rnn("build_vocab", 1, module="char_lm", description="sorted NFC code points and their ids"),
        _rnn("encode", 1, module="char_lm", description="ids of the NFC text, whatever its normalisation"),
        _rnn("decode", 1, module="char_lm", description="NFC text of ids: a letter and a combining mark compose"),
        _rnn("split_lines", 1, module="char_lm", description="seeded, reproducible train/validation split by lines"),
        _rnn("CharLSTM", 3, module="char_lm", depends_on=_LM_LAYERS,
             description="the language model's scores, final (h, c), loss and gradients from a given state"),
        _rnn("train", 3, module="char_lm", depends_on=("CharLSTM",),
             description="truncated BPTT with the state carried and teacher forcing; reaches the bits-per-"
                         "character bar on the Yoruba text"),
        _rnn("bits_per_char", 1, module="char_lm", depends_on=("CharLSTM", "temporal_softmax_loss"),
             description="cross-entropy of the next character in bits, state carried across chunks"),
        _rnn("sample", 2, module="char_lm", depends_on=("CharLSTM", "encode", "decode"),
             description="temperature before the softmax, seeded draws, an NFC string over the vocabulary"),
        _rnn("plot_gradient_norms", 2, module="char_lm", category="visualization",
             description="one line per cell of the gradient norm against time, log-scale y axis, labels, legend"),
        _rnn("TorchCharLM", 3, module="torch_rnn", category="comparative",
             description="the model in PyTorch (nn.LSTM, nn.GRU): transplanted NumPy weights give the same scores, "
                         "state, loss and gradients"),
        _rnn("train_torch", 2, module="torch_rnn", category="comparative", depends_on=("TorchCharLM",),
             description="the same truncated BPTT in PyTorch (state detached); reaches its own bar"),
        _rnn("written_explanation", 3, category="comparative", kind="manual",
             description="gating, truncation and teacher forcing, from your results (instructor graded)"),
    ),
    bars=(_YORUBA_LM, _YORUBA_LM.rerun("torch_lm", "rnn.train_torch")),
)
