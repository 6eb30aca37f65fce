"""The compliance PDF's layout with reportlab's platypus: what data.ReportData holds, drawn.

Tables are LongTables that repeat their header row on every page they run onto. Every cell's
text is wrapped here to its column's width (a word longer than its column, such as a digest, is
split), so nothing is clipped; a wrapped cell is plain lines of text, which the table draws
without laying out a Paragraph per cell (on a 100-service release that layout was most of the
PDF's time). A cell with many lines (an asset made from a hundred inputs) is cut into
continuation rows, because a single row cannot split across pages. The document is `invariant`
(no creation time or random id), so the same data gives the same bytes."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Image, LongTable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from nexus_assets.compliance.charts import ChartCache
from nexus_assets.compliance.data import ReportData
from nexus_assets.core.release_version import release_tag

MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN
PADDING = 3  # points left and right of a cell's text
MAX_LINES_PER_ROW = 60  # wrapped lines; more in one cell: continuation rows (a row cannot split)
_BASE = getSampleStyleSheet()
H1 = ParagraphStyle("h1", parent=_BASE["Heading1"], fontSize=15, spaceAfter=6)
H2 = ParagraphStyle("h2", parent=_BASE["Heading2"], fontSize=11, spaceBefore=8, spaceAfter=4)
BODY = ParagraphStyle("body", parent=_BASE["BodyText"], fontSize=8.5, leading=11)
CELL = ParagraphStyle("cell", parent=BODY, fontSize=7, leading=8.6, splitLongWords=1)
HEAD = ParagraphStyle("head", parent=CELL, fontName="Helvetica-Bold", textColor=colors.white)
TITLE = ParagraphStyle("title", parent=H1, fontSize=22, leading=28, alignment=TA_CENTER, spaceAfter=14)
VERDICT = {True: colors.HexColor("#2e7d32"), False: colors.HexColor("#c62828"), None: colors.HexColor("#616161")}


class _Text:
    """Cell text with every known secret masked (defence in depth: the scan expects none)."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        self.mask = mask

    def lines(self, value: object, width: float, style: ParagraphStyle = CELL) -> list[list[str]]:
        """Each line of the masked text, wrapped to width."""
        text = self.mask("" if value is None else str(value))
        return [wrap_line(line, style.fontName, style.fontSize, width) for line in text.split("\n")]

    def block(self, value: object, width: float, style: ParagraphStyle = CELL) -> str:
        """The masked text wrapped to width, as one cell's lines."""
        return "\n".join(line for wrapped in self.lines(value, width, style) for line in wrapped)

    def para(self, text: str, style: ParagraphStyle = BODY) -> Paragraph:
        return Paragraph(escape(self.mask(text)), style)


@functools.cache
def _char_width(char: str, font: str, size: float) -> float:
    return float(stringWidth(char, font, size))


def _width(text: str, font: str, size: float) -> float:
    return float(stringWidth(text, font, size))  # in C with reportlab[accel]


def _fitting(word: str, font: str, size: float, room: float) -> int:
    """How many leading characters of word fit in room (the standard fonts have no kerning: a
    string is as wide as its characters together)."""
    taken = 0.0
    for count, char in enumerate(word):
        taken += _char_width(char, font, size)
        if taken > room:
            return count
    return len(word)


def wrap_line(text: str, font: str, size: float, width: float) -> list[str]:
    """One line of text as lines no wider than width, as a Paragraph breaks it: words fill each
    line (runs of spaces count as one), and a word wider than a whole line (a digest, a path)
    fills the rest of the line it is on and goes on in the next ones."""
    space = _char_width(" ", font, size)
    lines: list[str] = []
    line, used = "", 0.0
    for word in text.split():
        wide = _width(word, font, size)
        if used + (space if line else 0.0) + wide <= width:
            line, used = f"{line} {word}" if line else word, used + (space if line else 0.0) + wide
            continue
        if wide > width:  # split it: the rest of this line first
            room = width - used - (space if line else 0.0)
            cut = _fitting(word, font, size, room) if room > 0 else 0
            if cut:
                lines.append(f"{line} {word[:cut]}" if line else word[:cut])
                word = word[cut:]
            elif line:
                lines.append(line)
            while _width(word, font, size) > width:
                cut = max(1, _fitting(word, font, size, width))
                lines.append(word[:cut])
                word = word[cut:]
        elif line:
            lines.append(line)
        line, used = word, _width(word, font, size)
    lines.append(line)
    return lines


