"""release/ is generated: a fresh build equals it, and the lint keeps solutions and hidden tests out of it."""
from __future__ import annotations

import ast
import shutil

import nbformat
import pytest

import course_config
from autograder import release
from conftest import REPO

RELEASE = REPO / "release"


def test_release_is_fresh():
    diffs = release.check_fresh(RELEASE)
    assert not diffs, "release/ is stale; run `dlcore release` and commit:\n" + "\n".join(diffs)


def test_release_passes_the_lint():
    assert release.lint(RELEASE) == []


@pytest.mark.parametrize("plant, expect", [
    (lambda r: (r / "feedforward" / "layers.py").write_text(
        (r / "feedforward" / "layers.py").read_text() + "\n    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - "
        "x_hat * (dx_hat * x_hat).mean(axis=0))\n"), "solution or hidden-test code"),
    (lambda r: (r / "feedforward" / "net.py").write_text("### BEGIN SOLUTION\n"), "marker"),
    (lambda r: (r / "feedforward" / "expected.npz").write_bytes(b"PK"), "binary data"),
    (lambda r: shutil.copytree(REPO / "autograder" / "hidden", r / "autograder" / "hidden"), "must not be released"),
])
def test_lint_catches_leaks(tmp_path, plant, expect):
    copy = tmp_path / "release"
    shutil.copytree(RELEASE, copy)
    assert release.lint(copy) == []
    plant(copy)
    assert any(expect in p for p in release.lint(copy)), release.lint(copy)


def test_lint_flags_only_lines_unique_to_solution_regions(tmp_path):
    """A line that is also written outside a solution region (here in the same file) ships in the stub and is not a
    leak; a line found only inside a region is."""
    repo, rel = tmp_path / "repo", tmp_path / "release"
    src = ("def f(x):\n    total = x.sum(axis=0)  # also provided outside\n    ### BEGIN SOLUTION\n"
           "    total = x.sum(axis=0)  # also provided outside\n    y = total * secret_factor(x)\n"
           "    ### END SOLUTION\n    return y\n")
    (repo / "solutions" / "t").mkdir(parents=True)
    (repo / "autograder" / "hidden").mkdir(parents=True)
    (repo / "solutions" / "t" / "m.py").write_text(src)
    (rel / "t").mkdir(parents=True)
    (rel / "t" / "m.py").write_text(release.make_stub(src, "t"))
    assert "total = x.sum(axis=0)" in (rel / "t" / "m.py").read_text()
    assert release.lint(rel, repo) == []
    (rel / "t" / "m.py").write_text(release.make_stub(src, "t") + "\n    y = total * secret_factor(x)\n")
    assert any("y = total * secret_factor(x)" in p for p in release.lint(rel, repo))


def test_stub_generation():
    src = ('def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    y = x + 1\n    ### END SOLUTION\n    return y\n\n'
           'class A:\n    def g(self):\n        if True:\n            ### BEGIN SOLUTION\n            return 1\n'
           '            ### END SOLUTION\n')
    stub = release.make_stub(src, "topic")
    assert 'raise NotImplementedError("topic.f")' in stub and 'raise NotImplementedError("topic.A.g")' in stub
    assert "x + 1" not in stub and "return 1" not in stub
    ns = {}
    exec(stub, ns)
    with pytest.raises(NotImplementedError, match="topic.f"):
        ns["f"](1)


@pytest.mark.parametrize("src, words", [
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n", "nested"),
    ("def f():\n    ### BEGIN SOLUTION\n    pass\n", "never closed"),
    ("def f():\n    pass\n    ### END SOLUTION\n", "without a matching"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "outside a function"),
])
def test_bad_markers_are_hard_errors(src, words):
    with pytest.raises(release.MarkerError, match=words):
        release.make_stub(src, "topic", "bad.py")


def test_every_stub_raises_with_its_task_name():
    for topic in course_config.TOPICS:
        for module in topic.modules:
            text = (RELEASE / topic.slug / f"{module}.py").read_text()
            raised = [n.exc.args[0].value for n in ast.walk(ast.parse(text))
                      if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
                      and getattr(n.exc.func, "id", "") == "NotImplementedError"]
            assert raised and all(r.startswith(f"{topic.slug}.") for r in raised), module
            assert "pass\n" not in text.replace("    pass  #", "")


def test_notebooks_are_thin():
    """Only solution cells may define functions or classes: logic lives in modules."""
    for topic in course_config.TOPICS:
        nb = nbformat.read(REPO / "assignments" / topic.slug / topic.notebook, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or meta.get("solution"):
                continue
            tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith(("%", "!"))))
            defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
            assert not defs, f"{topic.notebook}: a non-solution cell defines code:\n{cell.source[:200]}"


@pytest.mark.parametrize("topic", course_config.TOPICS, ids=lambda t: t.slug)
def test_notebook_points_come_from_the_configuration(topic):
    """The released notebook's graded cells and the configuration's tasks match one to one, with equal points, so
    nbgrader's gradebook and `dlcore grade` agree."""
    nb = nbformat.read(RELEASE / topic.slug / topic.notebook, as_version=4)
    cells = release.graded_cells(nb)
    manual = {t.name.split(".", 1)[1]: t.name for t in topic.tasks if t.kind == "manual"}
    stamped = {(task or manual[gid]): meta["points"] for gid, (meta, task) in cells.items()}
    assert stamped == {t.name: t.points for t in topic.tasks}


def test_a_graded_cell_that_names_no_task_is_an_error():
    topic = course_config.TOPICS[0]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "assert test_acc > 0.9", metadata={"nbgrader": {"grade": True, "grade_id": "test_acc", "points": 2,
                                                          "solution": False, "locked": True, "schema_version": 3}})])
    with pytest.raises(ValueError, match="names no task"):
        release.stamp_points(nb, topic)
    nb.cells[0].source = f'check("{topic.slug}.no_such_task");'
    with pytest.raises(KeyError, match="no task named"):
        release.stamp_points(nb, topic)


def test_readme_topic_table_is_generated_from_the_configuration():
    text = (REPO / "README.md").read_text()
    assert release.readme_with_table(text) == text, "run `dlcore release` to regenerate the README's topic table"
    for topic in course_config.TOPICS:
        assert f"| `{topic.slug}`: {topic.title} |" in text


def test_student_edition_pins_the_graders_numpy_and_torch():
    import tomllib

    grader = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    student = tomllib.loads((RELEASE / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in release.PINNED:
        mine = [d for d in grader if d.startswith(name + "==")]
        assert mine and mine[0] in student, (name, grader, student)
