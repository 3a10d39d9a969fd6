"""`dlcore similarity`: pairs of submissions whose code is suspiciously alike, ranked, with a side-by-side page.

The method is MOSS's (Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document fingerprinting",
SIGMOD 2003), on Python tokens:

1. Normalise. Each of the topic's student modules is tokenised with `tokenize`. Comments, docstrings (and any
   other string statement) and layout tokens (NEWLINE, NL, INDENT, DEDENT) are dropped, so comments and
   formatting do not matter. Every identifier becomes `V`, every string `S` and every number `N`, so a consistent
   renaming changes nothing. Kept as they are: keywords, operators, builtins (`range`, `len`, ...) and attribute
   names (`.reshape`, `np.maximum`, `.T`): a student cannot rename those without changing what the code does, and
   they are what tells two independent solutions apart (`np.where` against `np.maximum`, a loop against `.sum`).
2. Remove the stub. Every k-gram of the released stub (`release/<topic>/<module>.py`, the code every student
   was given) is discarded from every submission before winnowing, so untouched stubs have no fingerprints and
   the given code never counts as a match. (The k-grams at the seams, half stub and half the student's first or
   last tokens, remain; they are few, and the ones everybody shares go in step 4.)
3. Fingerprint. Each run of K tokens (a k-gram) is hashed (Karp-Rabin, reproducible across runs); winnowing keeps
   the minimum hash of every window of W consecutive k-grams, which guarantees that any common run of at least
   W + K - 1 tokens yields a shared fingerprint. A submission's fingerprints are a set over all its modules,
   so the order of functions (and which module holds them) does not matter.
4. Drop common code. A fingerprint found in more than `max_share` submissions is ignored (MOSS's -m, default
   10): a short function that almost everyone writes the same way is not evidence.
5. Score each pair: shared fingerprints / fingerprints of the smaller submission (MOSS reports both percentages;
   the larger one flags a student who copied part of another's work). A pair is flagged when its score reaches the
   threshold and it shares at least `min_shared` fingerprints (a few shared one-liners are not evidence).

For the page, every (not only winnowed) non-stub, non-common k-gram the two submissions share is mapped back to
its source lines, and those lines are highlighted in both files side by side.
"""
from __future__ import annotations

import builtins
import csv
import dataclasses
import functools
import hashlib
import html
import io
import itertools
import keyword
import tokenize
from collections import Counter
from pathlib import Path

import course_config
from autograder import reports
from autograder.runner import REPO

K = 12  # tokens per k-gram: about one statement (`out = np.maximum(0, x)` is 11 tokens)
W = 8  # winnowing window: every common run of W + K - 1 = 19 tokens (two short lines) is caught
THRESHOLD = 0.5  # flagged from this share of the smaller submission's fingerprints
MIN_SHARED = 8  # ...and at least this many shared fingerprints
MAX_SHARE = 10  # fingerprints in more submissions than this are common code (MOSS's -m); 0 keeps them all
MAX_FILE_BYTES = 1_000_000  # a larger module is not read (a submission, not a data dump)
SHOWN = 50  # flagged pairs shown side by side on the page (about 60 kB each); the table and CSV list them all

_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER,
            tokenize.ENCODING}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python >= 3.12 splits f-strings into parts
