"""The tiny CNN again, in PyTorch, with the same contract as net.TinyCNN.

`loss(X, y=None)` takes and returns NumPy arrays, exactly like the NumPy model, so both can be compared on the
same weights: autograd computes the gradients, which come back in the NumPy layout. Conv weights have the same
(F, C, HH, WW) layout in both; only the last layer differs (W3 is (D, K), nn.Linear stores (K, D)). Both
flatten (N, F2, H/4, W/4) in the same C order. Training reuses topic 1's `train_torch` unchanged (it needs only
`dtype`, `objective`, `forward`, `loss` and `parameters()`), so `cnn.torch_net.train_torch` is that function.
Shapes: N batch, C channels, H/W height/width, F filters, HH/WW kernel, K classes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from feedforward.torch_net import train_torch  # noqa: F401  (re-exported: the CNN trains with the topic-1 loop)


class TorchTinyCNN(nn.Module):
    """conv1 - relu - maxpool 2x2 - conv2 - relu - maxpool 2x2 - fc, mean cross-entropy plus
    0.5 * reg * (||W1||^2 + ||W2||^2 + ||W3||^2) (weights only, as in TinyCNN).

    Weights start He-normal (std sqrt(2 / fan_in), the scheme of TinyCNN's default init) from a
    torch.Generator seeded with `seed`, so runs are reproducible without touching torch's global RNG;
    biases start at zero.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=(16, 32), filter_size=3, num_classes=10, reg=0.0,
                 dtype="float32", seed=None):
        super().__init__()
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd for 'same' padding, got {filter_size}")
        C, H, W = input_dim
        F1, F2 = num_filters
        self.reg = reg
        self.dtype = getattr(torch, dtype)
        pad = (filter_size - 1) // 2
        self.conv1 = nn.Conv2d(C, F1, filter_size, padding=pad, dtype=self.dtype)
        self.conv2 = nn.Conv2d(F1, F2, filter_size, padding=pad, dtype=self.dtype)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(F2 * (H // 4) * (W // 4), num_classes, dtype=self.dtype)
        gen = torch.Generator()
        if seed is None:
            gen.seed()  # a fresh random seed, still without the global RNG
        else:
            gen.manual_seed(int(seed))
        with torch.no_grad():
            for layer in (self.conv1, self.conv2, self.fc):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=gen)
                layer.bias.zero_()

    def forward(self, x):
        """x: (N, C, H, W) tensor -> (N, K) scores."""
        ### BEGIN SOLUTION
        h = self.pool(torch.relu(self.conv1(x)))  # (N, F1, H/2, W/2)
        h = self.pool(torch.relu(self.conv2(h)))  # (N, F2, H/4, W/4)
        return self.fc(h.flatten(1))  # (N, K)
        ### END SOLUTION

    def objective(self, scores, y):
        """Mean cross-entropy of scores (N, K) for labels y (N,) plus the L2 penalty on the three weights."""
        ### BEGIN SOLUTION
        penalty = sum(m.weight.pow(2).sum() for m in (self.conv1, self.conv2, self.fc))
        return nn.functional.cross_entropy(scores, y) + 0.5 * self.reg * penalty
        ### END SOLUTION

    def load_numpy_params(self, params):
        """Copy a TinyCNN's params (W1, b1, W2, b2 in the conv layout; W3 (D, K), b3) into the layers."""
        with torch.no_grad():
            ### BEGIN SOLUTION
            self.conv1.weight.copy_(torch.as_tensor(params["W1"]))  # same (F, C, HH, WW) layout
            self.conv1.bias.copy_(torch.as_tensor(params["b1"]))
            self.conv2.weight.copy_(torch.as_tensor(params["W2"]))
            self.conv2.bias.copy_(torch.as_tensor(params["b2"]))
            self.fc.weight.copy_(torch.as_tensor(params["W3"]).T)  # nn.Linear stores (out, in)
            self.fc.bias.copy_(torch.as_tensor(params["b3"]))
            ### END SOLUTION

    def loss(self, X, y=None):
        """NumPy in, NumPy out: scores (N, K) if y is None, else (loss, grads) in the NumPy layout."""
        x = torch.as_tensor(np.asarray(X), dtype=self.dtype)
        if y is None:
            with torch.no_grad():
                return self(x).numpy()
        ### BEGIN SOLUTION
        self.zero_grad()
        loss = self.objective(self(x), torch.as_tensor(np.asarray(y), dtype=torch.long))
        loss.backward()
        grads = {"W1": self.conv1.weight.grad, "b1": self.conv1.bias.grad, "W2": self.conv2.weight.grad,
                 "b2": self.conv2.bias.grad, "W3": self.fc.weight.grad.T, "b3": self.fc.bias.grad}
        grads = {k: g.numpy().copy() for k, g in grads.items()}  # copies: zero_grad would change them later
        ### END SOLUTION
        return loss.item(), grads
