"""Generative adversarial networks in PyTorch (CS231n assignment 3's names), with this course's stabilising tricks.

Images are flat (N, 784) float tensors in [-1, 1] (a tanh generator's range); noise is (N, L) with L = noise_dim;
discriminator outputs are logits (or least-squares scores) of shape (N, 1). Losses return scalar tensors.
The DCGAN extension is in dcgan.py, the sample grid in plots.py. The models are evaluated offline by
toolkit.image_metrics (FID, Inception Score, class coverage with a small
classifier shipped with the course). Write only inside the marked regions; keep the signatures, the grader
calls them as they are.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

NOISE_DIM = 96


def bce_loss(input, target):
    """Mean binary cross-entropy of logits `input` against targets `target` (same shape), stable for any logit:
    max(x, 0) - x t + log(1 + exp(-|x|)). Given (CS231n)."""
    neg_abs = -input.abs()
    loss = input.clamp(min=0) - input * target + (1 + neg_abs.exp()).log()
    return loss.mean()


def sample_noise(batch_size, dim, seed=None):
    """Uniform noise in (-1, 1).

    Args:
        batch_size: N.  dim: L.  seed: if not None, torch.manual_seed(seed) first (reproducible draws).
    Returns:
        (N, L) float32 tensor of independent draws from U(-1, 1).
    """
    if seed is not None:
        torch.manual_seed(seed)
    ### BEGIN SOLUTION
    return 2 * torch.rand(batch_size, dim) - 1
    ### END SOLUTION


def discriminator(seed=None):
    """The MLP discriminator: Linear(784, 256), LeakyReLU(0.01), Linear(256, 256), LeakyReLU(0.01), Linear(256, 1).

    Returns an nn.Sequential (float32, torch's default initialisation after torch.manual_seed(seed) if seed is not
    None) mapping (N, 784) images to (N, 1) logits.
    """
    if seed is not None:
        torch.manual_seed(seed)
    ### BEGIN SOLUTION
    model = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.01), nn.Linear(256, 256), nn.LeakyReLU(0.01),
                          nn.Linear(256, 1))
    ### END SOLUTION
    return model


def generator(noise_dim=NOISE_DIM, seed=None, hidden_dim=1024):
    """The MLP generator: Linear(L, H), ReLU, Linear(H, H), ReLU, Linear(H, 784), Tanh, with H = hidden_dim
    (1024 as in CS231n; the grader's short training runs use 256, four times cheaper).

    Returns an nn.Sequential mapping (N, L) noise to (N, 784) images in [-1, 1].
    """
    if seed is not None:
        torch.manual_seed(seed)
    ### BEGIN SOLUTION
    model = nn.Sequential(nn.Linear(noise_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                          nn.Linear(hidden_dim, 784), nn.Tanh())
    ### END SOLUTION
    return model


def get_optimizer(model):
    """Adam over the model's parameters with learning rate 1e-3 and betas (0.5, 0.999)."""
    ### BEGIN SOLUTION
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    ### END SOLUTION


def discriminator_loss(logits_real, logits_fake, real_label=1.0):
    """The discriminator's loss: mean BCE of the real logits against `real_label` plus mean BCE of the fake logits
    against 0 (a sum of two means, as in CS231n).

    Args:
        logits_real: (N,) or (N, 1) logits of real images.  logits_fake: (N,) or (N, 1) logits of generated ones.
        real_label: target of the real images; 0.9 is one-sided label smoothing (fake targets stay 0).
    Returns:
        scalar tensor. Stable for logits of size 1e3: never log(sigmoid(x)).
    """
    ### BEGIN SOLUTION
    loss = bce_loss(logits_real, torch.full_like(logits_real, real_label)) + \
        bce_loss(logits_fake, torch.zeros_like(logits_fake))
    ### END SOLUTION
    return loss


def generator_loss(logits_fake):
    """The non-saturating generator loss: mean BCE of the fake logits against 1, i.e. mean log(1 + exp(-x)).

    Args:
        logits_fake: (N,) or (N, 1).
    Returns:
        scalar tensor, stable for logits of size 1e3.
    """
    ### BEGIN SOLUTION
    loss = bce_loss(logits_fake, torch.ones_like(logits_fake))
    ### END SOLUTION
    return loss


def ls_discriminator_loss(scores_real, scores_fake):
    """Least-squares GAN discriminator loss: 0.5 mean((D(x) - 1)^2) + 0.5 mean(D(G(z))^2).

    Args:
        scores_real, scores_fake: (N,) or (N, 1).
    Returns:
        scalar tensor.
    """
    ### BEGIN SOLUTION
    loss = 0.5 * ((scores_real - 1) ** 2).mean() + 0.5 * (scores_fake ** 2).mean()
    ### END SOLUTION
    return loss


def ls_generator_loss(scores_fake):
    """Least-squares GAN generator loss: 0.5 mean((D(G(z)) - 1)^2); scores_fake (N,) or (N, 1)."""
    ### BEGIN SOLUTION
    loss = 0.5 * ((scores_fake - 1) ** 2).mean()
    ### END SOLUTION
    return loss


def gradient_penalty(D, real, fake, alpha=None):
    """The WGAN-GP penalty: mean over examples of (||grad_x D(x_hat)||_2 - 1)^2 at random interpolates.

    x_hat = alpha * real + (1 - alpha) * fake, one alpha per example. The gradient of D's output with respect to
    x_hat comes from torch.autograd.grad with create_graph=True, so that the penalty itself can be backpropagated
    into D's parameters; its norm is taken per example (over the 784 pixels), not over the batch.

    Args:
        D: the discriminator.  real, fake: (N, 784) images (fake already detached from G).
        alpha: (N, 1) interpolation weights; None draws them as torch.rand(N, 1) in real's dtype.
    Returns:
        scalar tensor.
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], 1, dtype=real.dtype)
    ### BEGIN SOLUTION
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)  # (N, 784)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)  # rows: per-example gradients
    penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()
    ### END SOLUTION
    return penalty


def _number(value):
    """A loss or score as a float, whether a tensor (with or without a graph) or a number."""
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _probability(logits, loss):
    """The mean "D(x)" of a batch: sigmoid of the logits (BCE), the raw scores (least squares)."""
    return _number((torch.sigmoid(logits) if loss == "bce" else logits).mean())


def discriminator_step(D, G, D_solver, real, noise, real_label=1.0, gp_weight=0.0, loss="bce", alpha=None):
    """One update of D on a batch: fake = G(noise) detached (no gradient reaches G), then
    loss = discriminator_loss(D(real), D(fake), real_label) (or ls_discriminator_loss for loss="ls"), plus
    gp_weight * gradient_penalty(D, real, fake, alpha) when gp_weight > 0; zero D's gradients, backward, step.

    Returns:
        dict with "d_loss" (float, the loss before the step), "d_real" and "d_fake" (floats: mean sigmoid(D(x)) and
        mean sigmoid(D(G(z))) for "bce", the mean raw scores for "ls").
    """
    ### BEGIN SOLUTION
    fake = G(noise).detach()  # (N, 784): D's update must not reach G
    logits_real, logits_fake = D(real), D(fake)
    if loss == "bce":
        d_loss = discriminator_loss(logits_real, logits_fake, real_label)
    else:
        d_loss = ls_discriminator_loss(logits_real, logits_fake)
    if gp_weight > 0:
        d_loss = d_loss + gp_weight * gradient_penalty(D, real, fake, alpha)
    D_solver.zero_grad()
    d_loss.backward()
    D_solver.step()
    ### END SOLUTION
    return {"d_loss": _number(d_loss), "d_real": _probability(logits_real, loss),
            "d_fake": _probability(logits_fake, loss)}


def generator_step(D, G, G_solver, noise, loss="bce"):
    """One update of G: loss = generator_loss(D(G(noise))) (or ls_generator_loss); zero G's gradients, backward,
    step. D is not updated, and D's parameters get no gradient: D's .grad stays None (or zero) after this step,
    e.g. by freezing D's parameters (requires_grad_(False)) during it and unfreezing them afterwards.

    Returns:
        dict with "g_loss" (float, before the step).
    """
    ### BEGIN SOLUTION
    D.requires_grad_(False)  # gradients flow through D to G, but none is stored on D's parameters
    try:
        logits_fake = D(G(noise))
        g_loss = generator_loss(logits_fake) if loss == "bce" else ls_generator_loss(logits_fake)
        G_solver.zero_grad()
        g_loss.backward()
        G_solver.step()
    finally:
        D.requires_grad_(True)
    ### END SOLUTION
    return {"g_loss": _number(g_loss)}


def train(D, G, D_solver, G_solver, images, num_epochs=1, batch_size=128, noise_size=NOISE_DIM, real_label=1.0,
          gp_weight=0.0, loss="bce", seed=0):
    """Alternate one discriminator_step and one generator_step per mini-batch of real images.

    Each epoch visits the images once in the order torch.randperm(N, generator=g) with
    g = torch.Generator().manual_seed(seed) (one generator for the whole run); the last, smaller batch is dropped.
    Each step draws its noise with sample_noise(B, noise_size) (B real images), one draw for D's step and a fresh
    one for G's step.

    Args:
        images: (N, 784) float tensor (or array) in [-1, 1].
    Returns:
        history: dict of lists with one float per step: "d_loss", "g_loss", "d_real" (mean D(x)), "d_fake"
        (mean D(G(z)) in D's step).
    """
    images = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).float()
    history = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
    ### BEGIN SOLUTION
    gen = torch.Generator().manual_seed(seed)
    for _ in range(num_epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images) - batch_size + 1, batch_size):
            real = images[order[start:start + batch_size]]
            d = discriminator_step(D, G, D_solver, real, sample_noise(batch_size, noise_size), real_label,
                                   gp_weight, loss)
            g = generator_step(D, G, G_solver, sample_noise(batch_size, noise_size), loss)
            for key, value in {**d, **g}.items():
                history[key].append(value)
    ### END SOLUTION
    return history


# -- given: what the grader calls (NumPy in, NumPy out) ------------------------------------------------------------


def mlp(params, out="none", slope=0.01):
    """A float64 nn.Sequential of Linear layers from course-layout weights [(W (D_in, D_out), b (D_out,)), ...],
    LeakyReLU(slope) between them (ReLU for slope 0), and Tanh after the last one if out == "tanh". Given."""
    layers = []
    for i, (W, b) in enumerate(params):
        lin = nn.Linear(*np.shape(W), dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(np.asarray(W, dtype=np.float64).T))
            lin.bias.copy_(torch.as_tensor(np.asarray(b, dtype=np.float64)))
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(nn.LeakyReLU(slope) if slope else nn.ReLU())
    if out == "tanh":
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def linear_layers(model):
    """[(W (D_in, D_out), b (D_out,)), ...] of the model's nn.Linear layers in order, as float64 arrays. Given."""
    return [(m.weight.detach().double().numpy().T.copy(), m.bias.detach().double().numpy().copy())
            for m in model.modules() if isinstance(m, nn.Linear)]


def parameter_shapes(model):
    """The shapes of the model's parameters, in order. Given."""
    return [tuple(p.shape) for p in model.parameters()]


def model_outputs(model, x):
    """model(x) for a NumPy batch (cast to the model's dtype) without gradients, in evaluation mode. Given."""
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(x)).to(next(model.parameters()).dtype))


