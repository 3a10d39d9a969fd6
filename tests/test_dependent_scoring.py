"""Fair scoring of dependent tasks: a task is also graded with the functions it calls replaced by the reference,
which runs in the trusted process (called back from the sandbox); the configuration chooses which score counts."""
from __future__ import annotations

import importlib

import pytest

import course_config
from autograder.mutants import apply
from autograder.runner import Session, replaceable_dependencies
from conftest import SOLUTIONS, by_task, grade

FF = course_config.topic("feedforward")
MUTANTS = {m.name: m for m in importlib.import_module("autograder.hidden.feedforward").MUTANTS}


@pytest.fixture(scope="session")
def wrong_layer(tmp_path_factory):
    """A student whose affine_backward returns dW transposed, and whose TwoLayerNet is correct."""
    return apply(MUTANTS["affine_dw_transposed"], "feedforward", SOLUTIONS, tmp_path_factory.mktemp("dw"))


@pytest.mark.parametrize("mode", ["end_to_end", "isolated"])
def test_a_wrong_layer_costs_the_composition_only_end_to_end(wrong_layer, monkeypatch, mode):
    monkeypatch.setattr(course_config, "DEPENDENT_SCORING", mode)
    res = by_task(grade(wrong_layer, tasks=["feedforward.affine_backward", "feedforward.TwoLayerNet"]))
    layer, net = res["feedforward.affine_backward"], res["feedforward.TwoLayerNet"]
    assert layer.points < layer.max_points  # the layer's own check charges the bug in both modes
    assert net.end_to_end_points < net.max_points  # with the student's own layer the net's gradients are wrong
    assert net.isolated_points == net.max_points  # a correct composition over a wrong layer: full credit
    assert "Isolated score, with the reference in place of layers.affine_forward" in net.message
    assert net.points == (net.isolated_points if mode == "isolated" else net.end_to_end_points)


def test_a_bug_in_the_composition_itself_still_costs_points_isolated(tmp_path, monkeypatch):
    monkeypatch.setattr(course_config, "DEPENDENT_SCORING", "isolated")
    folder = apply(MUTANTS["net_reg_missing_in_grad"], "feedforward", SOLUTIONS, tmp_path)
    net = by_task(grade(folder, tasks=["feedforward.TwoLayerNet"]))["feedforward.TwoLayerNet"]
    assert net.isolated_points is not None and net.isolated_points < net.max_points
    assert net.points == net.isolated_points


def test_only_plain_functions_are_replaced():
    deps = replaceable_dependencies(FF.task("feedforward.train"))
    assert "feedforward.layers.affine_forward" in deps and "feedforward.layers.softmax_loss" in deps
    assert not any(d.endswith("TwoLayerNet") for d in deps)  # a class keeps the student's code


def test_the_reference_never_enters_the_sandbox(tmp_path):
    """A replaced function is a proxy: the student's code can call it and even print its source, but that source is
    the worker's proxy, and only the reference's results cross back, as plain data."""
    import numpy as np

    folder = apply(MUTANTS["affine_dw_transposed"], "feedforward", SOLUTIONS, tmp_path)
    with open(folder / "layers.py", "a") as f:
        f.write("\n\ndef probe_source(name):\n    import inspect\n    return inspect.getsource(globals()[name])\n")
    session = Session(FF, folder, patch=replaceable_dependencies(FF.task("feedforward.TwoLayerNet")))
    try:
        x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
        out, cache = session.call("layers", "affine_forward", x, w, b)
        assert np.allclose(out, 3.0)
        dx, dw, db = session.call("layers", "affine_backward", np.ones((2, 4)), cache)
        assert np.allclose(dw, x.T @ np.ones((2, 4)))  # the reference's (correct) dW, not the student's transpose
        source = session.call("layers", "probe_source", "affine_backward")
    finally:
        session.close()
    assert "the grader runs the reference" in source
    assert "dw = x.reshape(x.shape[0], -1).T @ dout" in (SOLUTIONS / "feedforward" / "layers.py").read_text()
    assert "x.reshape(x.shape[0], -1).T @ dout" not in source


