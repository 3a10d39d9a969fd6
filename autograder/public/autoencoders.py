"""The checks of topic 5 (autoencoders), one per task, and its public suite (`dlcore check autoencoders`).

Expected values come from `ctx.oracle`: PyTorch in float64 here (torch.distributions, binary_cross_entropy_with_logits
and autograd; never the reference solution), the reference in the hidden suite (autograder/hidden/autoencoders.py),
which runs the same checks on other shapes, per-student inputs and the full training runs. Some expectations need
no oracle at all: the Monte Carlo estimate of the KL, the statistics and gradients of the reparameterisation, and
the figures, which must show the student's *own* decoder outputs and encoder means. The training metrics (nats per
image) are computed here, from the student's encoder and decoder outputs, never by the student's code.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from autograder.check_kit import fit, grad_parts, one_panel
from autograder.checks import CheckFailed, Checks, forward_part, train_to_bar
from toolkit.parity import torch_pair

CHECKS = Checks("autoencoders")


# -- the oracle: PyTorch with the reference's contract -------------------------------------------------------------


def _t(a, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def torch_kl(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over the last axis, by torch.distributions."""
    return kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), 1.0)).sum(-1)


def torch_log_lik(x, logits):
    """log Bernoulli(x | sigmoid(logits)) summed over the last axis."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def _sample(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def _mlp(params: dict, x, first: str, second: str):
    """second(relu(first(x))) with nn.Linear's (out, in) weights given as arrays or tensors."""
    p = {k: torch.as_tensor(v) for k, v in params.items()}
    h = torch.relu(x @ p[f"{first}.weight"].T + p[f"{first}.bias"])
    return h @ p[f"{second}.weight"].T + p[f"{second}.bias"]


class TorchOracle:
    """Expected values from PyTorch, with the contract of solutions/autoencoders: the vae_math pairs, and the models'
    outputs, losses and bounds on given parameters (numpy_params names); no reference figures."""

    figure = None

    def __init__(self, ctx):
        pass

    kl_divergence, kl_divergence_backward = map(staticmethod, torch_pair(torch_kl))
    reparameterize, reparameterize_backward = map(staticmethod, torch_pair(_sample, ("mu", "logvar")))
    bernoulli_log_likelihood, bernoulli_log_likelihood_backward = map(staticmethod,
                                                                      torch_pair(torch_log_lik, ("logits",)))

    @staticmethod
    def elbo(x, logits, mu, logvar):
        return (torch_log_lik(_t(x), _t(logits)) - torch_kl(_t(mu), _t(logvar))).numpy()

    # -- the models, on given parameters --
    @staticmethod
    def ae_outputs(params, x):
        """(codes z, logits of the reconstruction) of an Autoencoder with `params`."""
        z = _mlp(params, _t(x), "enc1", "enc2")
        return z.numpy(), _mlp(params, z, "dec1", "dec2").numpy()

    @staticmethod
    def vae_encode(params, x):
        p = {k: torch.as_tensor(v) for k, v in params.items()}
        h = torch.relu(_t(x) @ p["enc1.weight"].T + p["enc1.bias"])
        return tuple((h @ p[f"enc_{s}.weight"].T + p[f"enc_{s}.bias"]).numpy() for s in ("mu", "logvar"))

    @staticmethod
    def decode(params, z):
        return _mlp(params, _t(z), "dec1", "dec2").numpy()

    @staticmethod
    def reconstruction_loss(x, logits):
        """(value, [dlogits]) of the mean over the batch of the cross-entropy summed over pixels."""
        lg = _t(logits, grad=True)
        loss = -torch_log_lik(_t(x), lg).mean()
        loss.backward()
        return loss.item(), [lg.grad.numpy()]

    @staticmethod
    def negative_elbo(x, logits, mu, logvar, beta):
        """(value, [dlogits, dmu, dlogvar]) of mean(-log p(x | z) + beta * KL)."""
        lg, m, lv = _t(logits, True), _t(mu, True), _t(logvar, True)
        loss = (-torch_log_lik(_t(x), lg) + beta * torch_kl(m, lv)).mean()
        loss.backward()
        return loss.item(), [lg.grad.numpy(), m.grad.numpy(), lv.grad.numpy()]

    @staticmethod
    def importance_weighted_bound(params, x, eps):
        """log mean_k p(x | z_k) p(z_k) / q(z_k | x) with z_k = mu + sigma eps_k, by torch.distributions."""
        mu, logvar = (_t(a) for a in TorchOracle.vae_encode(params, x))
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = q.loc + q.scale * _t(eps)  # (K, N, L)
        logits = _mlp(params, z, "dec1", "dec2")  # (K, N, D)
        prior = Normal(torch.zeros(()), torch.ones(()))
        log_w = torch_log_lik(_t(x).expand_as(logits), logits) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
        return (torch.logsumexp(log_w, 0) - math.log(len(eps))).numpy()


# -- inputs -------------------------------------------------------------------------------------------------------


