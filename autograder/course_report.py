"""`dlcore report GRADED_DIR`: the course report over every graded topic, for the staff and the LMS.

Reads every `GRADED/<student>/<topic>/results.json` (what `dlcore grade` wrote) and writes, atomically:

- `GRADED/report.html`: per student the four assessment categories, total, weighted percentage, OAU letter and
  grade point; class statistics; a grade-distribution chart and per-topic score histograms (base64 PNGs, so the
  page is one self-contained file); per task the share of students who lost points and the most common cause.
- `GRADED/moodle_grades.csv`: for Moodle's grade import (Grades > Import > CSV file, comma separator, UTF-8).
  Its columns and how to map them on Moodle's import page:
  - `student`: "Identify user by": map from `student` to the user field that holds the submission folder names
    (`username`, or `ID number` when the folders are matriculation numbers);
  - one column per graded topic, named by its folder (slug), holding the points earned: map to a grade item (or
    "New grade item"); the item's maximum grade must be at least the topic's points (listed in the report);
  - `Total (%)`: the gradebook's weighted percentage, to a grade item out of 100;
  - `Letter`: "Ignore" (Moodle derives letters from its own letter settings), or a grade item's feedback.

  Values use a decimal point; a topic a student has no results for is `-`, which Moodle imports as no grade.
  Points still awaiting manual grading count as 0 until `dlcore grade --manual` supplies them.
- `GRADED/transcripts/<student>.html`: one printable page per student.

Numbers come from `autograder.scoring.gradebook_row`, the same function that writes `gradebook.csv`, so the
report and the gradebook agree (late penalties included: the submission times and extensions recorded in GRADED,
autograder/lateness.py): both use the manual scores `dlcore grade` recorded in GRADED/manual_scores.csv,
unless the report is given others with `--manual`.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import re
import statistics
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import course_config
from autograder import lateness, reports, scoring
from autograder import results as R
from course_config import CATEGORY_WEIGHTS, GRADE_SCALE

CATEGORY_TITLES = {"implementation": "Implementation notebooks", "visualization": "Visualisation tasks",
                   "comparative": "Comparative analysis", "generative": "Generative projects"}
NOT_SCORED = (R.MANUAL, R.GRADER_ERROR)  # pending or the grader's fault: neither counts as the student losing points

# Shared by the report and the transcripts. Wide tables scroll inside their own .wide box, so the page itself never
# scrolls sideways at a laptop's width; printing drops the box so a transcript fits one sheet.
CSS = ("body{font-family:system-ui,sans-serif;font-size:15px;line-height:1.4;max-width:80em;margin:1.5em auto;"
       "padding:0 1em;color:#222}h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em}"
       ".wide{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:.5em 0}"
       "td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
       "th{background:#f3f3f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.n{white-space:nowrap}"
       "code,td:last-child{overflow-wrap:anywhere}img{max-width:100%;height:auto}"
       ".figs{display:flex;flex-wrap:wrap;gap:1em 2em;align-items:flex-start}figure{margin:.5em 0;max-width:100%}"
       "figcaption{font-size:.9em;color:#444;max-width:28em}.warn{color:#b00}small{color:#555}"
       "@media print{body{max-width:none;margin:0;font-size:11pt}.wide{overflow:visible}}@page{size:A4;margin:15mm}")


@dataclass
class Cohort:
    """Every student's topic results (manual scores applied) and gradebook rows, in the same order."""

    topics: list[str]                            # graded topic slugs, in the course's order
    results: dict[str, list[R.TopicResult]]      # student -> one TopicResult per topic
    rows: list[dict]                             # scoring.gradebook_row per student
    missing: set[tuple[str, str]]                # (student, topic) without a readable results.json


def _topic_order(slug: str) -> tuple[int, str]:
    slugs = [t.slug for t in course_config.TOPICS]
    return (slugs.index(slug), slug) if slug in slugs else (len(slugs), slug)


def _title(slug: str) -> str:
    try:
        return course_config.topic(slug).title
    except KeyError:  # graded under an older configuration
        return slug


def _missing(student: str, topic: str, like: R.TopicResult) -> R.TopicResult:
    """A topic this student has no readable results for: the tasks others were graded on, as grader errors, so
    the maximum counts as in the gradebook and the staff see that it still needs grading."""
    why = "no readable results.json: not graded yet; run `dlcore grade`"
    return R.TopicResult(student, topic, [R.CheckResult(r.task, 0.0, r.max_points, R.GRADER_ERROR, why,
                                                        category=r.category, grader_errors=(why,))
                                          for r in like.results], notes=[why])


