"""Grades that survive real students: whatever a student's function returns fails only its own part with a message
naming what came back; the grader's own failures are grader errors, never the student's zero; diagnoses name the
right cause; per-student seeds vary values, never what is covered."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import course_config
from autograder import batch, reports
from autograder import results as R
from autograder.checks import CheckFailed, check_value
from autograder.mutants import copy_reference
from conftest import SOLUTIONS, by_task, edit, grade
from course_config import Limits
from toolkit.gradcheck import diagnose

FAST = Limits(call_s=5.0, import_s=5.0, wall_s=120.0, memory_mb=1024)

# (module, reference text, replacement, task that must lose points, words the message must contain)
ODD_RETURNS = [
    ("layers", "    cache = (x, w, b)\n    return out, cache", "    return None, (x, w, b)",
     "feedforward.affine_forward", "None"),
    ("layers", "    cache = (x, w, b)\n    return out, cache", "    return 3.0", "feedforward.affine_forward",
     "the number 3.0"),
    ("layers", "    cache = (x, w, b)\n    return out, cache", "    return out.tolist(), (x, w, b)",
     "feedforward.affine_forward", "a list"),
    ("layers", "    cache = (x, w, b)\n    return out, cache", "    return out.T, (x, w, b)",
     "feedforward.affine_forward", "has shape"),
    ("layers", "    cache = (x, w, b)\n    return out, cache", "    return out * np.nan, (x, w, b)",
     "feedforward.affine_forward", "NaN"),
    ("layers", "    cache = (x, w, b)\n    return out, cache", "    return object(), (x, w, b)",
     "feedforward.affine_forward", "object"),
    ("layers", "    cache = (x, w, b)\n    return out, cache", "    return out.astype(np.float32), (x, w, b)",
     "feedforward.affine_forward", "float32"),
    ("layers", "    return dx, dw, db", "    return None", "feedforward.affine_backward", "None"),
    ("layers", "    return dx, dw, db", "    return dx, dw", "feedforward.affine_backward", "a tuple of 2"),
    ("layers", "    return dx, dw, db", "    return {'dx': dx}", "feedforward.affine_backward", "a dict"),
    ("layers", "    out = cache\n    ### BEGIN SOLUTION\n    dx = dout * (1 - out ** 2)\n    ### END SOLUTION\n    return dx",
     "    out = cache\n    return (dout * (1 - out ** 2),)", "feedforward.tanh_backward", "not a 1-tuple"),
    ("layers", "    return loss, dx", "    return 'loss', dx", "feedforward.softmax_loss", "string"),
    ("layers", "    return loss, dx", "    return [loss]", "feedforward.softmax_loss", "a list"),
    ("layers", "    return w\n", "    return w.tolist()\n", "feedforward.init_weights", "a list"),
    ("net", "            return scores", "            return None", "feedforward.TwoLayerNet", "None"),
    ("net", "        return loss, grads", "        return loss, [grads]", "feedforward.TwoLayerNet", "a list"),
    ("net", "    return history", "    return None", "feedforward.train", "None"),
]


@pytest.mark.parametrize("module, old, new, task, words", ODD_RETURNS, ids=[f"{c[3].split('.')[1]}-{i}"
                                                                            for i, c in enumerate(ODD_RETURNS)])
def test_any_returned_value_fails_only_its_part(reference_copy, module, old, new, task, words):
    edit(reference_copy, module, old, new)
    tasks = [task, "feedforward.relu_forward"]
    # train's value is checked after its training run: the public suite's run (2,000 images) reaches the same check
    # (one CHECKS object serves both suites) in a fraction of the hidden run's minute and a half on 10,000
    visibility = "public" if task == "feedforward.train" else "hidden"
    res = by_task(grade(reference_copy, tasks=tasks, limits=FAST, visibility=visibility))
    r = res[task]
    assert r.points < r.max_points and r.status in (R.FAILED, R.PARTIAL, R.ERROR), (r.status, r.message)
    assert not r.grader_errors and r.status != R.GRADER_ERROR, r.grader_errors
    assert words in r.message, r.message
    assert "Traceback" not in r.message
    assert res["feedforward.relu_forward"].points == 1


def test_a_grader_bug_is_a_grader_error_never_the_students_zero(reference_copy, monkeypatch):
    """An exception in the grader's own code (here: the oracle) is reported as a grader error in the result, the
    Gradescope file, the feedback page and the gradebook; the student's other tasks are graded as usual."""
    from autograder.public import feedforward as pub

    def broken(*args, **kwargs):
        raise ZeroDivisionError("planted grader bug")

    monkeypatch.setattr(pub.TorchOracle, "softmax_loss", staticmethod(broken))
    result = grade(reference_copy, tasks=["feedforward.softmax_loss", "feedforward.relu_forward"],
                   visibility="public", limits=FAST)
    r = by_task(result)["feedforward.softmax_loss"]
    assert r.status == R.GRADER_ERROR and "planted grader bug" in r.message and "not your mistake" in r.message
    assert r.grader_errors
    assert by_task(result)["feedforward.relu_forward"].points == 1
    assert result.grader_errors == 1
    data = reports.gradescope(result)
    assert "grader failed" in data["output"]
    row = __import__("autograder.scoring", fromlist=["x"]).gradebook_row("s", [result])
    assert row["grader_errors"] == 1
    assert "GRADER ERROR" in reports.feedback_html("s", [result], row)