def _gauss(ctx, n, latent, spread=1.5) -> dict:
    """mu and logvar (N, L): logvar in [-spread, spread] on both sides of 0."""
    return {"mu": ctx.rng.standard_normal((n, latent)), "logvar": ctx.rng.uniform(-spread, spread, (n, latent))}


def _pixels(ctx, n, d, binary=True) -> np.ndarray:
    return (ctx.rng.random((n, d)) < 0.3).astype(np.float64) if binary else ctx.rng.random((n, d))


def _large_logits(ctx, n, d) -> np.ndarray:
    """Logits of size 1e3 of both signs (and a few of size 40, where sigmoid rounds to 1 in float64)."""
    logits = ctx.rng.choice([-1.0, 1.0], (n, d)) * ctx.rng.uniform(30.0, 1000.0, (n, d))
    logits[:, 0] = 40.0
    return logits


def _sizes(ctx) -> tuple[int, int, int]:
    """(N, L, D) for the vae_math checks."""
    return ctx.pick((4, 3, 10), (5, 4, 12))


# -- vae_math.py: the KL term --------------------------------------------------------------------------------------


def _monte_carlo_kl(ctx, mu, logvar, samples: int):
    """(estimate, standard error) per example of E_q[log q(z) - log p(z)] from `samples` draws of z ~ q."""
    sigma = np.exp(0.5 * logvar)
    eps = np.random.default_rng([ctx.seed, 5]).standard_normal((samples, *mu.shape))  # (S, N, L)
    z = mu + sigma * eps
    log_ratio = np.sum(-0.5 * eps ** 2 - 0.5 * logvar + 0.5 * z ** 2, axis=-1)  # log q(z) - log p(z), (S, N)
    return log_ratio.mean(axis=0), log_ratio.std(axis=0) / np.sqrt(samples)


@CHECKS.task("autoencoders.kl_divergence")
def _(ctx):
    n, latent, _ = _sizes(ctx)
    cases = [("random mu and logvar: one value per example, summed over the latent dimensions",
              _gauss(ctx, n, latent)),
             ("L = 1, and mu = 0 with logvar = 0 (a KL of exactly 0) in the first row", _gauss(ctx, n, 1)),
             ("large log-variances (|logvar| up to 8)", _gauss(ctx, n, latent, spread=8.0))]
    cases[1][1]["mu"][0], cases[1][1]["logvar"][0] = 0.0, 0.0
    for label, inp in cases:
        forward_part(ctx, "kl_divergence", inp, ctx.oracle.kl_divergence(**inp)[0], label=label)
    with ctx.part("agrees with a Monte Carlo estimate mean(log q(z) - log p(z)), z ~ q, within 5 standard errors"):
        inp = _gauss(ctx, n, latent)
        kl, _ = ctx.call("kl_divergence", *inp.values(), keep=(1,), returns=("array", "kept"))
        kl = ctx.array("kl", kl, (n,))
        estimate, se = _monte_carlo_kl(ctx, inp["mu"], inp["logvar"], 40_000)
        worst = int(np.argmax(np.abs(kl - estimate) / se))
        ctx.expect(bool(np.all(np.abs(kl - estimate) <= 5 * se + ctx.tol.formula_rtol)),
                   f"kl[{worst}] = {kl[worst]:.5g}, but the Monte Carlo estimate is {estimate[worst]:.5g} +- "
                   f"{se[worst]:.2g} (40,000 samples of z ~ N(mu, exp(logvar))): check the sign and the 1/2, and that "
                   f"exp(logvar) is the variance")


@CHECKS.task("autoencoders.kl_divergence_backward")
def _(ctx):
    n, latent, _ = _sizes(ctx)
    grad_parts(ctx, "kl_divergence", "kl_divergence_backward", _gauss(ctx, n, latent), ("mu", "logvar"))


# -- the reparameterisation trick ------------------------------------------------------------------------------------


def _reparam_inputs(ctx, n, latent, spread=1.5) -> dict:
    return dict(_gauss(ctx, n, latent, spread), eps=ctx.rng.standard_normal((n, latent)))


@CHECKS.task("autoencoders.reparameterize")
def _(ctx):
    n, latent, _ = _sizes(ctx)
    for label, inp in (("z = mu + exp(logvar / 2) * eps", _reparam_inputs(ctx, n, latent)),
                       ("large log-variances: exp(logvar / 2) is the standard deviation, exp(logvar) the variance",
                        _reparam_inputs(ctx, n, latent, spread=6.0))):
        forward_part(ctx, "reparameterize", inp, ctx.oracle.reparameterize(**inp)[0], label=label)


@CHECKS.task("autoencoders.reparameterize_backward")
def _(ctx):
    n, latent, _ = _sizes(ctx)
    grad_parts(ctx, "reparameterize", "reparameterize_backward", _reparam_inputs(ctx, n, latent), ("mu", "logvar"))


# -- the Bernoulli log-likelihood and the ELBO -----------------------------------------------------------------------


