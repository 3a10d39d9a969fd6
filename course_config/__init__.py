"""The course as data: topics, graded tasks, points, tolerances, thresholds, limits and the grade scale.

This package is the one place these values live. Markers, manifests, reports, the release step and the hidden
suite read them from here; nothing else retypes them. It has three parts:
- `course_config/schema.py`: the typed records (frozen dataclasses, a comment on every field; unknown keys raise)
  and `validate`, which refuses an inconsistent configuration at import;
- this file: what holds for the whole course (category weights, grade scale, tolerances, datasets, limits, seed);
- `course_config/deadlines.py`: the term's schedule (due dates, time zone, late policy), applied after grading;
- `course_config/topics/<slug>.py`: one topic each (`TOPIC = Topic(...)`: its tasks, points, bars, limits).
  TOPICS is derived from those files, in the order of `Topic.number`: adding a topic is adding its file.
"""
from __future__ import annotations

from course_config.deadlines import DEADLINES, LATE_POLICY, TIMEZONE
from course_config.schema import (ConfigError, Dataset, Deadline, LatePolicy, Limits, Task, Tolerances, Topic,
                                  TrainingBar, validate, validate_deadlines)
from course_config.topics import discover

__all__ = ["BANNED_IN_NUMPY_WORKER", "CATEGORY_WEIGHTS", "DATASETS", "DEADLINES", "DEPENDENT_SCORING",
           "GRADE_SCALE", "GRADING_SEED", "LATE_POLICY", "NOTEBOOK_KERNEL_LIMITS", "TIMEZONE", "TOLERANCES", "TOPICS",
           "TOPIC_SLUGS", "ConfigError", "Dataset", "Deadline", "LatePolicy", "Limits", "Task", "Tolerances", "Topic", "TrainingBar", "all_tasks", "topic"]

# Assessment categories of the course and their weight in the final percentage. When a gradebook covers only
# some topics, the weights are renormalised over the categories that have points in it (see autograder.scoring).
CATEGORY_WEIGHTS: dict[str, float] = {
    "implementation": 0.50,         # from-scratch NumPy code: layers, nets, training loops
    "visualization": 0.15,          # figures graded by their data (gradient flow, samples, attention maps)
    "comparative": 0.15,            # NumPy-vs-PyTorch parity and written comparisons
    "generative": 0.20,             # VAE / GAN projects
}

# OAU grade scale: (letter, lowest percentage, grade point), highest first.
GRADE_SCALE: tuple[tuple[str, float, int], ...] = (
    ("A", 70.0, 5),
    ("B", 60.0, 4),
    ("C", 50.0, 3),
    ("D", 45.0, 2),
    ("E", 40.0, 1),
    ("F", 0.0, 0),
)

# The Jupyter kernel that nbgrader's autograde runs a student's notebook in (autograder/kernel.py). The notebook
# trains the student's models itself, imports torch, and its check() cells start their own workers inside it, so it
# gets more than one worker: torch's address space, a whole notebook's CPU time, room for those workers' processes.
# nbgrader's per-cell timeout (nbgrader_config.py, from the topics' wall_s) still stops a cell that hangs.
NOTEBOOK_KERNEL_LIMITS = Limits(memory_mb=12288, cpu_s=3600, nproc=512, fsize_mb=256)

# Every dataset a topic may name in Topic.datasets. Images are uint8; text is UTF-8, Unicode NFC.
DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("mnist", "images", "mnist.npz", "MNIST", "uint8 (N, 28, 28) digits, labels 0..9"),
    Dataset("fashion_mnist", "images", "fashion_mnist.npz", "FashionMNIST", "uint8 (N, 28, 28) garments, labels 0..9"),
    Dataset("cifar10", "images", "cifar10.npz", "CIFAR10", "uint8 (N, 32, 32, 3) RGB images, labels 0..9"),
    Dataset("yoruba", "text", "yoruba", "", "Yoruba text files yoruba/*.txt, UTF-8, Unicode NFC"),
)}

# The numerical tolerances of every check (course_config.schema.Tolerances says what each one means).
TOLERANCES = Tolerances()

# Modules a from-scratch NumPy worker refuses to import (the topic's torch_modules are graded elsewhere).
BANNED_IN_NUMPY_WORKER: tuple[str, ...] = ("torch", "torchvision", "jax", "jaxlib", "tensorflow", "autograd",
                                           "functorch", "keras", "cupy", "mxnet")

# The seed that makes grading reproducible (the grading seed of a run unless it is given another).
GRADING_SEED: int = 20261125


# How a task that calls other graded functions (depends_on) is charged when one of those lost points:
# "end_to_end": with the student's own functions (a wrong layer also costs the net that uses it);
# "isolated": with the functions it depends on replaced by the reference (called back in the trusted process),
# so a correct composition over a wrong layer gets full credit for the composition. Both are always computed and
# shown in the feedback; this chooses which one the gradebook counts.
DEPENDENT_SCORING: str = "end_to_end"


# All topics of the course in teaching order: the TOPIC of every file in course_config/topics/, by Topic.number.
TOPICS: tuple[Topic, ...] = discover()

# Their slugs, in the same order (a submission folder for a topic uses the same name).
TOPIC_SLUGS: tuple[str, ...] = tuple(t.slug for t in TOPICS)


def topic(slug: str) -> Topic:
    """The topic called `slug`, or a KeyError that lists the known ones."""
    for t in TOPICS:
        if t.slug == slug:
            return t
    raise KeyError(f"unknown topic {slug!r}; configured topics: {', '.join(t.slug for t in TOPICS)}")


def all_tasks() -> list[Task]:
    """Every task of every configured topic, in order."""
    return [task for t in TOPICS for task in t.tasks]


validate(TOPICS, CATEGORY_WEIGHTS, DATASETS, DEPENDENT_SCORING)
validate_deadlines(TOPICS, DEADLINES, TIMEZONE, LATE_POLICY)
