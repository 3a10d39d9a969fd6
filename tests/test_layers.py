"""The engine's layers follow the data flow, and no import goes upward.

LAYERS lists them lowest first. A module in a row may import the modules of the rows above it (lower layers) and
nothing else of the autograder: not its own row's, not a later row's, not a module no row names (those sit above
every layer). Adding a layer is one row; a module joins a layer by being named in its row."""
from __future__ import annotations

import pytest

import course_config
from autograder import import_graph

LAYERS = (  # (layer, modules), lowest first
    ("transport, leaves: figure data, output capture, import policy", {"figures", "capture", "import_policy"}),
    ("transport, wire codec", {"wire"}),
    ("transport, worker server (runs in the sandbox)", {"worker"}),
    ("import graph: reads source (the client derives the sandbox's files with it)", {"import_graph"}),
    ("confinement: bubblewrap, rlimits, cgroups, mode probing", {"confine"}),
    ("client: the trusted side's end of the wire", {"client"}),
)
TRANSPORT = set().union(*(modules for name, modules in LAYERS if name.startswith("transport")))  # the sandbox's
RANK = {f"autograder.{m}": i for i, (_, modules) in enumerate(LAYERS) for m in modules}


def _layer(module: str) -> str:
    return LAYERS[RANK[module]][0] if module in RANK else "an undeclared (higher) module"


def test_every_declared_module_exists():
    missing = [m for m in RANK if import_graph.module_file(m) is None]
    assert not missing, f"LAYERS names modules that do not exist: {missing}"


def test_the_import_reader_sees_imports():
    """A guard for the tests below: the reader finds plain, aliased, from- and function-level imports."""
    assert import_graph.imports("autograder.worker") >= {"autograder.wire", "autograder.capture",
                                                         "autograder.import_policy"}
    assert "autograder.figures" in import_graph.imports("autograder.checks")  # imported inside a method
    assert "autograder.release" in import_graph.imports("autograder.cli")     # `import autograder.release as ...`


@pytest.mark.parametrize("module", sorted(RANK))
def test_no_import_goes_upward(module):
    upward = [f"{m} ({_layer(m)})" for m in sorted(import_graph.imports(module))
              if RANK.get(m, len(LAYERS)) >= RANK[module]]
    assert not upward, f"{module} ({_layer(module)}) imports from its own or a higher layer: {upward}"


def test_the_sandbox_sees_only_transport():
    """What the worker imports is what the client mounts for it (autograder.client.transport_files): the transport
    modules and the package's __init__.py, never the checks, the runner, course_config or the solutions."""
    from autograder.client import transport_files

    mounted = set(transport_files())
    assert mounted == {"autograder/__init__.py", *(f"autograder/{m}.py" for m in TRANSPORT)}, mounted


@pytest.mark.parametrize("module", ["autograder.checks", *(f"autograder.{suite}.{t.slug}" for t in course_config.TOPICS
                                                           for suite in ("public", "hidden"))])
def test_checks_do_not_reach_into_confinement(module):
    """The check kit talks to workers through the client's types; how workers are confined is not its business."""
    assert not import_graph.imports(module) & {"autograder.confine", "autograder.worker"}