@CHECKS.task("autoencoders.bernoulli_log_likelihood")
def _(ctx):
    n, _, d = _sizes(ctx)
    cases = [("binary pixels: one value per example, summed over the pixels",
              {"x": _pixels(ctx, n, d), "logits": 2 * ctx.rng.standard_normal((n, d))}),
             ("grey pixels in [0, 1]", {"x": _pixels(ctx, n, d, binary=False),
                                        "logits": 2 * ctx.rng.standard_normal((n, d))}),
             ("logits of size 40 to 1e3 (stability: no log(0), no overflow)",
              {"x": _pixels(ctx, n, d), "logits": _large_logits(ctx, n, d)})]
    for label, inp in cases:
        forward_part(ctx, "bernoulli_log_likelihood", inp, ctx.oracle.bernoulli_log_likelihood(**inp)[0],
                     label=label)


@CHECKS.task("autoencoders.bernoulli_log_likelihood_backward")
def _(ctx):
    n, _, d = _sizes(ctx)
    inp = {"x": _pixels(ctx, n, d, binary=False), "logits": 2 * ctx.rng.standard_normal((n, d))}
    grad_parts(ctx, "bernoulli_log_likelihood", "bernoulli_log_likelihood_backward", inp, ("logits",))
    with ctx.part("dlogits at logits of size 40 to 1e3 (stability)"):
        inp = {"x": _pixels(ctx, n, d), "logits": _large_logits(ctx, n, d)}
        _, cache = ctx.call("bernoulli_log_likelihood", *inp.values(), keep=(1,), returns=("array", "kept"))
        dout = ctx.rng.standard_normal(n)
        got = ctx.call("bernoulli_log_likelihood_backward", dout, cache, returns="array")
        want = ctx.oracle.bernoulli_log_likelihood_backward(dout, ctx.oracle.bernoulli_log_likelihood(**inp)[1])
        ctx.compare_grad("dlogits", got, want)  # central differences at 1e3 are rounding noise: compare only


def _elbo_inputs(ctx, n, latent, d, logits=None) -> dict:
    g = _gauss(ctx, n, latent)
    return {"x": _pixels(ctx, n, d), "logits": 2 * ctx.rng.standard_normal((n, d)) if logits is None else logits,
            "mu": g["mu"], "logvar": g["logvar"]}


@CHECKS.task("autoencoders.elbo")
def _(ctx):
    n, latent, d = _sizes(ctx)
    for label, inp in (("log p(x | z) - KL per example, in nats", _elbo_inputs(ctx, n, latent, d)),
                       ("logits of size 1e3 (stability)", _elbo_inputs(ctx, n, latent, d, _large_logits(ctx, n, d)))):
        with ctx.part(label):
            got = ctx.call("elbo", *inp.values(), returns="array")
            ctx.compare("elbo", got, ctx.oracle.elbo(**inp))


# -- models.py: the plain autoencoder --------------------------------------------------------------------------------


def _model(ctx, cls: str, d: int, h: int, latent: int, **kw):
    """A float64 model of the student's class (seeded per student) and its parameters as NumPy arrays."""
    args = (d, h, latent, kw["beta"]) if cls == "VAE" else (d, h, latent)
    model = ctx.call(cls, *args, "float64", int(ctx.rng.integers(1 << 31)), module="models", keep=True)
    params = ctx.call("numpy_params", model, module="models", returns="dict")
    return model, params


def _numpy_call(ctx, model, method, *arrays, returns="array", seed=None):
    return ctx.call("numpy_call", model, method, *arrays, seed=seed, module="models", returns=returns)


def _model_sizes(ctx) -> tuple[int, int, int, int]:
    """(N, D, H, L) for the model checks."""
    return ctx.pick((5, 12, 7, 3), (6, 15, 9, 4))


@CHECKS.task("autoencoders.Autoencoder")
def _(ctx):
    n, d, h, latent = _model_sizes(ctx)
    model, params = _model(ctx, "Autoencoder", d, h, latent)
    x = _pixels(ctx, n, d, binary=False)
    want_z, want_logits = ctx.oracle.ae_outputs(params, x)
    with ctx.part("encode: the codes z = enc2(relu(enc1(x)))"):
        ctx.compare("z", _numpy_call(ctx, model, "encode", x), want_z)
    with ctx.part("decode: the logits dec2(relu(dec1(z))) (no sigmoid)"):
        z = ctx.rng.standard_normal((n, latent))
        ctx.compare("logits", _numpy_call(ctx, model, "decode", z), ctx.oracle.decode(params, z))
    with ctx.part("forward: decode(encode(x))"):
        ctx.compare("logits", _numpy_call(ctx, model, "forward", x), want_logits)


