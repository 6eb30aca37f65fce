"""The block structure of a Markdown document, as markdown-it-py parses it (CommonMark, plus
GFM tables): headings with the lines they govern, list items with their first paragraph,
top-level paragraphs, table rows, and code blocks.

Only what the synopsis reader needs, with 1-based line numbers taken from each block token's
``map``, so a module keeps the line it is written on. Pure: no file access, no regexes over
the raw text (a ``#`` or ``- **x**`` inside a code block is code, as any Markdown reader says).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt


@dataclass(frozen=True)
class Heading:
    """An ATX or setext heading; it governs lines [line, end) (up to the next heading of the
    same or a higher level)."""

    level: int
    text: str
    line: int
    end: int


@dataclass(frozen=True)
class Item:
    """A block that may declare modules, in document order. kind "item": a list item, with the
    raw Markdown of its first paragraph ("" when it starts otherwise), how deeply it is nested
    (0 = top-level list) and the index of its parent item; "paragraph": a paragraph outside
    lists and quotes; "row": a table body row, with its cells and the table's header cells."""

    line: int
    content: str
    depth: int
    parent: int | None
    kind: str = "item"
    cells: tuple[str, ...] = ()
    header: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeBlock:
    """A fenced or indented code block: its first content line and its content."""

    line: int
    content: str


@dataclass(frozen=True)
class Blocks:
    headings: list[Heading]
    items: list[Item]
    code: list[CodeBlock]
    last_line: int


@cache
def _parser() -> MarkdownIt:
    # Block structure only: inline parsing of every paragraph is most of markdown-it's time and
    # the synopsis reads only heading titles inline (below, one heading at a time).
    return MarkdownIt("commonmark").enable("table").disable("inline")


@cache
def _inline_parser() -> MarkdownIt:
    return MarkdownIt("commonmark")


def _plain(source: str) -> str:
    """A heading's text without its inline markup (`**1. Core**` reads as `1. Core`)."""
    parts: list[str] = []
    for inline in _inline_parser().parseInline(source):
        for child in inline.children or []:
            if child.type in ("text", "code_inline"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
    return " ".join("".join(parts).split())


def parse_blocks(text: str) -> Blocks:
    """Headings, items (list items, top-level paragraphs, table rows) and code blocks of text,
    in document order."""
    tokens = _parser().parse(text)
    last_line = text.count("\n") + 2
    raw_headings: list[tuple[int, str, int]] = []
    items: list[Item] = []
    code: list[CodeBlock] = []
    open_items: list[int] = []
    quotes = 0
    header: tuple[str, ...] = ()
    row: list[str] = []
    row_line, in_head = 0, False
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1] if i + 1 < len(tokens) else None
            title = _plain(inline.content) if inline is not None and inline.type == "inline" else ""
            raw_headings.append((int(tok.tag[1:]), title, tok.map[0] + 1))
        elif tok.type == "list_item_open" and tok.map:
            content = ""
            if (i + 2 < len(tokens) and tokens[i + 1].type == "paragraph_open"
                    and tokens[i + 2].type == "inline"):
                content = tokens[i + 2].content
            parent = open_items[-1] if open_items else None
            items.append(Item(line=tok.map[0] + 1, content=content, depth=len(open_items), parent=parent))
            open_items.append(len(items) - 1)
        elif tok.type == "list_item_close" and open_items:
            open_items.pop()
        elif tok.type in ("blockquote_open", "blockquote_close"):
            quotes += 1 if tok.type == "blockquote_open" else -1
        elif (tok.type == "paragraph_open" and tok.map and not open_items and not quotes
              and i + 1 < len(tokens) and tokens[i + 1].type == "inline"):
            items.append(Item(line=tok.map[0] + 1, content=tokens[i + 1].content, depth=0, parent=None,
                              kind="paragraph"))
        elif tok.type == "thead_open":
            in_head = True
        elif tok.type == "thead_close":
            in_head = False
        elif tok.type == "tr_open" and tok.map:
            row, row_line = [], tok.map[0] + 1
        elif tok.type == "inline" and i and tokens[i - 1].type in ("th_open", "td_open"):
            row.append(tok.content.strip())
        elif tok.type == "tr_close":
            if in_head:
                header = tuple(_plain(cell) for cell in row)
            elif not open_items and not quotes:
                items.append(Item(line=row_line, content="", depth=0, parent=None, kind="row",
                                  cells=tuple(row), header=header))
        elif tok.type in ("fence", "code_block") and tok.map:
            # A fence's content starts on the line after its opening ``` line.
            first = tok.map[0] + (2 if tok.type == "fence" else 1)
            code.append(CodeBlock(line=first, content=tok.content))
    # Each heading ends where the next heading of its level or higher starts: one backward pass.
    ends: list[int] = []
    later: list[tuple[int, int]] = []  # (level, line) of later headings, levels rising to the top
    for level, _, line in reversed(raw_headings):
        while later and later[-1][0] > level:
            later.pop()
        ends.append(later[-1][1] if later else last_line)
        later.append((level, line))
    ends.reverse()
    headings = [Heading(level=level, text=title, line=line, end=end)
                for (level, title, line), end in zip(raw_headings, ends, strict=True)]
    return Blocks(headings=headings, items=items, code=code, last_line=last_line)
