"""Course datasets, named in `course_config.DATASETS`: image sets as Keras-style .npz files (x_train, y_train,
x_test, y_test, loaded without pickle) and text corpora as folders of UTF-8 files.

Where the files come from, in order:
1. the folder named by the environment variable DLCORE_DATA (the course's offline copy);
2. a cache folder (DLCORE_CACHE, default ~/.cache/dlcore) filled by torchvision's real downloader (image sets only);
3. otherwise a DataMissing error that names the file and says what to set.
"""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np

from course_config import DATASETS


class DataMissing(RuntimeError):
    """The dataset is neither in DLCORE_DATA nor in the cache, and could not be downloaded."""


def cache_dir() -> Path:
    return Path(os.environ.get("DLCORE_CACHE", Path.home() / ".cache" / "dlcore"))


def dataset_path(name: str, download: bool = True) -> Path:
    """Path of a dataset's file (images) or folder (text), downloading an image set into the cache if allowed."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    env = os.environ.get("DLCORE_DATA")
    if env:
        path = Path(env) / spec.path
        if path.exists():
            return path
        raise DataMissing(f"DLCORE_DATA={env} has no {spec.path} ({spec.description}). Point DLCORE_DATA at the "
                          f"course data folder (the one holding mnist.npz, cifar10.npz, yoruba/)"
                          + (", or unset it to download." if spec.torchvision else "."))
    path = cache_dir() / spec.path
    if path.exists():
        return path
    if not spec.torchvision:
        raise DataMissing(f"{spec.path} ({spec.description}) is not available: it has no download. Set "
                          f"DLCORE_DATA to the course data folder that holds {spec.path}, "
                          f"e.g. export DLCORE_DATA=/path/to/shared/data")
    if not download:
        raise DataMissing(f"{spec.path} not found. Set DLCORE_DATA to the course data folder, "
                          f"or allow a download into {cache_dir()}.")
    try:
        _download(spec.torchvision, path)
    except Exception as exc:  # no network, no torchvision, server down: say what to do instead
        raise DataMissing(f"{spec.path} is not available: DLCORE_DATA is not set and the download into "
                          f"{cache_dir()} failed ({type(exc).__name__}: {exc}). Set DLCORE_DATA to the course "
                          f"data folder, e.g. export DLCORE_DATA=/path/to/shared/data") from exc
    return path


def _download(torchvision_class: str, path: Path) -> None:
    """Fetch an image set with torchvision and store it as a Keras-style .npz (atomically)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, torchvision_class)
    splits = {}
    for split, train in (("train", True), ("test", False)):
        ds = cls(str(cache_dir() / "torchvision"), train=train, download=True)
        splits[f"x_{split}"] = np.asarray(ds.data, dtype=np.uint8)  # CIFAR10 data is already (N, 32, 32, 3)
        splits[f"y_{split}"] = np.asarray(ds.targets, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **splits)
    os.replace(tmp, path)


def load(name: str) -> dict[str, np.ndarray]:
    """All arrays of an image set, loaded with allow_pickle=False."""
    if DATASETS.get(name) and DATASETS[name].kind != "images":
        raise ValueError(f"{name} is a {DATASETS[name].kind} dataset; use load_text")
    with np.load(dataset_path(name), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def load_images(name: str, n_train: int, n_test: int, flatten: bool = False, channels_first: bool = False):
    """An image set as float64 in [0, 1] minus the training mean (per pixel, or per channel for RGB).

    Returns:
        X_train: (N, ...) with ... = (28, 28), (32, 32, 3), (3, 32, 32) with channels_first, or (D,) flattened.
        y_train: (N,) int64 labels.  X_test: (M, ...).  y_test: (M,).
    The first n_train / n_test images of each split are used, so every caller sees the same subset.
    """
    d = load(name)
    x_tr = d["x_train"][:n_train].astype(np.float64) / 255.0
    x_te = d["x_test"][:n_test].astype(np.float64) / 255.0
    # centre with the training mean only: the test set stays unseen
    mean = x_tr.mean(axis=(0, 1, 2)) if x_tr.ndim == 4 else x_tr.mean(axis=0)
    x_tr, x_te = x_tr - mean, x_te - mean
    if channels_first and x_tr.ndim == 4:
        x_tr, x_te = x_tr.transpose(0, 3, 1, 2), x_te.transpose(0, 3, 1, 2)  # (N, C, H, W)
    if flatten:
        x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    return (np.ascontiguousarray(x_tr), d["y_train"][:n_train].astype(np.int64),
            np.ascontiguousarray(x_te), d["y_test"][:n_test].astype(np.int64))


def load_mnist(n_train: int = 10_000, n_test: int = 2_000, name: str = "mnist"):
    """MNIST (or Fashion-MNIST) as flat float64 vectors (N, 784) in [0, 1] minus the training mean per pixel."""
    return load_images(name, n_train, n_test, flatten=True)


def load_text(name: str) -> dict[str, str]:
    """A text corpus: file name -> its text, decoded as UTF-8 and normalised to Unicode NFC, files sorted by name."""
    spec = DATASETS[name] if name in DATASETS else None
    if spec is None or spec.kind != "text":
        raise ValueError(f"{name!r} is not a text dataset; text datasets: "
                         f"{', '.join(k for k, d in DATASETS.items() if d.kind == 'text')}")
    folder = dataset_path(name)
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataMissing(f"{folder} holds no .txt files; expected {spec.description}")
    return {p.name: unicodedata.normalize("NFC", p.read_text(encoding="utf-8")) for p in files}
