"""The canonical module list, read from the target repository's `docs/investor_synopsis.md`.

Nothing here is hard-coded: editing the markdown changes the module list (the guide's
"Updating Canonical Synopsis"). The format, as the sample and real repositories write it:

- prose paragraphs anywhere; they are ignored;
- a category heading ``## N. Category Name`` (``###`` also accepted), optionally followed by
  ``(count)``: the declared count is checked against the modules listed;
- a module bullet ``- **module-name** - description``; ``*``/``+`` bullets, an en or em
  dash or a colon as separator, and no description at all are accepted;
- a description ending in ``(mandatory)`` marks the module mandatory (the marker is removed
  from the description);
- a wildcard family: a name containing ``*`` (``- **puabo-nuki-*** - ... (family of 4)``); its
  count comes from ``(family of N)``, ``(N services)`` or ``xN``/``×N``, else it is None;
- any other heading (``# Title``, ``## Phase 11: PMMG ...``, an unnumbered ``### Notes``) ends
  module collection until the next category heading: bullets under it are not modules;
- a section (text between two headings) that mentions ``N3XUS-SYSTEM-PMMG`` or PMMG is
  recorded in ``pmmg``, with ``browser_only`` when that section says browser-only.

Bad input never raises: a missing, empty or non-UTF-8 file yields no modules and a problem
(the parity gate then fails with that message); an invalid or duplicate module name is a
problem naming the line, and the module is left out.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nexus_assets.core.pmmg import BROWSER_ONLY_RE, mentions_pmmg
from nexus_assets.core.services import valid_service_name

SYNOPSIS_PATH = Path("docs") / "investor_synopsis.md"

# Larger than any real synopsis by far; a bigger file is a mistake, not a module list.
MAX_SYNOPSIS_BYTES = 4 * 1024 * 1024

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CATEGORY_RE = re.compile(r"^#{2,3}\s+(\d+)[.)]\s+(.+?)\s*(?:\((\d+)\))?\s*$")
# `\*\*(.+?\**)\*\*(?!\*)` closes the bold at the LAST run of stars, so a family name written
# `**puabo-nuki-***` keeps its own `*`.
_BULLET_RE = re.compile(r"^\s*[-*+]\s+\*\*(?P<name>.+?\**)\*\*(?!\*)\s*(?P<rest>.*)$")
_SEPARATOR_RE = re.compile(r"^(?:-{1,2}|–|—|:)\s*")
_MANDATORY_RE = re.compile(r"\s*\(\s*mandatory\s*\)\s*\.?\s*$", re.IGNORECASE)
_FAMILY_COUNT_RES = (
    re.compile(r"\(\s*family\s+of\s+(\d+)\s*\)", re.IGNORECASE),
    re.compile(r"\(\s*(\d+)\s+services?\s*\)", re.IGNORECASE),
    re.compile(r"(?<![A-Za-z0-9])[x×]\s?(\d+)\b"),
)
_FENCE_RE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class CanonicalModule:
    """One module the platform must have, as the synopsis declares it."""

    name: str
    category: str
    description: str
    mandatory: bool
    family: bool
    family_count: int | None
    line: int


@dataclass(frozen=True)
class Synopsis:
    """The parsed synopsis: categories in document order, modules, and what was wrong."""

    path: str
    categories: list[str]
    modules: list[CanonicalModule]
    problems: list[dict]
    pmmg: dict = field(default_factory=lambda: {"mentioned": False, "browser_only": False, "lines": []})

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
    """Parse the synopsis at path. Never raises for a missing, empty or non-UTF-8 file: the
    result then has no modules and a problem saying what to fix. display_path is the name
    used in problems and the report (e.g. the path relative to the repository)."""
    shown = display_path or str(path)
    if not path.is_file():
        return _empty(shown, f"canonical synopsis not found: create {shown} with the module list "
                             "(`## 1. Category` headings and `- **module** - description` bullets)")
    data = path.read_bytes()[: MAX_SYNOPSIS_BYTES + 1]
    if len(data) > MAX_SYNOPSIS_BYTES:
        return _empty(shown, f"synopsis is larger than {MAX_SYNOPSIS_BYTES} bytes; it cannot be a module list")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return _empty(shown, f"not UTF-8 (first bad byte at line {line}); save the synopsis as UTF-8",
                      line=line)
    if not text.strip():
        return _empty(shown, "synopsis is empty: no canonical modules to check parity against")
    return _parse_text(text, shown)


def _empty(shown: str, message: str, *, line: int | None = None) -> Synopsis:
    return Synopsis(path=shown, categories=[], modules=[],
                    problems=[{"file": shown, "line": line, "message": message}])


def _parse_text(text: str, shown: str) -> Synopsis:
    categories: list[str] = []
    declared: dict[str, tuple[int, int]] = {}  # category -> (declared count, heading line)
    modules: list[CanonicalModule] = []
    seen: dict[str, int] = {}
    problems: list[dict] = []
    pmmg_lines: list[int] = []
    browser_only = False
    category: str | None = None
    in_fence = False
    section_lines: list[tuple[int, str]] = []

    def close_section() -> None:
        # PMMG notes are judged per section so that "browser-only" elsewhere does not count.
        nonlocal browser_only
        hits = [n for n, s in section_lines if mentions_pmmg(s)]
        if hits:
            pmmg_lines.extend(hits)
            if any(BROWSER_ONLY_RE.search(s) for _, s in section_lines):
                browser_only = True
        section_lines.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        if _FENCE_RE.match(raw):
            in_fence = not in_fence
            section_lines.append((number, raw))
            continue
        if in_fence:
            section_lines.append((number, raw))
            continue
        heading = _HEADING_RE.match(raw)
        if heading:
            close_section()
            section_lines.append((number, raw))
            cat = _CATEGORY_RE.match(raw)
            if cat:
                category = cat.group(2).strip()
                if category not in categories:
                    categories.append(category)
                if cat.group(3):
                    declared[category] = (int(cat.group(3)), number)
            else:
                category = None  # e.g. "## Phase 11: PMMG": its bullets are not modules
            continue
        section_lines.append((number, raw))
        bullet = _BULLET_RE.match(raw)
        if not bullet or category is None:
            continue
        module, problem = _parse_bullet(bullet, category, number, shown)
        if problem:
            problems.append(problem)
            continue
        assert module is not None
        if module.name in seen:
            problems.append({"file": shown, "line": number,
                             "message": f"module {module.name!r} is listed twice (lines {seen[module.name]} "
                                        f"and {number}); the first one is kept"})
            continue
        seen[module.name] = number
        modules.append(module)
    close_section()

    for cat, (count, line) in sorted(declared.items(), key=lambda kv: kv[1][1]):
        listed = sum(1 for m in modules if m.category == cat)
        if listed != count:
            problems.append({"file": shown, "line": line,
                             "message": f"category {cat!r} declares {count} modules but lists {listed}"})
    if not modules:
        problems.append({"file": shown, "line": None,
                         "message": "no canonical modules found: expected `## 1. Category` headings followed "
                                    "by `- **module** - description` bullets"})
    pmmg = {"mentioned": bool(pmmg_lines), "browser_only": browser_only, "lines": sorted(set(pmmg_lines))}
    return Synopsis(path=shown, categories=categories, modules=modules, problems=problems, pmmg=pmmg)


def _parse_bullet(match: re.Match[str], category: str, line: int,
                  shown: str) -> tuple[CanonicalModule | None, dict | None]:
    raw_name = match.group("name").strip().strip("`").strip().rstrip(":").strip()
    rest = _SEPARATOR_RE.sub("", match.group("rest").strip(), count=1).strip()
    mandatory = bool(_MANDATORY_RE.search(rest))
    description = _MANDATORY_RE.sub("", rest).strip()
    name = raw_name.lower()
    family = "*" in name
    # A family is valid when its name with the wildcard filled in would be a valid service name.
    check = name.replace("*", "x") if family else name
    if not valid_service_name(check) or (family and "**" in name):
        shown_name = raw_name if len(raw_name) <= 60 else raw_name[:57] + "..."
        return None, {"file": shown, "line": line,
                      "message": f"{shown_name!r} is not a valid module name (lowercase letters, digits, "
                                 "'-', '_' and '.'; no spaces, '..', '/' or shell characters); module skipped"}
    family_count = None
    if family:
        for pattern in _FAMILY_COUNT_RES:
            found = pattern.search(rest)
            if found:
                family_count = int(found.group(1))
                break
    return CanonicalModule(name=name, category=category, description=description, mandatory=mandatory,
                           family=family, family_count=family_count, line=line), None
