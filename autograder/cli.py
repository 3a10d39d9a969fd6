"""The `dlcore` command: check (students), release (instructors), grade (graders), demo (everyone)."""
from __future__ import annotations

import argparse
import os
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
    from autograder import sandbox

    problem = sandbox.launch_problem(sandbox.sandbox_mode())
    if problem:
        print(f"dlcore {cmd}: the sandbox cannot start a worker here: {problem}", file=sys.stderr)
        return False
    why = sandbox.isolation_problem()
    if why:
        print(f"dlcore {cmd}: note: {why}; code runs in the plain sandbox, without filesystem isolation "
              f"(`{sandbox.INSTALL_BWRAP}` adds it)", file=sys.stderr)
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
    from autograder import sandbox

    why = sandbox.isolation_problem()
    if why and not args.allow_unisolated_sandbox:
        print(f"dlcore grade: refusing to grade: {why}. Without bubblewrap, student code runs without filesystem "
              f"isolation and can read the grader's files (hidden tests, solutions/, this repository). Install "
              f"it with `{sandbox.INSTALL_BWRAP}` and rerun, or pass --allow-unisolated-sandbox to grade anyway.",
              file=sys.stderr)
        return 2
    problem = sandbox.launch_problem(sandbox.sandbox_mode())
    if problem:
        print(f"dlcore grade: the sandbox cannot start a worker here: {problem}", file=sys.stderr)
        return 2
    if why:
        print(f"dlcore grade: warning: grading WITHOUT filesystem isolation ({why}); student code can read this "
              f"machine's files; results.json records \"sandbox\": \"plain\"", file=sys.stderr)
    batch.grade(args.topics, Path(args.submissions).resolve(), Path(args.out).resolve(), jobs=args.jobs,
                manual=Path(args.manual) if args.manual else None, force=args.force,
                allow_unisolated=args.allow_unisolated_sandbox)
    return 0


def cmd_demo(args) -> int:
    import autograder.demo as demo

    if not _sandbox_ready("demo"):  # the sample cohort is the course's own code: the plain mode will do
        return 2
    demo.run(Path(args.out).resolve(), jobs=args.jobs)
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
    g.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    g.add_argument("--manual", help="CSV of instructor scores for manual tasks: student,task,points")
    g.add_argument("--force", action="store_true", help="regrade even what is already graded")
    g.add_argument("--allow-unisolated-sandbox", action="store_true",
                   help="grade even where bubblewrap does not work: student code will then run without "
                        "filesystem isolation and be able to read the grader's files (hidden tests, solutions/)")
    g.set_defaults(func=cmd_grade)

    d = sub.add_parser("demo", help="grade a bundled sample cohort end to end")
    d.add_argument("--out", default="demo-out")
    d.add_argument("--jobs", type=int, default=2)
    d.set_defaults(func=cmd_demo)

    args = p.parse_args(argv)
    try:
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
