"""The mathematics of the variational autoencoder in NumPy, from scratch: the KL term, the reparameterisation
trick, the Bernoulli log-likelihood of an image and the evidence lower bound (ELBO), with their gradients.

Shapes: N batch, L latent dimensions, D pixels (a flattened image). Everything is per example and in nats
(natural logarithms): a value of shape (N,) holds one number per example, summed over its pixels or its latent
dimensions; averaging over the batch is the model's business, not these functions'. Functions that have a
gradient come as CS231n-style pairs: `*(...)` returns `(out, cache)` and `*_backward(dout, cache)` returns the
gradients in the order of the inputs that have one. Check them with toolkit.gradcheck.check_layer.
Write only inside the marked regions; keep the signatures, the grader calls them as they are.
"""
from __future__ import annotations

import numpy as np


def kl_divergence(mu, logvar):
    """KL(q || p) of the encoder's Gaussian q = N(mu, diag(exp(logvar))) from the prior p = N(0, I), in closed form.

    KL = 1/2 * sum_l (mu_l^2 + exp(logvar_l) - 1 - logvar_l), one number per example (summed over the L latent
    dimensions, never averaged). It is 0 exactly when mu = 0 and logvar = 0, and positive otherwise.

    Args:
        mu: (N, L) means.  logvar: (N, L) log-variances (any real number).
    Returns:
        kl: (N,) nats.  cache: for kl_divergence_backward.
    """
    ### BEGIN SOLUTION
    var = np.exp(logvar)  # (N, L)
    kl = 0.5 * np.sum(mu ** 2 + var - 1.0 - logvar, axis=1)  # (N,)
    ### END SOLUTION
    cache = (mu, logvar)
    return kl, cache


def kl_divergence_backward(dkl, cache):
    """Gradients of kl_divergence.

    Args:
        dkl: (N,) upstream gradient, one number per example.  cache: from kl_divergence.
    Returns:
        dmu: (N, L).  dlogvar: (N, L).
    """
    mu, logvar = cache
    ### BEGIN SOLUTION
    dmu = dkl[:, None] * mu  # (N, L)
    dlogvar = 0.5 * dkl[:, None] * np.expm1(logvar)  # d/dlogvar of (exp(logvar) - logvar) / 2
    ### END SOLUTION
    return dmu, dlogvar


def reparameterize(mu, logvar, eps):
    """The reparameterisation trick: a sample of N(mu, diag(exp(logvar))) as a differentiable function of mu and
    logvar, z = mu + sigma * eps with sigma = exp(logvar / 2) (the standard deviation) and eps ~ N(0, I) drawn
    outside, by the caller.

    Args:
        mu: (N, L).  logvar: (N, L).  eps: (N, L) standard normal noise.
    Returns:
        z: (N, L).  cache: for reparameterize_backward.
    """
    ### BEGIN SOLUTION
    sigma = np.exp(0.5 * logvar)  # (N, L) standard deviation
    z = mu + sigma * eps  # (N, L)
    ### END SOLUTION
    cache = (mu, logvar, eps)
    return z, cache


def reparameterize_backward(dz, cache):
    """Gradients of reparameterize with respect to mu and logvar. The noise eps is an input, not a parameter: it gets
    no gradient, so exactly two arrays come back.

    Args:
        dz: (N, L) upstream gradient.  cache: from reparameterize.
    Returns:
        dmu: (N, L).  dlogvar: (N, L).
    """
    mu, logvar, eps = cache
    ### BEGIN SOLUTION
    dmu = dz.copy()  # z = mu + ...: the identity
    dlogvar = dz * 0.5 * np.exp(0.5 * logvar) * eps  # d sigma / d logvar = sigma / 2
    ### END SOLUTION
    return dmu, dlogvar


def bernoulli_log_likelihood(x, logits):
    """log p(x | logits) of a Bernoulli decoder, summed over the D pixels: one number per example, in nats.

    With p = sigmoid(logits): sum_d x_d log p_d + (1 - x_d) log(1 - p_d). Pixels x_d are in [0, 1] (0 and 1 for
    binarised images). Stable for any logits, also |logits| of 1e3: never compute log(sigmoid(logits)) directly
    (sigmoid(40) rounds to 1.0 in float64 and log(1 - 1.0) is -inf); use x * l - softplus(l) with
    softplus(l) = log(1 + exp(l)) = max(l, 0) + log1p(exp(-|l|)).

    Args:
        x: (N, D) pixels in [0, 1].  logits: (N, D) decoder outputs before the sigmoid.
    Returns:
        log_lik: (N,) nats (at most 0 for binary x).  cache: for bernoulli_log_likelihood_backward.
    """
    ### BEGIN SOLUTION
    softplus = np.maximum(logits, 0.0) + np.log1p(np.exp(-np.abs(logits)))  # (N, D) log(1 + e^l), stable
    log_lik = np.sum(x * logits - softplus, axis=1)  # (N,)
    ### END SOLUTION
    cache = (x, logits)
    return log_lik, cache


def bernoulli_log_likelihood_backward(dlog_lik, cache):
    """Gradient of bernoulli_log_likelihood with respect to the logits (the pixels x are data: no gradient).

    Args:
        dlog_lik: (N,) upstream gradient.  cache: from bernoulli_log_likelihood.
    Returns:
        dlogits: (N, D).
    """
    x, logits = cache
    ### BEGIN SOLUTION
    e = np.exp(-np.abs(logits))  # (N, D), in (0, 1]: no overflow
    sigmoid = np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # stable sigmoid(logits)
    dlogits = dlog_lik[:, None] * (x - sigmoid)  # (N, D)
    ### END SOLUTION
    return dlogits


def elbo(x, logits, mu, logvar):
    """The evidence lower bound of each example, in nats: ELBO = log p(x | z) - KL(q(z | x) || p(z)).

    `logits` are the decoder's outputs for one sample z of q(z | x) (made with reparameterize), so the first term
    is a one-sample estimate. ELBO <= log p(x); the training loss of a VAE is its negative, averaged over the
    batch.

    Args:
        x: (N, D) pixels in [0, 1].  logits: (N, D) decoder outputs for z.  mu, logvar: (N, L) encoder outputs.
    Returns:
        elbo: (N,) nats, one per example (summed over pixels and latent dimensions).
    """
    ### BEGIN SOLUTION
    log_lik, _ = bernoulli_log_likelihood(x, logits)
    kl, _ = kl_divergence(mu, logvar)
    return log_lik - kl
    ### END SOLUTION
