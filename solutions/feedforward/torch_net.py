"""The two-layer network again, in PyTorch, with the same contract as net.TwoLayerNet.

`loss(X, y=None)` takes and returns NumPy arrays, exactly like the NumPy model, so both can be compared on the
same weights: autograd computes the gradients, which come back in the NumPy layout (W1 is (D, H), while
nn.Linear stores its weight as (H, D)).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class TorchTwoLayerNet(nn.Module):
    """fc1 - activation - fc2 with mean cross-entropy and L2 penalty 0.5 * reg * (||W1||^2 + ||W2||^2)."""

    def __init__(self, input_dim=784, hidden_dim=100, num_classes=10, activation="relu", reg=0.0,
                 dtype="float32"):
        super().__init__()
        self.reg = reg
        self.dtype = getattr(torch, dtype)
        self.fc1 = nn.Linear(input_dim, hidden_dim, dtype=self.dtype)
        self.act = _ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden_dim, num_classes, dtype=self.dtype)

    def forward(self, x):
        """x: (N, D) tensor -> (N, C) scores."""
        ### BEGIN SOLUTION
        return self.fc2(self.act(self.fc1(x.reshape(x.shape[0], -1))))
        ### END SOLUTION

    def objective(self, scores, y):
        """Mean cross-entropy of scores (N, C) for labels y (N,) plus the L2 penalty on both weights."""
        ### BEGIN SOLUTION
        penalty = 0.5 * self.reg * (self.fc1.weight.pow(2).sum() + self.fc2.weight.pow(2).sum())
        return nn.functional.cross_entropy(scores, y) + penalty
        ### END SOLUTION

    def load_numpy_params(self, params):
        """Copy a NumPy model's params (W1 (D, H), b1, W2 (H, C), b2) into fc1 and fc2."""
        with torch.no_grad():
            ### BEGIN SOLUTION
            self.fc1.weight.copy_(torch.as_tensor(params["W1"]).T)  # nn.Linear stores (out, in)
            self.fc1.bias.copy_(torch.as_tensor(params["b1"]))
            self.fc2.weight.copy_(torch.as_tensor(params["W2"]).T)
            self.fc2.bias.copy_(torch.as_tensor(params["b2"]))
            ### END SOLUTION

    def loss(self, X, y=None):
        """NumPy in, NumPy out: scores (N, C) if y is None, else (loss, grads) in the NumPy layout."""
        x = torch.as_tensor(np.asarray(X), dtype=self.dtype)
        if y is None:
            with torch.no_grad():
                return self(x).numpy()
        ### BEGIN SOLUTION
        self.zero_grad()
        loss = self.objective(self(x), torch.as_tensor(np.asarray(y), dtype=torch.long))
        loss.backward()
        grads = {"W1": self.fc1.weight.grad.T.numpy().copy(), "b1": self.fc1.bias.grad.numpy().copy(),
                 "W2": self.fc2.weight.grad.T.numpy().copy(), "b2": self.fc2.bias.grad.numpy().copy()}
        ### END SOLUTION
        return loss.item(), grads


def train_torch(model, X, y, X_val, y_val, learning_rate=0.1, epochs=10, batch_size=100, lr_decay=1.0, seed=0):
    """Mini-batch SGD with torch.optim.SGD, visiting the data in the same shuffled order as net.train.

    After every epoch the learning rate is multiplied by lr_decay.

    Returns:
        history: dict with "loss" (per step) and "val_acc" (per epoch).
    """
    rng = np.random.default_rng(seed)
    X_t = torch.as_tensor(np.asarray(X), dtype=model.dtype)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    history = {"loss": [], "val_acc": []}
    ### BEGIN SOLUTION
    opt = torch.optim.SGD(model.parameters(), lr=learning_rate)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay)
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(X_t)))
        for start in range(0, len(X_t), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = model.objective(model(X_t[idx]), y_t[idx])
            loss.backward()
            opt.step()
            history["loss"].append(loss.item())
        sched.step()
        history["val_acc"].append(float(np.mean(np.argmax(model.loss(X_val), axis=1) == y_val)))
    ### END SOLUTION
    return history