def _rows(text: _Text, row: Sequence[object], widths: Sequence[float]) -> list[list[object]]:
    """One row of a table as wrapped cells; a row taller than MAX_LINES_PER_ROW lines is cut
    between its lines into continuation rows (a row cannot split across pages)."""
    if any(isinstance(c, Paragraph) for c in row):  # a coloured verdict: a short row, drawn as built
        return [[c if isinstance(c, Paragraph) else text.block(c, w) for c, w in zip(row, widths, strict=True)]]
    cells = [text.lines(c, w) for c, w in zip(row, widths, strict=True)]
    count = max(len(c) for c in cells)
    parts, start = [], 0
    while start < count:
        end, heights = start, [0] * len(cells)
        while end < count:
            grown = [h + len(c[end]) if end < len(c) else h for h, c in zip(heights, cells, strict=True)]
            if max(grown) > MAX_LINES_PER_ROW and end > start:
                break
            heights, end = grown, end + 1
        part: list[object] = ["\n".join(line for wrapped in c[start:end] for line in wrapped) for c in cells]
        if start:
            first = text.mask("" if row[0] is None else str(row[0])).split("\n")[0]
            part[0] = "\n".join(wrap_line(f"{first} (continued)", CELL.fontName, CELL.fontSize, widths[0]))
        parts.append(part)
        start = end
    return parts


def table(text: _Text, headers: Sequence[str], rows: Iterable[Sequence[object]], widths: Sequence[float]) -> LongTable:
    """A LongTable repeating its header on every page, every cell's text wrapped to its column."""
    scale = WIDTH / sum(widths)
    columns = [w * scale for w in widths]
    inner = [c - 2 * PADDING for c in columns]  # the text's width: the column less its padding
    data: list[list[object]] = [[text.block(h, w, HEAD) for h, w in zip(headers, inner, strict=True)]]
    for row in rows:
        data += _rows(text, row, inner)
    if len(data) == 1:
        data.append(["none", *("" for _ in headers[1:])])
    result = LongTable(data, colWidths=columns, repeatRows=1, hAlign="LEFT")
    result.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), CELL.fontName, CELL.fontSize, CELL.leading),
        ("FONT", (0, 0), (-1, 0), HEAD.fontName, HEAD.fontSize, HEAD.leading),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#37474f")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f1f3f4")]),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0bec5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), PADDING), ("RIGHTPADDING", (0, 0), (-1, -1), PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return result


def _frame(df: pd.DataFrame, columns: Sequence[str]) -> list[list[object]]:
    rows: list[list[object]] = df[list(columns)].astype(object).where(df[list(columns)].notna(), "").values.tolist()
    return rows


def _chart(png: bytes, width: float = WIDTH * 0.85) -> Image:
    image = Image(io.BytesIO(png))
    image.drawHeight = image.drawHeight * width / image.drawWidth
    image.drawWidth = width
    return image


def _verdict_cell(passed: bool | None, word: str | None = None) -> Paragraph:
    word = word or {True: "PASS", False: "FAIL", None: "n/a"}[passed]
    return Paragraph(f'<font color="{VERDICT[passed].hexval()}"><b>{word}</b></font>', CELL)


