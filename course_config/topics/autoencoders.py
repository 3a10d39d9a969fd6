"""Topic 5 of the course, autoencoders: its student modules, graded tasks and points, training bars and limits.

The fields are documented in course_config/schema.py.
"""
from __future__ import annotations

from course_config.schema import Limits, Task, Topic, TrainingBar


def _ae(fn: str, points: float, module: str = "vae_math", **kw) -> Task:
    return Task.named("autoencoders", fn, points, module, **kw)


# The autoencoder and the VAE (784-128-16 MLPs, float32, Adam) trained on the first 6,000 MNIST training images,
# binarised (pixel > 127), for 6 epochs; both metrics are computed by the grader from the student's encoder and
# decoder on the first 2,000 test images, in nats per image (summed over the 784 pixels): the autoencoder's
# reconstruction cross-entropy, and the VAE's negative ELBO (reconstruction of one sample z ~ q(z | x) plus the
# closed-form KL). The same check asks the trained VAE's importance_weighted_bound (K = iwae_k samples, on the first
# iwae_examples test images) to be no worse than its ELBO. About 3 s CPU per model (20-40 s wall for both on the
# shared 2-core machine). Calibration by the reference through the grader (one thread, grading seeds 0-4):
# autoencoder 91.3-94.0 nats, VAE 129.3-131.4 nats (seeds 5-7: 92.3-94.3 and 127.6-129.4); its 20-sample bound is
# 5.1-6.1 nats above its ELBO. Each bar is the worst of those runs plus about 2.5 times their spread (margin 3 nats).
# The public run is a smoke test: 2,000 images, 3 epochs, H = 64 (the reference reaches 193 and 203 nats on 500
# test images).
_AE_SETTINGS = dict(hidden_dim=128, latent_dim=16, epochs=6, batch_size=100, learning_rate=3e-3, dtype="float32")
_AE_PUBLIC = dict(_AE_SETTINGS, hidden_dim=64, epochs=3)
_MNIST_AE = TrainingBar(
    model="autoencoder", task="autoencoders.train", metric="reconstruction_nats", higher_is_better=False, bar=100.0,
    dataset="mnist", train_size=6_000, test_size=2_000, margin=3.0, time_budget_s=120.0, settings=_AE_SETTINGS,
    public=TrainingBar(model="autoencoder", task="autoencoders.train", metric="reconstruction_nats",
                       higher_is_better=False, bar=230.0, dataset="mnist", train_size=2_000, test_size=500,
                       time_budget_s=60.0, settings=_AE_PUBLIC))
_MNIST_VAE = TrainingBar(
    model="vae", task="autoencoders.train", metric="neg_elbo_nats", higher_is_better=False, bar=137.0,
    dataset="mnist", train_size=6_000, test_size=2_000, margin=3.0, time_budget_s=120.0,
    settings=dict(_AE_SETTINGS, beta=1.0, iwae_k=20, iwae_examples=500),
    public=TrainingBar(model="vae", task="autoencoders.train", metric="neg_elbo_nats", higher_is_better=False,
                       bar=240.0, dataset="mnist", train_size=2_000, test_size=500, time_budget_s=60.0,
                       settings=dict(_AE_PUBLIC, beta=1.0, iwae_k=10, iwae_examples=200)))

# What a VAE check calls of the student's model (methods keep the student's code under isolated scoring).
_VAE_PARTS = ("VAE", "autoencoders.VAE.reparameterize")

TOPIC = Topic(
    slug="autoencoders",
    number=5,
    title="Autoencoders and variational autoencoders: the ELBO in NumPy, VAEs in PyTorch on MNIST, latent figures",
    modules=("vae_math", "models", "plots"),
    notebook="autoencoders.ipynb",
    torch_modules=("models", "plots"),
    datasets=("mnist",),
    # the NumPy worker only evaluates formulas; the torch worker trains two small MLPs (about 3 s CPU each) and
    # needs torch's address space; its wall clock leaves room for a loaded machine
    limits=Limits(wall_s=120.0, memory_mb=1536, cpu_s=120),
    torch_limits=Limits(memory_mb=8192, wall_s=240.0, call_s=120.0, import_s=60.0, cpu_s=300),
    min_mutants=10,
    demo_mutants=("kl_sign_flipped", "vae_reparam_eps_zero", "traversal_varies_every_dimension"),
    tasks=(
        _ae("kl_divergence", 2, description="KL(N(mu, exp(logvar)) || N(0, I)) per example in closed form; agrees "
                                            "with a Monte Carlo estimate"),
        _ae("kl_divergence_backward", 2, depends_on=("kl_divergence",), description="dmu and dlogvar of the KL"),
        _ae("reparameterize", 1, description="z = mu + exp(logvar / 2) * eps"),
        _ae("reparameterize_backward", 2, depends_on=("reparameterize",),
            description="gradients to mu and logvar, none to the noise eps"),
        _ae("bernoulli_log_likelihood", 2, description="log p(x | logits) summed over pixels, stable for logits of "
                                                       "size 1e3"),
        _ae("bernoulli_log_likelihood_backward", 2, depends_on=("bernoulli_log_likelihood",),
            description="dlogits = x - sigmoid(logits), stable"),
        _ae("elbo", 2, depends_on=("kl_divergence", "bernoulli_log_likelihood"),
            description="log-likelihood minus KL per example, in nats"),
        _ae("Autoencoder", 2, module="models", description="encoder and decoder MLPs: codes and logits on the "
                                                           "model's own weights"),
        _ae("Autoencoder.reconstruction_loss", 1, module="models",
            description="cross-entropy summed over pixels, averaged over the batch, stable"),
        _ae("VAE", 3, module="models", category="generative", depends_on=("autoencoders.VAE.reparameterize",),
            description="encoder to (mu, logvar), Bernoulli decoder logits, forward through one sample"),
        _ae("VAE.reparameterize", 2, module="models", category="generative",
            description="fresh N(0, I) noise per entry, z distributed as N(mu, exp(logvar)), gradients to mu and "
                        "logvar"),
        _ae("VAE.negative_elbo", 3, module="models", category="generative",
            description="reconstruction + beta * KL: sums over pixels and latent dimensions, mean over the batch"),
        _ae("importance_weighted_bound", 3, module="models", category="generative", depends_on=_VAE_PARTS,
            description="the K-sample bound with a log-sum-exp, for given or fresh noise"),
        _ae("train", 4, module="models", category="generative",
            depends_on=("Autoencoder", "autoencoders.Autoencoder.reconstruction_loss",
                        "autoencoders.VAE.negative_elbo", "importance_weighted_bound") + _VAE_PARTS,
            description="Adam on both models: reconstruction and negative-ELBO bars on MNIST; the trained VAE's "
                        "importance-weighted bound is no worse than its ELBO"),
        _ae("plot_latent_traversal", 3, module="plots", category="visualization",
            description="a grid of decoded images: one latent dimension varied, the others fixed"),
        _ae("plot_latent_scatter", 2, module="plots", category="visualization",
            description="the encoder means in the plane of two latent dimensions, one colour per class"),
        _ae("plot_reconstructions", 2, module="plots", category="visualization",
            description="inputs above their reconstructions from the mean code"),
        _ae("beta_sweep", 3, category="generative", kind="manual",
            description="reconstruction against KL across beta, from your sweep (instructor graded)"),
        _ae("written_explanation", 3, category="generative", kind="manual",
            description="the ELBO, the reparameterisation trick, the latent space and sampling (instructor graded)"),
    ),
    bars=(_MNIST_AE, _MNIST_VAE),
)
