"""The hidden suite of topic 5 (autoencoders) and its planted bugs. Never released.

The checks are the ones in autograder/public/autoencoders.py; here their oracle is the reference solution
(solutions/autoencoders) in this trusted process: the vae_math functions themselves, and the reference models with
the student's parameters loaded, on other shapes, per-student inputs and the full training runs. The reference
figures (for the feedback page) are drawn from the reference model with the same parameters. MUTANTS are the
planted bugs the tests require the suite to catch.
"""
from __future__ import annotations

import functools

import torch

from autograder.mutants import mutant
from autograder.public.autoencoders import CHECKS
from autograder.runner import reference


def _model(params: dict, cls: str | None = None, beta: float = 1.0):
    """A float64 reference model holding `params` (numpy_params names): a VAE when they have the mean's head."""
    models = reference("autoencoders", "models")
    cls = cls or ("VAE" if "enc_mu.weight" in params else "Autoencoder")
    d, h = params["enc1.weight"].shape[1], params["enc1.weight"].shape[0]
    latent = params["dec1.weight"].shape[1]
    model = models.VAE(d, h, latent, beta, "float64") if cls == "VAE" else models.Autoencoder(d, h, latent, "float64")
    models.load_numpy_params(model, params)
    return model


class ReferenceOracle:
    """The reference vae_math functions, the reference models on given parameters, and the reference figures."""

    def __init__(self, ctx):
        self.math = reference("autoencoders", "vae_math")
        self.models = reference("autoencoders", "models")

    def __getattr__(self, name):
        return getattr(self.math, name)

    def ae_outputs(self, params, x):
        model = _model(params)
        return self.models.numpy_call(model, "encode", x), self.models.numpy_call(model, "forward", x)

    def vae_encode(self, params, x):
        return self.models.numpy_call(_model(params), "encode", x)

    def decode(self, params, z):
        return self.models.numpy_call(_model(params), "decode", z)

    def reconstruction_loss(self, x, logits):
        model = self.models.Autoencoder(1, 1, 1, "float64")
        value, grads = self.models.call_and_grads(model, "reconstruction_loss", x, logits)
        return float(value), grads[1:]

    def negative_elbo(self, x, logits, mu, logvar, beta):
        model = self.models.VAE(1, 1, 1, beta, "float64")
        value, grads = self.models.call_and_grads(model, "negative_elbo", x, logits, mu, logvar)
        return float(value), grads[1:]

    def importance_weighted_bound(self, params, x, eps):
        bound = self.models.importance_weighted_bound(_model(params), x, len(eps), eps)
        return bound.numpy()

    @staticmethod
    def figure(name, params, *args, cls=None):
        """The reference figure `name` drawn from the reference model with the student's parameters."""
        with torch.no_grad():
            return getattr(reference("autoencoders", "plots"), name)(_model(params, cls), *args)


SUITE = CHECKS.suite("hidden", ReferenceOracle)

_m = functools.partial(mutant, "autoencoders")

