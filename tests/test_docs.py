"""The documentation cannot rot: the guides in docs/ build with MkDocs in strict mode (a broken link or anchor, or a
page missing from the nav, fails), and every repository path, module attribute and `dlcore` command that README.md
and the pages name in code exists.

What is checked is found by rule, not listed by hand: a path is checked when its first component is a top-level
entry of the repository that .gitignore does not ignore (so `demo-out/...` and `graded/...`, outputs, are not;
`<placeholder>` parts must match something); a dotted name when it starts with one of the project's own importable
modules (from pyproject.toml); a command when a code span or code line starts with `dlcore`, whose subcommands and
options come from the CLI's own `--help`."""
from __future__ import annotations

import contextlib
import fnmatch
import importlib
import io
import re
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

from conftest import REPO

DOCS = REPO / "docs"


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def code_texts(markdown: str) -> list[str]:
    """The code in a Markdown text: each fenced block's commands (shell comments dropped; an indented line continues
    the line before) and each inline code span."""
    out, rest = [], []
    for i, part in enumerate(re.split(r"^```[^\n]*\n", markdown, flags=re.M)):
        if i % 2:  # inside a fenced block
            for line in part.splitlines():
                line = re.sub(r"(^|\s)#.*", "", line)
                if line[:1].isspace() and out:
                    out[-1] += " " + line.strip()
                elif line.strip():
                    out.append(line.strip())
        else:
            rest.append(part)
    out += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", "\n".join(rest))]  # a span may wrap
    return out


# --- repository paths ---------------------------------------------------------------------------------------

@cache
def checked_roots() -> frozenset[str]:
    """Top-level entries of the repository that are part of it: not .git, not matched by .gitignore."""
    patterns = [p.strip() for p in (REPO / ".gitignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    names = set()
    for entry in REPO.iterdir():
        if entry.name == ".git":
            continue
        if any(fnmatch.fnmatch(entry.name, p.strip("/")) for p in patterns):
            continue
        names.add(entry.name)
    return frozenset(names)


def missing_paths(markdown: str) -> list[str]:
    """Repository paths named in the text's code that do not exist. A `<...>` part matches any name."""
    missing = []
    for code in code_texts(markdown):
        for token in code.split():
            token = token.strip("\"'(),;:")
            if not token or any(c in token for c in "$*{}[]~") or "..." in token:
                continue
            if token.split("/")[0] not in checked_roots():
                continue
            pattern = re.sub(r"<[^<>/]+>", "*", token.rstrip("/"))
            matches = list(REPO.glob(pattern)) if pattern != token.rstrip("/") else [REPO / pattern]
            if token.endswith("/"):
                matches = [m for m in matches if m.is_dir()]
            if not any(m.exists() for m in matches):
                missing.append(token)
    return missing


# --- module attributes --------------------------------------------------------------------------------------

@cache
def own_modules() -> frozenset[str]:
    """The project's own importable top-level names, as pyproject.toml installs them."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    names = set(tool.get("py-modules", [])) | {p.split(".")[0] for p in tool.get("packages", [])}
    return frozenset(names | set(tool.get("package-dir", {})))


def unresolved_names(markdown: str) -> list[str]:
    """Dotted names of the project's own modules (`autograder.runner.reference`) named in code that do not
    resolve to a module or attribute."""
    bad = []
    for code in code_texts(markdown):
        name = code.strip()
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name) or name.split(".")[0] not in own_modules():
            continue
        if (REPO / name).is_file():  # `course_config.py` is a path (checked as one), not a name
            continue
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                bad.append(name)
            break
        else:
            bad.append(name)
    return bad


# --- dlcore commands ----------------------------------------------------------------------------------------

@cache
def cli_help(*words: str) -> str:
    """`dlcore WORDS --help`, from the CLI's own parser (autograder/cli.py builds it in main)."""
    from autograder.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*words, "--help"])
    return out.getvalue()