def _loss_parts(ctx, model, method: str, cases: list, want_fn, names: tuple[str, ...]) -> None:
    """One part per case: the student's loss value and its gradients `names` (from call_and_grads, in the order of
    the method's arrays after x) equal the oracle's."""
    for label, arrays in cases:
        with ctx.part(label):
            value, grads = ctx.call("call_and_grads", model, method, *arrays, module="models",
                                    returns=("any", "list"))
            want_value, want_grads = want_fn(*arrays)
            ctx.compare("loss", value, want_value)
            for name, got, want in zip(names, list(grads)[1:], want_grads):
                if got is None:
                    ctx.fail(f"no gradient reached {name}: compute the loss from it with torch operations (no "
                             f".detach(), .item() or NumPy on the way)")
                ctx.compare_grad("d" + name, got, want)


@CHECKS.task("autoencoders.Autoencoder.reconstruction_loss")
def _(ctx):
    n, d, h, latent = _model_sizes(ctx)
    model, _ = _model(ctx, "Autoencoder", d, h, latent)
    cases = [("binary pixels: summed over pixels, averaged over the batch; and dlogits",
              (_pixels(ctx, n, d), 2 * ctx.rng.standard_normal((n, d)))),
             ("grey pixels, N = 1", (_pixels(ctx, 1, d, binary=False), 2 * ctx.rng.standard_normal((1, d)))),
             ("logits of size 40 to 1e3 (stability)", (_pixels(ctx, n, d), _large_logits(ctx, n, d)))]
    _loss_parts(ctx, model, "reconstruction_loss", cases, ctx.oracle.reconstruction_loss, ("logits",))


# -- the VAE -------------------------------------------------------------------------------------------------------


@CHECKS.task("autoencoders.VAE")
def _(ctx):
    n, d, h, latent = _model_sizes(ctx)
    model, params = _model(ctx, "VAE", d, h, latent, beta=1.0)
    x = _pixels(ctx, n, d, binary=False)
    want_mu, want_logvar = ctx.oracle.vae_encode(params, x)
    with ctx.part("encode: mu = enc_mu(h) and logvar = enc_logvar(h) with h = relu(enc1(x))"):
        mu, logvar = _numpy_call(ctx, model, "encode", x, returns=("array", "array"))
        ctx.compare("mu", mu, want_mu)
        ctx.compare("logvar", logvar, want_logvar)
    with ctx.part("decode: the logits dec2(relu(dec1(z))) of the Bernoulli means (no sigmoid)"):
        z = ctx.rng.standard_normal((n, latent))
        ctx.compare("logits", _numpy_call(ctx, model, "decode", z), ctx.oracle.decode(params, z))
    with ctx.part("forward: (decode(z), mu, logvar) for the z that reparameterize draws"):
        seed = int(ctx.rng.integers(1 << 31))
        z = _numpy_call(ctx, model, "reparameterize", want_mu, want_logvar, seed=seed)  # the same noise as forward's
        logits, mu, logvar = _numpy_call(ctx, model, "forward", x, seed=seed, returns=("array", "array", "array"))
        ctx.compare("mu", mu, want_mu)
        ctx.compare("logvar", logvar, want_logvar)
        z = ctx.array("z", z, want_mu.shape)
        ctx.compare("logits", logits, ctx.oracle.decode(params, z))


@CHECKS.task("autoencoders.VAE.reparameterize")
def _(ctx):
    n, d, h, latent = _model_sizes(ctx)
    model, _ = _model(ctx, "VAE", d, h, latent, beta=1.0)
    big = ctx.pick(1500, 2000)
    inp = _gauss(ctx, big, latent, spread=3.0)
    sigma = np.exp(0.5 * inp["logvar"])
    draws = []
    with ctx.part("z ~ N(mu, exp(logvar)): (z - mu) / exp(logvar / 2) has mean 0 and standard deviation 1"):
        z = ctx.array("z", _numpy_call(ctx, model, "reparameterize", inp["mu"], inp["logvar"]), inp["mu"].shape)
        e = (z - inp["mu"]) / sigma
        draws.append(e)
        size = e.size
        ctx.expect(abs(e.mean()) <= 5 / np.sqrt(size), f"the standardised samples have mean {e.mean():.3g}, expected "
                                                       f"0 (+- {5 / np.sqrt(size):.2g})")
        ctx.expect(abs(e.std() - 1) <= ctx.tol.stat_rtol, f"the standardised samples (z - mu) / exp(logvar / 2) have "
                                                          f"standard deviation {e.std():.3g}, expected 1: the standard "
                                                          f"deviation is exp(logvar / 2), the variance exp(logvar)")
        ratio = np.std(e[np.abs(inp["logvar"]) > 2]) / max(np.std(e[np.abs(inp["logvar"]) < 1]), 1e-12)
        ctx.expect(abs(ratio - 1) <= 2 * ctx.tol.stat_rtol, f"the spread of the samples depends on logvar in the "
                                                            f"wrong way (ratio {ratio:.3g} between large and small "
                                                            f"|logvar|)")
    with ctx.part("fresh noise at every call, drawn independently for every entry"):
        if not draws:
            ctx.fail("the first part failed; fix it first")
        z2 = ctx.array("z", _numpy_call(ctx, model, "reparameterize", inp["mu"], inp["logvar"]), inp["mu"].shape)
        e2 = (z2 - inp["mu"]) / sigma
        if not e2.std() > 0:
            ctx.fail("z equals mu: the noise is zero; draw eps ~ N(0, I) with torch.randn_like(mu)")
        corr = float(np.corrcoef(draws[0].ravel(), e2.ravel())[0, 1])
        ctx.expect(abs(corr) < 0.1, f"two calls drew correlated noise (correlation {corr:.3f}): draw fresh noise with "
                                    f"torch.randn_like(mu) at every call, not from a fixed seed")
        rows = float(np.corrcoef(e2[:-1].ravel(), e2[1:].ravel())[0, 1])
        ctx.expect(abs(rows) < 0.1, f"the examples of a batch share their noise (correlation {rows:.3f} between "
                                    f"rows): draw one value per entry, of shape (N, L)")
    with ctx.part("gradients reach mu and logvar: dmu = dz, dlogvar = dz * (z - mu) / 2"):
        small = _gauss(ctx, n, latent)
        dz = ctx.rng.standard_normal((n, latent))
        z, grads = ctx.call("call_and_grads", model, "reparameterize", small["mu"], small["logvar"], dout=dz,
                            seed=int(ctx.rng.integers(1 << 31)), module="models", returns=("array", "list"))
        z = ctx.array("z", z, (n, latent))
        for name, got, want in (("mu", grads[0], dz), ("logvar", grads[1], 0.5 * dz * (z - small["mu"]))):
            if got is None:
                ctx.fail(f"no gradient reached {name}: sample as z = mu + exp(logvar / 2) * eps with eps drawn by "
                         f"torch.randn_like (torch.normal(mu, std) and .sample() are not differentiable)")
            ctx.compare_grad("d" + name, got, want)


