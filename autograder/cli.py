"""The `dlcore` command: check (students); release and course (instructors: the release and an nbgrader term);
grade, similarity, report and export (graders); demo (everyone)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import course_config


def _topic_folder(topic: str, given: str | None) -> Path:
    """Where a student's topic folder is: the given DIR, ./<topic>, or the current folder if it is one."""
    if given:
        return Path(given).resolve()
    here = Path.cwd()
    if (here / topic).is_dir():
        return (here / topic).resolve()
    if here.name == topic:
        return here
    raise SystemExit(f"no folder {topic}/ here: run `dlcore check {topic}` from the folder that holds {topic}/, "
                     f"or pass the folder: `dlcore check {topic} path/to/{topic}`")


def _sandbox_ready(cmd: str) -> bool:
    """False (with the reason) if no sandboxed worker can start here; a one-line note if it would run without
    filesystem isolation (fine for a student's own code and for the demo's sample cohort)."""
    from autograder import confine

    problem = confine.launch_problem(confine.sandbox_mode())
    if problem:
        print(f"dlcore {cmd}: the sandbox cannot start a worker here: {problem}", file=sys.stderr)
        return False
    why = confine.isolation_problem()
    if why:
        print(f"dlcore {cmd}: note: {why}; code runs in the plain sandbox, without filesystem isolation "
              f"(`{confine.INSTALL_BWRAP}` adds it)", file=sys.stderr)
    return True


def cmd_check(args) -> int:
    from autograder.reports import print_topic
    from autograder.runner import grade_topic

    topic = course_config.topic(args.topic)
    folder = _topic_folder(args.topic, args.dir)
    if not _sandbox_ready("check"):
        return 2
    tr = grade_topic(topic, folder, "public", tasks=args.task or None)
    print_topic(tr)
    auto = [r for r in tr.results if r.status not in ("manual", "skipped")]
    return 0 if all(r.points >= r.max_points for r in auto) else 1


def cmd_release(args) -> int:
    import autograder.release as release

    topics = [course_config.topic(t) for t in args.topics] if args.topics else list(course_config.TOPICS)
    dest = Path(args.dest).resolve() if args.dest else release.REPO / "release"
    if args.check:
        diffs = release.check_fresh(dest, topics)
        problems = release.lint(dest)
        for line in diffs + problems:
            print(line)
        print("release/ is up to date and clean" if not diffs + problems else f"{len(diffs + problems)} problem(s)")
        return 1 if diffs or problems else 0
    written = release.build(dest, topics)
    if release.write_readme_table():
        print("updated the topic table in README.md")
    problems = release.lint(dest)
    print(f"wrote {len(written)} files to {dest}")
    for p in problems:
        print(f"LINT: {p}")
    return 1 if problems else 0


def cmd_grade(args) -> int:
    import autograder.batch as batch
    from autograder import confine

    why = confine.isolation_problem()
    if why and not args.allow_unisolated_sandbox:
        print(f"dlcore grade: refusing to grade: {why}. Without bubblewrap, student code runs without filesystem "
              f"isolation and can read the grader's files (hidden tests, solutions/, this repository). Install "
              f"it with `{confine.INSTALL_BWRAP}` and rerun, or pass --allow-unisolated-sandbox to grade anyway.",
              file=sys.stderr)
        return 2
    problem = confine.launch_problem(confine.sandbox_mode())
    if problem:
        print(f"dlcore grade: the sandbox cannot start a worker here: {problem}", file=sys.stderr)
        return 2
    if args.device and not args.scheduler:  # a remote cluster's workers are asked when grading starts
        from autograder.runner import device_problem

        if device_problem(args.device):
            print(f"dlcore grade: {device_problem(args.device)}", file=sys.stderr)
            return 2
    if why:
        print(f"dlcore grade: warning: grading WITHOUT filesystem isolation ({why}); student code can read this "
              f"machine's files; results.json records \"sandbox\": \"plain\"", file=sys.stderr)
    batch.grade(args.topics, Path(args.submissions).resolve(), Path(args.out).resolve(), jobs=args.jobs,
                manual=Path(args.manual) if args.manual else None, force=args.force,
                allow_unisolated=args.allow_unisolated_sandbox, executor=args.executor, scheduler=args.scheduler,
                device=args.device, students=args.student, tasks=args.task,
                extensions=Path(args.extensions) if args.extensions else None,
                times=Path(args.submitted_at) if args.submitted_at else None)
    return 0


def cmd_demo(args) -> int:
    import autograder.demo as demo

    if not _sandbox_ready("demo"):  # the sample cohort is the course's own code: the plain mode will do
        return 2
    demo.run(Path(args.out).resolve(), jobs=args.jobs, topics=args.topics, force=args.force)
    return 0


def cmd_similarity(args) -> int:
    import autograder.similarity as similarity

    tuning = {k: v for k in ("threshold", "min_shared", "max_share") if (v := getattr(args, k)) is not None}
    similarity.run(Path(args.dir).resolve(), args.topic, out=Path(args.out).resolve() if args.out else None,
                   submissions=Path(args.submissions).resolve() if args.submissions else None, top=args.top,
                   **tuning)  # unset options keep the engine's defaults (similarity.THRESHOLD, ...)
    return 0


