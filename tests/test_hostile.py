"""Hostile submissions get their correct score and a clear message, and cannot reach the grader's secrets."""
from __future__ import annotations

import socket
import threading

import pytest

import course_config
from autograder import results as R
from autograder.confine import sandbox_mode
from conftest import REPO, SOLUTIONS, affected_modules, by_task, edit, grade, prepend
from course_config import Limits

FAST = Limits(call_s=3.0, import_s=3.0, wall_s=60.0, memory_mb=1024)
LAYERS_FWD = ["feedforward.affine_forward", "feedforward.relu_forward", "feedforward.sigmoid_forward"]
AFFINE_BODY = "out = x.reshape(x.shape[0], -1) @ w + b  # (N, M)"


def test_infinite_loop_costs_only_that_function(reference_copy):
    edit(reference_copy, "layers", "out = np.maximum(0, x)", "while True:\n        pass")
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD, limits=FAST))
    assert res["feedforward.relu_forward"].points == 0
    assert res["feedforward.relu_forward"].status == R.ERROR
    assert "did not finish within 3 s" in res["feedforward.relu_forward"].message
    assert res["feedforward.affine_forward"].points == 2 and res["feedforward.sigmoid_forward"].points == 1


def test_sleep_at_import(reference_copy):
    prepend(reference_copy, "layers", "import time\ntime.sleep(1000)")
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD + ["feedforward.TorchTwoLayerNet"], limits=FAST))
    for t in LAYERS_FWD:
        assert res[t].points == 0 and "while layers.py was being imported" in res[t].message, res[t].message
    assert res["feedforward.TorchTwoLayerNet"].points == 3  # torch_net.py does not import layers.py


def test_memory_bomb(reference_copy):
    edit(reference_copy, "layers", AFFINE_BODY, "hog = np.ones((1 << 31,))\n    " + AFFINE_BODY)
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD, limits=FAST))
    assert res["feedforward.affine_forward"].points == 0
    assert "memory" in res["feedforward.affine_forward"].message.lower()
    assert res["feedforward.relu_forward"].points == 1


@pytest.mark.parametrize("code, words", [("import sys\nsys.exit(0)", "SystemExit"),
                                         ("import os\nos._exit(0)", "exit status 0")])
def test_exit_at_import(reference_copy, code, words):
    prepend(reference_copy, "layers", code)
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD + ["feedforward.TorchTwoLayerNet"], limits=FAST))
    for t in LAYERS_FWD:
        assert res[t].points == 0 and words in res[t].message, res[t].message
    assert res["feedforward.TorchTwoLayerNet"].points == 3


def test_monkeypatching_numpy_and_builtins_changes_nothing(reference_copy):
    prepend(reference_copy, "layers", "import builtins, numpy\n"
            "numpy.allclose = lambda *a, **k: True\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
            "numpy.array_equal = lambda *a, **k: True\nbuiltins.abs = lambda x: 0\nbuiltins.max = lambda *a, **k: 0")
    edit(reference_copy, "layers", AFFINE_BODY, "out = np.zeros((x.shape[0], w.shape[1]))")
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD, limits=FAST))
    assert res["feedforward.affine_forward"].points == 0
    assert res["feedforward.relu_forward"].points == 1


def test_lying_ndarray_subclass(reference_copy):
    prepend(reference_copy, "layers", "import numpy as _np\nclass Liar(_np.ndarray):\n"
            "    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
            "    def __array_ufunc__(self, *a, **k): return _np.zeros(1)\n")
    edit(reference_copy, "layers", AFFINE_BODY, "out = np.zeros((x.shape[0], w.shape[1])).view(Liar)")
    res = by_task(grade(reference_copy, tasks=["feedforward.affine_forward"], limits=FAST))
    assert res["feedforward.affine_forward"].points == 0
    assert "entries wrong" in res["feedforward.affine_forward"].message


def test_no_network(reference_copy):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []

    def serve():
        for _ in range(20):
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    edit(reference_copy, "layers", AFFINE_BODY,
         f"import socket\n    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'x')\n"
         f"    except OSError:\n        pass\n    " + AFFINE_BODY)
    res = by_task(grade(reference_copy, tasks=["feedforward.affine_forward"], limits=FAST))
    server.close()
    assert res["feedforward.affine_forward"].points == 2  # its maths is right; the escape attempt failed
    assert accepted == [], "student code reached a socket on the host"


