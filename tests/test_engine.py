"""The engine is general: topics are declared once in the configuration, each automatic task has exactly one check
shared by the public and the hidden suite, settings are read through the context, worker objects do not outlive
their task, and the torch worker's own limits hold."""
from __future__ import annotations

import dataclasses
import re
import sys

import pytest

import course_config
from course_config import ConfigError, schema
from autograder import results as R
from autograder.checks import Checks
from autograder.runner import load_suite
from conftest import REPO, by_task, edit, grade

SLUGS = re.compile(r"\b(" + "|".join(course_config.TOPIC_SLUGS) + r")\b")


def test_no_topic_is_spelled_in_the_engine_or_ci():
    """Adding a topic touches its config entry, solutions/, assignments/, public/ and hidden/ only."""
    paths = [p for p in (REPO / "autograder").rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".toml")
             and not {"public", "hidden", "__pycache__"} & set(p.relative_to(REPO / "autograder").parts)]
    paths += [p for p in (REPO / ".ci").rglob("*") if p.is_file()]
    assert len(paths) > 10
    offenders = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in paths
                 for i, line in enumerate(p.read_text().splitlines(), 1) if SLUGS.search(line)]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("topic", course_config.TOPICS, ids=lambda t: t.slug)
def test_each_automatic_task_has_one_check_in_both_suites(topic):
    public, hidden = load_suite(topic.slug, "public"), load_suite(topic.slug, "hidden")
    auto = {t.name for t in topic.tasks if t.kind == "auto"}
    assert set(public.checks) == set(hidden.checks) == auto
    assert all(public.checks[t] is hidden.checks[t] for t in auto)  # written once, two oracles
    assert public.oracle is not hidden.oracle


def test_a_missing_or_unconfigured_check_is_an_error_when_the_suite_loads():
    topic = course_config.TOPICS[0]
    checks = Checks(topic.slug)
    for task in [t for t in topic.tasks if t.kind == "auto"][1:]:
        checks.task(task.name)(lambda ctx: None)
    with pytest.raises(ValueError, match="missing"):
        checks.suite("public", None)
    checks.task(topic.tasks[0].name)(lambda ctx: None)
    checks.task(f"{topic.slug}.not_configured")(lambda ctx: None)
    with pytest.raises(ValueError, match="not configured"):
        checks.suite("public", None)


def test_configuration_is_consistent():
    for topic in course_config.TOPICS:
        for bar in topic.bars:
            assert (not bar.dataset or bar.dataset in course_config.DATASETS) and bar.calibration_seeds
            assert topic.task(bar.task).kind == "auto"
            assert bar.passes(bar.bar) and not bar.passes(float("nan"))

    def validate(*topics):
        schema.validate(topics, course_config.CATEGORY_WEIGHTS, course_config.DATASETS,
                        course_config.DEPENDENT_SCORING)

    validate(*course_config.TOPICS)
    first, second = course_config.TOPICS[:2]
    with pytest.raises(ConfigError, match="unknown dataset"):
        validate(dataclasses.replace(first, datasets=("imagenet",)))
    with pytest.raises(ConfigError, match="topic numbers must be 1..2"):
        validate(first, dataclasses.replace(second, number=first.number))
    with pytest.raises(ConfigError, match="requires a later topic"):
        validate(dataclasses.replace(second, number=1), dataclasses.replace(first, number=2))


def test_the_topics_are_the_files_of_course_config_topics():
    """TOPICS is derived: one declaration file per topic, named after it, in the order of Topic.number."""
    files = sorted(p.stem for p in (REPO / "course_config" / "topics").glob("*.py") if p.stem != "__init__")
    assert sorted(course_config.TOPIC_SLUGS) == files and len(files) >= 7
    assert course_config.TOPIC_SLUGS == tuple(t.slug for t in course_config.TOPICS)
    assert [t.number for t in course_config.TOPICS] == list(range(1, len(files) + 1))


def test_a_topic_file_not_named_after_its_topic_is_refused(tmp_path, monkeypatch):
    (tmp_path / "misnamed.py").write_text("import course_config\nTOPIC = course_config.TOPICS[0]\n")
    monkeypatch.setattr(course_config.topics, "__path__", [str(tmp_path)])
    try:
        with pytest.raises(ConfigError, match="name the file after its slug"):
            course_config.topics.discover()
    finally:
        sys.modules.pop("course_config.topics.misnamed", None)
        vars(course_config.topics).pop("misnamed", None)


def test_results_carry_their_category_and_metrics():
    ff = course_config.topic("feedforward")
    res = by_task(grade(REPO / "solutions" / "feedforward", tasks=["feedforward.affine_forward",
                                                                    "feedforward.train_torch"], visibility="public"))
    for name, r in res.items():
        assert r.category == ff.task(name).category
    bar = ff.bar("torch_net").public
    assert res["feedforward.train_torch"].metrics[f"torch_net.{bar.metric}"] >= bar.bar


def test_objects_kept_in_a_worker_are_released_after_each_task(reference_copy):
    """A model kept by one task is gone in the next: tasks cannot lean on each other's state."""
    from autograder.runner import Session

    session = Session(course_config.topic("feedforward"), reference_copy)
    try:
        handle = session.call("net", "TwoLayerNet", 4, 3, 2, keep=True)
        assert session.getattr("net", handle, "params")["W1"].shape == (4, 3)
        session.end_task()
        with pytest.raises(Exception, match="unknown handle"):
            session.getattr("net", handle, "params")
    finally:
        session.close()


def test_torch_worker_has_its_own_limits(reference_copy):
    """The torch module's call limit comes from torch_limits, the NumPy modules' from limits."""
    edit(reference_copy, "torch_net", "        super().__init__()", "        super().__init__()\n        import time\n"
         "        time.sleep(4)")
    ff = course_config.topic("feedforward")
    numpy_limits = dataclasses.replace(ff.limits, call_s=2.0)
    torch_limits = dataclasses.replace(ff.torch_limits, call_s=8.0)
    from autograder.runner import grade_topic

    res = by_task(grade_topic(ff, reference_copy, "hidden", tasks=["feedforward.TorchTwoLayerNet",
                                                                   "feedforward.relu_forward"],
                              limits=numpy_limits, torch_limits=torch_limits))
    assert res["feedforward.TorchTwoLayerNet"].points == res["feedforward.TorchTwoLayerNet"].max_points
    assert res["feedforward.relu_forward"].points == 1
    short = dataclasses.replace(torch_limits, call_s=2.0)
    res = by_task(grade_topic(ff, reference_copy, "hidden", tasks=["feedforward.TorchTwoLayerNet"],
                              limits=numpy_limits, torch_limits=short))
    assert res["feedforward.TorchTwoLayerNet"].status == R.ERROR
    assert "did not finish within 2 s" in res["feedforward.TorchTwoLayerNet"].message