def load(graded: Path, manual: Path | None = None) -> Cohort:
    """Read GRADED/<student>/<topic>/results.json; apply the manual scores `dlcore grade` recorded in GRADED (or
    `manual`, if given), as `dlcore grade` does."""
    found: dict[str, dict[str, R.TopicResult]] = {}
    for path in sorted(graded.glob("*/*/results.json")):
        tr = reports.read_topic_result(path)
        if tr is not None:
            found.setdefault(path.parent.parent.name, {})[path.parent.name] = tr
    if not found:
        raise SystemExit(f"{graded}: no results.json under <student>/<topic>/; run `dlcore grade ... --out {graded}`")
    topics = sorted({t for by_topic in found.values() for t in by_topic}, key=_topic_order)
    examples = {t: next(by_topic[t] for by_topic in found.values() if t in by_topic) for t in topics}
    manual_scores = scoring.load_manual(scoring.recorded_manual(graded, manual))
    extensions, times = lateness.recorded(graded)  # the late penalties of the gradebook, from the same records
    results, rows = {}, []
    missing = {(s, t) for s in found for t in topics if t not in found[s]}
    for student in sorted(found):
        trs = [lateness.apply(scoring.apply_manual(found[student].get(t) or _missing(student, t, examples[t]),
                                                   manual_scores), extensions, times) for t in topics]
        results[student] = trs
        rows.append(scoring.gradebook_row(student, trs))
    return Cohort(topics, results, rows, missing)


def class_statistics(rows: list[dict]) -> dict:
    """n, mean, median, sample sd, min and max of the weighted percentage; mean grade point; letter counts."""
    pct = [row["percentage"] for row in rows]
    return {"n": len(pct), "mean": statistics.fmean(pct), "median": statistics.median(pct),
            "sd": statistics.stdev(pct) if len(pct) > 1 else 0.0, "min": min(pct), "max": max(pct),
            "mean_grade_point": statistics.fmean(row["grade_point"] for row in rows),
            "letters": {name: sum(row["letter"] == name for row in rows) for name, _, _ in GRADE_SCALE}}


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.IGNORECASE)
_TUPLE = re.compile(r"\(#(?:,\s*#)*,?\)")
_ERROR_SIZE = re.compile(r"\s*\((?:relative |directional )?error # > #(?:, seed #)?\)")


def normalise(message: str) -> str:
    """A failure message without its numbers (values, indices, shapes, seeds) and without the per-entry examples
    ("worst dw(0, 1): got ..., expected ..."), so the same mistake made by different students on their own inputs
    reads the same: "dw: # of # entries wrong; it equals the transpose of the expected value"."""
    text = _TUPLE.sub("(#)", _NUMBER.sub("#", message.split("\n", 1)[0]))
    clauses = [_ERROR_SIZE.sub("", c).strip() for c in text.split("; ") if not c.lstrip().startswith("worst ")]
    return re.sub(r"\s+", " ", "; ".join(c for c in clauses if c)).strip()


def _causes(r: R.CheckResult) -> list[tuple[str, str]]:
    """(failed part label, normalised message) of one result; the whole result's message when it has no parts."""
    failed = [(p.label, normalise(p.message)) for p in r.parts if not p.passed and not p.grader_error]
    return failed or [("(whole task)", normalise(r.message) or r.status)]