@CHECKS.task("autoencoders.VAE.negative_elbo")
def _(ctx):
    n, d, h, latent = _model_sizes(ctx)
    beta = ctx.pick(0.5, 4.0)
    cases = {}
    for b in (1.0, beta):
        model, _ = _model(ctx, "VAE", d, h, latent, beta=b)
        cases[b] = model

    def arrays(logits=None):
        g = _gauss(ctx, n, latent)
        return (_pixels(ctx, n, d), 2 * ctx.rng.standard_normal((n, d)) if logits is None else logits, g["mu"],
                g["logvar"])

    def want(b):
        return lambda *a: ctx.oracle.negative_elbo(*a, b)

    names = ("logits", "mu", "logvar")
    _loss_parts(ctx, cases[1.0], "negative_elbo",
                [("beta = 1: mean over the batch of (cross-entropy summed over pixels + KL summed over latent "
                  "dimensions); its gradients", arrays())], want(1.0), names)
    _loss_parts(ctx, cases[beta], "negative_elbo", [(f"beta = {beta:g}: the KL term weighted by self.beta",
                                                     arrays())], want(beta), names)
    _loss_parts(ctx, cases[1.0], "negative_elbo", [("logits of size 40 to 1e3 (stability)",
                                                    arrays(_large_logits(ctx, n, d)))], want(1.0), names)


@CHECKS.task("autoencoders.importance_weighted_bound")
def _(ctx):
    n, d, h, latent = _model_sizes(ctx)
    model, params = _model(ctx, "VAE", d, h, latent, beta=1.0)
    x = _pixels(ctx, n, d)
    for k in ctx.pick((1, 5), (1, 7)):
        with ctx.part(f"K = {k}, given noise eps (K, N, L): log mean_k p(x | z_k) p(z_k) / q(z_k | x)"):
            eps = ctx.rng.standard_normal((k, n, latent))
            got = ctx.call("importance_weighted_bound", model, x, k, eps, module="models", returns="array")
            ctx.compare("bound", got, ctx.oracle.importance_weighted_bound(params, x, eps))
    with ctx.part("log-weights of -2000 and below (stability: a log-sum-exp, not log(mean(exp)))"):
        x[:, 0] = 1.0  # pixel 0 is on in every image, and the decoder gives it probability e^-2000
        sharp = dict(params, **{"dec2.bias": np.where(np.arange(d) == 0, -2000.0, params["dec2.bias"])})
        ctx.call("load_numpy_params", model, sharp, module="models")
        k = ctx.pick(4, 6)
        eps = ctx.rng.standard_normal((k, n, latent))
        want = ctx.oracle.importance_weighted_bound(sharp, x, eps)
        got = ctx.call("importance_weighted_bound", model, x, k, eps, module="models", returns="array")
        got = ctx.array("bound", got, want.shape)
        if not np.all(np.isfinite(got)):
            ctx.fail(f"the bound has {int(np.sum(~np.isfinite(got)))} infinite or NaN values (expected about "
                     f"{want.mean():.0f} nats): exp of log-weights this small underflows to 0; use torch.logsumexp")
        ctx.compare("bound", got, want)