_FSTRING_PARTS = {getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
_BUILTINS = frozenset(dir(builtins))


@dataclasses.dataclass(frozen=True)
class Token:
    symbol: str  # normalised text: "V", "S", "N", a keyword, an operator, a builtin or an attribute name
    first: int  # first and last source line (1-based) it spans
    last: int


@dataclasses.dataclass
class Submission:
    """One student's topic: module texts and tokens, the k-grams left after removing the stub, the fingerprints."""
    student: str
    texts: dict[str, str]  # module file name -> source text
    tokens: dict[str, list[Token]]  # module file name -> normalised tokens
    kgrams: dict[str, list[tuple[int, int]]]  # module file name -> (hash, index of its first token), stub removed
    fingerprints: set[int]
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Pair:
    a: str
    b: str
    shared: int  # fingerprints in both
    count_a: int  # fingerprints of a, of b
    count_b: int
    score: float  # shared / min(count_a, count_b)
    flagged: bool


def _raw_tokens(text: str) -> tuple[list[tokenize.TokenInfo], str]:
    """Python's tokens of a module, and a note if it could not be tokenised to the end (the tokens before stay)."""
    raw: list[tokenize.TokenInfo] = []
    try:
        raw.extend(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:  # unclosed bracket, bad dedent, NUL byte
        return raw, f"tokenised up to line {raw[-1].end[0] if raw else 0} only ({exc.args[0] if exc.args else exc})"
    return raw, ""


_STATEMENT_START = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
_STRING_STATEMENT = {tokenize.STRING, tokenize.NL, tokenize.COMMENT}


def normalise(text: str) -> tuple[list[Token], str]:
    """The normalised token stream of a module, and a note if it could not be tokenised to the end."""
    raw, note = _raw_tokens(text)
    tokens: list[Token] = []
    prev, i, at_start = "", 0, True  # at_start: the next token begins a statement
    while i < len(raw):
        tok = raw[i]
        if tok.type == tokenize.STRING and at_start:  # a docstring, or a string used as a comment?
            j = i
            while j < len(raw) and raw[j].type in _STRING_STATEMENT:
                j += 1
            if j == len(raw) or raw[j].type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                i = j  # the statement is only strings: drop it
                continue
        at_start = tok.type in _STATEMENT_START or (at_start and tok.type in (tokenize.NL, tokenize.COMMENT))
        i += 1
        if tok.type in _SKIPPED or tok.type in _FSTRING_PARTS:
            continue
        if tok.type == tokenize.STRING or tok.type == _FSTRING_START:
            symbol = "S"
        elif tok.type == tokenize.NUMBER:
            symbol = "N"
        elif tok.type == tokenize.NAME:
            keep = keyword.iskeyword(tok.string) or prev == "." or tok.string in _BUILTINS
            symbol = tok.string if keep else "V"
        elif tok.type == tokenize.ERRORTOKEN and not tok.string.strip():
            continue
        else:  # operators, and stray characters of broken code
            symbol = tok.string
        tokens.append(Token(symbol, tok.start[0], tok.end[0]))
        prev = tok.string
    return tokens, note


_BASE, _MOD = 1_000_003, (1 << 61) - 1  # Karp-Rabin rolling hash, as in the winnowing paper


@functools.lru_cache(maxsize=None)
def _symbol_value(symbol: str) -> int:
    """A stable 61-bit value per symbol (not hash(), which changes between runs)."""
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big") % _MOD


def kgrams(tokens: list[Token], k: int = K) -> list[tuple[int, int]]:
    """(hash, index of its first token) of every run of k tokens, in order; a rolling hash, so O(tokens)."""
    values = [_symbol_value(t.symbol) for t in tokens]
    if len(values) < k:
        return []
    top = pow(_BASE, k - 1, _MOD)  # weight of the token that leaves the window
    h = 0
    for v in values[:k]:
        h = (h * _BASE + v) % _MOD
    out = [(h, 0)]
    for i in range(1, len(values) - k + 1):
        h = ((h - values[i - 1] * top) * _BASE + values[i + k - 1]) % _MOD
        out.append((h, i))
    return out


def winnow(hashes: list[int], w: int = W) -> set[int]:
    """Winnowing: the minimum hash of every window of w consecutive hashes (of the whole list if shorter).

    Fingerprints are kept as a set of values, so which of two equal minima is picked (the paper's tie rule) and
    where it sits do not matter.
    """
    if len(hashes) <= w:
        return {min(hashes)} if hashes else set()
    return {min(hashes[start:start + w]) for start in range(len(hashes) - w + 1)}


def stub_texts(topic: course_config.Topic) -> dict[str, str]:
    """The released stub of each student module (what every student was given); generated from solutions/ with
    the release builder's own function where release/ lacks it."""
    from autograder.release import make_stub

    texts = {}
    for module in topic.modules:
        released = REPO / "release" / topic.slug / f"{module}.py"
        if released.is_file():
            texts[f"{module}.py"] = released.read_text()
        else:
            source = (REPO / "solutions" / topic.slug / f"{module}.py").read_text()
            texts[f"{module}.py"] = make_stub(source, topic.slug, f"{module}.py")
    return texts


def stub_hashes(topic: course_config.Topic, k: int = K) -> set[int]:
    """Every k-gram hash of the topic's released stubs."""
    return {h for text in stub_texts(topic).values() for h, _ in kgrams(normalise(text)[0], k)}


def read_submission(student: str, folder: Path, topic: course_config.Topic, stub: set[int], k: int = K,
                    w: int = W) -> Submission:
    """Tokenise, remove the stub's k-grams, winnow. Missing, linked or oversized modules are skipped with a note."""
    sub = Submission(student, {}, {}, {}, set())
    if folder.is_symlink():  # never follow a link out of the submission: it could name any file
        sub.notes.append(f"{folder.name}/ is a symbolic link: not read")
        return sub
    for module in topic.modules:
        path = folder / f"{module}.py"
        if path.is_symlink():
            sub.notes.append(f"{path.name} is a symbolic link: not read")
            continue
        if not path.is_file():
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            sub.notes.append(f"{path.name} is larger than {MAX_FILE_BYTES // 1000} kB: not read")
            continue
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
        tokens, note = normalise(text)
        if note:
            sub.notes.append(f"{path.name}: {note}")
        own = [g for g in kgrams(tokens, k) if g[0] not in stub]  # the student's own code (and its seams)
        sub.texts[path.name], sub.tokens[path.name], sub.kgrams[path.name] = text, tokens, own
        sub.fingerprints |= winnow([h for h, _ in own], w)
    return sub


def drop_common(subs: list[Submission], max_share: int = MAX_SHARE) -> set[int]:
    """Remove fingerprints held by more than max_share submissions from every submission; returns them."""
    if max_share <= 0:
        return set()
    counts = Counter(h for s in subs for h in s.fingerprints)
    common = {h for h, n in counts.items() if n > max_share}
    for s in subs:
        s.fingerprints -= common
    return common


def compare(subs: list[Submission], threshold: float = THRESHOLD, min_shared: int = MIN_SHARED) -> list[Pair]:
    """Every pair of submissions, ranked by score, then shared fingerprints, then names."""
    pairs = []
    for a, b in itertools.combinations(sorted(subs, key=lambda s: s.student), 2):
        shared = len(a.fingerprints & b.fingerprints)
        smaller = min(len(a.fingerprints), len(b.fingerprints))
        score = shared / smaller if smaller else 0.0
        pairs.append(Pair(a.student, b.student, shared, len(a.fingerprints), len(b.fingerprints), score,
                          score >= threshold and shared >= min_shared))
    return sorted(pairs, key=lambda p: (-p.score, -p.shared, p.a, p.b))


def matched_lines(a: Submission, b: Submission, ignore: set[int],
                  k: int = K) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Per module, the lines of a and of b that hold a token of a k-gram both have (stub and common k-grams
    excluded); the lines of a skipped docstring or comment between those tokens stay unmarked."""
    hashes_a = {h for grams in a.kgrams.values() for h, _ in grams} - ignore
    hashes_b = {h for grams in b.kgrams.values() for h, _ in grams} - ignore
    both = hashes_a & hashes_b

    def lines(sub: Submission) -> dict[str, set[int]]:
        return {name: {ln for h, i in grams if h in both for t in sub.tokens[name][i:i + k]
                       for ln in range(t.first, t.last + 1)} for name, grams in sub.kgrams.items()}

    return lines(a), lines(b)


def _regions(lines: set[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive line numbers, as (first, last)."""
    runs: list[tuple[int, int]] = []
    for ln in sorted(lines):
        if runs and ln == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], ln)
        else:
            runs.append((ln, ln))
    return runs


