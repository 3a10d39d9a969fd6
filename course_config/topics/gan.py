"""Topic 6 of the course, gan: its student modules, graded tasks and points, training bars and limits.

The fields are documented in course_config/schema.py.
"""
from __future__ import annotations

import dataclasses

from course_config.schema import Limits, Task, Topic, TrainingBar


def _gan(fn: str, points: float, module: str = "gan_pytorch", category: str = "generative", **kw) -> Task:
    return Task.named("gan", fn, points, module, category, **kw)


# The short GAN run of the grader: the student's discriminator(), generator() at width hidden_dim = 256 (four times
# cheaper than CS231n's 1024), losses, steps, optimizer and training loop, 800 Adam steps of
# 64 images (4 epochs of the first 12,800 MNIST training images), then 2,000 samples, scored in the grader against
# the first 2,000 test images by toolkit.image_metrics (FID on the course classifier's features, through
# torchmetrics; class coverage = classes predicted for at least 5 % of the samples). For scale: the training
# images score FID 12, uniform noise 685, a generator that has collapsed onto one blob 400-470 with coverage 0.1.
# Calibration through the grader (one thread, grading seeds of calibration seeds 0-4): FID 97.4, 103.1, 141.3,
# 118.3, 117.9 and coverage 0.6, 0.7, 0.4, 0.6, 0.7; eight more reference runs at other seeds gave FID 96-167 and
# coverage 0.4-0.8 (GAN training is noisy). So the bars are FID <= 250 (margin 50) and coverage >= 0.3, with a
# margin of 0.05, i.e. one class, as coverage moves in steps of 0.1. About 20 s CPU per run (up to 100 s on a
# loaded machine, hence the budget).
_MNIST_GAN = TrainingBar(
    model="gan", task="gan.train", metric="fid", higher_is_better=False, bar=250.0, dataset="mnist",
    train_size=12_800, test_size=2_000, margin=50.0, time_budget_s=150.0,
    settings=dict(num_epochs=4, batch_size=64, noise_size=96, hidden_dim=256, num_samples=2_000))
# the public suite runs the same training: shorter runs are still collapsed onto a few blobs (after 100 steps FID
# 445-465 and coverage 0.1, which every generator reaches), so they could not tell a student anything
_MNIST_GAN_MODES = dataclasses.replace(
    _MNIST_GAN, model="gan_modes", metric="class_coverage", higher_is_better=True, bar=0.3, margin=0.05)

# What the training loop calls (the grader's run goes through all of them).
_GAN_CALLS = ("sample_noise", "discriminator", "generator", "get_optimizer", "discriminator_loss", "generator_loss",
              "ls_discriminator_loss", "ls_generator_loss", "gradient_penalty", "discriminator_step", "generator_step")

TOPIC = Topic(
    slug="gan",
    number=6,
    title="Generative adversarial networks: losses, label smoothing, gradient penalty, offline FID and IS",
    modules=("gan_pytorch", "dcgan", "plots"),
    notebook="gan.ipynb",
    torch_modules=("gan_pytorch", "dcgan", "plots"),
    datasets=("mnist", "fashion_mnist"),
    # the short training run (about 20 s CPU on one core) dominates the torch worker's time
    torch_limits=Limits(memory_mb=8192, wall_s=240.0, call_s=60.0, import_s=60.0, cpu_s=300),
    min_mutants=10,
    demo_mutants=("gan_smoothing_on_fake_labels", "gan_penalty_no_create_graph", "gan_grid_transposed"),
    tasks=(
        _gan("sample_noise", 1, description="uniform noise in (-1, 1), seeded"),
        _gan("discriminator", 1, description="the MLP discriminator 784-256-256-1, LeakyReLU 0.01"),
        _gan("generator", 1, description="the MLP generator L-H-H-784 (H = 1024 by default), ReLU, tanh"),
        _gan("build_dc_classifier", 1, module="dcgan",
             description="the DCGAN discriminator (extension): layers and output shape"),
        _gan("build_dc_generator", 1, module="dcgan",
             description="the DCGAN generator (extension): layers, output in [-1, 1]"),
        _gan("get_optimizer", 1, description="Adam, learning rate 1e-3, betas (0.5, 0.999)"),
        _gan("discriminator_loss", 3, description="BCE of real logits against real_label plus fake against 0; "
                                                  "one-sided smoothing; (N,) or (N, 1); stable at 1e3"),
        _gan("generator_loss", 2, description="the non-saturating loss, stable at 1e3"),
        _gan("ls_discriminator_loss", 1, description="least-squares discriminator loss"),
        _gan("ls_generator_loss", 1, description="least-squares generator loss"),
        _gan("gradient_penalty", 3, description="WGAN-GP at interpolates, per-example norms; its gradient reaches "
                                                "D's parameters (create_graph)"),
        _gan("discriminator_step", 2, depends_on=("discriminator_loss", "ls_discriminator_loss", "gradient_penalty"),
             description="one D update: fakes detached from G, smoothing and penalty"),
        _gan("generator_step", 2, depends_on=("generator_loss", "ls_generator_loss"),
             description="one G update: gradients through D, none stored on D"),
        _gan("train", 4, depends_on=_GAN_CALLS,
             description="the training loop's history, and a short MNIST run reaching the FID and class-coverage "
                         "bars"),
        _gan("sample_grid", 2, module="plots", category="visualization",
             description="a grid of the generator's samples for given noise, images equal to G(z)"),
        _gan("written_analysis", 3, category="comparative", kind="manual",
             description="training dynamics, mode collapse and the tricks, from your curves and metrics table "
                         "(instructor graded)"),
    ),
    bars=(_MNIST_GAN, _MNIST_GAN_MODES),
)