def cmd_report(args) -> int:
    import autograder.course_report as course_report

    course_report.run(Path(args.graded).resolve(), manual=Path(args.manual) if args.manual else None)
    return 0


def cmd_export(args) -> int:
    import autograder.export as export
    from toolkit.data import DataMissing

    try:
        path = export.build(args.kind, args.topic, Path(args.out).resolve())
    except DataMissing as exc:  # the bundle carries the topic's datasets: they must be here first
        print(f"dlcore export: {exc}", file=sys.stderr)
        return 2
    how = ("upload it as the assignment's autograder" if args.kind == "gradescope" else
           f"grade with `otter run -a {path.name} SUBMISSION.zip`, or upload it to Gradescope")
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): {how}")
    return 0


def cmd_course(args) -> int:
    import autograder.nbgrader_course as course

    if args.step == "init":
        for path in course.init(Path(args.course_dir).resolve(), Path(args.exchange) if args.exchange else None,
                                args.course_id, args.topics or None, force=args.force):
            print(f"wrote {path}")
        return 0
    root = Path(args.course).resolve()
    if args.step == "release":
        print(f"released {course.release(root, args.topic)}")
    elif args.step == "collect":
        print(f"collected {args.topic} from: {', '.join(course.collect(root, args.topic)) or 'nobody'}")
    elif args.step == "autograde":
        return course.autograde(root, args.topic, jobs=args.jobs, force=args.force,
                                allow_unisolated=args.allow_unisolated_sandbox)
    elif args.step == "gradebook":
        course.gradebook(root)
        print(f"gradebook: {root / course.GRADED / 'gradebook.csv'}")
    elif args.step == "feedback":
        for path in course.feedback(root, args.topic):
            print(f"feedback: {path}")
    elif args.step == "export":
        print(f"exported {course.export(root, Path(args.to))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread per process: reproducible, no contention
    p = argparse.ArgumentParser(prog="dlcore", description="Deep Learning Core: exercises, checks and grading.")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="students: run the public checks on your topic folder")
    c.add_argument("topic", choices=[t.slug for t in course_config.TOPICS])
    c.add_argument("dir", nargs="?", help="the topic folder (default: ./TOPIC)")
    c.add_argument("--task", action="append", help="only this task (repeatable), named TOPIC.FUNCTION as in the table")
    c.set_defaults(func=cmd_check)

    r = sub.add_parser("release", help="instructors: regenerate release/ from solutions/ and assignments/")
    r.add_argument("topics", nargs="*")
    r.add_argument("--check", action="store_true", help="only verify release/ is fresh and passes the lint")
    r.add_argument("--dest", help="write somewhere other than release/")
    r.set_defaults(func=cmd_release)

    g = sub.add_parser("grade", help="graders: grade submitted/<student>/<topic>/ with the hidden suite")
    g.add_argument("topics", nargs="+")
    g.add_argument("--submissions", required=True, help="folder of student folders, or a course root with submitted/")
    g.add_argument("--out", required=True, help="where results.json files, feedback pages and gradebook.csv go")
    g.add_argument("--jobs", type=int, default=1,
                   help="submissions graded in parallel: pool processes, or the workers of a local Dask cluster")
    g.add_argument("--executor", choices=("process", "dask"), default="process",
                   help="process: a process pool on this machine; dask: Dask distributed (a local cluster of "
                        "--jobs workers, or the cluster at --scheduler)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on an existing Dask cluster, e.g. tcp://host:8786 (implies --executor dask); its "
                        "workers need this package, its data and bubblewrap, but no shared filesystem")
    g.add_argument("--device", choices=("cpu", "cuda"),
                   help="where the PyTorch modules' torch code runs (default: the CPU); cuda needs a GPU on every "
                        "grading machine")
    g.add_argument("--manual", help="CSV of instructor scores for manual tasks: student,task,points (kept in the "
                                    "--out folder and used by later runs and reports until another is given)")
    g.add_argument("--extensions", help="CSV of per-student extensions: student,topic,until (YYYY-MM-DD HH:MM, course "
                                        "time zone) or student,topic,days (kept in the --out folder like --manual)")
    g.add_argument("--submitted-at", help="CSV of submission times the folders do not record (nbgrader's "
                                          "timestamp.txt): student,topic,submitted_at (ISO 8601); kept like --manual")
    g.add_argument("--force", action="store_true", help="regrade even what is already graded")
    g.add_argument("--student", action="append", metavar="NAME",
                   help="regrade only this student (repeatable): a regrade request")
    g.add_argument("--task", action="append", metavar="TOPIC.FUNCTION",
                   help="regrade only this task (repeatable), keeping the other tasks' results: after a check or "
                        "a bar was fixed")
    g.add_argument("--allow-unisolated-sandbox", action="store_true",
                   help="grade even where bubblewrap does not work: student code will then run without "
                        "filesystem isolation and be able to read the grader's files (hidden tests, solutions/)")
    g.set_defaults(func=cmd_grade)

    d = sub.add_parser("demo", help="grade a bundled sample cohort end to end")
    d.add_argument("--out", default="demo-out")
    d.add_argument("--jobs", type=int, default=2)
    d.add_argument("--topics", nargs="+", choices=[t.slug for t in course_config.TOPICS], metavar="TOPIC",
                   help="only these topics' cohorts (default: every topic in course_config.TOPICS)")
    d.add_argument("--force", action="store_true", help="grade the whole cohort again (default: resume)")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("similarity", help="graders: rank pairs of submissions whose code is suspiciously alike")
    s.add_argument("dir", help="submissions (a course root or submitted/), or a graded folder beside submitted/")
    s.add_argument("topic")  # options left unset take the defaults in autograder/similarity.py
    s.add_argument("--submissions", help="the submissions, when DIR is a graded folder without submitted/ beside it")
    s.add_argument("--out", help="where similarity-TOPIC.html and .csv go (default: the graded folder, else .)")
    s.add_argument("--threshold", type=float,
                   help="flag pairs sharing at least this share of the smaller submission's fingerprints")
    s.add_argument("--min-shared", type=int, help="...and at least this many fingerprints")
    s.add_argument("--max-share", type=int,
                   help="ignore fingerprints found in more submissions than this, as common code (0 keeps all)")
    s.add_argument("--top", type=int, default=10, help="pairs shown in the console table")
    s.set_defaults(func=cmd_similarity)

    x = sub.add_parser("export", help="graders: build a Gradescope or otter-grader autograder zip for a topic")
    x.add_argument("kind", choices=("gradescope", "otter"))
    x.add_argument("topic", choices=[t.slug for t in course_config.TOPICS])
    x.add_argument("--out", default=".", help="folder for TOPIC-KIND.zip (default: the current folder)")
    x.set_defaults(func=cmd_export)

    rp = sub.add_parser("report", help="graders: course report (HTML), Moodle grade-import CSV and transcripts")
    rp.add_argument("graded", help="the graded folder of `dlcore grade` (GRADED/<student>/<topic>/results.json)")
    rp.add_argument("--manual", help="other instructor scores (student,task,points) than those the graded folder "
                                     "was graded with (GRADED/manual_scores.csv, used by default)")
    rp.set_defaults(func=cmd_report)

    co = sub.add_parser("course", help="instructors: a term on nbgrader (release, collect, autograde, feedback, "
                                       "export) with the hidden suite's scores in nbgrader's gradebook")
    steps = co.add_subparsers(dest="step", required=True)
    ci = steps.add_parser("init", help="write COURSE_DIR/nbgrader_config.py and source/<topic>/ (stamped notebooks)")
    ci.add_argument("course_dir")
    ci.add_argument("--exchange", help="nbgrader's exchange folder (Exchange.root), shared with the students")
    ci.add_argument("--course-id", default="dlcore")
    ci.add_argument("--topics", nargs="*", help="only these topics' notebooks (default: all)")
    ci.add_argument("--force", action="store_true", help="replace an nbgrader_config.py that differs")
    for step, text in (("release", "nbgrader generate_assignment + release_assignment to the exchange"),
                       ("collect", "nbgrader collect: the latest submission of every student"),
                       ("autograde", "nbgrader autograde, then the hidden suite; its scores go into nbgrader's "
                                     "database and dlcore's gradebook"),
                       ("feedback", "nbgrader generate_feedback + release_feedback"),
                       ("gradebook", "dlcore's gradebook with the manual grades from nbgrader's database"),
                       ("export", "nbgrader export: a CSV of nbgrader's totals")):
        st = steps.add_parser(step, help=text)
        st.add_argument("--course", default=".", help="the course folder (default: the current folder)")
        if step in ("release", "collect", "autograde", "feedback"):
            st.add_argument("topic", choices=[t.slug for t in course_config.TOPICS])
        if step == "autograde":
            st.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel by the hidden suite")
            st.add_argument("--force", action="store_true", help="regrade even what is already graded")
            st.add_argument("--allow-unisolated-sandbox", action="store_true",
                            help="as for `dlcore grade`: grade even where bubblewrap does not work")
        if step == "export":
            st.add_argument("--to", default="grades.csv", help="the CSV file to write")
    co.set_defaults(func=cmd_course)

    args = p.parse_args(argv)
    from autograder import stopping

    resume = shlex.join(["dlcore", *(sys.argv[1:] if argv is None else argv)])
    try:
        with stopping.stop_on_signals(resume):  # every command: SIGTERM or SIGINT stops all it started
            return args.func(args)
    except KeyError as exc:  # unknown topic or task names
        print(f"dlcore: {exc.args[0]}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("autograder."):
            print(f"dlcore {args.cmd}: {exc.name} is not part of this edition (the student edition has only "
                  f"`dlcore check`)", file=sys.stderr)
        else:
            print(f"dlcore {args.cmd}: the package {exc.name!r} is not installed; run `pip install -e .` in the "
                  f"course folder", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
