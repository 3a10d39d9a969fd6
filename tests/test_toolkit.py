"""The student toolkit: gradient checks, diagnoses, torch parity and data loading."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from conftest import SOLUTIONS
from toolkit import data
from toolkit.gradcheck import (away_from_kinks, check_layer, diagnose, directional_errors, norm_rel_error,
                               numeric_grad, rel_error)
from toolkit.parity import assert_matches_torch, compare_with_torch

sys.path.insert(0, str(SOLUTIONS))
from feedforward import layers  # noqa: E402  (the reference, to test the toolkit against)


def test_numeric_grad_matches_analytic():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((3, 5))
    dx, dw, db = layers.affine_backward(dout, layers.affine_forward(x, w, b)[1])
    assert rel_error(numeric_grad(lambda x: layers.affine_forward(x, w, b)[0], x, dout), dx) < 1e-8
    assert rel_error(numeric_grad(lambda w: layers.affine_forward(x, w, b)[0], w, dout), dw) < 1e-8


def test_directional_check_catches_a_single_wrong_entry():
    """Coordinate sampling misses sparse bugs; random directions do not (see the performance notes)."""
    rng = np.random.default_rng(1)
    inputs = {"x": rng.standard_normal((20, 30)), "w": rng.standard_normal((30, 10)), "b": rng.standard_normal(10)}
    dout = rng.standard_normal((20, 10))
    _, dw, _ = layers.affine_backward(dout, layers.affine_forward(**inputs)[1])
    f = lambda **kw: layers.affine_forward(**kw)[0]  # noqa: E731
    assert directional_errors(f, inputs, {"w": dw}, dout, np.random.default_rng(2))["w"] < 1e-8
    bad = dw.copy()
    bad[7, 3] *= 2
    assert directional_errors(f, inputs, {"w": bad}, dout, np.random.default_rng(2))["w"] > 1e-5


def test_check_layer_reports_per_input(capsys):
    rng = np.random.default_rng(3)
    errs = check_layer(layers.affine_forward, layers.affine_backward,
                       {"x": rng.standard_normal((2, 3)), "w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)})
    assert set(errs) == {"x", "w", "b"} and max(errs.values()) < 1e-7
    assert "dw: error" in capsys.readouterr().out


def test_diagnose_names_the_likely_cause():
    rng = np.random.default_rng(4)
    g = rng.standard_normal((4, 4))
    assert "transpose" in diagnose("dw", g.T, g)
    assert "wrong sign" in diagnose("dx", -g, g)
    assert "factor of 1/8" in diagnose("dx", g / 8, g)
    assert "factor of 8" in diagnose("dx", g * 8, g)
    assert "all zeros" in diagnose("db", np.zeros(4), g[0])
    assert "shape (4, 3)" in diagnose("dw", np.zeros((4, 3)), np.zeros((3, 4)))
    assert "non-finite" in diagnose("out", np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    bad = g.copy()
    bad[2, 1] += 1
    assert "1 of 16 entries wrong; worst dw(2, 1)" in diagnose("dw", bad, g)
    assert norm_rel_error(g, g) == 0.0


def test_away_from_kinks():
    x = away_from_kinks(np.array([-1e-9, 0.0, 2e-4, -0.5]), margin=1e-3)
    assert np.all(np.abs(x) >= 1e-3) and x[3] == -0.5 and x[0] < 0 < x[2]


def test_parity_helper_against_torch():
    rng = np.random.default_rng(5)
    inputs = {"x": rng.standard_normal((3, 2, 2)), "w": rng.standard_normal((4, 6)), "b": rng.standard_normal(6)}
    torch_affine = lambda x, w, b: x.reshape(x.shape[0], -1) @ w + b  # noqa: E731
    assert_matches_torch(layers.affine_forward, layers.affine_backward, torch_affine, inputs)
    problems = compare_with_torch(layers.affine_forward, lambda d, c: (d[:, :1] * 0, 0 * c[1], c[2] * 0),
                                  torch_affine, inputs)
    assert problems and all(p.startswith("backward:") for p in problems)
    with pytest.raises(AssertionError, match="differs from torch"):
        assert_matches_torch(lambda **kw: (layers.affine_forward(**kw)[0] + 1, None), None, torch_affine, inputs)


@pytest.mark.parametrize("name, torch_fn", [("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)])
def test_reference_activations_match_torch(name, torch_fn):
    x = away_from_kinks(np.random.default_rng(6).standard_normal((5, 3)) * 4)
    assert_matches_torch(getattr(layers, f"{name}_forward"), getattr(layers, f"{name}_backward"), torch_fn, {"x": x})


def test_missing_data_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    with pytest.raises(data.DataMissing, match="has no mnist.npz"):
        data.dataset_path("mnist")
    monkeypatch.delenv("DLCORE_DATA")
    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(data.DataMissing, match="Set DLCORE_DATA"):
        data.dataset_path("mnist", download=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        data.dataset_path("imagenet")


def test_mnist_subset_is_prepared():
    x_tr, y_tr, x_te, y_te = data.load_mnist(1000, 500)
    assert x_tr.shape == (1000, 784) and x_te.shape == (500, 784) and x_tr.dtype == np.float64
    assert abs(x_tr.mean()) < 1e-12 and set(np.unique(y_tr)) == set(range(10))


def test_every_registered_dataset_loads_as_documented():
    """The registry in course_config: image sets as uint8 arrays with 10 labels; text as NFC strings."""
    import unicodedata

    import course_config

    for name, spec in course_config.DATASETS.items():
        if spec.kind == "images":
            d = data.load(name)
            assert d["x_train"].dtype == np.uint8 and set(np.unique(d["y_test"])) == set(range(10)), name
        else:
            texts = data.load_text(name)
            assert texts and all(unicodedata.is_normalized("NFC", t) and len(t) > 1000 for t in texts.values())
    x_tr, y_tr, x_te, y_te = data.load_images("cifar10", 100, 50, channels_first=True)
    assert x_tr.shape == (100, 3, 32, 32) and x_te.shape == (50, 3, 32, 32) and x_tr.dtype == np.float64
    assert np.allclose(x_tr.mean(axis=(0, 2, 3)), 0)  # centred per channel with the training mean
    assert data.load("cifar10")["x_train"].shape[1:] == (32, 32, 3)


def test_missing_text_corpus_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_DATA", str(tmp_path))
    with pytest.raises(data.DataMissing, match="has no yoruba"):
        data.load_text("yoruba")
    monkeypatch.delenv("DLCORE_DATA")
    monkeypatch.setenv("DLCORE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(data.DataMissing, match="it has no download"):
        data.load_text("yoruba")
    with pytest.raises(ValueError, match="not a text dataset"):
        data.load_text("mnist")
