"""`dlcore course`: a whole term on nbgrader, driven step by step through nbgrader's own commands.

nbgrader does what it is built for: generate_assignment, release_assignment to the exchange, collect,
autograde (it executes each submitted notebook, whose `check(...)` cells run the public suite),
generate_feedback, release_feedback and export. Students use nbgrader's fetch_assignment and submit. This module
only adds what nbgrader cannot know:

- the course folder: nbgrader_config.py and `source/<topic>/` holding only the stamped notebook (points from
  course_config), with `Autograde.exclude_overwriting` naming the student modules as well, so that autograde
  never copies instructor files over a student's own modules;
- the earlier topics a topic imports (`Topic.requires`): autograde runs the notebook in
  `autograded/<student>/<topic>/` with its parent on sys.path, so each student's collected earlier topic is put
  beside it first;
- the hidden module suite (`autograder.batch.grade` on `submitted/`), whose task points are then written into
  nbgrader's gradebook database, so formgrader, the feedback pages and `nbgrader export` show the real grade;
- manual grades (formgrader) read back from that database into dlcore's gradebook (`scoring.apply_manual`);
- each topic's due date (course_config.DEADLINES), set in nbgrader's database at release so that nbgrader and
  dlcore's late penalty (autograder/lateness.py, from the `timestamp.txt` collect leaves) use one deadline.

One gradebook, its design: nbgrader's database has one grade per graded cell of the source notebook, fixed when
the assignment is generated. The notebook has exactly one graded cell per automatic task, `check("<task>");`
(grade_id `test_<function>`, points stamped from the task), and one answer cell per manual task. After nbgrader's
autograde, that cell's `auto_score` is the public suite's verdict in the kernel (all or nothing: the cell raises
unless the task gets full points); dlcore overwrites it with the hidden suite's points for the task, which is the
grade. The public verdict stays visible as the cell's output, and `manual_score` stays free for a grader's override
in formgrader (nbgrader's score is the manual score when one is set). A task the grader itself failed on
(`grader_error`) gets no auto score and is flagged as needing a manual grade, so formgrader lists it.

nbgrader's autograde executes the student's notebook, and so imports the student's modules, in a kernel: that
kernel is the sandboxed `dlcore-sandbox` kernel (autograder/kernel.py), installed in COURSE_DIR/.dlcore/ and named in
nbgrader_config.py, so student code never runs unconfined in nbgrader's process tree either.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

import course_config
from autograder import batch, kernel, reports, scoring
from autograder import results as R
from autograder.release import REPO, graded_cells, stamp_points

LAYOUT = "{nbgrader_step}/{student_id}/{assignment_id}"  # nbgrader's default, which `dlcore grade` reads too
GRADED = "graded"          # COURSE_DIR/graded/: dlcore's results.json files, feedback pages and gradebook.csv


def config_text(course: Path, course_id: str, exchange: Path | None, topics: list[course_config.Topic]) -> str:
    """nbgrader_config.py of the course. A check cell grades one task, and the sandbox stops a topic's grading at
    its `Limits.wall_s`, so no cell of a working notebook runs longer than the largest of those."""
    timeout = int(max(max(t.limits.wall_s, t.torch_limits.wall_s) for t in topics))
    keep = {t.slug: [f"{m}.py" for m in t.modules] for t in topics}
    lines = [
        "# nbgrader configuration of the course, written by `dlcore course init` from course_config.",
        "c = get_config()",
        f"c.CourseDirectory.course_id = {course_id!r}",
        f"c.CourseDirectory.directory_structure = {LAYOUT!r}",
        f"c.Execute.timeout = {timeout}  # seconds per cell: the longest grading of a topic (Limits.wall_s)",
        f"c.ExecutePreprocessor.timeout = {timeout}",
        "# source/<topic>/ holds only the notebook; should other files land there, autograde must still never",
        "# copy them over the modules a student wrote",
        f"c.Autograde.exclude_overwriting = {keep!r}",
        *kernel.nbgrader_config_lines(course),
    ]
    if exchange is not None:
        lines.append(f"c.Exchange.root = {str(exchange)!r}  # students pass --Exchange.root with the same folder")
    return "\n".join(lines) + "\n"


def source_notebook(topic: course_config.Topic) -> Path:
    return REPO / "assignments" / topic.slug / topic.notebook


def write_source(course: Path, topic: course_config.Topic) -> Path:
    """source/<topic>/<notebook>: the instructor notebook with its points stamped from the configuration, alone in
    its folder (nbgrader copies every other file of source/<topic>/ into each student's autograded folder)."""
    folder = course / "source" / topic.slug
    folder.mkdir(parents=True, exist_ok=True)
    others = [p.name for p in folder.iterdir() if p.name != topic.notebook]
    if others:
        raise SystemExit(f"{folder} holds {others}: source/<topic>/ must hold only {topic.notebook}, or nbgrader "
                         f"copies those files into every student's graded folder; remove them")
    nb = stamp_points(nbformat.read(source_notebook(topic), as_version=4), topic, str(source_notebook(topic)))
    nbformat.write(nb, folder / topic.notebook)
    return folder / topic.notebook


def init(course: Path, exchange: Path | None = None, course_id: str = "dlcore",
         topics: list[str] | None = None, force: bool = False) -> list[Path]:
    """Write COURSE_DIR/nbgrader_config.py and source/<topic>/ for the given topics (all by default)."""
    chosen = [course_config.topic(s) for s in topics] if topics else list(course_config.TOPICS)
    course.mkdir(parents=True, exist_ok=True)
    cfg = course / "nbgrader_config.py"
    text = config_text(course.resolve(), course_id, exchange.resolve() if exchange else None,
                       list(course_config.TOPICS))
    if cfg.exists() and cfg.read_text() != text and not force:
        raise SystemExit(f"{cfg} exists and differs from what init would write; pass --force to replace it")
    cfg.write_text(text)
    return [cfg, kernel.kernelspec(course.resolve())] + [write_source(course, t) for t in chosen]


def coursedir(course: Path):
    """nbgrader's CourseDirectory as the course's nbgrader_config.py sets it (course id, database, layout)."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    if not (course / "nbgrader_config.py").is_file():
        raise SystemExit(f"{course}: no nbgrader_config.py; run `dlcore course init {course}` first")
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    cfg.CourseDirectory.root = str(course)
    cd = CourseDirectory(config=cfg)
    if cd.directory_structure != LAYOUT:
        raise SystemExit(f"{course}: CourseDirectory.directory_structure must be nbgrader's default {LAYOUT}")
    return cd


def nbgrader(course: Path, *args: str, check: bool = True, allow_unisolated: bool = False) -> int:
    """Run one nbgrader command in the course folder (its nbgrader_config.py applies); its log goes to the
    terminal. Raises SystemExit on failure when `check`, else returns the exit status. `allow_unisolated` lets the
    sandboxed kernel start without bubblewrap (the grader's explicit choice)."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)  # a warning printed to stderr in a test cell would zero that cell
    env.pop("DLCORE_ALLOW_UNISOLATED", None)
    if allow_unisolated:
        env["DLCORE_ALLOW_UNISOLATED"] = "1"
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"]
    print("$ nbgrader " + " ".join(args), flush=True)
    rc = subprocess.run(cmd, cwd=course, env=env).returncode
    if rc and check:
        raise SystemExit(f"`nbgrader {' '.join(args)}` failed (exit {rc}); its log is above")
    return rc


def duedate(slug: str) -> str | None:
    """The topic's deadline (course_config.DEADLINES, course time zone) as nbgrader reads it: ISO 8601 with the
    offset, which nbgrader's parse_utc turns into the same instant."""
    from autograder import lateness

    due = lateness.deadline(slug)
    return due.isoformat() if due else None


def set_duedate(course: Path, slug: str) -> str | None:
    """`nbgrader db assignment add TOPIC --duedate=...` from the configuration, so that nbgrader's lateness
    (formgrader, its gradebook and export) uses the deadline dlcore's gradebook does. Per-student extensions stay
    in dlcore's extensions CSV."""
    due = duedate(slug)
    if due:
        nbgrader(course, "db", "assignment", "add", slug, f"--duedate={due}")
    return due


def release(course: Path, slug: str) -> Path:
    """Set the due date in nbgrader's database, refresh source/<topic>/ from assignments/, then nbgrader
    generate_assignment and release_assignment."""
    topic = course_config.topic(slug)
    set_duedate(course, slug)
    write_source(course, topic)
    nbgrader(course, "generate_assignment", slug, "--force")
    nbgrader(course, "release_assignment", slug, "--force")
    return course / "release" / slug


def collect(course: Path, slug: str) -> list[str]:
    """nbgrader collect (the latest submission of each student); returns the students with a submission."""
    course_config.topic(slug)
    nbgrader(course, "collect", slug, "--update")
    root = course / "submitted"
    return sorted(p.parent.name for p in root.glob(f"*/{slug}") if p.is_dir()) if root.is_dir() else []


def place_required(course: Path, topic: course_config.Topic) -> list[str]:
    """Put each student's collected earlier topics beside the topic in autograded/<student>/, where nbgrader runs
    the notebook (it copies only submitted/<student>/<topic>/). Module files only: an earlier topic's own
    autograded notebook and timestamp stay as nbgrader left them. Returns notes on what is missing."""
    notes = []
    for sub in sorted((course / "submitted").glob(f"*/{topic.slug}")):
        student = sub.parent.name
        for slug in topic.requires:
            src = course / "submitted" / student / slug
            if not src.is_dir():
                notes.append(f"{student}: no submitted/{student}/{slug}/ (collect {slug} first); the notebook's "
                             f"imports of {slug} will fail")
                continue
            shutil.copytree(src, course / "autograded" / student / slug, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.ipynb", "timestamp.txt", "__pycache__",
                                                          ".ipynb_checkpoints"))
    return notes


def cell_tasks(course: Path, topic: course_config.Topic) -> dict[str, course_config.Task]:
    """grade_id -> task of every graded cell of the course's source notebook of the topic."""
    nb = nbformat.read(course / "source" / topic.slug / topic.notebook, as_version=4)
    manual = {t.name.split(".", 1)[1]: t for t in topic.tasks if t.kind == "manual"}
    return {gid: topic.task(name) if name else manual[gid] for gid, (_, name) in graded_cells(nb).items()}


def write_hidden_scores(course: Path, slug: str) -> dict[tuple[str, str], float | None]:
    """Overwrite the auto score of each automatic task's cell in nbgrader's database with the hidden suite's
    points (from GRADED/<student>/<topic>/results.json); returns (student, task) -> the score written."""
    from nbgrader.api import Gradebook, MissingEntry

    topic = course_config.topic(slug)
    cd = coursedir(course)
    auto = {t.name: gid for gid, t in cell_tasks(course, topic).items() if t.kind == "auto"}
    notebook_id = Path(topic.notebook).stem
    written = {}
    with Gradebook(cd.db_url, cd.course_id) as gb:
        for sub in gb.assignment_submissions(slug):
            student = sub.student.id
            tr = reports.read_topic_result(course / GRADED / student / slug / "results.json")
            if tr is None:
                print(f"{student}: no hidden-suite results for {slug}; nbgrader keeps the notebook's scores")
                continue
            for r in tr.results:
                if r.task not in auto:
                    continue
                try:
                    grade = gb.find_grade(auto[r.task], notebook_id, slug, student)
                except MissingEntry:  # nbgrader could not grade this notebook (e.g. the kernel died)
                    print(f"{student}: nbgrader has no grade for cell {auto[r.task]}; rerun the autograde step")
                    continue
                if grade.max_score != r.max_points:
                    raise SystemExit(f"cell {auto[r.task]} is worth {grade.max_score} in nbgrader's database but "
                                     f"{r.task} is worth {r.max_points}: release the topic again after a change "
                                     f"of points")
                grade.auto_score = None if r.status == R.GRADER_ERROR else r.points
                # nbgrader's own rule (SaveAutoGrades): no auto score, or a manual override, needs a grader's look
                grade.needs_manual_grade = grade.auto_score is None or grade.manual_score is not None
                written[(student, r.task)] = grade.auto_score
        gb.db.commit()
    return written


def manual_scores(course: Path) -> dict[tuple[str, str], float]:
    """(student, task) -> score of every manual task's answer cell that nbgrader's database has a verdict on: a
    grader's manual score (formgrader), else nbgrader's automatic 0 for an answer left as released."""
    from nbgrader.api import Gradebook

    cd = coursedir(course)
    scores = {}
    with Gradebook(cd.db_url, cd.course_id) as gb:
        for assignment in gb.assignments:
            if assignment.name not in course_config.TOPIC_SLUGS:
                continue
            topic = course_config.topic(assignment.name)
            if not (course / "source" / topic.slug / topic.notebook).is_file():
                raise SystemExit(f"{course}: {topic.slug} is in nbgrader's database but source/{topic.slug}/ has no "
                                 f"{topic.notebook}; run `dlcore course release {topic.slug}`")
            manual = {gid: t for gid, t in cell_tasks(course, topic).items() if t.kind == "manual"}
            for sub in gb.assignment_submissions(assignment.name):
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        task = manual.get(grade.name)
                        if task is None:
                            continue
                        if grade.manual_score is not None:
                            scores[(sub.student.id, task.name)] = grade.manual_score
                        elif grade.auto_score is not None and not grade.needs_manual_grade:
                            scores[(sub.student.id, task.name)] = grade.auto_score
    return scores


def overridden(course: Path, slug: str) -> list[str]:
    """Automatic tasks whose cell a grader overrode in formgrader: nbgrader then counts the manual score, while
    dlcore's gradebook keeps the hidden suite's points."""
    from nbgrader.api import Gradebook

    topic = course_config.topic(slug)
    cd = coursedir(course)
    auto = {gid: t for gid, t in cell_tasks(course, topic).items() if t.kind == "auto"}
    found = []
    with Gradebook(cd.db_url, cd.course_id) as gb:
        for sub in gb.assignment_submissions(slug):
            for nb in sub.notebooks:
                found += [f"{sub.student.id}: {auto[g.name].name} {g.manual_score:g} (hidden suite {g.auto_score})"
                          for g in nb.grades if g.name in auto and g.manual_score is not None]
    return found


def graded_topics(course: Path) -> list[str]:
    """The topics, in course order, that dlcore has graded in this course (some GRADED/*/<topic>/results.json)."""
    return [t.slug for t in course_config.TOPICS if any((course / GRADED).glob(f"*/{t.slug}/results.json"))]


def gradebook(course: Path) -> list[dict]:
    """dlcore's gradebook and feedback pages over every graded topic, with the manual scores from nbgrader's
    database (recorded as GRADED/manual_scores.csv, the `--manual` format of `dlcore grade`, which `dlcore
    report` and later gradings of GRADED use too)."""
    coursedir(course)
    out = course / GRADED
    topics = graded_topics(course)
    if not topics:
        raise SystemExit(f"{out}: nothing graded yet; run `dlcore course autograde TOPIC` first")
    path = scoring.write_manual(out, manual_scores(course))  # recorded: `dlcore report` uses them too
    for slug in topics:
        for line in overridden(course, slug):
            print(f"note: overridden in formgrader (dlcore's gradebook keeps the hidden suite's points): {line}")
    students = [s for s, _, _ in batch.discover(course, topics[:1])]
    return batch.write_reports(topics, students, out, manual=path)


def autograde(course: Path, slug: str, jobs: int = 1, force: bool = False, allow_unisolated: bool = False) -> int:
    """nbgrader autograde, then the hidden suite on submitted/, its points into nbgrader's database, and dlcore's
    gradebook. Returns 1 if nbgrader failed on some notebook (the rest is graded anyway), else 0."""
    from autograder import confine

    topic = course_config.topic(slug)
    coursedir(course)
    why = confine.isolation_problem()
    if why and not allow_unisolated:  # refuse before nbgrader spends its time, as `dlcore grade` would after it
        raise SystemExit(f"refusing to grade: {why}; student code would run without filesystem isolation. Install "
                         f"bubblewrap (`{confine.INSTALL_BWRAP}`) or pass --allow-unisolated-sandbox")
    for note in place_required(course, topic):
        print(f"warning: {note}")
    rc = nbgrader(course, "autograde", slug, *(["--force"] if force else []), check=False,
                  allow_unisolated=allow_unisolated)
    if rc:
        print(f"nbgrader autograde failed on some notebook (exit {rc}); the hidden suite grades every submission "
              f"anyway", flush=True)
    batch.grade([slug], course, course / GRADED, jobs=jobs, force=force, allow_unisolated=allow_unisolated)
    written = write_hidden_scores(course, slug)
    print(f"wrote {len(written)} hidden-suite task scores into nbgrader's database")
    gradebook(course)
    return 1 if rc else 0


def feedback(course: Path, slug: str) -> list[Path]:
    """nbgrader generate_feedback (the pages show the database's scores) and release_feedback to the exchange."""
    course_config.topic(slug)
    nbgrader(course, "generate_feedback", slug, "--force")
    nbgrader(course, "release_feedback", slug)
    return sorted((course / "feedback").glob(f"*/{slug}/*.html"))


def export(course: Path, to: Path) -> Path:
    """nbgrader export: one CSV row per student and assignment with nbgrader's totals."""
    coursedir(course)
    nbgrader(course, "export", f"--to={to.resolve()}")
    return to