def _cover(text: _Text, data: ReportData) -> list[Any]:
    passed = data.verdict == "PASS"
    story: list[Any] = [Spacer(1, 30 * mm), Paragraph("Nexus COS compliance report", TITLE),
                   table(text, ["item", "value"], [
                       ("version", data.version), ("release tag", release_tag(data.version)),
                       ("commit", data.commit), ("date", data.report_date), ("registry", data.registry),
                       ("repository", data.repo), ("Dagster run", data.run_id)], [1, 3]),
                   Spacer(1, 8 * mm),
                   Paragraph(f'Overall gate verdict: <font color="{VERDICT[passed].hexval()}">'
                             f'<b>{escape(data.verdict)}</b></font>', H1)]
    story.append(table(text, ["gate", "verdict", "detail"],
                       [(g.name, _verdict_cell(g.passed, g.word), g.detail) for g in data.gates], [2, 1, 6]))
    if data.notes:
        story += [Spacer(1, 4 * mm), text.para("Inputs not available: " + "; ".join(data.notes))]
    return [*story, PageBreak()]


def _parity(text: _Text, data: ReportData, cache: ChartCache) -> list[Any]:
    p = data.parity_summary
    totals = p.get("totals") or {}
    gate = p.get("gate") or {}
    story = [Paragraph("2. Parity by category", H2),
             text.para(f"Parity {p.get('parity_percent', 'n/a')} %, coverage {p.get('coverage_percent', 'n/a')} % of "
                       f"{totals.get('canonical', 'n/a')} canonical modules: {totals.get('present', 0)} present, "
                       f"{totals.get('partial', 0)} partial, {totals.get('missing', 0)} missing. Critical missing: "
                       f"{', '.join(p.get('critical_missing') or []) or 'none'}. {gate.get('message', '')}")]
    if len(data.by_category):
        story += [_chart(cache.png("parity", data.by_category))]
    rows = [[cat, *vals] for cat, vals in zip(data.by_category.index, data.by_category.values.tolist(), strict=True)]
    story += [Spacer(1, 3 * mm), table(text, ["category", "present", "partial", "missing", "scaffolded"], rows,
                                       [4, 1, 1, 1, 1.2]),
              Paragraph("Modules and the evidence for each match", H2),
              table(text, ["category", "module", "status", "critical", "scaffolded", "evidence"],
                    _frame(data.modules, ["category", "module", "status", "critical", "scaffolded", "evidence"]),
                    [2.2, 2.4, 1.2, 1, 1.2, 6])]
    return story


def _tests(text: _Text, data: ReportData, cache: ChartCache) -> list[Any]:
    story = [Paragraph("4. Test results per service and stage", H2),
             text.para(f"End-to-end stack: {data.e2e}.")]
    if len(data.tests):
        story.append(_chart(cache.png("tests", data.stage_counts), WIDTH * 0.7))
    counts = data.stage_counts.reset_index()
    story += [table(text, ["stage", *map(str, data.stage_counts.columns)], counts.values.tolist(),
                    [2] + [1] * len(data.stage_counts.columns)),
              Spacer(1, 3 * mm),
              table(text, ["service", "lint", "unit", "integration", "status"],
                    _frame(data.tests, ["service", "lint", "unit", "integration", "status"]), [4, 1.2, 1.2, 1.4, 1.6])]
    return story


def _images(text: _Text, data: ReportData) -> list[Any]:
    return [Paragraph("5. Images, digests and substitutions", H2),
            text.para("The registry digest (repo_digest) is what the deployment package pins; 'not available' "
                      "means the manifest does not record one (not pushed yet). 'obtained' says whether this pipeline built "
                      "the image here or pulled it from the registry cache, where an earlier run had built and "
                      "tested the same sources (its commit named)."),
            table(text, ["service", "status", "tag", "image id", "registry digest (repo_digest)"],
                  _frame(data.images, ["service", "status", "tag", "image_id", "repo_digest"]), [2, 1.1, 3, 3, 3.6]),
            Spacer(1, 3 * mm),
            table(text, ["service", "obtained", "base image substitutions", "SBOM", "provenance"],
                  _frame(data.images, ["service", "obtained", "substitutions", "sbom", "provenance"]),
                  [2, 2.6, 2.6, 2.6, 2.6])]


