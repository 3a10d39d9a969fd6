"""The hidden suite of topic 6 (gan) and its planted bugs. Never released.

The checks are the ones in autograder/public/gan.py; here their oracle is the reference solution (solutions/gan)
in this trusted process, on other sizes, per-student inputs and the full training run. MUTANTS are the planted bugs
the tests require the suite to catch.
"""
from __future__ import annotations

import functools

import numpy as np

from autograder.mutants import mutant
from autograder.public.gan import CHECKS
from autograder.runner import reference


class ReferenceOracle:
    """The reference functions through the same given helpers the student's module has, in float64."""

    def __init__(self, ctx):
        self.ref = reference("gan", "gan_pytorch")

    def mlp_forward(self, params, x, out="none", slope=0.01):
        return self.ref.model_outputs(self.ref.mlp(params, out, slope), x).numpy()

    def dc_parameter_shapes(self, which, noise_dim):
        dcgan = reference("gan", "dcgan")
        model = dcgan.build_dc_classifier() if which == "D" else dcgan.build_dc_generator(noise_dim)
        return sorted(self.ref.parameter_shapes(model))

    def loss(self, name, *arrays, **kwargs):
        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
        return float(self.ref.loss_value(name, *arrays, **kwargs))

    def penalty(self, d_params, real, fake, alpha):
        value, grads = self.ref.penalty_and_grads(d_params, real, fake, alpha)
        return float(value), [tuple(np.zeros(np.shape(p)) if g is None else g for g, p in zip(pair, params))
                              for pair, params in zip(grads, d_params)]

    def step(self, which, d_params, g_params, real, noise, lr, **kwargs):
        values, d_after, g_after, _, _ = self.ref.one_step(which, d_params, g_params, real, noise, lr, **kwargs)
        return values, d_after, g_after


SUITE = CHECKS.suite("hidden", ReferenceOracle)

_m = functools.partial(mutant, "gan")

MUTANTS = (
    _m("gan_noise_zero_one", "gan_pytorch", "return 2 * torch.rand(batch_size, dim) - 1",
       "return torch.rand(batch_size, dim)", "sample_noise", "noise in (0, 1) instead of (-1, 1)"),
    _m("gan_discriminator_relu", "gan_pytorch",
       "nn.Linear(784, 256), nn.LeakyReLU(0.01), nn.Linear(256, 256), nn.LeakyReLU(0.01),",
       "nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),", "discriminator",
       "ReLU instead of LeakyReLU(0.01) in the discriminator"),
    _m("gan_generator_no_tanh", "gan_pytorch", "nn.Linear(hidden_dim, 784), nn.Tanh())",
       "nn.Linear(hidden_dim, 784))", "generator", "the generator's images are not squashed into [-1, 1]"),
    _m("gan_dc_classifier_no_pooling", "dcgan",
       "nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2),\n"
       "                         nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2), nn.Flatten(),\n"
       "                         nn.Linear(1024, 1024),",
       "nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01),\n"
       "                         nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2), nn.Flatten(),\n"
       "                         nn.Linear(6400, 1024),", "build_dc_classifier",
       "the first max-pool left out (and the linear layer widened to fit)"),
    _m("gan_dc_generator_upsampling_unpadded", "dcgan", "nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),",
       "nn.ConvTranspose2d(128, 64, 4, 2), nn.ReLU(),", "build_dc_generator",
       "the first transposed convolution without padding 1: 7 -> 16 pixels instead of 14, so 32 x 32 images"),
    _m("gan_optimizer_default_betas", "gan_pytorch", "lr=1e-3, betas=(0.5, 0.999))", "lr=1e-3)", "get_optimizer",
       "Adam with the default betas (0.9, 0.999)"),
    _m("gan_real_fake_labels_swapped", "gan_pytorch",
       "bce_loss(logits_real, torch.full_like(logits_real, real_label)) + \\\n"
       "        bce_loss(logits_fake, torch.zeros_like(logits_fake))",
       "bce_loss(logits_real, torch.zeros_like(logits_real)) + \\\n"
       "        bce_loss(logits_fake, torch.full_like(logits_fake, real_label))", "discriminator_loss",
       "real images labelled 0 and fakes labelled 1"),
    _m("gan_smoothing_on_fake_labels", "gan_pytorch", "bce_loss(logits_fake, torch.zeros_like(logits_fake))",
       "bce_loss(logits_fake, torch.full_like(logits_fake, 1.0 - real_label))", "discriminator_loss",
       "label smoothing applied to the fake labels too (0.1 instead of 0)"),
    _m("gan_saturating_generator_loss", "gan_pytorch", "loss = bce_loss(logits_fake, torch.ones_like(logits_fake))",
       "loss = -bce_loss(logits_fake, torch.zeros_like(logits_fake))", "generator_loss",
       "the saturating loss mean log(1 - D(G(z))) instead of -mean log D(G(z))"),
    _m("gan_ls_d_no_half", "gan_pytorch",
       "loss = 0.5 * ((scores_real - 1) ** 2).mean() + 0.5 * (scores_fake ** 2).mean()",
       "loss = ((scores_real - 1) ** 2).mean() + (scores_fake ** 2).mean()", "ls_discriminator_loss",
       "least-squares discriminator loss without the 1/2"),
    _m("gan_ls_g_target_zero", "gan_pytorch", "loss = 0.5 * ((scores_fake - 1) ** 2).mean()",
       "loss = 0.5 * (scores_fake ** 2).mean()", "ls_generator_loss",
       "least-squares generator loss pulls the fakes' scores to 0"),
    _m("gan_penalty_on_real", "gan_pytorch", "x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)",
       "x_hat = real.clone().requires_grad_(True)", "gradient_penalty",
       "the penalty at the real images instead of interpolates"),
    _m("gan_penalty_no_create_graph", "gan_pytorch",
       "(grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)",
       "(grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat)", "gradient_penalty",
       "create_graph missing: the penalty cannot be backpropagated into D"),
    _m("gan_penalty_batch_norm", "gan_pytorch", "penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()",
       "penalty = (grad.norm(2) - 1) ** 2", "gradient_penalty",
       "the norm over the whole batch instead of per example"),
    _m("gan_d_step_fake_not_detached", "gan_pytorch", "fake = G(noise).detach()  #", "fake = G(noise)  #",
       "discriminator_step", "the fakes of D's step are not detached: D's loss sends gradients into G"),
    _m("gan_g_step_d_not_frozen", "gan_pytorch",
       "    D.requires_grad_(False)  # gradients flow through D to G, but none is stored on D's parameters\n", "",
       "generator_step", "D not frozen in the G step: D's parameters collect the generator loss's gradients"),
    _m("gan_train_history_once_per_epoch", "gan_pytorch",
       "            for key, value in {**d, **g}.items():\n                history[key].append(value)\n",
       "        for key, value in {**d, **g}.items():\n            history[key].append(value)\n", "train",
       "the history keeps one value per epoch (the last step's) instead of one per step"),
    _m("gan_grid_transposed", "plots", "ax.imshow(img.reshape(28, 28), cmap=",
       "ax.imshow(img.reshape(28, 28).T, cmap=", "sample_grid", "each sample drawn transposed"),
)
