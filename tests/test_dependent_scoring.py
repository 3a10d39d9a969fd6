"""Fair scoring of dependent tasks: a task is also graded with the functions it calls replaced by the reference,
which runs in the trusted process (called back from the sandbox); the configuration chooses which score counts."""
from __future__ import annotations

import importlib

import pytest

import course_config
from autograder.mutants import apply
from autograder.runner import Session, replaceable_dependencies
from conftest import SOLUTIONS, by_task, grade

FF = course_config.FEEDFORWARD
MUTANTS = {m.name: m for m in importlib.import_module("autograder.hidden.feedforward").MUTANTS}


@pytest.fixture(scope="module")
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