MUTANTS = (
    # vae_math.py
    _m("kl_sign_flipped", "vae_math", "kl = 0.5 * np.sum(", "kl = -0.5 * np.sum(", "kl_divergence",
       "the KL with the wrong sign (negative, so the loss rewards spreading q)"),
    _m("kl_logvar_as_variance", "vae_math", "var = np.exp(logvar)  # (N, L)", "var = logvar  # (N, L)",
       "kl_divergence", "uses logvar as the variance"),
    _m("kl_mean_over_latent", "vae_math", "kl = 0.5 * np.sum(mu ** 2 + var - 1.0 - logvar, axis=1)",
       "kl = 0.5 * np.mean(mu ** 2 + var - 1.0 - logvar, axis=1)", "kl_divergence",
       "averages over the latent dimensions instead of summing (sum and mean mixed)"),
    _m("kl_backward_missing_half", "vae_math", "dlogvar = 0.5 * dkl[:, None] * np.expm1(logvar)",
       "dlogvar = dkl[:, None] * np.expm1(logvar)", "kl_divergence_backward", "dlogvar misses the factor 1/2"),
    _m("reparam_std_as_exp_logvar", "vae_math", "sigma = np.exp(0.5 * logvar)  # (N, L) standard deviation",
       "sigma = np.exp(logvar)  # (N, L)", "reparameterize", "the standard deviation as exp(logvar)"),
    _m("reparam_backward_eps_missing", "vae_math", "dlogvar = dz * 0.5 * np.exp(0.5 * logvar) * eps",
       "dlogvar = dz * 0.5 * np.exp(0.5 * logvar)", "reparameterize_backward",
       "dlogvar without the noise eps"),
    _m("bernoulli_naive_log_sigmoid", "vae_math",
       "    softplus = np.maximum(logits, 0.0) + np.log1p(np.exp(-np.abs(logits)))  # (N, D) log(1 + e^l), stable\n"
       "    log_lik = np.sum(x * logits - softplus, axis=1)  # (N,)\n",
       "    p = 1.0 / (1.0 + np.exp(-logits))\n"
       "    log_lik = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)  # log(0) at large |logits|\n",
       "bernoulli_log_likelihood", "log(sigmoid(logits)) computed directly: -inf / NaN at large logits"),
    _m("bernoulli_backward_sign", "vae_math", "dlogits = dlog_lik[:, None] * (x - sigmoid)",
       "dlogits = dlog_lik[:, None] * (sigmoid - x)", "bernoulli_log_likelihood_backward",
       "the gradient of the cross-entropy, not of the log-likelihood"),
    _m("elbo_plus_kl", "vae_math", "return log_lik - kl", "return log_lik + kl", "elbo", "adds the KL"),
    # models.py: the autoencoder
    _m("ae_code_through_relu", "models", "return self.enc2(torch.relu(self.enc1(x)))",
       "return torch.relu(self.enc2(torch.relu(self.enc1(x))))", "Autoencoder", "a ReLU on the code"),
    _m("ae_loss_sum_over_batch", "models", "return bce.sum(dim=1).mean()", "return bce.sum()",
       "Autoencoder.reconstruction_loss", "sums over the batch instead of averaging (sum and mean mixed)"),
    # the VAE
    _m("vae_sigmoid_twice", "models", "        return self.dec2(torch.relu(self.dec1(z)))\n"
                                      "        ### END SOLUTION\n\n    def forward(self, x):\n"
                                      '        """x: (N, D) -> (logits (N, D), mu (N, L), logvar',
       "        return torch.sigmoid(self.dec2(torch.relu(self.dec1(z))))\n"
       "        ### END SOLUTION\n\n    def forward(self, x):\n"
       '        """x: (N, D) -> (logits (N, D), mu (N, L), logvar',
       "VAE", "the decoder applies a sigmoid, and the loss another one (binary_cross_entropy_with_logits)"),
    _m("vae_reparam_eps_zero", "models", "eps = torch.randn_like(mu)  # (N, L)", "eps = torch.zeros_like(mu)  # (N, L)",
       "VAE.reparameterize", "no noise: z = mu (eps not sampled)"),
    _m("vae_reparam_eps_fixed", "models", "eps = torch.randn_like(mu)  # (N, L)",
       "eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0), dtype=mu.dtype)  # (N, L)",
       "VAE.reparameterize", "the same noise at every call (a fixed seed)"),
    _m("vae_kl_dropped", "models", "return (rec + self.beta * kl).mean()", "return rec.mean()", "VAE.negative_elbo",
       "the KL term dropped"),
    _m("vae_mean_over_pixels", "models",
       'rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)  # (N,)',
       'rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(dim=1)  # (N,)',
       "VAE.negative_elbo", "averages the cross-entropy over the pixels (sum and mean mixed)"),
    _m("iwae_naive_log_mean_exp", "models", "bound = torch.logsumexp(log_w, dim=0) - math.log(k)",
       "bound = torch.log(torch.exp(log_w).mean(dim=0))", "importance_weighted_bound",
       "log(mean(exp)): the weights underflow to 0"),
    _m("iwae_log_q_missing", "models", "log_w = log_px_z + log_pz - log_qz", "log_w = log_px_z + log_pz",
       "importance_weighted_bound", "forgets to divide by q(z | x)"),
    _m("train_no_zero_grad", "models", "            opt.zero_grad()\n", "", "train",
       "gradients accumulate across steps"),
    # plots.py
    _m("traversal_varies_every_dimension", "plots", "codes[:, :, dim] = values",
       "codes[:, :, :] = values[None, :, None]", "plot_latent_traversal",
       "the traversal sets every latent dimension, not only `dim`"),
    _m("scatter_samples_not_means", "plots", "    mu = means(model, x)  # (N, L)\n",
       "    with torch.no_grad():\n"
       "        out = model.encode(_tensor(model, x))\n"
       "        mu = (model.reparameterize(*out) if isinstance(out, tuple) else out).double().numpy()\n",
       "plot_latent_scatter", "plots samples z instead of the means"),
    _m("reconstructions_rows_swapped", "plots", "        _show(axes[0, n], x[n].reshape(image_shape))\n"
                                                "        _show(axes[1, n], recon[n])\n",
       "        _show(axes[1, n], x[n].reshape(image_shape))\n        _show(axes[0, n], recon[n])\n",
       "plot_reconstructions", "reconstructions above the inputs"),
)