@pytest.mark.skipif(sandbox_mode() != "bwrap", reason="filesystem isolation needs bubblewrap (see docs/sandbox.md)")
def test_cannot_read_solutions_or_hidden_tests(reference_copy):
    stolen = REPO / "solutions" / "feedforward" / "layers.py"
    hidden = REPO / "autograder" / "hidden" / "feedforward.py"
    edit(reference_copy, "layers", AFFINE_BODY,
         f"try:\n        open({str(hidden)!r}).read()\n        ns = {{}}\n"
         f"        exec(open({str(stolen)!r}).read(), ns)\n        out = ns['affine_forward'](x, w, b)[0]\n"
         f"    except OSError as exc:\n        print('cannot read:', type(exc).__name__)\n"
         f"        out = np.zeros((x.shape[0], w.shape[1]))")
    res = by_task(grade(reference_copy, tasks=["feedforward.affine_forward"], limits=FAST))
    assert res["feedforward.affine_forward"].points == 0
    assert "cannot read: FileNotFoundError" in res["feedforward.affine_forward"].output


def test_syntax_error_names_file_and_line(reference_copy):
    edit(reference_copy, "layers", "def relu_forward(x):", "def relu_forward(x)")
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD, limits=FAST))
    msg = res["feedforward.relu_forward"].message
    assert res["feedforward.relu_forward"].points == 0
    assert "SyntaxError" in msg and "layers.py line" in msg, msg


def test_wrong_signature_is_explained(reference_copy):
    edit(reference_copy, "layers", "def affine_forward(x, w, b):", "def affine_forward(x, w):\n    b = 0")
    msg = by_task(grade(reference_copy, tasks=["feedforward.affine_forward"], limits=FAST))[
        "feedforward.affine_forward"].message
    assert "affine_forward(x, w)" in msg and "keep the signature" in msg, msg


def test_torch_in_numpy_module_scores_zero_with_reason(reference_copy):
    edit(reference_copy, "layers", AFFINE_BODY, "import torch\n    " + AFFINE_BODY)
    msg = by_task(grade(reference_copy, tasks=["feedforward.affine_forward"], limits=FAST))[
        "feedforward.affine_forward"]
    assert msg.points == 0 and "written from scratch" in msg.message, msg.message


def test_invalid_notebook_is_reported_and_costs_only_the_notebook(reference_copy):
    (reference_copy / "feedforward.ipynb").write_text("{ this is not json")
    result = grade(reference_copy, tasks=LAYERS_FWD, limits=FAST)
    assert any("feedforward.ipynb is not a valid notebook" in n for n in result.notes), result.notes
    assert result.points == 4


def test_missing_module_file(reference_copy):
    (reference_copy / "layers.py").unlink()
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD + ["feedforward.TorchTwoLayerNet"], limits=FAST))
    assert "layers.py is missing" in res["feedforward.affine_forward"].message
    assert res["feedforward.TorchTwoLayerNet"].points == 3


# -- torch in a NumPy module: the module imports, only the functions that use it score 0 --------------------------
AFFINE_USES = "out = {use}(x.reshape(x.shape[0], -1) @ w + b)  # (N, M)"


@pytest.mark.parametrize("line, use", [
    ("import torch", "torch.as_tensor"),
    ("import torch.nn as nn", "nn.Identity()"),
    ("from torch import nn", "nn.Identity()"),
    ("import torch.nn.functional as F", "F.relu"),
    ("from torch.nn import functional", "functional.relu"),
    ("from torch import tensor", "tensor"),
    ("import jax.numpy as jnp", "jnp.asarray"),
    ("import autograd.numpy as anp", "anp.array"),
    ("import tensorflow as tf", "tf.identity"),
])
def test_top_level_banned_import_costs_only_the_functions_that_use_it(reference_copy, line, use):
    prepend(reference_copy, "layers", line)
    edit(reference_copy, "layers", AFFINE_BODY, AFFINE_USES.format(use=use))
    result = grade(reference_copy, tasks=LAYERS_FWD, limits=FAST)
    res = by_task(result)
    assert res["feedforward.affine_forward"].points == 0
    assert "written from scratch" in res["feedforward.affine_forward"].message, res["feedforward.affine_forward"]
    assert res["feedforward.relu_forward"].points == 1 and res["feedforward.sigmoid_forward"].points == 1
    library = line.split()[1].split(".")[0]
    assert any(n.startswith("policy:") and library in n for n in result.notes), result.notes