def test_a_crashing_grading_job_still_leaves_a_result(tmp_path):
    """If grading a (student, topic) raises in the grader, the batch writes its results.json anyway (a grader error
    with no fingerprint, so a rerun regrades it), and the gradebook counts it."""
    root = tmp_path / "course"
    for name in ("ada", "bisi"):
        shutil.copytree(SOLUTIONS / "feedforward", root / "submitted" / name / "feedforward",
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    batch.record_grader_failure(out, "bisi", "feedforward", RuntimeError("pool process died"))
    data = json.loads((out / "bisi" / "feedforward" / "results.json").read_text())
    assert data["extra_data"]["dlcore"]["fingerprint"] == "" and "pool process died" in json.dumps(data)
    rows = batch.write_reports(["feedforward"], ["ada", "bisi"], out)
    by = {r["student"]: r for r in rows}
    tasks = len(course_config.topic("feedforward").tasks)
    assert by["bisi"]["grader_errors"] == tasks
    assert by["ada"]["grader_errors"] == tasks  # never graded: said so, not zero
    assert "GRADER ERROR" in (out / "bisi" / "feedback.html").read_text()


@pytest.mark.parametrize("got, expected, words", [
    (np.array([1.0, np.inf]), np.array([1.0, 2.0]), "underflowed to 0"),
    (np.array([np.nan, 2.0]), np.array([1.0, 2.0]), "exp overflowed"),
    (np.array([1.1396600, 2.5]) + 1e-5, np.array([1.1396600, 2.5]), "constant offset of +1e-05"),
    (np.array([3.0, 4.0]) * 1.5, np.array([3.0, 4.0]), "constant factor of 1.5"),
])
def test_diagnoses_name_the_cause(got, expected, words):
    assert words in diagnose("x", got, expected)


def test_printed_numbers_differ_when_the_values_do():
    text = diagnose("running_var", np.array([1.13966 + 1e-5]), np.array([1.13966]))
    got, expected = text.split("got ")[1].split(", expected ")
    assert got != expected.split(";")[0], text


def test_a_failed_gradient_always_shows_a_wrong_entry():
    g = np.full(100, 1e-9)
    assert diagnose("dx", g * 1.5, g, gradient=True).startswith("dx: 100 of 100 entries wrong")


@pytest.mark.parametrize("value, spec, words", [
    ((np.zeros(2),), "array", "not a 1-tuple"),
    (None, ("array", "kept"), "None"),
    ({"W1": np.zeros(1)}, {"W1": "array", "b1": "array"}, "no key 'b1'"),
    ((1.0, "x"), ("number", "array"), "string"),
])
def test_return_specs_name_what_came_back(value, spec, words):
    with pytest.raises(CheckFailed, match=words):
        check_value(value, spec, "the value")


def test_underflowing_log_softmax_is_diagnosed_as_underflow(reference_copy):
    """Real students subtract the max and then take log of a probability that underflowed to 0 at scores of 1e3."""
    edit(reference_copy, "layers", "    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)",
         "    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)\n"
         "    with np.errstate(divide='ignore'):\n        log_probs = np.log(probs)")
    r = by_task(grade(reference_copy, tasks=["feedforward.softmax_loss"], limits=FAST))["feedforward.softmax_loss"]
    stability = next(p for p in r.parts if "1e3" in p.label)
    assert not stability.passed and "underflowed to 0" in stability.message and "log-sum-exp" in stability.message
    assert all(p.passed for p in r.parts if p is not stability)


def test_running_variance_with_eps_is_named_an_offset(reference_copy):
    edit(reference_copy, "layers", "running_var = momentum * running_var + (1 - momentum) * var",
         "running_var = momentum * running_var + (1 - momentum) * (var + eps)")
    r = by_task(grade(reference_copy, tasks=["feedforward.batchnorm_forward"], limits=FAST))[
        "feedforward.batchnorm_forward"]
    assert "constant offset" in r.message and "factor" not in r.message, r.message


@pytest.mark.parametrize("student", ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"])
def test_every_students_expressions_use_every_operation(student):
    """Per-student seeds vary values, never coverage: each hidden random expression uses all nine operations."""
    from autograder.checks import task_seed
    from autograder.public.backprop import OPS, random_program

    rng = np.random.default_rng(task_seed(course_config.GRADING_SEED, "backprop.Value.backward", student))
    for _ in range(2):
        assert {step[0] for step in random_program(rng, 4, 14)} >= set(OPS)


REUSE_BUGS = [  # real autograd bugs of the reuse class, none of them among the hidden suite's mutants
    ("self.grad += exponent * self.data ** (exponent - 1) * out.grad",
     "self.grad = exponent * self.data ** (exponent - 1) * out.grad", "overwritten instead of accumulated"),
    ("self.grad += out.data * out.grad", "self.grad = out.data * out.grad", "overwritten instead of accumulated"),
    ("self.grad += (1 - out.data ** 2) * out.grad", "self.grad = (1 - out.data ** 2) * out.grad",
     "overwritten instead of accumulated"),
    ("self.grad += (self.data > 0) * out.grad", "self.grad = (self.data > 0) * out.grad",
     "overwritten instead of accumulated"),
    ("self.grad += out.grad / self.data", "self.grad = out.grad / self.data", "overwritten instead of accumulated"),
    # the visited check in the wrong place: a node reached twice is appended twice, so its backward runs twice
    ("            elif id(node) not in seen:\n                seen.add(id(node))\n                stack.append((node, True))\n"
     "                stack.extend((child, False) for child in node._prev if id(child) not in seen)",
     "            else:\n                stack.append((node, True))\n"
     "                stack.extend((child, False) for child in node._prev)", "backward ran twice"),
]


@pytest.mark.parametrize("old, new, cause", REUSE_BUGS, ids=["pow", "exp", "tanh", "relu", "log", "visited"])
def test_reuse_bugs_are_caught_with_their_cause(tmp_path, old, new, cause):
    copy_reference("backprop", SOLUTIONS, tmp_path)
    edit(tmp_path / "backprop", "autograd", old, new)
    topic = course_config.topic("backprop")
    for visibility in ("public", "hidden"):
        r = by_task(grade(tmp_path / "backprop", tasks=["backprop.Value.backward"], visibility=visibility,
                          topic=topic, limits=FAST))["backprop.Value.backward"]
        assert r.points < r.max_points, (visibility, r.message)
        assert cause in r.message, (visibility, r.message)
