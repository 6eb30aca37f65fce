"""The canonical module list, read from the target repository's `docs/investor_synopsis.md`.

Nothing here is hard-coded: editing the markdown changes the module list (the guide's
"Updating Canonical Synopsis"). The file is read as CommonMark with markdown-it-py, so code
blocks, HTML comments and heading levels mean what they mean to any Markdown reader.

Where the modules are:

- a **module section**: a heading at any level whose title starts with "Required Modules"
  (or "Canonical Modules", "Required Services", "Modules"), e.g. ``### Required Modules (43
  Total)``. When the document has one, only it is read: every heading below it, down to the
  next heading of its own level or higher, is a category (numbered or not, any level); a
  heading nested under a category is a sub-group whose modules count for that category.
  Later sections (``## Feature Requirements``, ``## Success Criteria``, ``## Phase 11: PMMG``)
  are never read, whatever their bullets look like; nor are headings such as ``### Success
  Criteria`` or ``### Feature Requirements`` nested inside the module section.
- without a module section (the older layout), a category is a heading of level 2 or deeper
  that is numbered (``## 1. Core Backend``) or declares a count (``### Core Backend (3)``); any
  other heading ends module collection until the next category heading.

Emoji around a heading's title are decoration (``### 🔐 Core Backend``); numbering ``1.``, ``A.``
or ``IV.`` is not part of it. CRLF line endings read as LF. A heading may declare a count, ``(10)``, ``(10 modules)``, ``(43 Total)``: it is checked
against the modules under it (a wildcard family counts as one, or as its members; either
reading passes).

What a module is, inside a category:

- a bullet (``-``, ``*``, ``+`` or numbered) starting with a bold name: ``- **name** - text``;
  an en or em dash, a colon or nothing as separator; a leading ``(4 services)`` or
  ``(Mandatory)`` right after the name is read too;
- a top-level bullet of plain names as written (lowercase): ``- backend-api, auth, users`` or
  ``- uploader - resumable uploads``; a bullet of prose is not a module and not a problem;
- a name may be in backticks or a link (``[auth](docs/auth.md)``: the link text);
- a label and names after a colon, in a bullet or a paragraph: ``**Core Backend:** backend-api,
  auth`` or ``- Analytics: analytics, analytics-worker``; the label is their category
  (``**Note:** see below``, a label over prose, is nothing);
- a bullet that only names a category (``- **Core Backend**``, ``- Notifications:``; a label is
  capitalized or has spaces, so ``- **backend-api**`` is a module) holds its modules in its
  sub-bullets; a module's own sub-bullets are details, never modules;
- a table row (GFM tables): the module is in the column headed Module/Service/Name/Component
  (else the first), with Category, Description and Mandatory columns when the header has them;
- a description ending in ``(mandatory)`` (or a leading ``(Mandatory)``) marks it mandatory;
- a wildcard family: a name with one or more ``*`` (``puabo-nuki-*``, ``puabo-nuki-****``,
  read as ``puabo-nuki-*``); its count comes from ``(family of N)``, ``(N services)``,
  ``(N modules)`` or ``xN``/``×N``. When the description or sub-bullets name members of that
  shape (``... : puabo-nuki-wallet, puabo-nuki-ledger``), each member becomes a module that
  remembers its family in ``member_of``; otherwise the family stays one wildcard module.

Code blocks never hold modules. Any section (text between two headings) that mentions
``N3XUS-SYSTEM-PMMG`` or PMMG is recorded in ``pmmg``, with ``browser_only`` when that section
says browser-only.

Bad input never raises: a missing, empty, oversized or non-UTF-8 file yields no modules and a
problem (the parity gate then fails with that message); an invalid or duplicate module name is
a problem naming the line, and the module is left out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import InputError
from nexus_assets.core.textfiles import problem, read_bounded
from nexus_assets.parity._entries import CanonicalModule, bold_name, read_entries
from nexus_assets.parity._markdown import Blocks, Heading, parse_blocks
from nexus_assets.policy.pmmg import BROWSER_ONLY_RE, mentions_pmmg

__all__ = ["MAX_SYNOPSIS_BYTES", "SYNOPSIS_PATH", "CanonicalModule", "Synopsis", "parse_synopsis",
           "parse_synopsis_text"]

SYNOPSIS_PATH = Path("docs") / "investor_synopsis.md"

# Larger than any real synopsis by far; a bigger file is a mistake, not a module list.
MAX_SYNOPSIS_BYTES = 4 * 1024 * 1024

EXPECTED = ("a `## Required Modules` section (or `## 1. Category` headings) whose categories list "
            "`- **module** - description` bullets")

# Numbered `1.`, `2)`, lettered `A.` or roman `IV.` headings; the mark is not part of the title.
_TITLE_RE = re.compile(r"^(?:(?P<num>\d+|[A-Z]|[IVXLC]{1,6})[.)]\s+)?(?P<title>.*?)\s*"
                       r"(?:\(\s*(?P<count>\d+)(?:\s+(?:total|modules?|services?|items?)\b[^()]*)?\s*\))?\s*$",
                       re.IGNORECASE)
_SECTION_RE = re.compile(r"^(?:(?:required|canonical|mandatory)\s+(?:modules|services)\b|modules?(?:\s+list)?$)",
                         re.IGNORECASE)
# Headings that are never module categories, even nested inside the module section.
_NOT_MODULES_RE = re.compile(r"^(?:(?:feature|functional|non-functional|technical|system)\s+)?requirements?\b|"
                             r"\bcriteria\b|^notes?\b|^phase\s+\d+|^roadmap\b|^timeline\b|^appendix\b|^glossary\b",
                             re.IGNORECASE)
_CODE_BULLET_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")


@dataclass(frozen=True)
class Synopsis:
    """The parsed synopsis: categories in document order, modules, and what was wrong."""

    path: str
    categories: list[str]
    modules: list[CanonicalModule]
    problems: list[dict[str, Any]]
    pmmg: dict[str, Any] = field(default_factory=lambda: {"mentioned": False, "browser_only": False, "lines": []})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form, in the synopsis' own order."""
        return {
            "path": self.path,
            "categories": list(self.categories),
            "module_count": len(self.modules),
            "modules": [asdict(m) for m in self.modules],
            "problems": [dict(p) for p in self.problems],
            "pmmg": dict(self.pmmg),
        }


