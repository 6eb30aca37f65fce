"""Module entries of the synopsis: what one list item declares (see synopsis.py for the format).

Pure functions over the blocks `_markdown.parse_blocks` found; the caller says which category
governs a line, so this module knows nothing about sections and headings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nexus_assets.core.textfiles import problem
from nexus_assets.parity._markdown import Blocks, Item
from nexus_assets.target.services import valid_service_name

# `\*\*(.+?\**)\*\*(?!\*)` closes the bold at the LAST run of stars, so a family name written
# `**puabo-nuki-***` keeps its own `*`. Bounded, so a line of stars cannot make it slow.
_BOLD_RE = re.compile(r"^\*\*(?P<name>[^\n]{1,200}?\*{0,20})\*\*(?!\*)(?P<rest>.*)$", re.DOTALL)
# Where the names of a plain bullet end: a spaced dash, or a colon.
_PLAIN_SPLIT_RE = re.compile(r"\s+(?:-{1,2}|–|—)\s+|:(?:\s+|$)")
_TRAILING_PAREN_RE = re.compile(r"(?<!\])\s*\(([^()\n]{0,80})\)\s*$")  # not a link's `](url)`
_LEADING_PAREN_RE = re.compile(r"^\(\s*([^()]{0,80}?)\s*\)\s*")
_SEPARATOR_RE = re.compile(r"^(?:-{1,2}|–|—|:|\.(?!\.))\s*")
# A name written as a link, `[auth](docs/auth.md)`: the link text is the name.
_LINK_RE = re.compile(r"^\[([^\[\]\n]{1,200})\]\([^()\n]*\)$")
# A label and what it names, `Core Backend: backend-api, auth` (plain bullets and paragraphs).
_LABEL_LINE_RE = re.compile(r"^(?P<label>[^:\n]{1,80}):\s+(?P<rest>.+)$", re.DOTALL)
_HEADER_COLUMNS = (("name", re.compile(r"module|service|name|component", re.IGNORECASE)),
                   ("category", re.compile(r"categor|group|area|domain|layer", re.IGNORECASE)),
                   ("description", re.compile(r"descr|purpose|what|role|summary|notes?", re.IGNORECASE)),
                   ("mandatory", re.compile(r"mandatory|required|critical", re.IGNORECASE)))
_YES_RE = re.compile(r"^(?:yes|y|true|x|✓|✔|✔️|✅|mandatory|required|critical)$", re.IGNORECASE)
_LABEL_CHARS_RE = re.compile(r"[\w &/',.+()-]{1,80}")
_COUNT_TAIL_RE = re.compile(r"\s*\(\s*\d+[^()]*\)\s*$")
_MANDATORY_RE = re.compile(r"\s*\(\s*mandatory\s*\)\s*\.?\s*$", re.IGNORECASE)
_COUNT_WORDS_RE = re.compile(r"^(?:family\s+of\s+)?\d+(?:\s+(?:services?|modules?|members?))?$", re.IGNORECASE)
_FAMILY_COUNT_RES = (
    re.compile(r"\(\s*family\s+of\s+(\d+)\s*\)", re.IGNORECASE),
    re.compile(r"\(\s*(\d+)\s+(?:services?|modules?|members?)\s*\)", re.IGNORECASE),
    re.compile(r"(?<![A-Za-z0-9])[x×]\s?(\d+)\b"),
)
_STARS_RE = re.compile(r"\*+")
_MEMBER_PART = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"

# (category, headings whose declared counts include this line's modules) or None: not a module.
Context = Callable[[int], "tuple[str, list[int]] | None"]


@dataclass(frozen=True)
class CanonicalModule:
    """One module the platform must have, as the synopsis declares it. member_of names the
    wildcard family whose description or sub-bullets named this module, if any."""

    name: str
    category: str
    description: str
    mandatory: bool
    family: bool
    family_count: int | None
    line: int
    member_of: str | None = None


def _unwrap(raw: str) -> str:
    """A written name without its markup: backticks, a link around it (`[auth](auth.md)`)."""
    name = raw.strip().strip("`").strip()
    link = _LINK_RE.match(name)
    return link.group(1).strip().strip("`").strip() if link else name


def _clean(raw: str) -> str:
    """A written name as a module name: no backticks, link or trailing colon, lowercase, `\\*`
    and any run of stars read as one wildcard."""
    name = _unwrap(raw).rstrip(":").strip().replace("\\*", "*")
    return _STARS_RE.sub("*", name).lower()


def _label(raw: str) -> str | None:
    """raw as a category label (`Core Backend`, `Streaming:`, `Media (3)`), or None when it reads
    as a module name (lowercase, or with `-`, `_` or `.` as in `Backend-API`)."""
    text = _unwrap(raw)
    title = _COUNT_TAIL_RE.sub("", text.rstrip(":").strip()).strip()
    if not title or not _LABEL_CHARS_RE.fullmatch(title):
        return None
    word_like = any(c.isupper() for c in title) and not any(c in title for c in "-_.")
    return title if text.endswith(":") or " " in title or word_like else None


def _valid(name: str) -> bool:
    if "*" in name:  # valid when the name with the wildcard filled in would be
        return bool(name.strip("*")) and valid_service_name(name.replace("*", "x"))
    return valid_service_name(name)


def bold_name(content: str) -> str | None:
    """The valid module name a `**name** ...` paragraph starts with, or None."""
    bold = _BOLD_RE.match(content)
    name = _clean(bold.group("name")) if bold else ""
    return name if name and _valid(name) else None


def _plain(content: str) -> list[tuple[str, str, int]]:
    """(name, rest, newline offset) for a bullet of plain names (`backend-api, auth, users`,
    `uploader - text`); [] when any of them is not a name as written, i.e. the bullet is prose."""
    split = _PLAIN_SPLIT_RE.search(content)
    head, rest = (content[: split.start()], content[split.start():]) if split else (content, "")
    for _ in range(3):  # `puabo-dsp-* (3 services)`, `auth (Mandatory)`
        trailing = _TRAILING_PAREN_RE.search(head)
        if not trailing:
            break
        head, rest = head[: trailing.start()], f"({trailing.group(1)}) {rest}"
    found = []
    offset, counted = 0, 0
    for part in re.finditer(r"[^,]+", head.rstrip(" .;")):
        raw = _unwrap(part.group())
        if not raw:
            continue
        name = _clean(raw)
        if raw.lower() != raw or not _valid(name):
            return []
        offset, counted = offset + content.count("\n", counted, part.start()), part.start()
        found.append((name, rest, offset))
    return found


def _labelled(label: str | None, rest: str, line: int) -> list[tuple[str, str, int, str | None]]:
    """The modules a label names after a colon (`**Core Backend:** backend-api, auth`,
    `**Media**: a, b`), with the label as category."""
    if label is None or not (label.endswith(":") or rest.lstrip().startswith(":")):
        return []
    label = _label(label) or label
    return [(name, r, line + off, label) for name, r, off in _plain(_SEPARATOR_RE.sub("", rest.strip(), count=1))]


def _candidates(item: Item, *, nested: bool = False) -> list[tuple[str, str, int, str | None]]:
    """(name as written, rest of the item, line, category or None) for each module item declares.
    A paragraph declares modules only as a label and names (`**Core:** auth, users`)."""
    if item.kind == "row":
        return _row(item)
    bold = _BOLD_RE.match(item.content)
    if bold:
        named = _labelled(bold.group("name") if _label(bold.group("name")) else None, bold.group("rest"), item.line)
        if named or item.kind == "paragraph":
            return named
        if bold.group("name").rstrip().endswith(":") and _label(bold.group("name")):
            return []  # `**Note:** see the docs`: a label over prose, no module
        return [(bold.group("name"), bold.group("rest"), item.line, None)]
    labelled = _LABEL_LINE_RE.match(item.content)
    if labelled:
        label = labelled.group("label") + ":"
        named = _labelled(label if _label(label) else None, labelled.group("rest"), item.line)
        if named:
            return named
    if item.kind == "paragraph" or (item.depth and not nested):
        return []  # a plain nested bullet is a detail of the item above, not a module
    return [(name, rest, item.line + offset, None) for name, rest, offset in _plain(item.content)]


def _row(item: Item) -> list[tuple[str, str, int, str | None]]:
    """A table row: the module in the column headed Module/Service/Name (else the first), its
    category and description from columns headed so, `(mandatory)` from a Mandatory column."""
    columns: dict[str, int] = {}
    for i, title in enumerate(item.header):
        for role, pattern in _HEADER_COLUMNS:
            if role not in columns and pattern.search(title):
                columns[role] = i
                break
    cell = {role: item.cells[i].strip() if i < len(item.cells) else "" for role, i in columns.items()}
    raw = item.cells[columns.get("name", 0)].strip() if item.cells else ""
    bold = _BOLD_RE.match(raw)
    names = [bold.group("name")] if bold else [name for name, _, _ in _plain(raw)]
    if not names:  # not a name as written: said (a problem) when it holds a word, else nothing
        return [(raw, "", item.line, None)] if any(c.isalpha() for c in raw) else []
    rest = cell.get("description", "")
    if _YES_RE.match(cell.get("mandatory", "")):
        rest += " (mandatory)"
    return [(name, f"- {rest}" if rest else "", item.line, cell.get("category") or None) for name in names]


def _module(raw_name: str, rest: str, category: str, line: int,
            shown: str) -> tuple[CanonicalModule | None, dict[str, Any] | None]:
    name = _clean(raw_name)
    if not _valid(name):
        shown_name = raw_name.strip() if len(raw_name.strip()) <= 60 else raw_name.strip()[:57] + "..."
        return None, problem(shown, line, f"{shown_name!r} is not a valid module name (lowercase letters, digits, "
                                          "'-', '_' and '.'; no spaces, '..', '/' or shell characters); "
                                          "module skipped")
    full = rest = rest.strip()
    mandatory = False
    for _ in range(3):  # `(4 services)` or `(Mandatory)` before the text
        leading = _LEADING_PAREN_RE.match(rest)
        if not leading:
            break
        if leading.group(1).lower() == "mandatory":
            mandatory = True
        elif not _COUNT_WORDS_RE.match(leading.group(1)):
            break
        rest = rest[leading.end():]
    rest = _SEPARATOR_RE.sub("", rest, count=1).strip()
    mandatory = mandatory or bool(_MANDATORY_RE.search(rest))
    description = " ".join(_MANDATORY_RE.sub("", rest).split())
    family = "*" in name
    count = None
    if family:
        found = next((m for m in (p.search(full) for p in _FAMILY_COUNT_RES) if m), None)
        count = int(found.group(1)) if found else None
    return CanonicalModule(name=name, category=category, description=description, mandatory=mandatory,
                           family=family, family_count=count, line=line), None


def _members(family: CanonicalModule, item: Item, kids: list[int], items: list[Item],
             consumed: set[int]) -> list[tuple[str, int, str]]:
    """(member, line, description) named by the family's own paragraph or its sub-bullets."""
    pattern = re.compile(r"(?<![a-z0-9._*-])" + _MEMBER_PART.join(re.escape(p) for p in family.name.split("*"))
                         + r"(?![a-z0-9_*-])")
    found: dict[str, tuple[int, str]] = {}
    text = (item.content or " ".join(item.cells)).lower()  # a table row: its cells
    line, counted = item.line, 0
    for hit in pattern.finditer(text):
        line, counted = line + text.count("\n", counted, hit.start()), hit.start()
        if hit.group() not in found and valid_service_name(hit.group()):
            found[hit.group()] = (line, family.description)
    for kid in kids:
        child = items[kid]
        bold = _BOLD_RE.match(child.content)
        raw, rest = (bold.group("name"), bold.group("rest")) if bold else (
            (_plain(child.content) or [("", "", 0)])[0][:2])
        name = _clean(raw) if raw else ""
        if name and pattern.fullmatch(name) and valid_service_name(name):
            consumed.add(kid)
            own = " ".join(_SEPARATOR_RE.sub("", rest.strip(), count=1).split())
            found.setdefault(name, (child.line, own or family.description))
    return [(name, line, desc) for name, (line, desc) in found.items()]


