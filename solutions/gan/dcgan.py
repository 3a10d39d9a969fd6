"""The DCGAN extension of topic 6: a convolutional discriminator and generator (CS231n assignment 3's names).

Images are flat (N, 784) tensors in [-1, 1], noise (N, L). Write only inside the marked regions.
"""
from __future__ import annotations

import torch
from torch import nn

from gan.gan_pytorch import NOISE_DIM, model_outputs, parameter_shapes  # noqa: F401 -- the grader calls them here


def build_dc_classifier(seed=None):
    """The DCGAN discriminator (extension): (N, 784) -> view (N, 1, 28, 28) -> Conv2d(1, 32, 5), LeakyReLU(0.01),
    MaxPool2d(2) -> Conv2d(32, 64, 5), LeakyReLU(0.01), MaxPool2d(2) -> flatten (N, 1024) -> Linear(1024, 1024),
    LeakyReLU(0.01) -> Linear(1024, 1): (N, 1) logits."""
    if seed is not None:
        torch.manual_seed(seed)
    ### BEGIN SOLUTION
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(1024, 1024), nn.LeakyReLU(0.01), nn.Linear(1024, 1))
    ### END SOLUTION


def build_dc_generator(noise_dim=NOISE_DIM, seed=None):
    """The DCGAN generator (extension): Linear(L, 1024), ReLU, BatchNorm1d -> Linear(1024, 6272), ReLU, BatchNorm1d
    -> view (N, 128, 7, 7) -> ConvTranspose2d(128, 64, 4, stride 2, pad 1), ReLU, BatchNorm2d ->
    ConvTranspose2d(64, 1, 4, stride 2, pad 1), Tanh -> flatten: (N, 784) images in [-1, 1]."""
    if seed is not None:
        torch.manual_seed(seed)
    ### BEGIN SOLUTION
    return nn.Sequential(nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
                         nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
                         nn.Unflatten(1, (128, 7, 7)), nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),
                         nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(), nn.Flatten())
    ### END SOLUTION
