"""Result records: plain frozen dataclasses with one JSON form, written by one writer (autograder.reports)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Status vocabulary of a task result.
PASSED, PARTIAL, FAILED = "passed", "partial", "failed"
NOT_ATTEMPTED = "not_attempted"   # the stub still raises NotImplementedError
ERROR = "error"                   # student code crashed, hung, ran out of memory or could not be loaded
MANUAL = "manual"                 # scored by an instructor; pending until a manual score is supplied
SKIPPED = "skipped"               # not run: the submission used up its grading-time budget
GRADER_ERROR = "grader_error"     # the grader's own code failed: the course staff must fix it and regrade


@dataclass(frozen=True)
class Part:
    """One scored aspect of a task (e.g. "dw" of affine_backward)."""

    label: str
    weight: float
    passed: bool
    message: str = ""
    grader_error: bool = False     # the grader's own code failed here: not scored against the student


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
    tags: tuple[str, ...] = ()     # the graded function, e.g. ("layers.affine_backward",)
    category: str = ""             # assessment category (a key of course_config.CATEGORY_WEIGHTS)
    seed: int = 0                  # input seed, printed in feedback so a failure can be reproduced
    figures: tuple[dict, ...] = ()  # {"label", "student", "expected"}: base64 PNGs of graded figures
    metrics: dict = field(default_factory=dict)  # measured values, e.g. {"net.accuracy": 0.957}
    grader_errors: tuple[str, ...] = ()  # the grader's own exceptions while checking this task
    # dependent tasks (course_config.DEPENDENT_SCORING): points with the student's own functions, and with the
    # functions it depends on replaced by the reference (None when no dependency lost points: the same run)
    end_to_end_points: float | None = None
    isolated_points: float | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["parts"] = [asdict(p) for p in self.parts]
        d["tags"] = list(self.tags)
        d["grader_errors"] = list(self.grader_errors)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "CheckResult":
        d = dict(d)
        d["parts"] = tuple(Part(**p) for p in d.get("parts", []))
        d["tags"] = tuple(d.get("tags", []))
        d["figures"] = tuple(d.get("figures", []))
        d["grader_errors"] = tuple(d.get("grader_errors", []))
        return cls(**d)


@dataclass
class TopicResult:
    """All task results of one student for one topic, plus what the grader noticed about the files."""

    student: str
    topic: str
    results: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # file problems, policy flags (e.g. banned imports)
    fingerprint: str = ""                               # hash of submission + grader, for resuming a batch
    submission: str = ""                                # hash of the submission alone (a regrade of some tasks
                                                        # keeps the others' results only for the same files)
    seconds: float = 0.0
    student_seconds: float = 0.0                        # time spent waiting on the student's worker
    sandbox: str = ""                                   # which sandbox ran the student's code: "bwrap" or "plain"
    device: str = ""                                    # where its torch code ran: "cpu" or "cuda" (--device)

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)

    @property
    def grader_errors(self) -> int:
        """Tasks the grader could not score because its own code failed."""
        return sum(1 for r in self.results if r.grader_errors or r.status == GRADER_ERROR)
