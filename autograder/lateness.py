"""Deadlines and late work: when a submission was made, when it was due, and what the lateness costs.

The penalty is applied after grading. results.json keeps the task points as graded and the submission time read
when it was graded (nbgrader's `timestamp.txt`, Gradescope's submission metadata); the deadline comes from
course_config.DEADLINES (wall-clock time in course_config.TIMEZONE) moved by a per-student extension, and the
policy from the same configuration. Every report (gradebook, feedback pages, course report, Gradescope's
results.json) calls `apply`, so they agree, and a changed extension or deadline is a new report, not a regrade.

Lateness is computed from recorded data only, never from the time of grading: the same submission gets the same
result on every run. A submission without a known time is flagged (status "no_time") and never taken as on time.

Two CSV files, passed to `dlcore grade` and then recorded in the graded folder (as manual scores are):
- extensions: columns student,topic,until or student,topic,days (one of the two filled per row): the student's
  deadline for that topic becomes `until` ("YYYY-MM-DD HH:MM" in the course time zone, or ISO 8601 with an
  offset) or the configured deadline plus `days` (may be fractional);
- submission times: columns student,topic,submitted_at (ISO 8601; without an offset it is course time), for
  submissions whose time the grader knows from elsewhere (an LMS export); it wins over a recorded time.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import course_config
from autograder import results as R

EXTENSIONS_RECORD = "extensions.csv"          # in a graded folder: the extensions its gradebook used
TIMES_RECORD = "submission_times.csv"         # in a graded folder: the submission times given by the graders
NBGRADER_TIMESTAMP = "timestamp.txt"          # what nbgrader's submit (and so `dlcore course collect`) leaves


def zone() -> ZoneInfo:
    return ZoneInfo(course_config.TIMEZONE)


def parse_time(text: str) -> dt.datetime:
    """An aware datetime from nbgrader's timestamp format ("%Y-%m-%d %H:%M:%S.%f %Z", parsed as nbgrader's own
    `parse_utc` does), ISO 8601 with an offset, or a wall-clock time without one (course time zone)."""
    text = text.strip()
    parts = text.split(" ")
    if len(parts) == 3:  # nbgrader's format, read as nbgrader's own parse_utc reads it (tests compare the two)
        when = dt.datetime.fromisoformat(f"{parts[0]} {parts[1]}")
        return when.replace(tzinfo=_nbgrader_zone(parts[2]))
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=zone())


def _nbgrader_zone(token: str) -> dt.tzinfo:
    """The zone of nbgrader's timestamp: an offset in seconds, a zone name, or (like nbgrader, whose dateutil knows
    no abbreviation such as WAT) UTC for a name no zone database has."""
    try:
        return dt.timezone(dt.timedelta(seconds=int(token)))
    except ValueError:
        pass
    try:
        return ZoneInfo(token)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return dt.timezone.utc


def iso(when: dt.datetime) -> str:
    """ISO 8601 in the course time zone, to the second."""
    return when.astimezone(zone()).isoformat(timespec="seconds")


def nbgrader_time(folder: Path) -> str | None:
    """The submission time in `folder`/timestamp.txt (nbgrader), as ISO 8601, or None without a readable one."""
    try:
        return iso(parse_time((Path(folder) / NBGRADER_TIMESTAMP).read_text()))
    except (OSError, ValueError, OverflowError):
        return None


def gradescope_time(metadata: Path) -> str | None:
    """`created_at` of Gradescope's submission_metadata.json, as ISO 8601, or None without one."""
    try:
        return iso(parse_time(str(json.loads(Path(metadata).read_text())["created_at"])))
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return None


def submission_time(folder: Path) -> tuple[str, str]:
    """(time, source) that the submission folder itself records (nbgrader's timestamp.txt), else ("", "")."""
    found = nbgrader_time(folder)
    return (found, "nbgrader timestamp.txt") if found else ("", "")


def deadline(slug: str) -> dt.datetime | None:
    """The configured deadline of a topic, aware in the course time zone, or None without one."""
    d = course_config.DEADLINES.get(slug)
    return dt.datetime.strptime(d.due, "%Y-%m-%d %H:%M").replace(tzinfo=zone()) if d else None


def policy(slug: str) -> course_config.LatePolicy:
    d = course_config.DEADLINES.get(slug)
    return d.policy if d and d.policy else course_config.LATE_POLICY


def describe(p: course_config.LatePolicy) -> str:
    grace = f" after {p.grace_minutes:g} min grace" if p.grace_minutes else ""
    if p.kind == "per_day":
        return f"{p.per_day:.0%} per started day late, at most {p.cap:.0%}{grace}"
    if p.kind == "zero_after_grace":
        return f"no points when late{grace}"
    return "late work accepted without penalty"


def _rows(path: Path, needed: tuple[str, ...]):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"{path}: missing column(s) {', '.join(missing)} (header: {reader.fieldnames})")
        for i, row in enumerate(reader, start=2):
            yield i, {k: (v or "").strip() for k, v in row.items() if k}