# -- training ---------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def binarized(name: str, train: int, test: int):
    """The first `train` / `test` images of an image set as flat binary pixels (grey level > 127), float64."""
    from toolkit.data import load

    d = load(name)
    return tuple((d[f"x_{s}"][:m].reshape(m, -1) > 127).astype(np.float64) for s, m in (("train", train),
                                                                                      ("test", test)))


def _bce(x, logits) -> np.ndarray:
    """Cross-entropy of binary pixels x under Bernoulli(sigmoid(logits)), summed per example (stable)."""
    return np.sum(np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits))), axis=1)


def _negative_elbo(ctx, model, x, draws: int = 1) -> np.ndarray:
    """The negative ELBO per example (nats), computed here from the student's encoder and decoder outputs: the
    cross-entropy of one sample z ~ q(z | x) (averaged over `draws` samples) plus the closed-form KL."""
    mu, logvar = _numpy_call(ctx, model, "encode", x, returns=("array", "array"))
    if mu.ndim != 2 or len(mu) != len(x) or logvar.shape != mu.shape:
        raise CheckFailed(f"encode returned mu {mu.shape} and logvar {logvar.shape}; expected ({len(x)}, L) each")
    kl = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - 1 - logvar, axis=1)
    rng = np.random.default_rng([ctx.seed, 11])
    rec = np.zeros(len(x))
    for _ in range(draws):
        logits = _numpy_call(ctx, model, "decode", mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape))
        rec += _bce(x, ctx.array("logits", logits, x.shape)) / draws
    return rec + kl


def _train_and_score(ctx, trained: dict):
    """The bar run of each model: train the student's model on binarised MNIST in the worker, score it here."""
    def run_model(kind: str, bar):
        x_tr, x_te = binarized(bar.dataset, bar.train_size, bar.test_size)
        seed = int(ctx.seed % 100_000)
        model = fit(ctx, bar, kind, "train", (x_tr,), module="models",
                    model_keys=("hidden_dim", "latent_dim", "beta", "dtype"), own_keys=("iwae_k", "iwae_examples"),
                    model_kw={"input_dim": x_tr.shape[1], "seed": seed}, train_kw={"seed": seed})
        if kind == "VAE":
            trained["vae"] = (model, bar, x_te)
            return float(np.mean(_negative_elbo(ctx, model, x_te)))
        logits = ctx.array("logits", _numpy_call(ctx, model, "forward", x_te), x_te.shape)
        return float(np.mean(_bce(x_te, logits)))
    return run_model


@CHECKS.task("autoencoders.train")
def _(ctx):
    with ctx.part("history: one loss per Adam step, the loss goes down"):
        size, batch, epochs, d = 200, 50, 3, 16
        x = (ctx.rng.random((size, d)) < np.linspace(0.1, 0.9, d)).astype(np.float64)  # per-pixel rates to learn
        model = ctx.call("VAE", d, 8, 2, 1.0, "float64", int(ctx.rng.integers(1 << 31)), module="models", keep=True)
        hist = ctx.call("train", model, x, epochs, batch, 0.02, 0, module="models", returns={"loss": "list"})
        loss = ctx.array('history["loss"]', np.asarray(hist["loss"], dtype=np.float64))
        steps = epochs * size // batch
        ctx.expect(loss.shape == (steps,), f'history["loss"] has {loss.size} entries, expected one per step: {steps} '
                                           f"({epochs} epochs of {size // batch} mini-batches of {batch})")
        ctx.expect(bool(np.all(np.isfinite(loss)) and loss[-3:].mean() < loss[:3].mean() - 0.5),
                   f"the training loss does not go down ({np.round(loss, 2).tolist()})")
    trained: dict = {}
    run = _train_and_score(ctx, trained)
    train_to_bar(ctx, "autoencoder", lambda bar, _: run("Autoencoder", bar))
    train_to_bar(ctx, "vae", lambda bar, _: run("VAE", bar))
    with ctx.part("the trained VAE's importance-weighted bound is no worse than its ELBO"):
        if "vae" not in trained:
            ctx.fail("the VAE was not trained (see above)")
        model, bar, x_te = trained["vae"]
        k, m = bar.settings["iwae_k"], bar.settings["iwae_examples"]
        elbo = -float(np.mean(_negative_elbo(ctx, model, x_te[:m], draws=5)))
        bound = ctx.call("importance_weighted_bound", model, x_te[:m], k, module="models", returns="array")
        if bound.shape != (m,) or bound.dtype.kind != "f":
            ctx.fail(f"importance_weighted_bound returned {bound.shape} {bound.dtype}; expected ({m},) floats")
        iwae = float(np.mean(bound.astype(np.float64)))
        ctx.metric(f"vae.iwae_{k}_nats", iwae)
        ctx.metric("vae.elbo_nats", elbo)
        ctx.expect(bool(np.isfinite(iwae) and iwae >= elbo - 1.0),
                   f"the {k}-sample bound {iwae:.2f} nats is below the ELBO {elbo:.2f} (first {m} test images): it "
                   f"should be at least as large (it tends to log p(x) as K grows)")