def loss_value(name, *arrays, **kwargs):
    """The loss function `name` of this module on tensors made from NumPy arrays. Given; the grader calls it."""
    return globals()[name](*(torch.as_tensor(np.asarray(a)) for a in arrays), **kwargs)


def penalty_and_grads(d_params, real, fake, alpha, backward=True):
    """gradient_penalty(D, real, fake, alpha) for the float64 MLP discriminator mlp(d_params), and (with backward)
    the gradients its backward() leaves on D's parameters, as [(dW, db), ...] in the course layout (None where no
    gradient arrived). Given; the grader calls it."""
    D = mlp(d_params)
    real, fake, alpha = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (real, fake, alpha))
    penalty = gradient_penalty(D, real, fake, alpha)
    if not backward:
        return penalty.detach(), None
    penalty.backward()
    grads = [(None if m.weight.grad is None else m.weight.grad.numpy().T.copy(),
              None if m.bias.grad is None else m.bias.grad.numpy().copy()) for m in D if isinstance(m, nn.Linear)]
    return penalty.detach(), grads


def one_step(which, d_params, g_params, real, noise, lr, **kwargs):
    """One discriminator_step ("D") or generator_step ("G") on float64 MLPs mlp(d_params) and
    mlp(g_params, "tanh", 0) with plain SGD(lr) solvers, gradients cleared (None) before it. Given; the grader
    calls it.

    Returns:
        (the step's dict, D's parameters after it, G's after it, D's gradients after it, G's gradients after it);
        parameters and gradients as [(W, b), ...] in the course layout, a gradient None where none is stored.
    """
    D, G = mlp(d_params), mlp(g_params, "tanh", 0)
    real, noise = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (real, noise))
    if "alpha" in kwargs:
        kwargs["alpha"] = torch.as_tensor(np.asarray(kwargs["alpha"], dtype=np.float64))
    if which == "D":
        out = discriminator_step(D, G, torch.optim.SGD(D.parameters(), lr=lr), real, noise, **kwargs)
    else:
        out = generator_step(D, G, torch.optim.SGD(G.parameters(), lr=lr), noise, **kwargs)

    def grads(model):
        return [tuple(None if p.grad is None else p.grad.numpy().T.copy() for p in (m.weight, m.bias))
                for m in model if isinstance(m, nn.Linear)]
    return out, linear_layers(D), linear_layers(G), grads(D), grads(G)


def train_and_sample(images, settings, seed, num_samples):
    """The grader's training run: discriminator(seed), generator(noise_size, seed + 1, hidden_dim), an
    optimizer from get_optimizer for each, train() on the images (uint8 (N, 784), scaled here to [-1, 1]) with the
    rest of `settings` as its keyword arguments, then num_samples images from G for the noise
    sample_noise(num_samples, noise_size, seed + 2). Given; the grader calls it.

    Returns:
        (history, samples (num_samples, 784) float32 tensor in [-1, 1]).
    """
    settings = dict(settings)
    noise_dim, hidden = settings.setdefault("noise_size", NOISE_DIM), settings.pop("hidden_dim", 256)
    images = torch.as_tensor(np.asarray(images)).float() / 127.5 - 1.0
    D, G = discriminator(seed), generator(noise_dim, seed + 1, hidden)
    history = train(D, G, get_optimizer(D), get_optimizer(G), images, seed=seed, **settings)
    G.eval()
    with torch.no_grad():
        samples = G(sample_noise(num_samples, noise_dim, seed + 2))
    return history, samples
