"""The one writer of results: Gradescope results.json, feedback pages, the gradebook CSV, console tables.

Files are written atomically (temporary file + rename), so an interrupted batch never leaves half a file.
"""
from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import os
import tempfile
from pathlib import Path

import course_config
from autograder import results as R

STATUS_MARK = {R.PASSED: "passed", R.PARTIAL: "partial", R.FAILED: "FAILED", R.NOT_ATTEMPTED: "not attempted",
               R.ERROR: "ERROR", R.MANUAL: "manual (pending)", R.SKIPPED: "skipped",
               R.GRADER_ERROR: "GRADER ERROR"}


def write_atomic(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, flush it to disk, and rename it over `path`: a reader, or a rerun
    after a crash or a power loss, sees the old file or the new one, never a part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself reaches the disk with the folder's entry
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete what write_atomic left behind in `folder` when a run was killed mid-write (never a finished file)."""
    found = [p for p in folder.rglob(".*.tmp") if p.is_file() and p.name.count(".") >= 3]
    for p in found:
        with contextlib.suppress(OSError):
            p.unlink()
    return found


def _task_text(r: R.CheckResult) -> str:
    lines = [r.message] if r.message else []
    lines += [f"{'ok  ' if p.passed else 'FAIL'} {p.label}" for p in r.parts]
    if r.output.strip():
        lines.append("your code printed:\n" + r.output.strip()[:4000])
    lines.append(f"(input seed {r.seed})")
    return "\n".join(lines)


def gradescope(tr: R.TopicResult, visibility: str = "after_published") -> dict:
    """Gradescope's results.json for one topic; the full record rides along in extra_data."""
    descriptions = {t.name: t.description for t in course_config.topic(tr.topic).tasks}
    tests = [{
        "name": f"{r.task}: {descriptions.get(r.task, '')}".rstrip(": "),
        "score": round(r.points, 4),
        "max_score": r.max_points,
        "status": "passed" if r.points >= r.max_points else "failed",
        "output": _task_text(r),
        "visibility": visibility,
        "tags": [*r.tags, r.category],
    } for r in tr.results]
    summary = f"{tr.topic}: {tr.points:g}/{tr.max_points:g} points"
    late = _late_line(tr)
    if late:
        summary += "\n" + late
    if tr.grader_errors:
        summary += (f"\nThe grader failed on {tr.grader_errors} task(s) (not your mistake); the course staff will "
                    f"fix it and regrade.")
    if tr.notes:
        summary += "\n" + "\n".join(tr.notes)
    return {"score": round(tr.points, 4), "max_score": tr.max_points, "execution_time": tr.seconds,
            "output": summary, "visibility": "visible", "stdout_visibility": "hidden", "tests": tests,
            "extra_data": {"dlcore": {"student": tr.student, "topic": tr.topic, "fingerprint": tr.fingerprint,
                                      "submission": tr.submission,
                                      "notes": tr.notes, "seconds": tr.seconds, "sandbox": tr.sandbox,
                                      "device": tr.device,
                                      "student_seconds": tr.student_seconds,
                                      # the score above is after the late penalty; the tests keep raw points
                                      "raw_points": round(tr.raw_points, 4),
                                      "submitted_at": tr.submitted_at, "submitted_source": tr.submitted_source,
                                      "lateness": tr.lateness.to_json() if tr.lateness else None,
                                      "results": [r.to_json() for r in tr.results]}}}


def read_topic_result(path: Path) -> R.TopicResult | None:
    """Load a results.json written by `gradescope`, or None if it is missing, cut short or not ours (a rerun of
    `dlcore grade` then grades it again)."""
    try:
        return topic_result(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def topic_result(gradescope_data: dict) -> R.TopicResult | None:
    """The TopicResult that `gradescope` turned into `gradescope_data`, or None if the data are not ours."""
    try:
        data = gradescope_data["extra_data"]["dlcore"]
        return R.TopicResult(student=data["student"], topic=data["topic"],
                             results=[R.CheckResult.from_json(r) for r in data["results"]], notes=data["notes"],
                             fingerprint=data["fingerprint"], seconds=data["seconds"],
                             student_seconds=data.get("student_seconds", 0.0), sandbox=data.get("sandbox", ""),
                             device=data.get("device", ""), submission=data.get("submission", ""),
                             submitted_at=data.get("submitted_at") or "",
                             submitted_source=data.get("submitted_source") or "",
                             lateness=R.Lateness(**data["lateness"]) if data.get("lateness") else None)
    except (KeyError, TypeError, ValueError):
        return None


def write_results(out: Path, tr: R.TopicResult) -> Path:
    path = out / tr.student / tr.topic / "results.json"
    write_atomic(path, json.dumps(gradescope(tr), indent=1))
    return path


def write_gradebook(path: Path, rows: list[dict]) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue())


def _late_line(tr: R.TopicResult) -> str:
    """The lateness of a topic in words ("" when the topic has no deadline or lateness was not applied)."""
    from autograder.lateness import summary

    return summary(tr.lateness, round(tr.raw_points, 2), round(tr.points, 2))


def _dependent_scores(r: R.CheckResult) -> str:
    """' (end to end 0.8, isolated 4)' when a dependent task was also graded over the reference's functions."""
    if r.isolated_points is None:
        return ""
    return f" (end to end {r.end_to_end_points:g}, isolated {r.isolated_points:g})"


def feedback_html(student: str, topic_results: list[R.TopicResult], row: dict) -> str:
    """A self-contained page for one student: grade summary, then every task with what is wrong and where."""
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>Feedback: {e(student)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}td,th{padding:.3em .6em;"
             "border-bottom:1px solid #ddd;vertical-align:top}.passed{color:#070}.FAILED,.ERROR{color:#b00}"
             ".partial{color:#a60}.GRADER{color:#80a}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;"
             "max-height:30em;overflow:auto}"
             # long unbroken text (printed output, digits) in "what to fix" must wrap, or the table widens the page
             # past the screen; the other columns keep whole words
             "table{border-collapse:collapse;width:100%}td:last-child,pre{overflow-wrap:anywhere}img{height:auto}"
             "figure{margin:.5em 0}</style>",
             f"<h1>Feedback for {e(student)}</h1>",
             f"<p><b>{row['percentage']:.1f}%</b>, grade <b>{e(str(row['letter']))}</b> "
             f"(grade point {row['grade_point']}); {row['total_points']:g} of {row['total_max']:g} points"
             + (f"; {row['pending_manual_points']:g} points await manual grading" if row["pending_manual_points"]
                else "") + ".</p>"]
    if row.get("grader_errors"):
        parts.append(f"<p class='ERROR'><b>The grader failed on {row['grader_errors']} task(s).</b> This is not your "
                     f"mistake: the course staff will fix the grader and regrade; those tasks show GRADER ERROR.</p>")
    for tr in topic_results:
        before = f" ({tr.raw_points:g} before the late penalty)" if tr.penalty > 1e-9 else ""
        parts.append(f"<h2>{e(course_config.topic(tr.topic).title)}: {tr.points:g}/{tr.max_points:g}{before}</h2>")
        if tr.lateness is not None and _late_line(tr):  # (no line without a lateness)
            status = tr.lateness.status
            parts.append(f"<p class='{'ERROR' if status in (R.LATE, R.NO_TIME) else 'passed'} late'>"
                         f"{e(_late_line(tr))}</p>")
        parts += [f"<p class='ERROR'>{e(n)}</p>" for n in tr.notes]
        parts.append("<table><tr><th>task</th><th>points</th><th>status</th><th>what to fix</th></tr>")
        for r in tr.results:
            mark = STATUS_MARK.get(r.status, r.status)
            detail = "".join(f"<li>{'ok' if p.passed else '<b>fail</b>'}: {e(p.label)}"
                             f"{'' if p.passed else ' — ' + e(p.message)}</li>" for p in r.parts)
            out = f"<details><summary>your code printed</summary><pre>{e(r.output)}</pre></details>" \
                if r.output.strip() else ""
            out += "".join(
                f"<figure><figcaption>{e(f['label'])}: yours (left), expected (right)</figcaption>"
                + "".join(f"<img alt='{side}' style='max-width:48%' src='data:image/png;base64,{f[side]}'>"
                          for side in ("student", "expected") if f.get(side)) + "</figure>" for f in r.figures)
            if detail and " Isolated score, " in r.message:  # dependent scoring, which the parts do not carry
                isolated = "Isolated score, " + r.message.split(" Isolated score, ", 1)[1]
                out = f"<p><i>{e(isolated)}</i></p>" + out
            if detail and ". Note: " in r.message:  # the dependency note, which the parts do not carry
                out = f"<p><i>Note: {e(r.message.split('. Note: ', 1)[1])}</i></p>" + out
            parts.append(f"<tr><td><code>{e(r.task)}</code><br><small>{e(', '.join([*r.tags, r.category]))}</small></td>"
                         f"<td>{r.points:g}/{r.max_points:g}{e(_dependent_scores(r))}</td>"
                         f"<td class='{e(mark)}'>{e(mark)}</td>"
                         f"<td>{e(r.message) if not detail else ''}<ul>{detail}</ul>{out}"
                         f"<small>input seed {r.seed}</small></td></tr>")
        parts.append("</table>")
    return "\n".join(parts)


def print_topic(tr: R.TopicResult, console=None, verbose: bool = True) -> None:
    """A table of tasks with points, then what is wrong and where, for each task that lost points."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{course_config.topic(tr.topic).title}: {tr.points:g}/{tr.max_points:g} points")
    for col in ("task", "points", "status", "seconds"):
        table.add_column(col, justify="right" if col in ("points", "seconds") else "left")
    style = {R.PASSED: "green", R.PARTIAL: "yellow", R.FAILED: "red", R.ERROR: "red", R.NOT_ATTEMPTED: "dim",
             R.GRADER_ERROR: "magenta"}
    for r in tr.results:
        table.add_row(r.task, f"{r.points:g}/{r.max_points:g}{_dependent_scores(r)}", STATUS_MARK.get(r.status, r.status),
                      f"{r.seconds:.2f}", style=style.get(r.status))
    console.print(table)
    for note in tr.notes:
        console.print(f"[red]note:[/red] {escape(note)}", highlight=False)
    if _late_line(tr):
        console.print(_late_line(tr), highlight=False, markup=False)
    if not verbose:
        return
    for r in tr.results:
        if r.points < r.max_points and r.status not in (R.MANUAL, R.NOT_ATTEMPTED, R.SKIPPED):
            console.print(f"\n[bold]{r.task}[/bold] (seed {r.seed})", highlight=False)
            for p in r.parts:
                if not p.passed:
                    console.print(f"  [red]✗[/red] {escape(p.label)}: {escape(p.message)}", highlight=False)
            if not r.parts:
                console.print(f"  {r.message}", highlight=False, markup=False)
            elif ". Note: " in r.message:
                console.print("  note: " + r.message.split(". Note: ", 1)[1], highlight=False, markup=False)
            if r.output.strip():
                console.print("  your code printed: " + r.output.strip()[:1000], highlight=False, markup=False)