# -- figures ---------------------------------------------------------------------------------------------------------


def _sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))  # stable for any size


def _panels_by_position(ctx, fig, nrows: int, ncols: int) -> dict:
    """(row, col) -> the panel (axes) there; fails unless the figure is an nrows x ncols grid of axes."""
    panels = fig["panels"]
    grid = fig.get("grid") or {}
    if (grid.get("nrows"), grid.get("ncols")) != (nrows, ncols) or len(panels) != nrows * ncols:
        ctx.fail(f"expected a {nrows} x {ncols} grid of axes (plt.subplots({nrows}, {ncols})); the figure has "
                 f"{len(panels)} axes in a {grid.get('nrows')} x {grid.get('ncols')} grid")
    out = {}
    for ax in panels:
        g = ax.get("grid") if isinstance(ax.get("grid"), dict) else {}
        out[(g.get("row"), g.get("col"))] = ax
    return out


def _image(ctx, ax, where: str, shape) -> np.ndarray:
    images = [im for im in ax["images"] if isinstance(im, dict) and im.get("array") is not None]
    if len(images) != 1:
        ctx.fail(f"the axes at {where} has {len(images)} images; expected one (imshow)")
    a = images[0]["array"]
    if a.shape != tuple(shape):
        ctx.fail(f"the image at {where} has shape {a.shape}; expected {tuple(shape)}")
    return a


def _decoded(ctx, model, codes, shape) -> np.ndarray:
    """The student's decoder outputs sigmoid(decode(codes)) as images (the figures must show exactly these)."""
    logits = ctx.array("logits", _numpy_call(ctx, model, "decode", codes), (len(codes), int(np.prod(shape))))
    return _sigmoid(logits).reshape(len(codes), *shape)


def _figure_model(ctx, latent: int, cls: str = "VAE"):
    """A float64 model with 28 x 28 images and the student's own layers (untrained: varied images)."""
    return _model(ctx, cls, 784, ctx.pick(12, 16), latent, **({"beta": 1.0} if cls == "VAE" else {}))


@CHECKS.task("autoencoders.plot_latent_traversal")
def _(ctx):
    latent, rows, cols = ctx.pick((3, 2, 5), (4, 2, 6))
    shape = (28, 28)
    model, params = _figure_model(ctx, latent)
    z = ctx.rng.standard_normal((rows, latent))
    dim = int(ctx.rng.integers(latent))
    values = np.linspace(-3.0, 3.0, cols)
    codes = np.repeat(z[:, None, :], cols, axis=1)  # (R, M, L)
    codes[:, :, dim] = values
    expected_fig = ctx.oracle.figure("plot_latent_traversal", params, z, dim, values) if ctx.oracle.figure else None
    got = panels = None
    with ctx.part(f"a {rows} x {cols} grid of axes (rows: base codes, columns: values), one image each"):
        got = ctx.figure("plot_latent_traversal", ctx.call("plot_latent_traversal", model, z, dim, values,
                                                           module="plots"), expected_fig)
        panels = _panels_by_position(ctx, got, rows, cols)
        for (r, c), ax in panels.items():
            _image(ctx, ax, f"row {r}, column {c}", shape)
    with ctx.part(f"image (r, c) is the decoder's output for z[r] with only z[r][{dim}] set to values[c]", 2):
        if panels is None:
            ctx.fail("no figure (see above)")
        want = _decoded(ctx, model, codes.reshape(-1, latent), shape).reshape(rows, cols, *shape)
        tol = {"rtol": ctx.tol.formula_rtol, "atol": ctx.tol.exact_rtol}
        wrong = [(r, c) for (r, c), ax in panels.items()
                 if not np.allclose(_image(ctx, ax, f"({r}, {c})", shape), want[r, c], **tol)]
        if wrong:
            every = np.broadcast_to(values[None, :, None], codes.shape)  # every dimension set to the value
            hint = ""
            r, c = wrong[0]
            shown = _image(ctx, panels[(r, c)], "", shape)
            for text, alt in (("every latent dimension was set to the value, not only dimension dim", every),
                              ("the value was added to every latent dimension", z[:, None, :] + values[None, :, None])):
                if np.allclose(shown, _decoded(ctx, model, alt[r, c][None], shape)[0], **tol):
                    hint = f": {text}"
            ctx.fail(f"{len(wrong)} of {rows * cols} images differ from the decoder's output for their code; first at "
                     f"row {r}, column {c}{hint}")
    with ctx.part("every image on the same scale: a gray colormap with vmin = 0 and vmax = 1"):
        if panels is None:
            ctx.fail("no figure (see above)")
        for (r, c), ax in panels.items():
            im = [i for i in ax["images"] if isinstance(i, dict)][0]
            ctx.expect(im.get("vmin") == 0.0 and im.get("vmax") == 1.0,
                       f"the image at row {r}, column {c} is scaled from {im.get('vmin')} to {im.get('vmax')}: pass "
                       f"vmin=0, vmax=1, or each image is stretched on its own and the traversal cannot be compared")


