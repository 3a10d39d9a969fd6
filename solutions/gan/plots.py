"""The sample grid of topic 6: a generator's images for given noise, as a figure the grader reads as data.

Write only inside the marked regions; keep the signatures.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are built off screen; notebooks display them inline
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gan.gan_pytorch import mlp  # noqa: E402,F401 -- the grader builds its generators with it, here


def show_images(images, ncols=8):
    """A grid of 28x28 images, one axes per image in row-major order, each drawn with
    ax.imshow(image.reshape(28, 28), cmap="gray", vmin=-1, vmax=1) and no ticks.

    Args:
        images: (N, 784) array or tensor in [-1, 1].  ncols: images per row (rows: ceil(N / ncols)).
    Returns:
        fig: the Figure.
    """
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    nrows = -(-len(images) // ncols)
    fig = plt.figure(figsize=(ncols, nrows))
    ### BEGIN SOLUTION
    for i, img in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(img.reshape(28, 28), cmap="gray", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    ### END SOLUTION
    return fig


def sample_grid(G, noise, ncols=8):
    """The generator's samples for the given noise as a grid: show_images(G(noise)) without gradients.

    Args:
        G: the generator.  noise: (N, L) tensor or array (cast to G's dtype).
    Returns:
        fig: the Figure, its i-th image G(noise)[i] as 28x28.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        dtype = next(G.parameters()).dtype
        fig = show_images(G(torch.as_tensor(np.asarray(noise)).to(dtype)), ncols)
    ### END SOLUTION
    return fig
