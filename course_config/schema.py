"""The configuration's schema: the typed records the course is written in, and the checks that tie them together.

Every record is a frozen dataclass with a comment on every field. Unknown keys raise (a frozen dataclass has no
catch-all, so `Task(..., point=2)` is a TypeError at import), and `validate` refuses a configuration that
contradicts itself (unknown categories, datasets or dependencies, bars on missing tasks, topics out of order)
before anything is graded. The values themselves live in `course_config/__init__.py` (course-wide) and
`course_config/topics/<slug>.py` (one topic each).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tolerances:
    """Numerical tolerances. Every comparison runs in float64."""

    grad_rtol: float = 1e-6         # norm-relative error ||num - ana|| / (||num|| + ||ana||) for a gradient
    forward_rtol: float = 1e-7      # forward values vs the reference: max |a - b| / max(1, |b|)
    parity_rtol: float = 1e-7       # NumPy vs PyTorch (float64) values and gradients, same measure
    grad_h: float = 1e-6            # central-difference step for directional derivatives
    grad_directions: int = 3        # random unit directions per tensor in a directional gradient check
    kink_margin: float = 1e-3       # inputs closer than this to a kink (ReLU at 0) are pushed away
    stat_rtol: float = 0.08         # relative error allowed on a sampled standard deviation (weight init)
    exact_rtol: float = 1e-12       # values passed on unchanged (an array drawn as given, a plot's x positions)
    scalar_rtol: float = 1e-10      # a scalar autograd engine's values against torch on the same short expression
    formula_rtol: float = 1e-9      # values from a short closed formula (a normalised image, bits per character)
    accumulated_rtol: float = 1e-6  # rounding that accumulates: a loss on scores of 1e3, a few optimiser steps
    float32_rtol: float = 1e-5      # a float32 torch model (the student's own) against float64 formulas on its weights


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed worker (one submission's module being graded)."""

    wall_s: float = 900.0           # grading time for one submission's topic; tasks after it are skipped
    call_s: float = 20.0            # wall clock for one call into student code
    import_s: float = 10.0          # wall clock for importing the student module
    memory_mb: int = 2048           # address space (RLIMIT_AS) / cgroup memory limit
    cpu_s: int = 120                # CPU seconds (RLIMIT_CPU)
    nproc: int = 64                 # processes and threads (cgroup pids.max, or RLIMIT_NPROC when not root)
    fsize_mb: int = 64              # largest file the worker may write (RLIMIT_FSIZE)
    output_kb: int = 64             # student stdout/stderr kept for feedback (head and tail)


@dataclass(frozen=True)
class Task:
    """One graded unit. Its name is the pytest marker, the results.json test name and the gradebook column."""

    name: str                       # "<topic>.<function or check>", e.g. "feedforward.affine_backward"
    points: float                   # maximum points
    category: str                   # a key of CATEGORY_WEIGHTS
    module: str                     # student module (file stem) that holds the graded code, e.g. "layers"
    function: str                   # graded function or class inside that module ("" for a notebook task)
    kind: str = "auto"              # "auto": the hidden suite scores it; "manual": an instructor scores it
    depends_on: tuple[str, ...] = ()  # tasks whose code this one calls; their bugs may cost points here too
    description: str = ""           # one line shown in tables and feedback
    speed_limit: float | None = None  # a timed part fails above this many times the oracle's time (None: untimed)

    @classmethod
    def named(cls, slug: str, fn: str, points: float, module: str, category: str = "implementation",
              depends_on: tuple[str, ...] = (), description: str = "", kind: str = "auto",
              speed_limit: float | None = None) -> Task:
        """A task named "<slug>.<fn>" after the function it grades; bare dependency names are in the same topic."""
        return cls(f"{slug}.{fn}", points, category, module, fn if kind == "auto" else "", kind,
                   tuple(d if "." in d else f"{slug}.{d}" for d in depends_on), description, speed_limit)


@dataclass(frozen=True)
class Dataset:
    """A course dataset under DLCORE_DATA (toolkit.data loads it; the torchvision download is the fallback)."""

    name: str                       # registry key, e.g. "mnist"
    kind: str                       # "images": a Keras-style .npz (x_train, y_train, x_test, y_test); "text": a folder
    path: str                       # file or folder name under DLCORE_DATA, e.g. "mnist.npz" or "yoruba"
    torchvision: str = ""           # torchvision.datasets class used to download it where DLCORE_DATA lacks it
    description: str = ""           # shapes and dtypes, shown in messages


