"""toolkit.image_metrics, the offline evaluation of topic 6: FID and Inception Score through torchmetrics with the
course classifier as feature extractor, checked against direct NumPy / SciPy computations; FID of a set with itself
is ~0 and grows with the noise added to it; the shipped classifier weights are small, pickle-free and as accurate
as recorded."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from toolkit import image_metrics as im
from toolkit.data import DataMissing, dataset_path, load


def _have(name: str) -> bool:
    try:
        dataset_path(name, download=False)
        return True
    except DataMissing:
        return False


pytestmark = pytest.mark.skipif(not _have("mnist") or not _have("fashion_mnist"),
                                reason="course data not found: set DLCORE_DATA to the course data folder")


@pytest.fixture(scope="module")
def mnist_test():
    return load("mnist")["x_test"]


def _features(images, dataset="mnist") -> np.ndarray:
    with torch.no_grad():
        return im.load_classifier(dataset).features(im.as_input(images)).numpy()


def _direct_fid(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) with scipy's matrix square root."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2 * root))


def _noisy(images, sigma, seed=0):
    x = images.reshape(len(images), -1).astype(np.float64) / 127.5 - 1
    return np.clip(x + sigma * np.random.default_rng(seed).standard_normal(x.shape), -1, 1)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_fid_equals_a_direct_scipy_computation(dataset):
    d = load(dataset)
    real, other = d["x_test"][:3000], _noisy(d["x_train"][:2000], 0.3)
    got = im.fid(real, other, dataset)
    want = _direct_fid(_features(real, dataset), _features(other, dataset))
    assert want > 1.0 and abs(got - want) <= 1e-6 * want, (got, want)


def test_fid_of_the_test_set_with_itself_is_zero_and_grows_with_noise(mnist_test):
    assert abs(im.fid(mnist_test, mnist_test)) < 1e-6
    half = mnist_test[:5000]
    values = [im.fid(half, _noisy(half, sigma)) for sigma in (0.05, 0.2, 0.5, 1.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert values[0] > 0.1, values
    # another sample of the same distribution is close, uniform noise is far
    noise = np.random.default_rng(1).uniform(-1, 1, (5000, 784))
    assert im.fid(half, load("mnist")["x_train"][:5000]) < 0.05 * im.fid(half, noise)


def test_inception_score_equals_numpy(mnist_test):
    x = mnist_test[:2000]
    with torch.no_grad():
        logits = im.load_classifier("mnist")(im.as_input(x)).numpy()
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    marginal = p.mean(axis=0)
    want = float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))
    got, _ = im.inception_score(x)
    assert abs(got - want) <= 1e-9 * want, (got, want)
    assert 8.0 < got <= 10.0, got  # confident and balanced: close to the 10 classes


def test_class_coverage_sees_mode_collapse(mnist_test):
    labels = load("mnist")["y_test"]
    assert im.class_coverage(mnist_test) == 1.0
    assert im.class_coverage(mnist_test[labels == 3]) == 0.1
    two = mnist_test[(labels == 1) | (labels == 7)]
    assert im.class_coverage(two) == 0.2
    assert np.mean(im.predicted_classes(mnist_test) == labels) > 0.95


def test_shipped_weights_are_small_pickle_free_and_as_accurate_as_recorded():
    recorded = json.loads((im.HERE / "classifier_accuracy.json").read_text())
    for dataset, floor in (("mnist", 0.95), ("fashion_mnist", 0.82)):
        path = im.weights_path(dataset)
        assert path.stat().st_size < 600_000
        with np.load(path, allow_pickle=False) as f:
            assert all(f[k].dtype != object for k in f.files)
        assert im.test_accuracy(dataset) == pytest.approx(recorded[dataset], abs=1e-4) and recorded[dataset] > floor
        d = load(dataset)
        acc = float(np.mean(im.predicted_classes(d["x_test"], dataset) == d["y_test"]))
        assert acc == pytest.approx(recorded[dataset], abs=2e-3), (dataset, acc)


def test_inputs_in_every_documented_layout_give_the_same_features(mnist_test):
    x = mnist_test[:50]
    scaled = x.astype(np.float64) / 127.5 - 1
    want = _features(x)
    layouts = (x.reshape(50, 784), scaled, scaled.reshape(50, 1, 28, 28), torch.as_tensor(scaled.astype(np.float32)))
    for layout in layouts:
        assert np.allclose(_features(layout), want, atol=1e-5)


def test_release_lint_admits_the_shipped_weights_and_no_other_array(tmp_path):
    from autograder.release import lint

    shipped = im.weights_path("mnist").read_bytes()
    (tmp_path / "toolkit").mkdir()
    (tmp_path / "toolkit" / "classifier_mnist.npz").write_bytes(shipped)
    assert lint(tmp_path) == []
    # not the bytes shipped under that name
    (tmp_path / "toolkit" / "classifier_fashion_mnist.npz").write_bytes(shipped)
    (tmp_path / "gan").mkdir()
    (tmp_path / "gan" / "samples.npz").write_bytes(shipped)  # the same bytes outside the toolkit
    problems = lint(tmp_path)
    assert any("classifier_fashion_mnist.npz" in p for p in problems), problems
    assert any("samples.npz" in p for p in problems), problems