def task_failures(cohort: Cohort) -> list[dict]:
    """Per task: students scored, how many lost points, the share, and the most common cause.

    A task pending manual grading or failed by the grader itself is left out for that student (not scored);
    a stub that is not attempted counts as lost points. The most common cause is the failed part label most
    students share, with the normalised message most of those students got on it; each student counts once.
    """
    out = []
    for topic in cohort.topics:
        names = list(dict.fromkeys(r.task for trs in cohort.results.values() for tr in trs if tr.topic == topic
                                   for r in tr.results))
        for task in names:
            scored = [r for trs in cohort.results.values() for tr in trs if tr.topic == topic
                      for r in tr.results if r.task == task and r.status not in NOT_SCORED]
            lost = [r for r in scored if r.points < r.max_points]
            labels: Counter = Counter()
            messages: dict[str, Counter] = {}
            diagnosed: Counter = Counter()  # (label, message) seen on an attempted task, not only on stubs
            for r in lost:
                causes = list(dict.fromkeys(_causes(r)))  # each cause once per student, in the check's part order
                for label, msg in causes:
                    messages.setdefault(label, Counter())[msg] += 1
                    diagnosed[(label, msg)] += r.status != R.NOT_ATTEMPTED
                labels.update(list(dict.fromkeys(label for label, _ in causes)))
            row: dict[str, Any] = {"topic": topic, "task": task, "scored": len(scored), "lost": len(lost),
                   "rate": len(lost) / len(scored) if scored else 0.0, "part": "", "part_count": 0,
                   "message": "", "message_count": 0}
            if labels:
                # ties go to the label seen first (the check's part order), so the report is reproducible; among
                # messages, a tie goes to a diagnosed mistake rather than an untouched stub's "not attempted"
                row["part"], row["part_count"] = labels.most_common(1)[0]
                counts = messages[row["part"]]
                row["message"] = max(counts, key=lambda m: (counts[m], diagnosed[(row["part"], m)] > 0))
                row["message_count"] = counts[row["message"]]
            out.append(row)
    return out


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def grade_distribution_png(stats: dict) -> str:
    """Bar chart of how many students got each letter, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    letters = [name for name, _, _ in GRADE_SCALE]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    bars = ax.bar(letters, [stats["letters"][x] for x in letters], color="#4a7bb7")
    ax.bar_label(bars)
    ax.set(title=f"Grade distribution ({stats['n']} students)", xlabel="OAU letter", ylabel="students")
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # a MaxNLocator at run time
    return _png(fig)


def topic_histogram_png(slug: str, percents: list[float]) -> str:
    """Histogram of one topic's scores (percent of its points) in bins of 10, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.9, 2.7))
    ax.hist(percents, bins=range(0, 110, 10), color="#6a9f58", edgecolor="white")
    ax.set(title=textwrap.fill(_title(slug), 40), xlabel="score (% of the topic's points)", ylabel="students",
           xlim=(0, 100))
    ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # a MaxNLocator at run time
    return _png(fig)


def _table(head: list[str], rows: list[list], numeric: set[int] | frozenset[int] = frozenset(), attrs: str = "") -> str:
    """An html table (cells escaped) inside a box that scrolls sideways on its own when it is too wide."""
    e = html.escape
    cls = [" class='n'" if i in numeric else "" for i in range(len(head))]
    lines = [f"<div class='wide'><table{attrs}><thead><tr>"
             + "".join(f"<th{c}>{e(h)}</th>" for h, c in zip(head, cls)) + "</tr></thead><tbody>"]
    lines += ["<tr>" + "".join(f"<td{c}>{e(str(v))}</td>" for v, c in zip(row, cls)) + "</tr>" for row in rows]
    return "\n".join(lines) + "</tbody></table></div>"


def _categories(cohort: Cohort) -> list[str]:
    """The categories with points possible in this cohort, in the configuration's order."""
    return [c for c in CATEGORY_WEIGHTS if any(f"{c}_max" in row for row in cohort.rows)]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _pct(earned: float, possible: float) -> str:
    return f"{100 * earned / possible:.1f}" if possible else "-"


def late_cell(trs: list[R.TopicResult]) -> str:
    """Each topic submitted late (its penalty, points before it) or without a known time; "-" when none."""
    out = []
    for tr in trs:
        late = tr.lateness
        if late is not None and late.status == R.LATE:
            out.append(f"{tr.topic}: {late.days_late} d late, -{tr.penalty:g} (of {tr.raw_points:g})")
        elif late is not None and late.status == R.NO_TIME:
            out.append(f"{tr.topic}: no submission time")
    return "; ".join(out) or "-"


def student_table(cohort: Cohort) -> tuple[list[str], list[list]]:
    """Header and rows of the per-student table: each category's earned/possible (percent), totals, grade."""
    cats = _categories(cohort)
    head = ["student"] + [CATEGORY_TITLES.get(c, c) for c in cats]
    head += ["total points", "weighted %", "letter", "grade point", "pending manual", "grader errors", "late"]
    rows = []
    for row in cohort.rows:
        cells = [row["student"]]
        for c in cats:
            earned, possible = row.get(f"{c}_points", 0), row.get(f"{c}_max", 0)
            cells.append(f"{earned:g}/{possible:g} ({_pct(earned, possible)} %)")
        cells += [f"{row['total_points']:g}/{row['total_max']:g}", f"{row['percentage']:.2f}", row["letter"],
                  row["grade_point"], f"{row['pending_manual_points']:g}", row["grader_errors"],
                  late_cell(cohort.results[row["student"]])]
        rows.append(cells)
    return head, rows