def parse_synopsis(path: Path, *, display_path: str | None = None) -> Synopsis:
    """Parse the synopsis at path. Never raises for a missing, empty, oversized, unreadable or
    non-UTF-8 file: the result then has no modules and a problem saying what to fix.
    display_path is the name used in problems and the report (e.g. relative to the repository)."""
    shown = display_path or str(path)
    if not path.is_file():
        return _empty(shown, f"canonical synopsis not found: create {shown} with the module list ({EXPECTED})")
    try:
        data = read_bounded(path, MAX_SYNOPSIS_BYTES)
    except InputError:
        return _empty(shown, f"synopsis is larger than {MAX_SYNOPSIS_BYTES} bytes; it cannot be a module list")
    except OSError as exc:
        return _empty(shown, f"cannot read the synopsis: {exc.strerror}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return _empty(shown, f"not UTF-8 (first bad byte at line {line}); save the synopsis as UTF-8", line=line)
    if not text.strip():
        return _empty(shown, "synopsis is empty: no canonical modules to check parity against")
    return parse_synopsis_text(text, shown)


def _empty(shown: str, message: str, *, line: int | None = None) -> Synopsis:
    return Synopsis(path=shown, categories=[], modules=[], problems=[problem(shown, line, message)])


def _symbols_off(text: str) -> str:
    """text without the emoji and pictographs around it (`📦 Required Modules ✅`)."""
    def decoration(ch: str) -> bool:
        return ch.isspace() or unicodedata.category(ch) in ("So", "Sk", "Cf", "Mn")

    start, end = 0, len(text)
    while start < end and decoration(text[start]):
        start += 1
    while end > start and decoration(text[end - 1]):
        end -= 1
    return text[start:end]


def _title(text: str) -> tuple[str, int | None, bool]:
    """A heading's title without numbering, count or emoji, its declared count, and whether it is
    numbered."""
    text = _symbols_off(text)
    m = _TITLE_RE.match(text)
    assert m is not None  # every part of the pattern is optional
    title = _symbols_off(m.group("title").strip()) or text.strip()
    return title, int(m.group("count")) if m.group("count") else None, m.group("num") is not None


def _parents(headings: list[Heading]) -> list[int | None]:
    parents: list[int | None] = []
    stack: list[int] = []
    for i, h in enumerate(headings):
        while stack and headings[stack[-1]].level >= h.level:
            stack.pop()
        parents.append(stack[-1] if stack else None)
        stack.append(i)
    return parents


class _Layout:
    """Which headings are categories, and which heading governs each line."""

    def __init__(self, blocks: Blocks):
        self.headings = blocks.headings
        self.parents = _parents(self.headings)
        self.titles = [_title(h.text) for h in self.headings]
        sections = {i for i, h in enumerate(self.headings) if _SECTION_RE.match(self.titles[i][0])}
        # A module section inside another one is part of it, not a second one.
        self.sections = [i for i in sorted(sections) if not any(s in sections for s in self._ancestors(i)[1:])]
        self._section_set = set(self.sections)
        self._starts = [h.line for h in self.headings]

    def _ancestors(self, i: int | None) -> list[int]:
        chain: list[int] = []
        while i is not None:
            chain.append(i)
            i = self.parents[i]
        return chain

    def governing(self, line: int) -> int | None:
        """The last heading before line, which always governs it."""
        lo, hi = 0, len(self._starts)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._starts[mid] < line:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1 if lo else None

    def context(self, line: int) -> tuple[str, list[int]] | None:
        """(category title, headings whose counts this line's module adds to), or None when a
        module on this line is outside every category."""
        chain = self._ancestors(self.governing(line))
        if self.sections:
            section = next((s for s in chain if s in self._section_set), None)
            if section is None:
                return None
            inside = chain[: chain.index(section) + 1]
            if any(_NOT_MODULES_RE.search(self.titles[i][0]) for i in inside[:-1]):
                return None  # `### Success Criteria` inside the section: its bullets are no modules
            return self.titles[inside[-2] if len(inside) > 1 else section][0], inside
        if chain and self.is_legacy_category(chain[0]):
            return self.titles[chain[0]][0], chain[:1]
        return None

    def is_legacy_category(self, i: int) -> bool:
        _, count, numbered = self.titles[i]
        return self.headings[i].level >= 2 and (numbered or count is not None)

    def category_candidates(self) -> list[int]:
        """Headings that name a category, in document order."""
        if not self.sections:
            return [i for i in range(len(self.headings)) if self.is_legacy_category(i)]
        return [i for i in range(len(self.headings)) if i in self._section_set or self.parents[i] in self._section_set]

    def is_section(self, i: int) -> bool:
        return i in self._section_set

    def _in_section(self, i: int | None) -> bool:
        return any(s in self._section_set for s in self._ancestors(i))

    def counts(self, i: int) -> bool:
        """True when heading i's declared count is about modules (and so is checked)."""
        return self._in_section(i) if self.sections else self.is_legacy_category(i)

    def in_scope(self, line: int) -> bool:
        """True when a module could be written on line (code blocks are checked with it)."""
        return self._in_section(self.governing(line)) if self.sections else True


def parse_synopsis_text(text: str, shown: str) -> Synopsis:
    """Parse synopsis Markdown already read; shown names the file in problems."""
    text = re.sub(r"\r\n?", "\n", text)
    blocks = parse_blocks(text)
    layout = _Layout(blocks)
    modules: list[CanonicalModule] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    tallies: dict[int, list[CanonicalModule]] = {}
    for module, heads, issue in read_entries(blocks, layout.context, shown):
        if issue is not None:
            problems.append(issue)
            continue
        assert module is not None
        if module.name in seen:
            problems.append(problem(shown, module.line, f"module {module.name!r} is listed twice (lines "
                                    f"{seen[module.name]} and {module.line}); the first one is kept"))
            continue
        seen[module.name] = module.line
        modules.append(module)
        for head in heads:
            tallies.setdefault(head, []).append(module)

    categories: dict[str, None] = {}  # ordered set
    listed = {m.category for m in modules}
    for i in layout.category_candidates():
        title, count, numbered = layout.titles[i]
        if title in listed or ((numbered or count is not None) and not layout.is_section(i)):
            categories.setdefault(title)
    for m in modules:  # labels of bullets, paragraphs and table rows, after the headings
        categories.setdefault(m.category)
    for i, h in enumerate(layout.headings):
        title, count, _ = layout.titles[i]
        if count is not None and layout.counts(i):
            problems.extend(_count_problem(shown, h, title, count, tallies.get(i, []),
                                          layout.is_section(i)))
    if not modules:
        problems.append(_nothing_found(shown, blocks, layout))
    problems.sort(key=lambda p: (p["line"] is None, p["line"] or 0))
    return Synopsis(path=shown, categories=list(categories), modules=modules, problems=problems,
                    pmmg=_pmmg(text, blocks))


def _count_problem(shown: str, h: Heading, title: str, count: int, listed: list[CanonicalModule],
                   section: bool) -> list[dict[str, Any]]:
    entries = len({m.member_of or m.name for m in listed})
    weighted = sum(1 for m in listed if not m.family) + sum(m.family_count or 1 for m in listed if m.family)
    if count in (entries, weighted):
        return []
    also = f" ({weighted} counting family members)" if weighted != entries else ""
    kind = "section" if section else "category"
    return [problem(shown, h.line, f"{kind} {title!r} declares {count} modules but lists {entries}{also}")]


def _nothing_found(shown: str, blocks: Blocks, layout: _Layout) -> dict[str, Any]:
    """Why no module was read: code-block candidates when there are some, else what was expected."""
    candidates: list[tuple[int, str]] = []
    for block in blocks.code:
        for offset, raw in enumerate(block.content.split("\n")):
            line = block.line + offset
            bullet = _CODE_BULLET_RE.match(raw)
            name = bold_name(bullet.group(1)) if bullet else None
            if name and layout.in_scope(line):
                candidates.append((line, name))
    if candidates:
        lines = ", ".join(str(n) for n, _ in candidates[:12]) + (", ..." if len(candidates) > 12 else "")
        names = ", ".join(n for _, n in candidates[:12]) + (", ..." if len(candidates) > 12 else "")
        return problem(shown, candidates[0][0], f"the only module candidates are inside code blocks (lines {lines}): "
                                                f"{names}; write them as a Markdown list outside the code block")
    if layout.sections:
        first = layout.headings[layout.sections[0]]
        ends = (f"; the section ends at line {first.end}, where the next heading of its level or higher starts "
                "(make its categories deeper headings)" if first.end < blocks.last_line - 1 else "")
        return problem(shown, first.line, f"no canonical modules found under {first.text!r} (line {first.line}): "
                                          "expected category headings followed by `- **module** - description` "
                                          f"bullets, `- module-a, module-b` lists or a table of modules{ends}")
    return problem(shown, None, f"no canonical modules found: expected {EXPECTED}")


def _pmmg(text: str, blocks: Blocks) -> dict[str, Any]:
    """PMMG notes are judged per section (text between two headings), so that "browser-only"
    said elsewhere does not count."""
    lines = text.split("\n")
    bounds = [1, *(h.line for h in blocks.headings), len(lines) + 1]
    hits: list[int] = []
    browser_only = False
    for start, end in pairwise(bounds):
        section = [(n, lines[n - 1]) for n in range(start, end)]
        found = [n for n, s in section if mentions_pmmg(s)]
        if found:
            hits.extend(found)
            browser_only = browser_only or any(BROWSER_ONLY_RE.search(s) for _, s in section)
    return {"mentioned": bool(hits), "browser_only": browser_only, "lines": sorted(set(hits))}