def test_unused_top_level_torch_import_costs_nothing(reference_copy):
    prepend(reference_copy, "layers", "import torch\nimport torch.nn as nn\nfrom torch.nn import functional as F")
    result = grade(reference_copy, tasks=LAYERS_FWD, limits=FAST)
    assert result.points == 4, [(r.task, r.message) for r in result.results]
    assert not any(n.startswith("policy:") for n in result.notes), result.notes


# -- output: real streams, any amount, any bytes; the grade never depends on it -------------------------------------
@pytest.mark.parametrize("code, shown", [
    ('import sys\nsys.stdout.buffer.write(b"bytes through sys.stdout.buffer\\n")', "bytes through sys.stdout.buffer"),
    ('import sys\nprint("fds", sys.stdout.fileno(), sys.stderr.fileno())', "fds 1 2"),
    ('import os\nos.write(1, b"a nul\\x00byte and \\xff\\xfe invalid utf-8\\n")',
     "a nulbyte and \ufffd\ufffd invalid utf-8"),
    ('import sys\nprint("stderr is a tty:", sys.stderr.isatty(), file=sys.stderr)', "stderr is a tty: False"),
    ('import os\nos.system("echo printed by a child process")', "printed by a child process"),
])
def test_output_at_import_is_shown_and_costs_nothing(reference_copy, code, shown):
    prepend(reference_copy, "layers", code)
    result = grade(reference_copy, tasks=LAYERS_FWD, limits=FAST)
    assert result.points == 4, [(r.task, r.message) for r in result.results]
    output = "\n".join(r.output for r in result.results)
    assert shown in output and "\x00" not in output, output


def test_300_mib_of_output_at_import_is_shortened(reference_copy):
    prepend(reference_copy, "layers", 'print("FIRST LINE")\nfor _ in range(300):\n    print("y" * (1 << 20))\n'
                                      'print("LAST LINE")')
    result = grade(reference_copy, tasks=LAYERS_FWD, limits=Limits(call_s=60.0, import_s=120.0, wall_s=600.0,
                                                                    memory_mb=1024))
    assert result.points == 4, [(r.task, r.message) for r in result.results]
    output = by_task(result)["feedforward.affine_forward"].output
    assert "FIRST LINE" in output and "LAST LINE" in output and "bytes of output left out" in output
    assert len(output) < 200_000


def test_printing_from_a_function_during_a_check_is_shortened(reference_copy):
    edit(reference_copy, "layers", "out = np.maximum(0, x)",
         'print("relu called")\n    for _ in range(4):\n        print("z" * (1 << 20))\n'
         '    print("relu done")\n    out = np.maximum(0, x)')
    res = by_task(grade(reference_copy, tasks=LAYERS_FWD, limits=FAST))
    assert res["feedforward.relu_forward"].points == 1
    output = res["feedforward.relu_forward"].output
    assert "relu called" in output and "relu done" in output and "bytes of output left out" in output
    assert len(output) < 200_000
    assert "relu called" not in res["feedforward.affine_forward"].output


@pytest.mark.parametrize("topic", course_config.TOPICS, ids=lambda t: t.slug)
def test_exit_at_import_costs_only_that_module_in_every_topic(tmp_path, topic):
    """For every configured topic: a module that ends the process at import loses its own tasks (and those of the
    modules that import it), with the reason; every other task of the topic keeps full marks."""
    from autograder.mutants import copy_reference

    folder = copy_reference(topic.slug, SOLUTIONS, tmp_path)
    victim = topic.modules[-1]
    path = folder / f"{victim}.py"
    path.write_text(path.read_text() + "\nimport os\nos._exit(0)  # ends the process at import\n")
    hit = affected_modules(topic, victim)
    tasks = [t for t in topic.tasks if t.kind == "auto"]
    res = by_task(grade(folder, tasks=[t.name for t in tasks], visibility="public", topic=topic))
    for t in tasks:
        r = res[t.name]
        if t.module in hit:
            assert r.points == 0 and "exit status 0" in r.message, (t.name, r.message)
        else:
            assert r.points == r.max_points, (t.name, r.message)