def report_html(cohort: Cohort, stats: dict, failures: list[dict], graded: Path) -> str:
    e = html.escape
    weights = ", ".join(f"{CATEGORY_TITLES.get(c, c)} {CATEGORY_WEIGHTS[c]:g}" for c in _categories(cohort))
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>Course report: {e(graded.name)}</title><style>{CSS}</style></head><body>",
             "<h1>Course report</h1>",
             f"<p>{stats['n']} students; topics: {e(', '.join(_title(t) for t in cohort.topics))}. Category weights "
             f"(renormalised over the categories graded): {e(weights)}. Letters: "
             + e(", ".join(f"{name} >= {low:g}% ({gp})" for name, low, gp in GRADE_SCALE)) + ".</p>"]
    errors = sum(row["grader_errors"] for row in cohort.rows)
    pending = sum(row["pending_manual_points"] for row in cohort.rows)
    if errors:
        parts.append(f"<p class='warn'><b>{errors} task result(s) are grader errors</b> (shown per student below): "
                     f"fix the grader and regrade before releasing grades.</p>")
    if pending:
        parts.append(f"<p class='warn'>{pending:g} points still await manual grading (counted as 0); pass "
                     f"<code>--manual</code> with the instructors' scores.</p>")
    parts.append("<h2>Students</h2>")
    head, rows = student_table(cohort)
    parts.append(_table(head, rows, numeric=set(range(1, len(head))) - {head.index("letter")}, attrs=" id='students'"))

    parts.append("<h2>Class statistics (weighted %)</h2>")
    parts.append(_table(["n", "mean", "median", "sd", "min", "max", "mean grade point"],
                        [[stats["n"]] + [f"{stats[k]:.2f}" for k in ("mean", "median", "sd", "min", "max",
                                                                       "mean_grade_point")]],
                        numeric=set(range(7)), attrs=" id='statistics'"))
    letters = list(stats["letters"])
    parts.append(_table(letters, [[stats["letters"][x] for x in letters]], numeric=set(range(len(letters))),
                        attrs=" id='letters'"))
    parts.append("<p><small>sd is the sample standard deviation.</small></p>")
    parts.append(f"<div class='figs'><figure><img alt='grade distribution' src='data:image/png;base64,"
                 f"{grade_distribution_png(stats)}'><figcaption>Students per OAU letter.</figcaption></figure></div>")

    parts.append("<h2>Scores per topic</h2>")
    topic_rows, figures = [], []
    for topic in cohort.topics:
        trs = [tr for trs in cohort.results.values() for tr in trs if tr.topic == topic]
        percents = [100 * tr.points / tr.max_points if tr.max_points else 0.0 for tr in trs]
        topic_rows.append([_title(topic), f"{max(tr.max_points for tr in trs):g}", f"{statistics.fmean(percents):.1f}",
                           f"{statistics.median(percents):.1f}"])
        figures.append(f"<figure><img alt='{e(topic)} scores' src='data:image/png;base64,"
                       f"{topic_histogram_png(topic, percents)}'><figcaption>{e(_title(topic))}: students per 10 % "
                       f"of the topic's points.</figcaption></figure>")
    parts.append(_table(["topic", "points", "mean %", "median %"], topic_rows, numeric={1, 2, 3}, attrs=" id='topics'"))
    parts.append("<div class='figs'>" + "".join(figures) + "</div>")

    parts.append("<h2>Where students lose points</h2><p>Per task: the share of students who lost points on it "
                 "(pending manual scores and grader errors left out), and the most common cause: the failed part "
                 "most of them share and the message most of those got, with numbers and indices replaced by #.</p>")
    ranked = sorted(failures, key=lambda f: (-f["rate"], f["task"]))
    parts.append("<ul>" + "".join(f"<li>{100 * f['rate']:.0f} % lost points on <code>{e(f['task'])}</code>; most "
                                  f"common: {e(f['part'])}: {e(_short(f['message'], 120))}</li>"
                                  for f in ranked[:5] if f["lost"]) + "</ul>")
    fail_rows = [[f["task"], f"{100 * f['rate']:.0f} %", f"{f['lost']}/{f['scored']}",
                  f"{f['part']} ({f['part_count']})" if f["part"] else "",
                  f"{_short(f['message'], 240)} ({f['message_count']})" if f["part"] else ""] for f in ranked]
    parts.append(_table(["task", "lost points", "students", "most common failed part (students)",
                         "most common message (students)"], fail_rows, numeric={1, 2}, attrs=" id='failures'"))
    parts.append("</body></html>")
    return "\n".join(parts)