def read_entries(blocks: Blocks, context: Context,
                 shown: str) -> Iterator[tuple[CanonicalModule | None, list[int], dict[str, Any] | None]]:
    """(module, counted headings, None) for each module, or (None, counted headings, problem).
    A bullet whose title is a label (`- **Core Backend**`, `- Streaming:`) with sub-bullets is a
    category for them: each sub-bullet is read as a top-level one would be."""
    kids: dict[int, list[int]] = {}
    for idx, item in enumerate(blocks.items):
        if item.parent is not None:
            kids.setdefault(item.parent, []).append(idx)
    consumed: set[int] = set()
    for idx, item in enumerate(blocks.items):
        where = context(item.line) if (item.content or item.cells) and idx not in consumed else None
        if where is None:
            continue
        category, heads = where
        label = _category_bullet(item) if kids.get(idx) else None
        if label is not None:
            for kid in kids[idx]:
                consumed.add(kid)
                yield from _entries(blocks, kids, kid, label, heads, shown, consumed, nested=True)
            continue
        yield from _entries(blocks, kids, idx, category, heads, shown, consumed)


def _category_bullet(item: Item) -> str | None:
    """The label of a bullet that only names a category (`**Core Backend**`, `Streaming:`)."""
    if item.kind != "item":
        return None
    bold = _BOLD_RE.match(item.content)
    if bold:
        tail = _COUNT_TAIL_RE.sub("", bold.group("rest")).strip().strip(":").strip()
        return _label(bold.group("name")) if not tail else None
    return _label(item.content) if "\n" not in item.content else None


def _entries(blocks: Blocks, kids: dict[int, list[int]], idx: int, category: str, heads: list[int], shown: str,
             consumed: set[int], *, nested: bool = False,
             ) -> Iterator[tuple[CanonicalModule | None, list[int], dict[str, Any] | None]]:
    item = blocks.items[idx]
    for raw_name, rest, line, own_category in _candidates(item, nested=nested):
        module, issue = _module(raw_name, rest, own_category or category, line, shown)
        if module is None:
            yield None, heads, issue
            continue
        members = _members(module, item, kids.get(idx, []), blocks.items, consumed) if module.family else []
        if not members:
            yield module, heads, None
            continue
        if module.family_count is not None and module.family_count != len(members):
            yield None, heads, problem(shown, line, (
                f"family {module.name!r} declares {module.family_count} members but names {len(members)} "
                f"({', '.join(n for n, _, _ in members)}); the named ones are checked"))
        for name, at, description in members:
            yield (CanonicalModule(name=name, category=module.category, description=description,
                                   mandatory=module.mandatory, family=False, family_count=None, line=at,
                                   member_of=module.name), heads, None)
