"""The documentation holds together: links resolve, the README stays short, every page is reachable."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 200

# [text](target) and ![alt](target); the target stops at whitespace or ')' (an optional "title" follows).
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md")), *sorted((DOCS / "notes").glob("*.md"))]


def prose_lines(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (links and headings in code are not Markdown)."""
    out: list[str] = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def links(path: Path) -> list[str]:
    """Link targets in the file's prose; a link's text may wrap onto the next line."""
    text = "\n".join(prose_lines(path))
    text = re.sub(r"`[^`]*`", "code", text)  # inline code (which may wrap too) is not a link
    return LINK.findall(text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower-cased, punctuation (but - and _) removed,
    spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in prose_lines(path):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path) -> list[str]:
    broken: list[str] = []
    for target in links(path):
        if target.startswith(EXTERNAL):
            continue
        where, _, anchor = target.partition("#")
        dest = (path.parent / where).resolve() if where else path
        rel = path.relative_to(REPO)
        if not dest.exists():
            shown = dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest
            broken.append(f"{rel}: {target} (no such file or directory: {shown})")
            continue
        if anchor and dest.is_file() and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{rel}: {target} (no heading with anchor #{anchor} in {dest.relative_to(REPO)})")
    return broken


def test_relative_links_resolve() -> None:
    broken = [b for path in doc_files() for b in broken_links(path)]
    assert not broken, "broken Markdown links:\n  " + "\n  ".join(broken)


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, (f"README.md has {n} lines, more than {README_MAX_LINES}: move detail into a "
                                   "page under docs/ and link it from README.md's 'Where to go next'")


def test_every_docs_page_is_linked_from_an_index() -> None:
    linked: set[Path] = set()
    for index in (README, DOCS / "README.md"):
        if not index.exists():
            continue
        for target in links(index):
            where = target.partition("#")[0]
            if where and not target.startswith(EXTERNAL):
                linked.add((index.parent / where).resolve())
    pages = [p for p in sorted(DOCS.glob("*.md")) if p.name != "README.md"]
    unlinked = [str(p.relative_to(REPO)) for p in pages if p.resolve() not in linked]
    assert not unlinked, ("docs pages no link from README.md or docs/README.md reaches: "
                          + ", ".join(unlinked))


def test_docs_index_exists_and_is_linked_from_readme() -> None:
    index = DOCS / "README.md"
    assert index.is_file(), "docs/README.md, the index of the documentation pages, is missing"
    targets = {(README.parent / t.partition("#")[0]).resolve() for t in links(README) if not t.startswith(EXTERNAL)}
    assert index.resolve() in targets, "README.md does not link docs/README.md"


def test_slug_follows_github() -> None:
    assert slug("What it buys on the reference model") == "what-it-buys-on-the-reference-model"
    assert slug("`bench/commit_rules.py`") == "benchcommit_rulespy"
    assert slug("Planning: `POST /v1/plan`") == "planning-post-v1plan"
    assert slug("Tensor and pipeline parallel (when one GPU is not enough)") == \
        "tensor-and-pipeline-parallel-when-one-gpu-is-not-enough"


def test_no_page_states_an_issue_target_or_whether_it_was_met() -> None:
    """Pages say what a thing is, how to use it and its current figures; targets and run history go to
    docs/notes/ (dated run logs)."""
    said = re.compile(r"\b(target(s)? (is|are|was|were) (not )?met|not met\b|the issue'?s target)", re.I)
    found = [f"{p.name}: {line.strip()[:80]}" for p in sorted(DOCS.glob("*.md")) for line in prose_lines(p)
             if said.search(line)]
    assert found == []
