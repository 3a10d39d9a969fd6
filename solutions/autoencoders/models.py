"""An autoencoder and a variational autoencoder (VAE) in PyTorch, trained on binarised MNIST, and the
importance-weighted bound of a trained VAE.

Shapes: N batch, D pixels (784 for a flattened 28x28 image), H hidden units, L latent dimensions, K importance
samples. Both models decode to *logits*: sigmoid(logits) are the means of independent Bernoulli pixels, and the
losses take the logits (binary_cross_entropy_with_logits is exact and stable; a sigmoid followed by a log is not).
Losses and bounds are in nats, summed over the pixels and the latent dimensions of an example, averaged over the
batch. The layers are created for you in `__init__` (the grader loads weights into them by name); write only inside
the marked regions and keep the signatures, the grader calls them as they are.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _dtype(dtype) -> torch.dtype:
    """torch.float32 from "float32" (the grader passes names; a torch dtype passes through)."""
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def _linear(d_in: int, d_out: int, dtype) -> nn.Linear:
    return nn.Linear(d_in, d_out, dtype=_dtype(dtype))


class Autoencoder(nn.Module):
    """A plain autoencoder: z = encode(x), logits = decode(z).

    encode: enc1 (D -> H), ReLU, enc2 (H -> L), no activation on the code z.
    decode: dec1 (L -> H), ReLU, dec2 (H -> D): logits of the pixels.
    The weights are initialised as nn.Linear does, from torch.manual_seed(seed) (the global RNG is left as it was).
    """

    def __init__(self, input_dim=784, hidden_dim=128, latent_dim=16, dtype="float32", seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.enc1, self.enc2 = _linear(input_dim, hidden_dim, dtype), _linear(hidden_dim, latent_dim, dtype)
            self.dec1, self.dec2 = _linear(latent_dim, hidden_dim, dtype), _linear(hidden_dim, input_dim, dtype)

    def encode(self, x):
        """x: (N, D) -> z: (N, L)."""
        ### BEGIN SOLUTION
        return self.enc2(torch.relu(self.enc1(x)))
        ### END SOLUTION

    def decode(self, z):
        """z: (N, L) -> logits: (N, D)."""
        ### BEGIN SOLUTION
        return self.dec2(torch.relu(self.dec1(z)))
        ### END SOLUTION

    def forward(self, x):
        """x: (N, D) -> logits (N, D) of its reconstruction."""
        ### BEGIN SOLUTION
        return self.decode(self.encode(x))
        ### END SOLUTION

    def reconstruction_loss(self, x, logits):
        """Binary cross-entropy of the pixels x (N, D) in [0, 1] under Bernoulli(sigmoid(logits)): summed over the D
        pixels of an example, averaged over the N examples. A scalar tensor in nats, differentiable in logits."""
        ### BEGIN SOLUTION
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # (N, D), stable for any logits
        return bce.sum(dim=1).mean()
        ### END SOLUTION

    def loss(self, x):
        """The training loss of a batch x (N, D): what `train` minimises. Given."""
        return self.reconstruction_loss(x, self(x))


class VAE(nn.Module):
    """A variational autoencoder with a Gaussian encoder q(z | x) = N(mu, diag(exp(logvar))), the prior
    p(z) = N(0, I) and a Bernoulli decoder p(x | z) = Bernoulli(sigmoid(decode(z))).

    encode: enc1 (D -> H), ReLU, then two heads from the same hidden layer: enc_mu (H -> L) gives mu and
    enc_logvar (H -> L) gives logvar (no activation on either).
    decode: dec1 (L -> H), ReLU, dec2 (H -> D): logits.
    `beta` weighs the KL term of the loss (beta = 1: the negative ELBO; other values: a beta-VAE).
    The weights are initialised as nn.Linear does, from torch.manual_seed(seed) (the global RNG is left as it was).
    """

    def __init__(self, input_dim=784, hidden_dim=128, latent_dim=16, beta=1.0, dtype="float32", seed=0):
        super().__init__()
        self.beta = float(beta)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.enc1 = _linear(input_dim, hidden_dim, dtype)
            self.enc_mu = _linear(hidden_dim, latent_dim, dtype)
            self.enc_logvar = _linear(hidden_dim, latent_dim, dtype)
            self.dec1, self.dec2 = _linear(latent_dim, hidden_dim, dtype), _linear(hidden_dim, input_dim, dtype)

    def encode(self, x):
        """x: (N, D) -> (mu, logvar), each (N, L)."""
        ### BEGIN SOLUTION
        h = torch.relu(self.enc1(x))  # (N, H)
        return self.enc_mu(h), self.enc_logvar(h)
        ### END SOLUTION

    def reparameterize(self, mu, logvar):
        """A sample z ~ N(mu, diag(exp(logvar))) through which gradients reach mu and logvar: z = mu + sigma * eps,
        sigma = exp(logvar / 2), with fresh noise eps ~ N(0, I) from torch's global RNG (torch.randn_like), one
        independent draw per entry. mu, logvar: (N, L) -> z: (N, L)."""
        ### BEGIN SOLUTION
        eps = torch.randn_like(mu)  # (N, L), a constant: no gradient flows into the noise
        return mu + torch.exp(0.5 * logvar) * eps
        ### END SOLUTION

    def decode(self, z):
        """z: (N, L) -> logits: (N, D)."""
        ### BEGIN SOLUTION
        return self.dec2(torch.relu(self.dec1(z)))
        ### END SOLUTION

    def forward(self, x):
        """x: (N, D) -> (logits (N, D), mu (N, L), logvar (N, L)): encode, one reparameterize sample, decode."""
        ### BEGIN SOLUTION
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar
        ### END SOLUTION

    def negative_elbo(self, x, logits, mu, logvar):
        """The VAE loss: the negative ELBO of each example, reconstruction + beta * KL, averaged over the batch.

        reconstruction: binary cross-entropy of x under Bernoulli(sigmoid(logits)), summed over the D pixels;
        KL: KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over the L latent dimensions.
        Args:
            x: (N, D) pixels in [0, 1].  logits: (N, D) decoder outputs.  mu, logvar: (N, L) encoder outputs.
        Returns:
            a scalar tensor in nats, differentiable in logits, mu and logvar.
        """
        ### BEGIN SOLUTION
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)  # (N,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)  # (N,)
        return (rec + self.beta * kl).mean()
        ### END SOLUTION

    def loss(self, x):
        """The training loss of a batch x (N, D): what `train` minimises. Given."""
        return self.negative_elbo(x, *self(x))


def importance_weighted_bound(model, x, k, eps=None):
    """The k-sample importance-weighted bound (IWAE, Burda et al. 2016) of each example, in nats:

        log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x),   z_i = mu + sigma * eps_i ~ q(z | x),

    with p(z) = N(0, I), q = N(mu, diag(exp(logvar))) from model.encode and p(x | z) the Bernoulli decoder.
    For k = 1 it is the ELBO; it grows with k towards log p(x). The log-weights are hundreds of nats below 0, so
    exp() of them underflows: average them with a log-sum-exp. No gradients are needed.

    Args:
        model: a VAE.  x: (N, D) NumPy array or tensor of pixels in [0, 1].  k: number of samples K.
        eps: optional (K, N, L) standard normal noise; drawn with torch.randn when None.
    Returns:
        bound: (N,) tensor, one bound per example.
    """
    dtype = next(model.parameters()).dtype
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=dtype)
    with torch.no_grad():
        mu, logvar = model.encode(x)  # (N, L) each
        eps = torch.randn((k, *mu.shape), dtype=dtype) if eps is None else torch.as_tensor(eps, dtype=dtype)
        ### BEGIN SOLUTION
        z = mu + torch.exp(0.5 * logvar) * eps  # (K, N, L)
        logits = model.decode(z.reshape(-1, z.shape[-1])).reshape(k, len(x), -1)  # (K, N, D)
        log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        log_2pi = math.log(2 * math.pi)
        log_pz = -0.5 * (z.pow(2) + log_2pi).sum(-1)  # (K, N) standard normal prior
        log_qz = -0.5 * (eps.pow(2) + logvar + log_2pi).sum(-1)  # (K, N): (z - mu) / sigma is eps
        log_w = log_px_z + log_pz - log_qz  # (K, N) log importance weights
        bound = torch.logsumexp(log_w, dim=0) - math.log(k)  # (N,) log of their mean, without exp underflow
        ### END SOLUTION
    return bound


def train(model, X, epochs=6, batch_size=100, learning_rate=3e-3, seed=0):
    """Adam on model.loss(batch) (an Autoencoder or a VAE), in mini-batches.

    Each epoch visits the images once, in an order shuffled with np.random.default_rng(seed); the last batch may be
    smaller. The model's dtype is used for the data.

    Args:
        model: an Autoencoder or a VAE.  X: (N, D) NumPy pixels in [0, 1].
    Returns:
        history: dict with "loss" (one float per step).
    """
    rng = np.random.default_rng(seed)
    X_t = torch.as_tensor(np.asarray(X), dtype=next(model.parameters()).dtype)
    history = {"loss": []}
    ### BEGIN SOLUTION
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(X_t)))
        for start in range(0, len(X_t), batch_size):
            loss = model.loss(X_t[order[start:start + batch_size]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            history["loss"].append(loss.item())
    ### END SOLUTION
    return history


# -- given: NumPy in, NumPy out (the notebook and the grader call these) -------------------------------------------


def _numpy(value):
    if torch.is_tensor(value):
        return value.detach().cpu().double().numpy()
    return tuple(_numpy(v) for v in value) if isinstance(value, tuple) else value


def numpy_call(model, method, *arrays, seed=None):
    """model.<method>(*tensors) without gradients, for NumPy arrays: each array becomes a tensor of the model's
    dtype, and tensors come back as float64 NumPy arrays (a tuple stays a tuple). With `seed`, torch's global RNG is
    seeded first, so the noise a method draws can be drawn again. Given."""
    dtype = next(model.parameters()).dtype
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        return _numpy(getattr(model, method)(*(torch.as_tensor(np.asarray(a), dtype=dtype) for a in arrays)))


def call_and_grads(model, method, *arrays, dout=1.0, seed=None):
    """model.<method>(*tensors) and the gradients of sum(out * dout) with respect to each array. Given.

    Returns:
        out: the output as a NumPy array.  grads: a list, per array, of its gradient (NumPy), or None when no
        gradient reached it.
    """
    dtype = next(model.parameters()).dtype
    if seed is not None:
        torch.manual_seed(seed)
    inputs = [torch.tensor(np.asarray(a), dtype=dtype, requires_grad=True) for a in arrays]
    out = getattr(model, method)(*inputs)
    out.backward(torch.as_tensor(np.asarray(dout), dtype=out.dtype).expand_as(out))
    return _numpy(out), [None if t.grad is None else _numpy(t.grad) for t in inputs]


def numpy_params(model) -> dict:
    """The model's parameters by name ("enc1.weight", ...), as float64 NumPy arrays (nn.Linear's (out, in) layout)."""
    return {name: _numpy(p) for name, p in model.state_dict().items()}


def load_numpy_params(model, params) -> None:
    """Copy NumPy arrays (named as numpy_params names them) into the model's parameters."""
    with torch.no_grad():
        for name, p in model.state_dict().items():
            p.copy_(torch.as_tensor(np.asarray(params[name]), dtype=p.dtype))


def load_binarized(name="mnist", n_train=6000, n_test=2000):
    """The first n_train training and n_test test images of an image set (course data) as flat binary pixels.

    A pixel is 1 where its grey level is above 127 (of 255), else 0: the Bernoulli decoder then models the data
    exactly, and the ELBO is a bound on a real log-likelihood, in nats per image.

    Returns:
        X_train: (n_train, D) float64 in {0, 1}.  y_train: (n_train,) int64 labels.  X_test, y_test likewise.
    """
    from toolkit.data import load

    d = load(name)
    binary = [(d[f"x_{s}"][:n].reshape(n, -1) > 127).astype(np.float64) for s, n in (("train", n_train),
                                                                                    ("test", n_test))]
    return binary[0], d["y_train"][:n_train].astype(np.int64), binary[1], d["y_test"][:n_test].astype(np.int64)