@dataclass(frozen=True)
class TrainingBar:
    """What a trained model must reach when the grader trains the student's code: one bar per trained model.

    `settings` are the hyperparameters passed to the student's training code (named as its arguments); checks read
    them from here through the context, never retype them. `public` is the smaller run of the public suite.
    """

    model: str                      # name of the trained model within its topic, e.g. "net" or "torch_net"
    task: str                       # the task whose check trains it, e.g. "feedforward.train"
    metric: str                     # "accuracy", "bits_per_char", "neg_elbo_nats", "fid", "class_coverage", ...
    higher_is_better: bool          # direction of the metric
    bar: float                      # the value the student's model must reach (>= if higher is better, else <=)
    dataset: str                    # a key of DATASETS, or "" for synthetic data the check generates
    train_size: int                 # training examples used
    test_size: int                  # held-out examples the metric is computed on (labels stay in the grader)
    val_size: int = 0               # examples given to the training code as validation data
    settings: dict = field(default_factory=dict)  # hyperparameters for the student's training code
    time_budget_s: float = 180.0    # wall clock for one training run in the worker
    calibration_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # grading seeds at which the reference must clear the bar
    margin: float = 0.0             # how far past the bar the reference must be at every calibration seed
    public: "TrainingBar | None" = None  # the short run of the public suite (`dlcore check`), if it differs

    def passes(self, value: float) -> bool:
        """True when `value` reaches the bar in the metric's direction (NaN never does)."""
        return bool(value >= self.bar) if self.higher_is_better else bool(value <= self.bar)

    def clears_with_margin(self, value: float) -> bool:
        return bool(value >= self.bar + self.margin) if self.higher_is_better else bool(value <= self.bar - self.margin)

    def describe(self) -> str:
        return f"{self.metric} {'>=' if self.higher_is_better else '<='} {self.bar:g}"

    def rerun(self, model: str, task: str, **settings) -> TrainingBar:
        """The same bar (and public run) for another model of the topic, with some settings added or changed."""
        def one(b: TrainingBar) -> TrainingBar:
            return dataclasses.replace(b, model=model, task=task, settings=dict(b.settings, **settings))
        return dataclasses.replace(one(self), public=one(self.public) if self.public else None)


@dataclass(frozen=True)
class Topic:
    """A course topic: a folder of student modules plus an nbgrader notebook."""

    slug: str                       # folder name under solutions/, release/, assignments/ and submissions; also
                                    # the name of its declaration, course_config/topics/<slug>.py
    number: int                     # place in the course, 1..N without gaps: the order of TOPICS, reports, release
    title: str                      # shown in reports
    modules: tuple[str, ...]        # student module file stems, in solutions/<slug>/ and release/<slug>/
    notebook: str                   # nbgrader notebook file name in assignments/<slug>/
    tasks: tuple[Task, ...]         # graded tasks, in report order
    torch_modules: tuple[str, ...] = ()  # modules graded in a worker where torch may be imported
    limits: Limits = field(default_factory=Limits)  # the NumPy worker's limits (modules not in torch_modules)
    torch_limits: Limits = field(default_factory=lambda: Limits(memory_mb=8192, wall_s=180.0, call_s=120.0,
                                                                import_s=60.0, cpu_s=300))  # the torch worker's
    bars: tuple[TrainingBar, ...] = ()  # one per model the grader trains
    datasets: tuple[str, ...] = ()  # keys of DATASETS the topic's checks and notebook read
    requires: tuple[str, ...] = ()  # earlier topics whose student code this topic imports (from the same student)
    min_mutants: int = 10           # planted bugs the hidden suite must list (autograder/hidden/<slug>.py MUTANTS)
    demo_mutants: tuple[str, ...] = ()  # three of those MUTANTS, played by the buggy students of `dlcore demo`

    @property
    def max_points(self) -> float:
        return sum(t.points for t in self.tasks)

    def bar(self, model: str) -> TrainingBar:
        for b in self.bars:
            if b.model == model:
                return b
        raise KeyError(f"{self.slug}: no training bar for {model!r}; known: {[b.model for b in self.bars]}")

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"{self.slug}: no task named {name!r}; known: {[t.name for t in self.tasks]}")


@dataclass(frozen=True)
class LatePolicy:
    """What a late submission costs. Applied after grading to the topic's points (autograder/lateness.py); the
    task points in results.json stay as graded."""

    kind: str = "per_day"           # "per_day": `per_day` of the points per started day late, at most `cap`;
                                    # "zero_after_grace": no points once later than the grace; "accept": no penalty
    grace_minutes: float = 0.0      # this much past the deadline still counts as on time (upload delays)
    per_day: float = 0.10           # "per_day": fraction of the topic's earned points lost per started day late
    cap: float = 0.50               # "per_day": the largest fraction lost, however late