def load_extensions(path: Path | None) -> dict[tuple[str, str], dt.datetime]:
    """(student, topic) -> the extended deadline, from a CSV student,topic,until|days (see the module doc)."""
    found: dict[tuple[str, str], dt.datetime] = {}
    for i, row in _rows(path, ("student", "topic")) if path else ():
        slug = row["topic"]
        base = deadline(slug) if slug in course_config.TOPIC_SLUGS else None
        try:
            if row.get("until"):
                found[(row["student"], slug)] = parse_time(row["until"])
            elif row.get("days") and base is not None:
                found[(row["student"], slug)] = base + dt.timedelta(days=float(row["days"]))
            else:
                raise ValueError("fill `until`, or `days` for a topic with a deadline in course_config")
        except ValueError as exc:
            raise SystemExit(f"{path}:{i}: expected student,topic,until (YYYY-MM-DD HH:MM) or days ({exc})")
    return found


def load_times(path: Path | None) -> dict[tuple[str, str], str]:
    """(student, topic) -> submission time (ISO 8601), from a CSV student,topic,submitted_at."""
    found: dict[tuple[str, str], str] = {}
    for i, row in _rows(path, ("student", "topic", "submitted_at")) if path else ():
        try:
            found[(row["student"], row["topic"])] = iso(parse_time(row["submitted_at"]))
        except ValueError as exc:
            raise SystemExit(f"{path}:{i}: submitted_at {row['submitted_at']!r} is not a date and time ({exc})")
    return found


def record(graded: Path, given: Path | None, name: str, loader) -> Path | None:
    """Keep `given` (checked by `loader` first) as GRADED/`name`, atomically; return what is recorded now."""
    from autograder.reports import write_atomic

    path = Path(graded) / name
    if given is not None and Path(given).resolve() != path.resolve():
        loader(Path(given))  # a malformed CSV stops here, before it replaces the recorded one
        write_atomic(path, Path(given).read_text())
    return path if path.is_file() else None


def recorded(graded: Path, extensions: Path | None = None, times: Path | None = None):
    """(extensions, times) to use for `graded`: those given, else those recorded there (like manual scores)."""
    return (load_extensions(Path(extensions) if extensions else _if_file(Path(graded) / EXTENSIONS_RECORD)),
            load_times(Path(times) if times else _if_file(Path(graded) / TIMES_RECORD)))


def _if_file(path: Path) -> Path | None:
    return path if path.is_file() else None


def compute(slug: str, student: str, submitted_at: str, source: str,
            extensions: dict[tuple[str, str], dt.datetime] | None = None) -> R.Lateness:
    """The lateness of one submission of `slug` by `student` made at `submitted_at` (ISO 8601, "" if unknown)."""
    due = (extensions or {}).get((student, slug)) or deadline(slug)
    extended = (student, slug) in (extensions or {})
    p = policy(slug)
    if due is None:
        return R.Lateness(R.NO_DEADLINE, submitted_at, source)
    if not submitted_at:
        return R.Lateness(R.NO_TIME, "", "", iso(due), extended, policy=describe(p))
    seconds = (parse_time(submitted_at) - due).total_seconds()
    base: dict[str, Any] = dict(submitted_at=submitted_at, source=source, due=iso(due), extended=extended,
                                policy=describe(p))
    if seconds <= 0:
        return R.Lateness(R.ON_TIME, **base)
    if seconds <= 60 * p.grace_minutes:
        return R.Lateness(R.GRACE, seconds_late=seconds, **base)
    days = math.ceil(seconds / 86400)
    fraction = {"per_day": min(p.cap, p.per_day * days), "zero_after_grace": 1.0}.get(p.kind, 0.0)
    return R.Lateness(R.LATE, seconds_late=seconds, days_late=days, fraction=round(fraction, 6), **base)


def apply(tr: R.TopicResult, extensions: dict | None = None, times: dict | None = None) -> R.TopicResult:
    """Set `tr.lateness` from its recorded submission time (or the graders' times CSV, which wins)."""
    given = (times or {}).get((tr.student, tr.topic))
    submitted, source = (given, "submission times CSV") if given else (tr.submitted_at, tr.submitted_source)
    tr.lateness = compute(tr.topic, tr.student, submitted, source, extensions)
    return tr


def summary(late: R.Lateness | None, before: float, after: float) -> str:
    """One line for people: when it was submitted against the deadline, and what that cost."""
    if late is None or late.status == R.NO_DEADLINE:
        return ""
    due = f"due {late.due}" + (" (extended)" if late.extended else "")
    if late.status == R.NO_TIME:
        return f"No submission time is recorded ({due}): lateness not checked; the course staff will check it."
    when = f"submitted {late.submitted_at} ({late.source}), {due}"
    if late.status == R.ON_TIME:
        return f"On time: {when}."
    hours = late.seconds_late / 3600
    if late.status == R.GRACE:
        return f"Within the grace period ({hours * 60:.0f} min late): {when}; no penalty."
    return (f"Late by {hours:.1f} h ({late.days_late} started day(s)): {when}. Penalty {late.fraction:.0%} "
            f"({late.policy}): {before:g} points before the penalty, {after:g} after.")
