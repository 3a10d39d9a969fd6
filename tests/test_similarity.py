"""`dlcore similarity`: disguised copies of the reference are flagged; independent work and untouched stubs are not.

The cohort (topic 1) is built here: the reference, a copy with every local variable and parameter renamed (and
reformatted, without comments), a copy with the functions in another order and other comments, a hand-written
correct solution of a few layers (loops, einsum, other vectorisations; the rest as released), and two untouched
stubs.
"""
from __future__ import annotations

import ast
import csv
import importlib.util
import io
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize

import numpy as np
import pytest

import course_config
from autograder import release, similarity
from autograder.mutants import write_stubs
from conftest import REPO, SOLUTIONS

FF = course_config.topic("feedforward")
COPIES = {"adaeze", "kemi", "zoe<&>"}  # the reference and its two disguised copies (one name needs escaping)


def renamed(text: str) -> str:
    """Every function's parameters and local variables renamed consistently, via the AST (so comments go and the
    layout changes too); names passed as keyword arguments keep their names so calls still match."""
    tree = ast.parse(text)
    keywords = {kw.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for kw in n.keywords if kw.arg}
    top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    local = set()
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        a = fn.args
        local |= {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x}
        local |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names = {old: f"q{i}" for i, old in enumerate(sorted(local - keywords - top - {"_"}))}

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            node.id = names.get(node.id, node.id)
            return node

        def visit_arg(self, node):
            node.arg = names.get(node.arg, node.arg)
            return node

    return ast.unparse(Rename().visit(tree)) + "\n"


def reordered(text: str) -> str:
    """The top-level functions and classes in reverse order, every comment replaced by another."""
    lines = text.splitlines(keepends=True)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col] + "# my own words here\n"
    tree = ast.parse("".join(lines))
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    if not defs:
        return "".join(lines)
    starts = [min([n.lineno] + [d.lineno for d in n.decorator_list]) - 1 for n in defs]
    ends = starts[1:] + [defs[-1].end_lineno]
    blocks = ["".join(lines[s:e]).rstrip() + "\n" for s, e in zip(starts, ends)]
    return "".join(lines[:starts[0]]) + "\n\n".join(reversed(blocks)) + "".join(lines[ends[-1]:])


# An independent correct solution of seven layers, written differently from the reference (loops, einsum,
# np.where, in-place updates); every other function stays as released.
INDEPENDENT = {
    "affine_forward": """
        n = x.shape[0]
        flat = np.reshape(x, (n, int(np.prod(x.shape[1:]))))
        out = np.dot(flat, w)
        out += b[np.newaxis, :]
        """,
    "affine_backward": """
        rows = np.reshape(x, (len(x), -1))
        dw = np.einsum("nd,nm->dm", rows, dout)
        db = np.zeros_like(b)
        for g in dout:
            db += g
        dx = np.einsum("nm,dm->nd", dout, w).reshape(x.shape)
        """,
    "relu_forward": """
        out = np.where(x > 0, x, 0.0)
        """,
    "relu_backward": """
        dx = np.where(x > 0, dout, 0.0)
        """,
    "softmax_loss": """
        count = len(y)
        total = 0.0
        dx = np.empty_like(x)
        for i in range(count):
            row = x[i] - np.max(x[i])
            log_z = np.log(np.sum(np.exp(row)))
            total -= row[y[i]] - log_z
            dx[i] = np.exp(row - log_z)
            dx[i, y[i]] -= 1.0
        loss = total / count
        dx /= count
        """,
    "batchnorm_forward": """
        n = len(x)
        mean = np.sum(x, axis=0) / n
        centred = x - mean
        variance = np.sum(centred * centred, axis=0) / n
        std = np.sqrt(variance + eps)
        normed = centred / std
        out = normed * gamma + beta
        cache = (normed, gamma, std)
        running_mean = running_mean * momentum + mean * (1 - momentum)
        running_var = running_var * momentum + variance * (1 - momentum)
        """,
    "batchnorm_forward (test mode)": """
        scale = gamma / np.sqrt(running_var + eps)
        out = x * scale + (beta - running_mean * scale)
        """,
    "batchnorm_backward": """
        normed, gamma, std = cache
        n = len(dout)
        dbeta = np.sum(dout, axis=0)
        dgamma = np.sum(dout * normed, axis=0)
        dx = gamma / (n * std) * (n * dout - dbeta - normed * dgamma)
        """,
}