def _listing(text: str, marked: set[int]) -> str:
    """A numbered, escaped listing with each run of marked lines in one <mark>."""
    e = html.escape
    out, open_mark = [], False
    for i, line in enumerate(text.splitlines(), 1):
        if i in marked and not open_mark:
            out.append("<mark>")
            open_mark = True
        elif i not in marked and open_mark:
            out.append("</mark>")
            open_mark = False
        out.append(f"<span class='ln'>{i:4d}</span> {e(line)}\n")
    if open_mark:
        out.append("</mark>")
    return "".join(out)


def html_page(topic: course_config.Topic, subs: list[Submission], pairs: list[Pair], ignore: set[int],
              k: int = K, w: int = W, threshold: float = THRESHOLD, shown: int = SHOWN) -> str:
    """A self-contained page: the flagged pairs ranked, then each one's files side by side, matches marked."""
    e = html.escape
    by_name = {s.student: s for s in subs}
    flagged = [p for p in pairs if p.flagged]
    parts = [f"<!doctype html><meta charset='utf-8'><title>Similarity: {e(topic.slug)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;"
             "vertical-align:top;text-align:left}pre{font-size:12px;margin:0;white-space:pre;overflow-x:auto}"
             "mark{background:#fd6}.ln{color:#999}.side{table-layout:fixed;width:100%}.side td{width:50%}</style>",
             f"<h1>Code similarity: {e(topic.title)}</h1>",
             f"<p>{len(subs)} submissions, {len(pairs)} pairs, <b>{len(flagged)} flagged</b> (score &ge; "
             f"{threshold:g}). Score: shared fingerprints / fingerprints of the smaller submission, after removing "
             f"comments, docstrings, layout, identifier names and the released stub (k = {k} tokens, window "
             f"w = {w}). A high score is a reason to read the code, not a verdict.</p>"]
    notes = [f"{s.student}: {n}" for s in subs for n in s.notes]
    notes += [f"{s.student}: no code for this topic" for s in subs if not s.texts]
    if notes:
        parts.append("<details><summary>notes</summary><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes)
                     + "</ul></details>")
    if not flagged:
        parts.append("<p>No pair reaches the threshold.</p>")
        return "\n".join(parts)
    parts.append("<table><tr><th>#</th><th>student</th><th>student</th><th>score</th><th>shared</th>"
                 "<th>fingerprints</th></tr>")
    for i, p in enumerate(flagged, 1):
        rank = f"<a href='#pair-{i}'>{i}</a>" if i <= shown else str(i)
        parts.append(f"<tr><td>{rank}</td><td>{e(p.a)}</td><td>{e(p.b)}</td><td>{p.score:.0%}</td>"
                     f"<td>{p.shared}</td><td>{p.count_a} / {p.count_b}</td></tr>")
    parts.append("</table>")
    if len(flagged) > shown:
        parts.append(f"<p>The first {shown} flagged pairs are shown side by side; the CSV lists every pair.</p>")
    for i, p in enumerate(flagged[:shown], 1):
        a, b = by_name[p.a], by_name[p.b]
        lines_a, lines_b = matched_lines(a, b, ignore, k)
        parts.append(f"<section id='pair-{i}'><h2>{i}. {e(p.a)} and {e(p.b)}: {p.score:.0%} "
                     f"({p.shared} shared fingerprints of {p.count_a} and {p.count_b})</h2>")
        for name in sorted(set(a.texts) | set(b.texts)):
            if not lines_a.get(name) and not lines_b.get(name):
                continue  # nothing matched in this module on either side
            cells = []
            for sub, marked in ((a, lines_a), (b, lines_b)):
                regions = _regions(marked.get(name, set()))
                listing = _listing(sub.texts[name], marked.get(name, set())) if name in sub.texts else "(missing)"
                cells.append(f"<td><b>{e(sub.student)}/{e(name)}</b> ({len(regions)} matching region"
                             f"{'' if len(regions) == 1 else 's'})<pre>{listing}</pre></td>")
            parts.append(f"<h3>{e(name)}</h3><table class='side'><tr>{''.join(cells)}</tr></table>")
        parts.append("</section>")
    return "\n".join(parts)


