"""Offline evaluation of 28x28 image generators (MNIST, Fashion-MNIST): FID, Inception Score and class coverage.

The Inception network of the usual FID / IS needs a download and ImageNet-sized inputs; here its place is taken
by a small classifier trained by `train_classifier.py` in this folder, whose weights (classifier_<dataset>.npz, no
pickle) and test accuracy ship beside it. FID and IS are computed by torchmetrics (FrechetInceptionDistance and
InceptionScore, each given that classifier as a custom feature module), not by a hand-written matrix square root.

- FID: the Frechet distance between Gaussians fitted to the classifier's 64 penultimate features (after ReLU) of
  real and generated images; 0 for identical sets, larger is worse.
- Inception Score: exp(E_x KL(p(y|x) || p(y))) from the classifier's class probabilities; between 1 and C = 10,
  higher means confident and varied samples.
- Class coverage: the fraction of the C classes that receive at least half of their fair share (1 / (2 C)) of the
  samples' predicted labels; a collapsed generator covers few classes.

Images are (N, 784), (N, 28, 28) or (N, 1, 28, 28): uint8 in [0, 255] (the datasets) or floats in [-1, 1] (a
tanh generator's outputs), NumPy arrays or tensors.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
FEATURES = 64                       # width of the penultimate layer: the FID feature space
HIDDEN = 128                        # width of the first hidden layer
NUM_CLASSES = 10


def weights_path(dataset: str) -> Path:
    """The classifier weights of `dataset` ("mnist" or "fashion_mnist")."""
    return HERE / f"classifier_{dataset}.npz"


class Classifier(nn.Module):
    """784-128-64-10 ReLU MLP on images scaled to [-1, 1]; `features` are the 64 activations before the last layer."""

    def __init__(self, dtype=torch.float64):
        super().__init__()
        self.fc1 = nn.Linear(784, HIDDEN, dtype=dtype)
        self.fc2 = nn.Linear(HIDDEN, FEATURES, dtype=dtype)
        self.fc3 = nn.Linear(FEATURES, NUM_CLASSES, dtype=dtype)

    def features(self, x):
        return torch.relu(self.fc2(torch.relu(self.fc1(x))))  # (N, 64)

    def forward(self, x):
        return self.fc3(self.features(x))  # (N, 10) logits


def as_input(images) -> torch.Tensor:
    """Images as a float64 (N, 784) tensor in [-1, 1] (uint8 is scaled, floats are taken as they are)."""
    x = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    x = x.reshape(len(x), -1)
    if x.shape[1] != 784:
        raise ValueError(f"expected 28x28 images, got {tuple(images.shape)}")
    if x.dtype == torch.uint8:
        return x.double() / 127.5 - 1.0
    return x.double()


_LOADED: dict[str, Classifier] = {}


def load_classifier(dataset: str = "mnist") -> Classifier:
    """The trained classifier of `dataset` in float64, evaluation mode, without gradients (cached)."""
    if dataset not in _LOADED:
        path = weights_path(dataset)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run python -m toolkit.train_classifier {dataset}")
        model = Classifier()
        with np.load(path, allow_pickle=False) as f:
            state = {k: torch.as_tensor(f[k].astype(np.float64)) for k in model.state_dict()}
        model.load_state_dict(state)
        _LOADED[dataset] = model.eval().requires_grad_(False)
    return _LOADED[dataset]


def test_accuracy(dataset: str = "mnist") -> float:
    """The accuracy the shipped weights reached on the dataset's 10,000 test images (stored with them)."""
    with np.load(weights_path(dataset), allow_pickle=False) as f:
        return float(f["test_accuracy"])


class _FeatureModule(nn.Module):
    """The classifier's features (or logits) as torchmetrics' custom feature extractor."""

    def __init__(self, dataset: str, logits: bool = False):
        super().__init__()
        self.net, self.logits = load_classifier(dataset), logits
        self.num_features = NUM_CLASSES if logits else FEATURES  # torchmetrics reads it instead of probing

    def forward(self, x):
        x = as_input(x)
        return self.net(x) if self.logits else self.net.features(x)


def _batches(images, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


def fid(real, fake, dataset: str = "mnist", batch_size: int = 5000) -> float:
    """Frechet distance between the classifier features of `real` and `fake` images (torchmetrics, float64)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_FeatureModule(dataset))
    with torch.no_grad():
        for images, is_real in ((real, True), (fake, False)):
            for batch in _batches(images, batch_size):
                metric.update(batch, real=is_real)
        return float(metric.compute())


def inception_score(images, dataset: str = "mnist", splits: int = 1) -> tuple[float, float]:
    """(mean, std) over `splits` of exp(E KL(p(y|x) || p(y))) with the classifier's probabilities (torchmetrics).
    With splits > 1 the split is random (torch's generator); splits=1 is deterministic."""
    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings(), torch.no_grad():
        # torchmetrics warns that it buffers the features (here 10 numbers per image) and, for splits=1, that a
        # standard deviation over one split is undefined (it is reported as 0)
        warnings.simplefilter("ignore", UserWarning)
        metric = InceptionScore(feature=_FeatureModule(dataset, logits=True), splits=splits)
        for batch in _batches(images, 5000):
            metric.update(batch)
        mean, std = metric.compute()
    return float(mean), float(std) if splits > 1 else 0.0


def predicted_classes(images, dataset: str = "mnist") -> np.ndarray:
    """(N,) the classifier's label for each image."""
    with torch.no_grad():
        return load_classifier(dataset)(as_input(images)).argmax(dim=1).numpy()


def class_coverage(images, dataset: str = "mnist", min_share: float = 0.5) -> float:
    """Fraction of the classes predicted for at least min_share / C of the images (mode collapse lowers it)."""
    counts = np.bincount(predicted_classes(images, dataset), minlength=NUM_CLASSES)
    return float(np.mean(counts >= min_share * len(images) / NUM_CLASSES))


def evaluate(fake, real, dataset: str = "mnist") -> dict[str, float]:
    """FID against `real`, Inception Score and class coverage of `fake`: one row of a metrics table."""
    return {"fid": fid(real, fake, dataset), "inception_score": inception_score(fake, dataset)[0],
            "class_coverage": class_coverage(fake, dataset)}
