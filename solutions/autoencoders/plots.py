"""Figures of a trained autoencoder or VAE: latent traversals, the latent space, reconstructions.

Every function takes the model (an Autoencoder or a VAE of models.py) and NumPy arrays, and returns a matplotlib
Figure. The grader reads the figures as data, not as pixels: each image must *be* the model's output, each point
an encoder mean. Images are Bernoulli means sigmoid(logits) in [0, 1], reshaped to `image_shape`. Shapes: N
examples, D pixels, L latent dimensions, R rows (base codes), M traversal values.
Write only inside the marked regions; keep the signatures, the grader calls them as they are.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are built off screen; notebooks display them inline
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def _tensor(model, a) -> torch.Tensor:
    """A NumPy array as a tensor of the model's dtype."""
    return torch.as_tensor(np.asarray(a), dtype=next(model.parameters()).dtype)


def means(model, x):
    """The code of each example: the encoder mean mu of a VAE (encode returns (mu, logvar)), or the code z of a
    plain autoencoder. x: (N, D) -> (N, L) float64 NumPy. Given."""
    with torch.no_grad():
        code = model.encode(_tensor(model, x))
    code = code[0] if isinstance(code, tuple) else code
    return code.double().numpy()


def decoded_images(model, z, image_shape=(28, 28)):
    """The decoder's Bernoulli means for codes z (N, L): (N, *image_shape) float64 in [0, 1]. Given."""
    with torch.no_grad():
        probs = torch.sigmoid(model.decode(_tensor(model, z)))
    return probs.double().numpy().reshape(len(z), *image_shape)


def _show(ax, image) -> None:
    ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_latent_traversal(model, z, dim, values, image_shape=(28, 28)):
    """A grid of decoded images in which one latent dimension varies and every other stays fixed.

    Row r starts from the code z[r]; column c replaces its coordinate `dim` by values[c] (and changes nothing
    else), so the images along a row show what that one dimension controls.

    Args:
        model: an Autoencoder or a VAE.  z: (L,) one code, or (R, L) one per row.  dim: the latent dimension varied.
        values: (M,) the values it takes, one per column.
    Returns:
        fig: an R x M grid of axes (plt.subplots(R, M, squeeze=False)); axes [r, c] shows, with imshow, the image
            decoded_images(model, code) of that code, a column title "z[dim] = value" in the first row.
    """
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))  # (R, L)
    values = np.asarray(values, dtype=np.float64)  # (M,)
    fig, axes = plt.subplots(len(z), len(values), figsize=(1.2 * len(values), 1.2 * len(z)), squeeze=False)
    ### BEGIN SOLUTION
    codes = np.repeat(z[:, None, :], len(values), axis=1)  # (R, M, L): every code of the grid
    codes[:, :, dim] = values  # only dimension `dim` moves along a row
    images = decoded_images(model, codes.reshape(-1, z.shape[1]), image_shape).reshape(*codes.shape[:2],
                                                                                         *image_shape)
    for r in range(len(z)):
        for c, value in enumerate(values):
            _show(axes[r, c], images[r, c])
            if r == 0:
                axes[r, c].set_title(f"z[{dim}] = {value:.2g}", fontsize=8)
    ### END SOLUTION
    fig.suptitle(f"Traversal of latent dimension {dim}")
    return fig


def plot_latent_scatter(model, x, y, title="Latent space"):
    """The encoder means of the examples as points in the plane of latent dimensions 0 and 1, coloured by class.

    Args:
        model: a VAE (or an Autoencoder: its codes).  x: (N, D) images.  y: (N,) integer class labels.
    Returns:
        fig: one axes with the N points (mu[n, 0], mu[n, 1]) drawn with scatter, one colour per class (one scatter
            call per class, labelled with the class, and a legend; or one call with c=y and a colorbar), the axis
            labels "z[0]" and "z[1]", and the title.
    """
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ### BEGIN SOLUTION
    mu = means(model, x)  # (N, L)
    y = np.asarray(y)
    for label in np.unique(y):
        pts = mu[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, color=plt.cm.tab10(int(label) % 10), label=str(label))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.legend(title="class", markerscale=2, fontsize=7)
    ### END SOLUTION
    ax.set_title(title)
    return fig


def plot_reconstructions(model, x, image_shape=(28, 28)):
    """Inputs beside their reconstructions: a 2 x N grid, the N inputs x in row 0 and below each its reconstruction.

    A reconstruction is decoded_images of the example's code, without sampling: the encoder mean mu for a VAE, the
    code z for an Autoencoder (see `means`).

    Args:
        model: an Autoencoder or a VAE.  x: (N, D) images in [0, 1].
    Returns:
        fig: a 2 x N grid of axes (plt.subplots(2, N, squeeze=False)) with one imshow each: axes [0, n] the input
            x[n] reshaped to image_shape, axes [1, n] its reconstruction.
    """
    x = np.asarray(x, dtype=np.float64)
    fig, axes = plt.subplots(2, len(x), figsize=(1.2 * len(x), 2.6), squeeze=False)
    ### BEGIN SOLUTION
    recon = decoded_images(model, means(model, x), image_shape)  # (N, *image_shape)
    for n in range(len(x)):
        _show(axes[0, n], x[n].reshape(image_shape))
        _show(axes[1, n], recon[n])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    ### END SOLUTION
    fig.suptitle("Inputs (top) and reconstructions (bottom)")
    return fig