def write_csv(path: Path, pairs: list[Pair]) -> None:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["rank", "student_a", "student_b", "score", "shared", "fingerprints_a", "fingerprints_b",
                  "flagged"])
    out.writerows([i, p.a, p.b, f"{p.score:.4f}", p.shared, p.count_a, p.count_b, int(p.flagged)]
                  for i, p in enumerate(pairs, 1))
    reports.write_atomic(path, buf.getvalue())


def find_submissions(folder: Path, topic: str, submissions: Path | None = None) -> Path:
    """The submissions folder: `submissions` if given; else `folder` itself, unless it is a graded folder (it holds
    gradebook.csv or <student>/<topic>/results.json), whose submissions are the submitted/ beside it."""
    if submissions is not None:
        return submissions
    graded = (folder / "gradebook.csv").is_file() or any(folder.glob(f"*/{topic}/results.json"))
    if not graded:
        return folder
    if (folder.parent / "submitted").is_dir():
        return folder.parent / "submitted"
    raise SystemExit(f"{folder} is a graded folder (results only) and no submitted/ lies beside it: pass the "
                     f"submissions with --submissions")


def run(folder: Path, topic_slug: str, out: Path | None = None, submissions: Path | None = None,
        threshold: float = THRESHOLD, min_shared: int = MIN_SHARED, max_share: int = MAX_SHARE, k: int = K,
        w: int = W, top: int = 10, quiet: bool = False) -> list[Pair]:
    """Compare every student's modules of one topic; write similarity-<topic>.html and .csv; print the top pairs.

    `folder` is a submissions folder (submitted/<student>/<topic>/ or a course root holding submitted/) or a graded
    folder (then the submissions come from `submissions` or the submitted/ beside it). The report goes to `out`,
    by default the graded folder when one was given, else the current folder: submissions are only read.
    """
    from rich.console import Console
    from rich.markup import escape  # student folder names are data, not rich markup
    from rich.table import Table

    from autograder.batch import discover

    topic = course_config.topic(topic_slug)  # unknown topic: KeyError, which the CLI reports
    source = find_submissions(folder, topic.slug, submissions)
    if out is None:
        out = folder if source != folder else Path.cwd()
    stub = stub_hashes(topic, k)
    subs = [read_submission(student, path, topic, stub, k, w) for student, _, path in discover(source, [topic.slug])]
    common = drop_common(subs, max_share)
    pairs = compare(subs, threshold, min_shared)
    page = out / f"similarity-{topic.slug}.html"
    reports.write_atomic(page, html_page(topic, subs, pairs, stub | common, k, w, threshold))
    write_csv(out / f"similarity-{topic.slug}.csv", pairs)

    console = Console(quiet=quiet)
    table = Table(title=f"most similar pairs, {topic.slug} (score = shared / smaller submission's fingerprints)")
    for col in ("#", "student", "student", "score", "shared", "fingerprints", "flagged"):
        table.add_column(col)
    for i, p in enumerate(pairs[:top], 1):
        table.add_row(str(i), escape(p.a), escape(p.b), f"{p.score:.0%}", str(p.shared), f"{p.count_a} / {p.count_b}",
                      "[red]yes[/red]" if p.flagged else "")
    console.print(table)
    empty = [s.student for s in subs if not s.texts]
    if empty:
        console.print(escape(f"no code for {topic.slug} from: {', '.join(empty)}"))
    console.print(escape(f"{sum(p.flagged for p in pairs)} of {len(pairs)} pairs flagged; page: {page}; all "
                         f"pairs: {page.with_suffix('.csv')}"))
    return pairs
