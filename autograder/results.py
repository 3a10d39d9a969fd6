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


# Lateness statuses (autograder.lateness): the deadline is course_config.DEADLINES plus any extension.
ON_TIME, GRACE, LATE = "on_time", "grace", "late"   # grace: after the deadline, within the policy's grace
NO_TIME = "no_time"               # the grader has no submission time: flagged, never taken as on time
NO_DEADLINE = "no_deadline"       # the topic has no due date


@dataclass(frozen=True)
class Lateness:
    """How late one submission was and what that cost, computed after grading from recorded data only."""

    status: str                    # ON_TIME, GRACE, LATE, NO_TIME or NO_DEADLINE
    submitted_at: str = ""         # ISO 8601 with its UTC offset, "" when unknown
    source: str = ""               # where that time came from ("nbgrader timestamp.txt", "gradescope", a CSV)
    due: str = ""                  # the deadline applied, ISO 8601 in the course time zone ("" for none)
    extended: bool = False         # `due` is a per-student extension
    seconds_late: float = 0.0      # past `due` (0 when on time)
    days_late: int = 0             # started days past `due`, charged by a "per_day" policy
    fraction: float = 0.0          # of the earned points lost, 0..1
    policy: str = ""               # the policy applied, in words

    def to_json(self) -> dict:
        return asdict(self)


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
    submitted_at: str = ""                              # when it was submitted (ISO 8601 with offset), as read
    submitted_source: str = ""                          # at grading time from this source; "" when unknown
    lateness: Lateness | None = None                    # set after grading (autograder.lateness.apply)

    @property
    def raw_points(self) -> float:
        """The task points as graded, before any late penalty."""
        return sum(r.points for r in self.results)

    @property
    def factor(self) -> float:
        """What the late penalty leaves of every earned point (1 when on time or not yet applied)."""
        return 1.0 - (self.lateness.fraction if self.lateness else 0.0)

    @property
    def penalty(self) -> float:
        """Points lost to lateness."""
        return self.raw_points - self.points

    @property
    def points(self) -> float:
        """The topic's points after the late penalty."""
        return self.raw_points * self.factor

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)

    @property
    def grader_errors(self) -> int:
        """Tasks the grader could not score because its own code failed."""
        return sum(1 for r in self.results if r.grader_errors or r.status == GRADER_ERROR)