def test_a_training_loop_given_the_students_model_keeps_the_students_code(tmp_path):
    """cnn.train depends on topic 1's `train`, which the grader calls with the student's model: a live object in
    the sandbox, which the reference cannot use. That call runs the student's loop (and the session records it),
    while the layers the loop reaches through the model are still the reference: with a wrong db in the student's
    conv_backward_fast, the isolated training gives exactly the reference's weights and history, not a 0."""
    import numpy as np

    from autograder.runner import reference

    cnn = course_config.topic("cnn")
    cnn_mutants = {m.name: m for m in importlib.import_module("autograder.hidden.cnn").MUTANTS}
    folder = apply(cnn_mutants["conv_fast_db_not_summed_over_positions"], "cnn", SOLUTIONS, tmp_path)
    patch = replaceable_dependencies(cnn.task("cnn.train"))
    assert "feedforward.net.train" in patch and "cnn.layers.conv_backward_fast" in patch
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((24, 3, 8, 8)), rng.integers(0, 10, 24)
    args = ((3, 8, 8), (4, 4), 3, 10, "he", 1e-2, 0.0, 0)
    train_args = (X, y, X[:6], y[:6], 0.05, 2, 8, 0.9, 3)
    session = Session(cnn, folder, patch=patch)
    try:
        model = session.call("net", "TinyCNN", *args, keep=True)
        history = session.call("net", "train", model, *train_args)
        params = session.getattr("net", model, "params")
    finally:
        session.close()
    assert session.unreplaced == {"feedforward.net.train"}
    ref_net = reference("cnn", "net")
    ref_model = ref_net.TinyCNN(*args)
    ref_history = ref_net.train(ref_model, *train_args)
    assert np.allclose(history["loss"], ref_history["loss"], rtol=1e-10)
    assert all(np.allclose(params[k], ref_model.params[k], rtol=1e-10, atol=1e-12) for k in ref_model.params)


def test_named_tuple_caches_stay_named_across_the_wire(tmp_path):
    """The reference's lstm_forward returns an LSTMCache (a named tuple); in the sandbox it arrives as the student
    module's own LSTMCache, so code that reads cache.c[:, -1] (the carried cell state) works, and handed back to the
    reference's lstm_backward it gives the reference's gradients."""
    import numpy as np

    from autograder.mutants import copy_reference
    from autograder.runner import reference

    rnn = course_config.topic("rnn")
    folder = copy_reference("rnn", SOLUTIONS, tmp_path)
    with open(folder / "rnn_layers.py", "a") as f:
        f.write("\n\ndef probe(x, h0, Wx, Wh, b, dh):\n    h, cache = lstm_forward(x, h0, Wx, Wh, b)\n"
                "    grads = lstm_backward(dh, cache)\n"
                "    return type(cache) is LSTMCache, type(cache).__module__, cache.c[:, -1], grads\n")
    patch = replaceable_dependencies(rnn.task("rnn.CharLSTM"))
    assert "rnn.rnn_layers.lstm_forward" in patch and "rnn.rnn_layers.lstm_backward" in patch
    rng = np.random.default_rng(1)
    N, T, D, H = 3, 4, 5, 6
    x, h0, Wx, Wh, b = (rng.standard_normal(s) for s in ((N, T, D), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)))
    dh = rng.standard_normal((N, T, H))
    session = Session(rnn, folder, patch=patch)
    try:
        same_class, module, c_last, grads = session.call("rnn_layers", "probe", x, h0, Wx, Wh, b, dh)
    finally:
        session.close()
    assert same_class and module == "rnn.rnn_layers"
    ref = reference("rnn", "rnn_layers")
    _, ref_cache = ref.lstm_forward(x, h0, Wx, Wh, b)
    assert np.allclose(c_last, ref_cache.c[:, -1])
    assert all(np.allclose(g, r) for g, r in zip(grads, ref.lstm_backward(dh, ref_cache)))