def independent_layers() -> str:
    text = (SOLUTIONS.parent / "release" / FF.slug / "layers.py").read_text()
    for fn, body in INDEPENDENT.items():
        raise_line = re.search(rf'( *)raise NotImplementedError\("{FF.slug}\.{fn.split()[0]}"\)\n', text)
        code = textwrap.indent(textwrap.dedent(body).lstrip("\n"), raise_line.group(1))
        text = text[:raise_line.start()] + code + text[raise_line.end():]
    return text


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course root holding submitted/<student>/<topic>/ for the six students."""
    root = tmp_path_factory.mktemp("course")
    sub = root / "submitted"
    ref = SOLUTIONS / FF.slug
    shutil.copytree(ref, sub / "adaeze" / FF.slug, ignore=shutil.ignore_patterns("__pycache__"))
    for student, disguise in (("kemi", renamed), ("zoe<&>", reordered)):
        folder = sub / student / FF.slug
        folder.mkdir(parents=True)
        for path in ref.glob("*.py"):
            (folder / path.name).write_text(disguise(path.read_text()))
    write_stubs(FF.slug, SOLUTIONS, sub / "ngozi")
    (sub / "ngozi" / FF.slug / "layers.py").write_text(independent_layers())
    for student in ("bola", "tunde"):
        write_stubs(FF.slug, SOLUTIONS, sub / student)
    return root


@pytest.fixture(scope="module")
def pairs(course):
    return {frozenset((p.a, p.b)): p for p in similarity.run(course, FF.slug, out=course / "report", quiet=True)}


def test_the_cohort_is_what_it_claims(course):
    """The disguises really disguise, and the independent solution is correct, so the verdicts below mean something."""
    sub = course / "submitted"
    ref_text = (SOLUTIONS / FF.slug / "layers.py").read_text()
    kemi = (sub / "kemi" / FF.slug / "layers.py").read_text()
    code_names = lambda text: {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name)} | {  # noqa: E731
        n.arg for n in ast.walk(ast.parse(text)) if isinstance(n, ast.arg)}
    assert {"dout", "cache", "x"} <= code_names(ref_text) and not {"dout", "cache", "x"} & code_names(kemi)
    assert "#" not in kemi and kemi.count("q0") > 1
    ref_order = [n.name for n in ast.parse(ref_text).body if isinstance(n, ast.FunctionDef)]
    zoe = (sub / "zoe<&>" / FF.slug / "layers.py").read_text()
    zoe_order = [n.name for n in ast.parse(zoe).body if isinstance(n, ast.FunctionDef)]
    assert sorted(zoe_order) == sorted(ref_order) and zoe_order == ref_order[::-1]
    assert "# subtract the row max" in ref_text and "row max" not in zoe and "# my own words here" in zoe

    mine, ref = load(sub / "ngozi" / FF.slug / "layers.py", "ngozi_layers"), load(SOLUTIONS / FF.slug / "layers.py",
                                                                                   "ref_layers")
    rng = np.random.default_rng(0)
    x, w, b, dout = rng.normal(size=(4, 3, 2)), rng.normal(size=(6, 5)), rng.normal(size=5), rng.normal(size=(4, 5))
    for got, want in zip(mine.affine_forward(x, w, b)[0:1] + mine.affine_backward(dout, (x, w, b)),
                         ref.affine_forward(x, w, b)[0:1] + ref.affine_backward(dout, (x, w, b))):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(mine.relu_forward(w)[0], ref.relu_forward(w)[0])
    np.testing.assert_allclose(mine.relu_backward(w, w), ref.relu_backward(w, w))
    y = rng.integers(0, 5, 6)
    np.testing.assert_allclose(mine.softmax_loss(w * 100, y)[0], ref.softmax_loss(w * 100, y)[0], rtol=1e-12)
    np.testing.assert_allclose(mine.softmax_loss(w, y)[1], ref.softmax_loss(w, y)[1], rtol=1e-12)
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    p_mine, p_ref = {"mode": "train"}, {"mode": "train"}
    out_m, cache_m = mine.batchnorm_forward(w, gamma, beta, p_mine)
    out_r, cache_r = ref.batchnorm_forward(w, gamma, beta, p_ref)
    np.testing.assert_allclose(out_m, out_r, rtol=1e-12)
    for got, want in zip(mine.batchnorm_backward(w, cache_m), ref.batchnorm_backward(w, cache_r)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    p_mine["mode"] = p_ref["mode"] = "test"
    np.testing.assert_allclose(mine.batchnorm_forward(w, gamma, beta, p_mine)[0],
                               ref.batchnorm_forward(w, gamma, beta, p_ref)[0], rtol=1e-12)
    with pytest.raises(NotImplementedError):  # the rest is the released stub
        mine.tanh_forward(w)


def test_disguised_copies_are_flagged_with_a_high_score(pairs):
    for a, b in (("adaeze", "kemi"), ("adaeze", "zoe<&>"), ("kemi", "zoe<&>")):
        p = pairs[frozenset((a, b))]
        assert p.flagged and p.score >= 0.8 and p.shared >= 100, p


def test_independent_work_and_stubs_are_not_flagged(pairs):
    for student in COPIES:
        p = pairs[frozenset((student, "ngozi"))]
        assert not p.flagged and p.score < similarity.THRESHOLD / 2, p
    stubs = pairs[frozenset(("bola", "tunde"))]
    assert not stubs.flagged and stubs.count_a == stubs.count_b == 0 and stubs.score == 0  # the stub is removed
    assert {frozenset(k) for k, p in pairs.items() if p.flagged} == {frozenset(c) for c in
                                                                     [("adaeze", "kemi"), ("adaeze", "zoe<&>"),
                                                                      ("kemi", "zoe<&>")]}


def test_pairs_are_ranked_and_all_listed_in_the_csv(course, pairs):
    with open(course / "report" / f"similarity-{FF.slug}.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(pairs) == 6 * 5 // 2
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and [int(r["rank"]) for r in rows] == list(range(1, 16))
    assert all({r["student_a"], r["student_b"]} <= COPIES for r in rows[:3])  # the copies come first
    assert all(r["flagged"] == "0" for r in rows[3:])
    with_stubs = [r for r in rows if {r["student_a"], r["student_b"]} & {"bola", "tunde"}]
    assert rows[-len(with_stubs):] == with_stubs and all(float(r["score"]) == 0 for r in with_stubs)


def test_page_shows_each_flagged_pair_side_by_side_with_the_matches_marked(course):
    page = (course / "report" / f"similarity-{FF.slug}.html").read_text()
    assert page.count("<section id='pair-") == 3
    assert "zoe&lt;&amp;&gt;" in page and "zoe<&>" not in page  # escaped
    first = page.split("<section id='pair-1'>")[1].split("</section>")[0]
    assert "adaeze" in first and first.count("<table class='side'>") == 3  # layers, net, torch_net
    assert first.count("<mark>") >= 6
    marked = "".join(re.findall(r"<mark>(.*?)</mark>", first, re.S))
    assert "dx = dout * (x &gt; 0)" in marked  # a solution line is highlighted, escaped
    assert "raise NotImplementedError" not in page and "ngozi" not in page and "bola" not in page


def test_normalisation_ignores_names_comments_docstrings_and_layout_but_not_the_api():
    a = 'def f(x, w):\n    """Doc."""\n    out = x.reshape(len(x), -1) @ w  # (N, M)\n    return out\n'
    b = "def g(inp,\n      weights):\n    # other words\n    result = inp.reshape(len(inp),\n" \
        "                         -1) @ weights\n\n    return result\n"
    c = a.replace("x.reshape(len(x), -1)", "np.reshape(x, (len(x), -1))")
    sym = lambda text: [t.symbol for t in similarity.normalise(text)[0]]  # noqa: E731
    assert sym(a) == sym(b)
    assert sym(a)[:3] == ["def", "V", "("] and ".reshape" not in sym(a) and "reshape" in sym(a)
    assert "S" not in sym(a) and "len" in sym(a) and sym(a) != sym(c)
    assert sym(a.replace("(N, M)", "(N, D)")) == sym(a)
    tokens, note = similarity.normalise("def f(:\n    return (1,\n")
    assert note and [t.symbol for t in tokens][:3] == ["def", "V", "("]  # broken code: a note, no crash


def test_winnowing_finds_every_common_run_of_w_plus_k_minus_1_tokens():
    rng = random.Random(0)
    k, w = similarity.K, similarity.W
    for _ in range(50):
        common = [rng.choice("abcdefgh") for _ in range(w + k - 1)]
        left = [rng.choice("abcdefgh") for _ in range(rng.randrange(40))] + common
        right = common + [rng.choice("abcdefgh") for _ in range(rng.randrange(40))]
        fp = [similarity.winnow([h for h, _ in similarity.kgrams(
            [similarity.Token(s, 1, 1) for s in seq], k)], w) for seq in (left, right)]
        assert fp[0] & fp[1]


def test_common_code_shared_by_many_is_ignored(course):
    stub = similarity.stub_hashes(FF)
    subs = [similarity.read_submission(s, course / "submitted" / s / FF.slug, FF, stub)
            for s in sorted(COPIES)]
    page = similarity.html_page(FF, subs, similarity.compare(subs), stub, shown=1)
    assert page.count("<section id='pair-") == 1 and "first 1 flagged pairs" in page  # the page stays readable
    assert similarity.drop_common(subs, max_share=0) == set()  # 0 keeps everything
    in_all = set.intersection(*(s.fingerprints for s in subs))
    assert len(in_all) > 100
    common = similarity.drop_common(subs, max_share=2)  # all three hold the copied code: it counts as common
    assert common == in_all and not set.intersection(*(s.fingerprints for s in subs))
    after = {frozenset((p.a, p.b)): p for p in similarity.compare(subs)}
    assert after[frozenset(("adaeze", "kemi"))].shared < similarity.MIN_SHARED  # what is left is not evidence


def test_links_out_of_a_submission_are_not_followed(tmp_path):
    folder = write_stubs(FF.slug, SOLUTIONS, tmp_path / "mallory")
    (folder / "layers.py").unlink()
    (folder / "layers.py").symlink_to(SOLUTIONS / FF.slug / "layers.py")  # would show the grader's file on the page
    sub = similarity.read_submission("mallory", folder, FF, similarity.stub_hashes(FF))
    assert "layers.py" not in sub.texts and "symbolic link" in sub.notes[0] and not sub.fingerprints


def dlcore(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "autograder.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="200"))


def test_cli_end_to_end_from_a_submissions_folder_and_from_a_graded_folder(course, tmp_path):
    proc = dlcore("similarity", str(course / "submitted"), FF.slug, "--out", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 15 pairs flagged" in proc.stdout and "adaeze" in proc.stdout
    assert (tmp_path / "rep" / f"similarity-{FF.slug}.html").is_file()

    graded = course / "graded"  # a graded folder beside submitted/: the report goes into it
    graded.mkdir(exist_ok=True)
    (graded / "gradebook.csv").write_text("student\n")
    proc = dlcore("similarity", str(graded), FF.slug)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (graded / f"similarity-{FF.slug}.csv").is_file()

    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "gradebook.csv").write_text("student\n")
    proc = dlcore("similarity", str(lone), FF.slug)
    assert proc.returncode != 0 and "--submissions" in proc.stderr
    proc = dlcore("similarity", str(lone), FF.slug, "--submissions", str(course))
    assert proc.returncode == 0 and "3 of 15 pairs flagged" in proc.stdout, proc.stdout + proc.stderr
    proc = dlcore("similarity", str(course), "no_such_topic")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_student_edition_has_no_similarity_engine(tmp_path):
    """release/ does not ship similarity.py, and its CLI says so cleanly (the CLI as `dlcore release` writes it)."""
    files = release.expected_files()
    assert "autograder/similarity.py" not in files and "autograder/cli.py" in files
    copy = tmp_path / "release"
    shutil.copytree(REPO / "release", copy)
    (copy / "autograder" / "cli.py").write_bytes(files["autograder/cli.py"])
    (copy / "autograder" / "similarity.py").unlink(missing_ok=True)
    from test_cli import student_dlcore

    proc = student_dlcore(copy, "similarity", ".", FF.slug)
    assert proc.returncode == 2 and "not part of this edition" in proc.stderr, proc.stdout + proc.stderr
