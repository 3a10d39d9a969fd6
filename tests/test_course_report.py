"""`dlcore report GRADED_DIR` over the demo cohort: numbers equal the gradebook's, letter counts, failure rates,
the Moodle CSV, one transcript per student, and the pages checked in a real headless Chromium.

The browser checks skip where Chromium is not installed (`apt-get install -y chromium`). Screenshots go to
$DLCORE_ARTIFACTS (default: a pytest temporary folder, printed in the test's properties).
"""
from __future__ import annotations

import csv
import html
import importlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

import course_config
from autograder import course_report, reports, scoring
from autograder import results as R

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)")
WIDTH = 1366  # a laptop's screen


pytestmark = pytest.mark.xdist_group("demo")  # shares the one `dlcore demo` run with tests/test_cli.py


@pytest.fixture(scope="session")
def demo(demo_run) -> Path:
    """The demo cohort graded once (`dlcore demo`), then `dlcore report` on it; returns the graded folder."""
    out, _ = demo_run
    graded = out / "graded"
    proc = subprocess.run(["dlcore", "report", str(graded), "--manual", str(out / "manual_scores.csv")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note:" not in proc.stdout, proc.stdout  # same manual scores as the demo's grading: no difference
    return graded


def gradebook(graded: Path) -> dict[str, dict]:
    with open(graded / "gradebook.csv", newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


class Tables(HTMLParser):
    """Every <table id=...> of a page as a list of rows of cell texts (the header row first)."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = []
            self.tables[self._id].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._id = self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(path: Path, name: str) -> list[dict[str, str]]:
    head, *rows = Tables(path.read_text()).tables[name]
    return [dict(zip(head, row)) for row in rows]


def test_student_numbers_equal_the_gradebook(demo):
    book = gradebook(demo)
    rows = {r["student"]: r for r in table(demo / "report.html", "students")}
    assert set(rows) == set(book) == {"adaeze", "bola", "chidi", "damilola", "emeka", "funmi"}
    cats = [c for c in course_config.CATEGORY_WEIGHTS if f"{c}_max" in next(iter(book.values()))]
    assert len(cats) >= 2
    for student, b in book.items():
        r = rows[student]
        for c in cats:
            points, pct = re.fullmatch(r"(\S+) \((\S+) %\)", r[course_report.CATEGORY_TITLES[c]]).groups()
            assert points == f"{float(b[c + '_points']):g}/{float(b[c + '_max']):g}", (student, c)
            # shown to one decimal: off by at most half a unit of the last digit (31.25 shows as 31.2)
            assert float(pct) == pytest.approx(100 * float(b[c + "_points"]) / float(b[c + "_max"]), abs=0.05 + 1e-9)
        assert r["total points"] == f"{float(b['total_points']):g}/{float(b['total_max']):g}"
        assert float(r["weighted %"]) == float(b["percentage"])
        assert (r["letter"], r["grade point"]) == (b["letter"], b["grade_point"])
        assert float(r["pending manual"]) == float(b["pending_manual_points"])
    assert rows["adaeze"]["letter"] == "A" and float(rows["adaeze"]["weighted %"]) == 100.0
    assert rows["bola"]["letter"] == "F" and rows["bola"]["total points"].startswith("0/")


def test_class_statistics_and_letter_counts(demo):
    book = gradebook(demo)
    pct = [float(b["percentage"]) for b in book.values()]
    (stats,) = table(demo / "report.html", "statistics")
    assert int(stats["n"]) == len(pct) == 6
    expected = {"mean": statistics.fmean(pct), "median": statistics.median(pct), "sd": statistics.stdev(pct),
                "min": min(pct), "max": max(pct)}
    for key, value in expected.items():
        assert float(stats[key]) == pytest.approx(value, abs=0.006), key
    (letters,) = table(demo / "report.html", "letters")
    counts = Counter(b["letter"] for b in book.values())
    assert {k: int(v) for k, v in letters.items()} == {name: counts[name] for name, _, _ in course_config.GRADE_SCALE}
    assert sum(int(v) for v in letters.values()) == 6


def lost_points(graded: Path, topic: str) -> tuple[dict[str, set[str]], Counter]:
    """task -> students who lost points on it, and task -> students scored on it, read straight from results.json
    (pending manual and grader errors left out), independently of the report's code."""
    lost: dict[str, set[str]] = {}
    scored: Counter = Counter()
    for path in graded.glob(f"*/{topic}/results.json"):
        for r in json.loads(path.read_text())["extra_data"]["dlcore"]["results"]:
            if r["status"] not in (R.MANUAL, R.GRADER_ERROR):
                scored[r["task"]] += 1
                bucket = lost.setdefault(r["task"], set())
                if r["points"] < r["max_points"]:
                    bucket.add(path.parent.parent.name)
    return lost, scored


def test_failure_rates_of_the_tasks_the_buggy_students_fail(demo):
    topic = course_config.TOPICS[0]
    failures = {f["task"]: f for f in table(demo / "report.html", "failures")}
    lost, scored = lost_points(demo, topic.slug)
    mutants = {m.name: m for m in importlib.import_module(f"autograder.hidden.{topic.slug}").MUTANTS}
    for student, name in zip(("chidi", "damilola", "emeka"), topic.demo_mutants):
        task = mutants[name].primary
        assert {"bola", student} <= lost[task] and "adaeze" not in lost[task], (task, lost[task])
        row = failures[task]
        assert scored[task] == 6  # the demo has no grader errors
        assert row["students"] == f"{len(lost[task])}/{scored[task]}"
        assert row["lost points"] == f"{100 * len(lost[task]) / scored[task]:.0f} %"
        part, count = re.fullmatch(r"(.*) \((\d+)\)", row["most common failed part (students)"]).groups()
        assert part and 1 <= int(count) <= len(lost[task])
    # a task only the stubs student fails: the cause is the stub's "not attempted", once
    only_stubs = [t for t, who in lost.items() if who == {"bola"}]
    assert only_stubs, lost
    row = failures[only_stubs[0]]
    assert row["lost points"] == f"{100 / 6:.0f} %" and row["most common message (students)"].endswith("(1)")
    assert "not attempted" in row["most common message (students)"].lower() or \
        "NotImplementedError" in row["most common message (students)"]


def test_messages_are_normalised_across_students():
    a = ("dw: 30 of 36 entries wrong; worst dw(0, 1): got -2.23, expected 1.39, dw(2, 0): got 4, expected 0.5; it "
         "equals the transpose of the expected value (relative error 7.1e-01 > 1e-06); dw disagrees with the "
         "numerical gradient (directional error 0.3 > 1e-06, seed 12345)")
    b = ("dw: 7 of 20 entries wrong; worst dw(3, 0, 2): got 4e-05, expected .5; it equals the transpose of the "
         "expected value (relative error 2e-01 > 1e-06); dw disagrees with the numerical gradient (directional error "
         "0.9 > 1e-06, seed 9)")
    assert course_report.normalise(a) == course_report.normalise(b) == (
        "dw: # of # entries wrong; it equals the transpose of the expected value; dw disagrees with the numerical "
        "gradient")
    assert course_report.normalise("dx is off by a factor of 6") != course_report.normalise("dx is transposed")
    assert course_report.normalise("the y axis is 'linear', not 'log'") == "the y axis is 'linear', not 'log'"


def test_moodle_csv_has_the_documented_columns_and_the_gradebook_values(demo):
    book = gradebook(demo)
    with open(demo / "moodle_grades.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    topics = [t.slug for t in course_config.TOPICS if (demo / "adaeze" / t.slug / "results.json").is_file()]
    assert reader.fieldnames == ["student", *topics, "Total (%)", "Letter"]
    assert len(rows) == len(book) == 6
    for r in rows:
        b = book[r["student"]]
        for t in topics:
            assert float(r[t]) == float(b[f"{t}_points"])
        assert float(r["Total (%)"]) == float(b["percentage"]) and r["Letter"] == b["letter"]
        assert re.fullmatch(r"\d+(\.\d+)?", r["Total (%)"])  # a decimal point, no thousands separator


def test_one_transcript_per_student(demo):
    book = gradebook(demo)
    files = sorted((demo / "transcripts").glob("*.html"))
    assert [p.stem for p in files] == sorted(book)
    for p in files:
        b = book[p.stem]
        text = p.read_text()
        assert f"Transcript: {p.stem}" in text and f"grade <b>{b['letter']}</b>" in text
        assert f"{float(b['percentage']):.2f}%" in text
        cats = {r["category"]: r for r in table(p, "categories")}
        assert sum(float(r["weight"]) for r in cats.values()) == pytest.approx(1.0, abs=0.002)


def test_report_uses_the_recorded_manual_scores_and_names_a_difference(demo, tmp_path):
    """The graded folder records the manual scores it was graded with, so `dlcore report` without --manual agrees
    with the gradebook; other manual scores given explicitly make it say which students' percentages differ."""
    copy = tmp_path / "graded"
    shutil.copytree(demo, copy)
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "report", str(copy)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "note:" not in proc.stdout, proc.stdout
    none = tmp_path / "no_manual_scores.csv"
    none.write_text("student,task,points\n")
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "report", str(copy), "--manual", str(none)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "note: gradebook.csv has other percentages for adaeze" in proc.stdout, proc.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "report", str(empty)], capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "no results.json" in proc.stderr


# ---- in a real browser ----

# Injected after the doctype: records script errors and resources that fail to load.
PROBE_HEAD = ("<script>window.__errors=[];addEventListener('error',function(ev){__errors.push(ev.message||"
              "('failed resource: '+String(ev.target&&(ev.target.src||ev.target.href)).slice(0,80)))},true);</script>")
# Injected at the end: after load, writes what the test checks into the DOM, which --dump-dom prints.
PROBE_TAIL = """<script>addEventListener('load',function(){
var root=document.documentElement, imgs=[].slice.call(document.images);
function scrolls(el){for(;el&&el!==root;el=el.parentElement){var o=getComputedStyle(el).overflowX;
  if(o==='auto'||o==='scroll')return true;}return false;}
var tables=[].slice.call(document.querySelectorAll('table'));
var r={images:imgs.length, broken:imgs.filter(function(i){return !i.complete||i.naturalWidth===0;}).length,
 scrollWidth:root.scrollWidth, clientWidth:root.clientWidth, innerWidth:innerWidth, height:root.scrollHeight,
 tables:tables.length,
 loose:tables.filter(function(t){return t.getBoundingClientRect().right>root.clientWidth&&!scrolls(t);}).length,
 clipped:[].slice.call(document.querySelectorAll('td,th')).filter(function(c){
   return c.scrollWidth>c.clientWidth+1;}).length,
 smallest:Math.min.apply(null,[].slice.call(document.querySelectorAll('td,th,p')).map(function(c){
   return parseFloat(getComputedStyle(c).fontSize);})), errors:window.__errors};
var p=document.createElement('pre');p.id='dlcore-probe';p.textContent=JSON.stringify(r);document.body.appendChild(p);
});</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--disable-dev-shm-usage", "--no-first-run", *args], capture_output=True, text=True,
                          timeout=180)


def check_in_browser(page: Path, shot: Path, tmp_path: Path) -> dict:
    """Load a copy of `page` with the probe at 1366 px, then save a full-page screenshot of the page itself."""
    text = page.read_text()
    assert text.lower().startswith("<!doctype html>")
    # self-contained: every image and link is a data: URI or in-page anchor, so nothing can fail to load offline
    refs = re.findall(r"""\b(?:src|href)\s*=\s*['"]([^'"]*)""", text)
    assert all(ref.startswith(("data:", "#")) for ref in refs), [r[:60] for r in refs]
    probed = tmp_path / f"probe-{page.name}"
    probed.write_text(text[:15] + PROBE_HEAD + text[15:] + PROBE_TAIL)
    profile = str(tmp_path / "chromium-profile")
    proc = chromium(f"--user-data-dir={profile}", f"--window-size={WIDTH},900", "--virtual-time-budget=10000",
                    "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="dlcore-probe">(.*?)</pre>', proc.stdout)
    assert found, f"the page did not finish loading in Chromium: {proc.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    height = min(max(int(result["height"]), 900), 12000)  # the whole page, within reason
    proc = chromium(f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}", f"--screenshot={shot}",
                    page.as_uri())
    assert shot.is_file() and shot.stat().st_size > 1000, proc.stderr[-2000:]
    return result


def assert_renders(result: dict, min_images: int = 0) -> None:
    assert result["innerWidth"] == WIDTH, result
    assert result["errors"] == [], result["errors"]
    assert result["images"] >= min_images and result["broken"] == 0, result
    assert result["scrollWidth"] <= result["clientWidth"], f"the page scrolls sideways at {WIDTH} px: {result}"
    assert result["tables"] > 0 and result["loose"] == 0, f"a table wider than the page outside a scroll box: {result}"
    assert result["clipped"] == 0, f"table cells whose text is cut off: {result}"
    assert result["smallest"] >= 12, f"text smaller than 12 px: {result}"


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DLCORE_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots in {folder}")
    return folder


@needs_chromium
def test_report_renders_in_chromium(demo, artifacts, tmp_path, record_property):
    result = check_in_browser(demo / "report.html", artifacts / "report.png", tmp_path)
    n_topics = len(table(demo / "report.html", "topics"))
    assert_renders(result, min_images=1 + n_topics)  # the grade distribution and one histogram per topic
    assert result["images"] == 1 + n_topics
    record_property("screenshot", str(artifacts / "report.png"))


@needs_chromium
@pytest.mark.parametrize("student", ["chidi", "bola"])
def test_feedback_page_renders_in_chromium(demo, artifacts, tmp_path, student, record_property):
    page = demo / student / "feedback.html"
    figures = page.read_text().count("data:image/png;base64,")
    result = check_in_browser(page, artifacts / f"feedback-{student}.png", tmp_path)
    assert_renders(result, min_images=figures)
    record_property("screenshot", str(artifacts / f"feedback-{student}.png"))


@needs_chromium
def test_feedback_page_with_long_unbroken_text_fits_the_screen(artifacts, tmp_path):
    """A student's long printed output or a message full of digits wraps inside its cell (it used to widen the
    feedback table to about 4,000 px)."""
    topic = course_config.TOPICS[0]
    task = topic.tasks[0]
    r = R.CheckResult(task.name, 0.0, task.points, R.FAILED, "wrong", output="A" * 3000,
                      parts=(R.Part("dx", 1.0, False, "got " + "9" * 400),), category=task.category)
    tr = R.TopicResult("zed", topic.slug, [r])
    page = tmp_path / "feedback.html"
    page.write_text(reports.feedback_html("zed", [tr], scoring.gradebook_row("zed", [tr])))
    assert_renders(check_in_browser(page, artifacts / "feedback-long-text.png", tmp_path))


@needs_chromium
def test_transcript_renders_in_chromium_and_prints_on_one_page(demo, artifacts, tmp_path, record_property):
    page = demo / "transcripts" / "chidi.html"
    result = check_in_browser(page, artifacts / "transcript-chidi.png", tmp_path)
    assert_renders(result)
    pdf = artifacts / "transcript-chidi.pdf"
    proc = chromium(f"--user-data-dir={tmp_path / 'chromium-profile'}", "--no-pdf-header-footer",
                    f"--print-to-pdf={pdf}", page.as_uri())
    assert pdf.is_file(), proc.stderr[-2000:]
    pages = re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes())
    assert len(pages) == 1, f"the transcript prints on {len(pages)} pages"
    record_property("screenshot", str(artifacts / "transcript-chidi.png"))
