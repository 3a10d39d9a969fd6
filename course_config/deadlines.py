"""The term's schedule: when each topic is due, in which time zone, and what lateness costs.

Kept apart from the topics' files on purpose: lateness is applied after grading, from the submission times and
extensions recorded beside the results (autograder/lateness.py), so moving a deadline or changing the policy
recomputes every gradebook without regrading anything (autograder.batch.grader_version leaves this file out).
Per-student extensions are not configuration but a CSV the graders pass (`dlcore grade --extensions`).
"""
from __future__ import annotations

from course_config.schema import Deadline, LatePolicy

# The time zone the due dates are written in (a zoneinfo name). OAU runs on West Africa Time (UTC+1, no DST).
TIMEZONE: str = "Africa/Lagos"

# The course's late policy: 10% of the points earned per started day late, at most 50%, after 15 minutes' grace.
LATE_POLICY = LatePolicy(kind="per_day", grace_minutes=15.0, per_day=0.10, cap=0.50)

# Each topic's due date, Lagos wall-clock time; a topic without one has no deadline (never late).
DEADLINES: dict[str, Deadline] = {d.topic: d for d in (
    Deadline("feedforward", "2026-09-25 23:59"),
    Deadline("backprop", "2026-10-09 23:59"),
    Deadline("cnn", "2026-10-23 23:59"),
    Deadline("rnn", "2026-11-06 23:59"),
    Deadline("autoencoders", "2026-11-20 23:59"),
    Deadline("gan", "2026-12-04 23:59"),
    Deadline("attention", "2026-12-18 23:59"),
)}