def subcommands(*words: str) -> set[str]:
    """The subcommands of `dlcore WORDS` (argparse's `{a,b,...} ...`), empty where it has none."""
    m = re.search(r"\{([\w,-]+)\}\s+\.\.\.", cli_help(*words))
    return set(m.group(1).split(",")) if m else set()


def unknown_commands(markdown: str) -> list[str]:
    """`dlcore ...` commands named in code whose subcommand, or one of whose --options, the CLI does not have."""
    bad = []
    for code in code_texts(markdown):
        m = re.match(r"dlcore\s+(.*)", code)
        if not m:
            continue
        words, path = m.group(1).split(), []
        while words and (subs := subcommands(*path)):
            if words[0] not in subs:
                bad.append(f"{code} (no subcommand {words[0]!r})")
                break
            path.append(words.pop(0))
        else:
            known = set(re.findall(r"--[\w-]+", cli_help(*path)))
            options = {w.split("=")[0].strip("[]|") for w in words if w.lstrip("[").startswith("--")}
            bad += [f"{code} (no option {o})" for o in sorted(options - known)]
    return bad


# --- the tests ----------------------------------------------------------------------------------------------

def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=300)


def test_docs_build_strict(tmp_path):
    run = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "site" / "graders" / "index.html").is_file()


def test_a_broken_link_fails_the_build(tmp_path):
    """The strict build can fail: a link to a missing page, and one to a missing heading, are both errors."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "students.md"
    page.write_text(page.read_text() + "\nSee [the missing guide](missing.md).\n")
    run = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert run.returncode != 0 and "missing.md" in run.stdout + run.stderr
    page.write_text(page.read_text().replace("(missing.md)", "(graders.md#no-such-heading)"))
    run = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert run.returncode != 0 and "no-such-heading" in run.stdout + run.stderr


def test_readme_links_to_the_docs_pages():
    readme = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\((?!https?:)([^)#]+)(?:#[^)]*)?\)", readme)
    assert {f"docs/{p.name}" for p in DOCS.glob("*.md")} <= set(targets), "README links every docs page"
    assert all((REPO / t).is_file() for t in targets), [t for t in targets if not (REPO / t).is_file()]


def test_named_paths_exist():
    missing = {d.name: m for d in documents() if (m := missing_paths(d.read_text()))}
    assert not missing, f"paths named in the docs that the repository lacks: {missing}"


def test_named_module_attributes_exist():
    bad = {d.name: b for d in documents() if (b := unresolved_names(d.read_text()))}
    assert not bad, f"names in the docs that do not resolve: {bad}"


def test_named_dlcore_commands_exist():
    bad = {d.name: b for d in documents() if (b := unknown_commands(d.read_text()))}
    assert not bad, f"dlcore commands in the docs that the CLI lacks: {bad}"


def test_the_checkers_see_rot():
    """Each checker can fail: a planted missing path, missing attribute and unknown command are reported, while
    placeholders, outputs and real names pass."""
    text = """Edit `autograder/no_such_module.py` and `tests/test_docs.py`; outputs `demo-out/graded/gradebook.csv`;
`autograder/public/<topic>.py` and `solutions/<topic>/` exist, `autograder/public/<topic>.txt` does not.
```bash
dlcore grade TOPIC --submissions S --out graded
            [--no-such-flag]
dlcore course autograde backprop --jobs 2
```
`dlcore grdae X`, `dlcore course collect backprop`, `dlcore course publish backprop`, `dlcore release --check`.
`autograder.runner.reference`, `autograder.runner.no_such_name`, `course_config.TOPICS`, `ctx.bar`."""
    assert missing_paths(text) == ["autograder/no_such_module.py", "autograder/public/<topic>.txt"]
    assert unresolved_names(text) == ["autograder.runner.no_such_name"]
    assert [b.split(" (")[1] for b in unknown_commands(text)] == [
        "no option --no-such-flag)", "no subcommand 'grdae')", "no subcommand 'publish')"]