def transcript_html(student: str, trs: list[R.TopicResult], row: dict) -> str:
    """One printable page: the student's topics, categories, weighted percentage, letter and grade point."""
    e = html.escape
    cats = [c for c in CATEGORY_WEIGHTS if f"{c}_max" in row]
    used = sum(CATEGORY_WEIGHTS[c] for c in cats)
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>Transcript: {e(student)}</title><style>{CSS}</style></head><body>",
             f"<h1>Transcript: {e(student)}</h1>",
             f"<p><b>{row['percentage']:.2f}%</b>, grade <b>{e(str(row['letter']))}</b> (grade point "
             f"{row['grade_point']}); {row['total_points']:g} of {row['total_max']:g} points.</p>"]
    if row["pending_manual_points"]:
        parts.append(f"<p class='warn'>{row['pending_manual_points']:g} points await manual grading "
                     f"(counted as 0).</p>")
    if row["grader_errors"]:
        parts.append(f"<p class='warn'>{row['grader_errors']} task(s) could not be graded (grader errors): this "
                     f"transcript is provisional until they are regraded.</p>")
    parts.append("<h2>Topics</h2>")
    parts.append(_table(["topic", "points", "%", "before late penalty", "lateness"],
                        [[_title(tr.topic), f"{tr.points:g}/{tr.max_points:g}", _pct(tr.points, tr.max_points),
                          f"{tr.raw_points:g}", late_cell([tr]) if late_cell([tr]) != "-" else
                          (tr.lateness.status.replace("_", " ") if tr.lateness else "-")] for tr in trs],
                        numeric={1, 2, 3}, attrs=" id='topics'"))
    parts.append("<h2>Assessment categories</h2>")
    parts.append(_table(["category", "points", "%", "weight"],
                        [[CATEGORY_TITLES.get(c, c), f"{row[c + '_points']:g}/{row[c + '_max']:g}",
                          _pct(row[c + "_points"], row[c + "_max"]), f"{CATEGORY_WEIGHTS[c] / used:.3f}"]
                         for c in cats], numeric={1, 2, 3}, attrs=" id='categories'"))
    parts.append("<p><small>Weights are the course's, renormalised over the categories graded. OAU scale: "
                 + e(", ".join(f"{name} {low:g}+ ({gp})" for name, low, gp in GRADE_SCALE)) + ".</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


MOODLE_TOTAL, MOODLE_LETTER = "Total (%)", "Letter"


def moodle_csv(cohort: Cohort) -> str:
    """Moodle's grade import CSV: `student`, one column of points per topic, `Total (%)`, `Letter`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", *cohort.topics, MOODLE_TOTAL, MOODLE_LETTER])
    for row in cohort.rows:
        # a topic with no results imports as no grade ("-"), not as 0
        points = ["-" if (row["student"], t) in cohort.missing else f"{row[f'{t}_points']:g}" for t in cohort.topics]
        w.writerow([row["student"], *points, f"{row['percentage']:.2f}", row["letter"]])
    return buf.getvalue()


def run(graded: Path, manual: Path | None = None) -> dict[str, Path]:
    """Write report.html, moodle_grades.csv and transcripts/<student>.html under `graded`; returns their paths."""
    cohort = load(graded, manual)
    stats = class_statistics(cohort.rows)
    out = {"report": graded / "report.html", "moodle": graded / "moodle_grades.csv",
           "transcripts": graded / "transcripts"}
    reports.write_atomic(out["report"], report_html(cohort, stats, task_failures(cohort), graded))
    reports.write_atomic(out["moodle"], moodle_csv(cohort))
    for student, trs in cohort.results.items():
        row = next(r for r in cohort.rows if r["student"] == student)
        reports.write_atomic(out["transcripts"] / f"{student}.html", transcript_html(student, trs, row))
    _warn_if_gradebook_differs(graded, cohort)
    print(f"{stats['n']} students, {len(cohort.topics)} topic(s): {out['report']}, {out['moodle']}, "
          f"{out['transcripts']}/<student>.html")
    return out


def _warn_if_gradebook_differs(graded: Path, cohort: Cohort) -> None:
    """The report recomputes what gradebook.csv holds; a difference means other manual scores (or a stale file)."""
    path = graded / "gradebook.csv"
    if not path.is_file():
        return
    with open(path, newline="") as f:
        book = {r["student"]: r for r in csv.DictReader(f)}
    differ = [row["student"] for row in cohort.rows if row["student"] not in book
              or abs(float(book[row["student"]]["percentage"]) - row["percentage"]) > 0.005]
    if differ:
        print(f"note: {path.name} has other percentages for {', '.join(differ)}: the report used other manual "
              f"scores than the gradebook (--manual), or the gradebook is stale (rerun `dlcore grade`)")