@CHECKS.task("autoencoders.plot_latent_scatter")
def _(ctx):
    latent, n, classes = ctx.pick((2, 30, 3), (3, 45, 4))
    model, params = _figure_model(ctx, latent)
    x = _pixels(ctx, n, 784, binary=False)
    y = np.arange(n) % classes
    ctx.rng.shuffle(y)
    expected_fig = ctx.oracle.figure("plot_latent_scatter", params, x, y) if ctx.oracle.figure else None
    points = colors = ax = None
    with ctx.part("the points are the encoder means (mu[:, 0], mu[:, 1]) of all the examples", 2):
        mu, _ = _numpy_call(ctx, model, "encode", x, returns=("array", "array"))
        want = ctx.array("mu", mu, (n, latent))[:, :2]
        fig = ctx.figure("plot_latent_scatter", ctx.call("plot_latent_scatter", model, x, y, module="plots"),
                         expected_fig)
        ax = one_panel(ctx, fig, "the scatter plot")
        sets = [s for s in ax["scatter"] if isinstance(s, dict)]
        if not sets:
            ctx.fail("the axes has no scatter plot (ax.scatter)")
        points = np.concatenate([s["offsets"] for s in sets])
        colors = np.concatenate([s["facecolors"] for s in sets])
        if len(points) != n:
            ctx.fail(f"the scatter has {len(points)} points; expected one per example ({n})")
        scale = max(1.0, float(np.abs(want).max()))
        match = np.argmin(np.linalg.norm(want[:, None, :] - points[None, :, :], axis=-1), axis=1)  # (N,)
        off = np.linalg.norm(points[match] - want, axis=1) > ctx.tol.formula_rtol * scale
        if off.any() or len(set(match.tolist())) != n:
            i = int(np.argmax(off)) if off.any() else 0
            ctx.fail(f"{int(off.sum())} of {n} examples have no point at their mean (first: example {i} at "
                     f"{np.round(want[i], 4).tolist()}): plot the means mu from encode, not samples z")
        colors = colors[match]  # in the order of the examples
    with ctx.part("one colour per class: the points of a class share a colour, different classes differ"):
        if colors is None:
            ctx.fail("no points (see above)")
        by_class = {c: np.unique(np.round(colors[y == c], 6), axis=0) for c in range(classes)}
        mixed = [c for c, cols in by_class.items() if len(cols) != 1]
        ctx.expect(not mixed, f"the points of class {mixed[:1]} have {len(by_class[mixed[0]]) if mixed else 0} "
                              f"colours; colour the points by their class y")
        distinct = {tuple(cols[0]) for cols in by_class.values() if len(cols)}
        ctx.expect(len(distinct) == classes, f"{classes} classes are drawn in {len(distinct)} colours")
    with ctx.part("axis labels, and a legend or a colorbar that names the classes"):
        if ax is None:
            ctx.fail("no figure (see above)")
        ctx.expect(bool(ax["xlabel"].strip() and ax["ylabel"].strip()), "label both axes (e.g. z[0] and z[1])")
        ctx.expect(len(ax["legend"]) >= classes or bool(ax.get("has_colorbar")),
                   f"add a legend with the {classes} classes (one labelled scatter per class) or a colorbar")


@CHECKS.task("autoencoders.plot_reconstructions")
def _(ctx):
    n, latent = ctx.pick((4, 3), (5, 4))
    shape = (28, 28)
    x = _pixels(ctx, n, 784)
    for cls in ("VAE", "Autoencoder"):
        model, params = _figure_model(ctx, latent, cls)
        expected_fig = (ctx.oracle.figure("plot_reconstructions", params, x, cls=cls) if ctx.oracle.figure
                        else None)
        code = "the mean mu (no sampling)" if cls == "VAE" else "the code z"
        with ctx.part(f"{cls}: a 2 x {n} grid, the inputs in row 0 and below each the decoder's output at {code}"):
            fig = ctx.figure(f"plot_reconstructions ({cls})", ctx.call("plot_reconstructions", model, x,
                                                                       module="plots"), expected_fig)
            panels = _panels_by_position(ctx, fig, 2, n)
            codes = _numpy_call(ctx, model, "encode", x, returns=("array", "array") if cls == "VAE" else "array")
            codes = codes[0] if cls == "VAE" else codes
            want = _decoded(ctx, model, ctx.array("code", codes, (n, latent)), shape)
            for i in range(n):
                ctx.compare(f"the input image in column {i}", _image(ctx, panels[(0, i)], f"row 0, column {i}", shape),
                            x[i].reshape(shape), rtol=ctx.tol.exact_rtol)
                ctx.compare(f"the reconstruction in column {i}", _image(ctx, panels[(1, i)], f"row 1, column {i}",
                                                                        shape), want[i], rtol=ctx.tol.formula_rtol)


SUITE = CHECKS.suite("public", TorchOracle)
