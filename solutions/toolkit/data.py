"""Course datasets as Keras-style .npz files (x_train, y_train, x_test, y_test), loaded without pickle.

Where the files come from, in order:
1. the folder named by the environment variable DLCORE_DATA (the course's offline copy);
2. a cache folder (DLCORE_CACHE, default ~/.cache/dlcore) filled by torchvision's real downloader;
3. otherwise a DataMissing error that says what to set.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "fashion_mnist", "cifar10")


class DataMissing(RuntimeError):
    """The dataset is neither in DLCORE_DATA nor in the cache, and could not be downloaded."""


def cache_dir() -> Path:
    return Path(os.environ.get("DLCORE_CACHE", Path.home() / ".cache" / "dlcore"))


def dataset_path(name: str, download: bool = True) -> Path:
    """Path of `<name>.npz`, downloading it into the cache if needed and allowed."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    env = os.environ.get("DLCORE_DATA")
    if env:
        path = Path(env) / f"{name}.npz"
        if path.is_file():
            return path
        raise DataMissing(f"DLCORE_DATA={env} has no {name}.npz. Point DLCORE_DATA at the course data folder "
                          f"(the one holding mnist.npz, cifar10.npz, yoruba/), or unset it to download.")
    path = cache_dir() / f"{name}.npz"
    if path.is_file():
        return path
    if not download:
        raise DataMissing(f"{name}.npz not found. Set DLCORE_DATA to the course data folder, "
                          f"or allow a download into {cache_dir()}.")
    try:
        _download(name, path)
    except Exception as exc:  # no network, no torchvision, server down: say what to do instead
        raise DataMissing(f"{name}.npz is not available: DLCORE_DATA is not set and the download into "
                          f"{cache_dir()} failed ({type(exc).__name__}: {exc}). Set DLCORE_DATA to the course "
                          f"data folder, e.g. export DLCORE_DATA=/path/to/shared/data") from exc
    return path


def _download(name: str, path: Path) -> None:
    """Fetch the dataset with torchvision and store it as a Keras-style .npz (atomically)."""
    import torchvision.datasets as tvd

    root = cache_dir() / "torchvision"
    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    splits = {}
    for split, train in (("train", True), ("test", False)):
        ds = cls(str(root), train=train, download=True)
        splits[f"x_{split}"] = np.asarray(ds.data, dtype=np.uint8)
        splits[f"y_{split}"] = np.asarray(ds.targets, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **splits)
    os.replace(tmp, path)


def load(name: str) -> dict[str, np.ndarray]:
    """All arrays of a dataset, loaded with allow_pickle=False."""
    with np.load(dataset_path(name), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def load_mnist(n_train: int = 10_000, n_test: int = 2_000, name: str = "mnist"):
    """MNIST (or Fashion-MNIST) as flat float64 vectors in [0, 1] minus the training mean.

    Returns:
        X_train: (N, D) with D = 784.  y_train: (N,) int64 labels.
        X_test: (M, D).  y_test: (M,).
    The first n_train / n_test images of each split are used, so every caller sees the same subset.
    """
    d = load(name)
    x_tr = d["x_train"][:n_train].reshape(min(n_train, len(d["x_train"])), -1).astype(np.float64) / 255.0
    x_te = d["x_test"][:n_test].reshape(min(n_test, len(d["x_test"])), -1).astype(np.float64) / 255.0
    mean = x_tr.mean(axis=0)  # centre with the training mean only: the test set stays unseen
    return (x_tr - mean, d["y_train"][:n_train].astype(np.int64),
            x_te - mean, d["y_test"][:n_test].astype(np.int64))
