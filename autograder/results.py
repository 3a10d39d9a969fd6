"""Result records: plain frozen dataclasses with one JSON form, written by one writer (autograder.reports)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Status vocabulary of a task result.
PASSED, PARTIAL, FAILED = "passed", "partial", "failed"
NOT_ATTEMPTED = "not_attempted"   # the stub still raises NotImplementedError
ERROR = "error"                   # student code crashed, hung, ran out of memory or could not be loaded
MANUAL = "manual"                 # scored by an instructor; pending until a manual score is supplied
SKIPPED = "skipped"               # not run: the submission used up its grading-time budget


@dataclass(frozen=True)
class Part:
    """One scored aspect of a task (e.g. "dw" of affine_backward)."""

    label: str
    weight: float
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one task for one submission."""

    task: str                      # course_config Task.name
    points: float
    max_points: float
    status: str
    message: str = ""              # what is wrong and where, or "" when passed
    parts: tuple[Part, ...] = ()
    output: str = ""               # the student's own printed output during the task (bounded)
    seconds: float = 0.0
    tags: tuple[str, ...] = ()     # e.g. ("layers.affine_backward", "implementation")
    seed: int = 0                  # input seed, printed in feedback so a failure can be reproduced
    figures: tuple[dict, ...] = ()  # {"label", "student", "expected"}: base64 PNGs of graded figures

    def to_json(self) -> dict:
        d = asdict(self)
        d["parts"] = [asdict(p) for p in self.parts]
        d["tags"] = list(self.tags)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "CheckResult":
        d = dict(d)
        d["parts"] = tuple(Part(**p) for p in d.get("parts", []))
        d["tags"] = tuple(d.get("tags", []))
        d["figures"] = tuple(d.get("figures", []))
        return cls(**d)


@dataclass
class TopicResult:
    """All task results of one student for one topic, plus what the grader noticed about the files."""

    student: str
    topic: str
    results: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # file problems, policy flags (e.g. banned imports)
    fingerprint: str = ""                               # hash of submission + grader, for resuming a batch
    seconds: float = 0.0
    student_seconds: float = 0.0                        # time spent waiting on the student's worker

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)