@dataclass(frozen=True)
class Deadline:
    """When a topic is due. The time is a wall-clock time in the course's time zone (course_config.TIMEZONE)."""

    topic: str                      # the topic's slug
    due: str                        # "YYYY-MM-DD HH:MM", e.g. "2026-09-25 23:59" (Lagos time by default)
    policy: "LatePolicy | None" = None  # this topic's late policy; None: the course's LATE_POLICY


class ConfigError(ValueError):
    """The configuration contradicts itself. Raised when course_config is imported, before anything is graded."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(topics: tuple[Topic, ...], category_weights: dict[str, float], datasets: dict[str, Dataset],
             dependent_scoring: str) -> None:
    """Fail on an inconsistent configuration rather than at grading time. `topics` are in course order."""
    names = [t.name for tp in topics for t in tp.tasks]
    _require(len(names) == len(set(names)), "task names must be unique")
    slugs = [tp.slug for tp in topics]
    _require(len(slugs) == len(set(slugs)), f"two topics share a slug: {slugs}")
    _require([tp.number for tp in topics] == list(range(1, len(topics) + 1)),
             f"topic numbers must be 1..{len(topics)}, each once; found {[(tp.slug, tp.number) for tp in topics]}")
    for tp in topics:
        for t in tp.tasks:
            _require(t.name.startswith(f"{tp.slug}."), f"{t.name}: a task of {tp.slug!r} is named {tp.slug}.<...>")
            _require(t.category in category_weights, f"{t.name}: unknown category {t.category!r}")
            _require(t.kind in ("auto", "manual"), f"{t.name}: unknown kind {t.kind!r}")
            _require(t.kind == "manual" or t.module in tp.modules, f"{t.name}: module {t.module!r} not in topic")
            for d in t.depends_on:
                _require(d in names, f"{t.name}: depends on unknown task {d!r}")
        for d in tp.datasets:
            _require(d in datasets, f"{tp.slug}: unknown dataset {d!r}; known: {sorted(datasets)}")
        for b in tp.bars:
            for run in (b, b.public) if b.public else (b,):
                _require(not run.dataset or run.dataset in tp.datasets,
                         f"{tp.slug}: bar {b.model!r} reads {run.dataset!r}, not in datasets")
                _require(run.task == b.task and run.model == b.model, f"{tp.slug}: public run of {b.model!r} differs")
                _require(run.task in names and tp.task(run.task).kind == "auto", f"{tp.slug}: bar task {run.task!r}")
        _require(len({b.model for b in tp.bars}) == len(tp.bars), f"{tp.slug}: two bars for one model")
        _require(len(tp.demo_mutants) in (0, 3), f"{tp.slug}: demo_mutants names the three buggy demo students' bugs")
        for r in tp.requires:
            _require(r in slugs[:slugs.index(tp.slug)], f"{tp.slug}: requires a later topic {r!r}")
    _require(abs(sum(category_weights.values()) - 1.0) < 1e-12, "category weights must sum to 1")
    _require(dependent_scoring in ("end_to_end", "isolated"), f"unknown DEPENDENT_SCORING {dependent_scoring!r}")


LATE_KINDS = ("per_day", "zero_after_grace", "accept")


def validate_deadlines(topics: tuple[Topic, ...], deadlines: dict[str, Deadline], timezone: str,
                       policy: LatePolicy) -> None:
    """Deadlines name known topics with a parseable local time in an existing time zone; policies make sense."""
    import datetime
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"TIMEZONE {timezone!r} is not a time zone zoneinfo knows ({exc})")
    slugs = [tp.slug for tp in topics]
    for key, d in deadlines.items():
        _require(key == d.topic and d.topic in slugs, f"deadline {key!r}: not a topic ({', '.join(slugs)})")
        try:
            datetime.datetime.strptime(d.due, "%Y-%m-%d %H:%M")
        except ValueError:
            raise ConfigError(f"deadline of {d.topic}: due {d.due!r} is not 'YYYY-MM-DD HH:MM'")
    for name, p in [("LATE_POLICY", policy)] + [(d.topic, d.policy) for d in deadlines.values() if d.policy]:
        _require(p.kind in LATE_KINDS, f"{name}: late policy kind {p.kind!r}, not one of {LATE_KINDS}")
        _require(p.grace_minutes >= 0 and 0 <= p.per_day <= 1 and 0 <= p.cap <= 1,
                 f"{name}: grace_minutes >= 0 and per_day, cap in [0, 1]")