def _policy_and_security(text: _Text, data: ReportData) -> list[Any]:
    scan, kyc = data.secrets, data.kyc
    pmmg = table(text, ["rule", "verdict", "what was found", "file"],
                 [(r.name, _verdict_cell(r.passed), r.detail, r.where or "-") for r in data.pmmg.rules],
                 [2, 1, 5.5, 2.5])
    return [Paragraph(f"6. PMMG policy (N3XUS-SYSTEM-PMMG): {'PASS' if data.pmmg.passed else 'FAIL'}", H2), pmmg,
            Paragraph("7. Security", H2),
            text.para(f"Secret scan: {scan.values} secret value(s) from {', '.join(scan.env_files) or 'no .env file'} "
                      f"(as target/secrets.py parses and classifies them) searched in {scan.files_scanned} output "
                      f"file(s) under reports/ and artifacts/: {scan.found} found (expected 0)."),
            table(text, ["file", "values found"], sorted(scan.findings.items()), [8, 1.5]),
            Spacer(1, 3 * mm),
            text.para(f"KYC sandbox flag: {kyc.status}."),
            table(text, ["KYC", "where"], [("required by", "\n".join(kyc.required_by) or "nothing in the documents"),
                                           ("configured by", "\n".join(kyc.settings) or "no KYC setting")], [1.5, 8])]


def _lineage(text: _Text, data: ReportData) -> list[Any]:
    rows = [[r.asset, f"{r.kind}\n{r.at}", r.run_id or "-", r.data_version or "-", r.code_version or "-",
             "\n".join(f"{k} = {v}" for k, v in r.inputs) or "-"] for r in data.lineage]
    return [Paragraph("8. Lineage (from the Dagster instance)", H2),
            text.para("Each asset this report is made from, the run that made its current version, that data "
                      "version, its code version, and the data versions of its inputs as Dagster recorded them."),
            table(text, ["asset", "made", "run id", "data version", "code version", "made from"], rows,
                  [2.2, 1.6, 2.2, 2.2, 1.6, 4.2])]


def render(data: ReportData, mask: Callable[[str], str] = lambda s: s, charts: ChartCache | None = None) -> bytes:
    """The PDF's bytes; charts: where drawn charts are kept (default: none kept, all drawn)."""
    text = _Text(mask)
    cache = charts or ChartCache(None)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN, title=f"Nexus COS compliance report {data.version}",
                            author="nexus-assets", subject=f"release {data.version}", creator="nexus-assets",
                            invariant=1, pageCompression=0)

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(MARGIN, 8 * mm, f"Nexus COS compliance report {data.version} - {data.report_date}")
        canvas.drawRightString(A4[0] - MARGIN, 8 * mm, f"page {document.page}")
        canvas.restoreState()

    story = [*_cover(text, data),
             Paragraph("1. Discovery summary", H2), table(text, ["item", "value"], _frame(data.discovery,
                                                                                        ["item", "value"]), [1, 2]),
             *_parity(text, data, cache),
             Paragraph("3. Scaffolded modules", H2),
             table(text, ["module", "language", "port", "created", "reason"],
                   _frame(data.scaffolded, ["module", "language", "port", "created", "reason"]), [3, 1.2, 1, 1, 3]),
             *_tests(text, data, cache), *_images(text, data), *_policy_and_security(text, data), *_lineage(text, data),
             Paragraph("9. Artifacts and their sha256", H2),
             text.para("Every file under reports/ and artifacts/ when this report was made, except this report and "
                       "the deployment package made from it (the package's SHA256SUMS lists both)."),
             table(text, ["path", "bytes", "sha256"], _frame(data.artifacts, ["path", "bytes", "sha256"]),
                   [5, 1, 5])]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
