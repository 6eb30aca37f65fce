"""The compliance PDF's layout with reportlab's platypus: what data.ReportData holds, drawn.

Tables are LongTables that repeat their header row on every page they run onto; every cell is
a Paragraph, so a long name wraps (a word longer than its column, such as a digest, is split)
and nothing is clipped. A cell with many lines (an asset made from a hundred inputs) is cut
into continuation rows, because a single row cannot split across pages. The document is
`invariant` (no creation time or random id), so the same data gives the same bytes."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, LongTable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from nexus_assets.compliance import charts
from nexus_assets.compliance.data import ReportData

MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN
MAX_LINES_PER_ROW = 20  # more than this in one cell: continuation rows (a row cannot split)
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

    def __init__(self, mask: Callable[[str], str]):
        self.mask = mask

    def cell(self, value: object, style: ParagraphStyle = CELL) -> Paragraph:
        if isinstance(value, Paragraph):
            return value  # built by the caller (a coloured verdict)
        text = "" if value is None else str(value)
        return Paragraph(escape(self.mask(text)).replace("\n", "<br/>"), style)

    def para(self, text: str, style: ParagraphStyle = BODY) -> Paragraph:
        return Paragraph(escape(self.mask(text)), style)


def _split_rows(row: Sequence[object]) -> list[Sequence[object]]:
    """A row whose cells hold more than MAX_LINES_PER_ROW lines, as several rows."""
    if any(isinstance(c, Paragraph) for c in row):
        return [row]
    cells = [str(c) if c is not None else "" for c in row]
    lines = [c.split("\n") for c in cells]
    height = max(len(x) for x in lines)
    if height <= MAX_LINES_PER_ROW:
        return [row]
    out: list[Sequence[object]] = []
    for start in range(0, height, MAX_LINES_PER_ROW):
        part = ["\n".join(x[start:start + MAX_LINES_PER_ROW]) for x in lines]
        if start:
            part[0] = f"{lines[0][0]} (continued)"
        out.append(part)
    return out


def table(text: _Text, headers: Sequence[str], rows: Iterable[Sequence[object]], widths: Sequence[float]) -> LongTable:
    """A LongTable repeating its header on every page, every cell a wrapping Paragraph."""
    scale = WIDTH / sum(widths)
    data = [[text.cell(h, HEAD) for h in headers]]
    for row in rows:
        data += [[text.cell(c) for c in part] for part in _split_rows(row)]
    if len(data) == 1:
        data.append([text.cell("none")] + [text.cell("") for _ in headers[1:]])
    result = LongTable(data, colWidths=[w * scale for w in widths], repeatRows=1, hAlign="LEFT")
    result.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#37474f")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f1f3f4")]),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0bec5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return result


def _frame(df: pd.DataFrame, columns: Sequence[str]) -> list[list[object]]:
    return df[list(columns)].astype(object).where(df[list(columns)].notna(), "").values.tolist()


def _chart(png: bytes, width: float = WIDTH * 0.85) -> Image:
    image = Image(io.BytesIO(png))
    image.drawHeight = image.drawHeight * width / image.drawWidth
    image.drawWidth = width
    return image


def _verdict_cell(passed: bool | None) -> Paragraph:
    word = {True: "PASS", False: "FAIL", None: "n/a"}[passed]
    return Paragraph(f'<font color="{VERDICT[passed].hexval()}"><b>{word}</b></font>', CELL)


def _cover(text: _Text, data: ReportData) -> list:
    passed = data.verdict == "PASS"
    story: list = [Spacer(1, 30 * mm), Paragraph("Nexus COS compliance report", TITLE),
                   table(text, ["item", "value"], [
                       ("version", data.version), ("release tag", f"verified_release_v{data.version}"),
                       ("commit", data.commit), ("date", data.report_date), ("registry", data.registry),
                       ("repository", data.repo), ("Dagster run", data.run_id)], [1, 3]),
                   Spacer(1, 8 * mm),
                   Paragraph(f'Overall gate verdict: <font color="{VERDICT[passed].hexval()}">'
                             f'<b>{escape(data.verdict)}</b></font>', H1)]
    story.append(table(text, ["gate", "verdict", "detail"],
                       [(g.name, _verdict_cell(g.passed), g.detail) for g in data.gates], [2, 1, 6]))
    if data.notes:
        story += [Spacer(1, 4 * mm), text.para("Inputs not available: " + "; ".join(data.notes))]
    return [*story, PageBreak()]


def _parity(text: _Text, data: ReportData) -> list:
    p = data.parity_summary
    totals = p.get("totals") or {}
    gate = p.get("gate") or {}
    story = [Paragraph("2. Parity by category", H2),
             text.para(f"Parity {p.get('parity_percent', 'n/a')} %, coverage {p.get('coverage_percent', 'n/a')} % of "
                       f"{totals.get('canonical', 'n/a')} canonical modules: {totals.get('present', 0)} present, "
                       f"{totals.get('partial', 0)} partial, {totals.get('missing', 0)} missing. Critical missing: "
                       f"{', '.join(p.get('critical_missing') or []) or 'none'}. {gate.get('message', '')}")]
    if len(data.by_category):
        story += [_chart(charts.parity_chart(data.by_category))]
    rows = [[cat, *vals] for cat, vals in zip(data.by_category.index, data.by_category.values.tolist(), strict=True)]
    story += [Spacer(1, 3 * mm), table(text, ["category", "present", "partial", "missing", "scaffolded"], rows,
                                       [4, 1, 1, 1, 1.2]),
              Paragraph("Modules and the evidence for each match", H2),
              table(text, ["category", "module", "status", "critical", "scaffolded", "evidence"],
                    _frame(data.modules, ["category", "module", "status", "critical", "scaffolded", "evidence"]),
                    [2.2, 2.4, 1.2, 1, 1.2, 6])]
    return story


def _tests(text: _Text, data: ReportData) -> list:
    story = [Paragraph("4. Test results per service and stage", H2),
             text.para(f"End-to-end stack: {data.e2e}.")]
    if len(data.tests):
        story.append(_chart(charts.tests_chart(data.stage_counts), WIDTH * 0.7))
    counts = data.stage_counts.reset_index()
    story += [table(text, ["stage", *map(str, data.stage_counts.columns)], counts.values.tolist(),
                    [2] + [1] * len(data.stage_counts.columns)),
              Spacer(1, 3 * mm),
              table(text, ["service", "lint", "unit", "integration", "status"],
                    _frame(data.tests, ["service", "lint", "unit", "integration", "status"]), [4, 1.2, 1.2, 1.4, 1.6])]
    return story


def _images(text: _Text, data: ReportData) -> list:
    return [Paragraph("5. Images, digests and substitutions", H2),
            text.para("The registry digest (repo_digest) is what the deployment package pins; 'not available' "
                      "means the manifest does not record one (not pushed yet)."),
            table(text, ["service", "status", "tag", "image id", "registry digest (repo_digest)"],
                  _frame(data.images, ["service", "status", "tag", "image_id", "repo_digest"]), [2, 1.1, 3, 3, 3.6]),
            Spacer(1, 3 * mm),
            table(text, ["service", "base image substitutions", "SBOM", "provenance"],
                  _frame(data.images, ["service", "substitutions", "sbom", "provenance"]), [2, 3, 3, 3])]


def _policy_and_security(text: _Text, data: ReportData) -> list:
    scan, kyc = data.secrets, data.kyc
    pmmg = table(text, ["rule", "verdict", "what was found"],
                 [(r.name, _verdict_cell(r.passed), r.detail) for r in data.pmmg.rules], [2, 1, 7])
    return [Paragraph(f"6. PMMG policy (N3XUS-SYSTEM-PMMG): {'PASS' if data.pmmg.passed else 'FAIL'}", H2), pmmg,
            Paragraph("7. Security", H2),
            text.para(f"Secret scan: {scan.values} secret value(s) from {', '.join(scan.env_files) or 'no .env file'} "
                      f"(as core/secrets.py parses and classifies them) searched in {scan.files_scanned} output "
                      f"file(s) under reports/ and artifacts/: {scan.found} found (expected 0)."),
            table(text, ["file", "values found"], sorted(scan.findings.items()), [8, 1.5]),
            Spacer(1, 3 * mm),
            text.para(f"KYC sandbox flag: {kyc.status}."),
            table(text, ["KYC", "where"], [("required by", "\n".join(kyc.required_by) or "nothing in the documents"),
                                           ("configured by", "\n".join(kyc.settings) or "no KYC setting")], [1.5, 8])]


def _lineage(text: _Text, data: ReportData) -> list:
    rows = [[r.asset, f"{r.kind}\n{r.at}", r.run_id or "-", r.data_version or "-", r.code_version or "-",
             "\n".join(f"{k} = {v}" for k, v in r.inputs) or "-"] for r in data.lineage]
    return [Paragraph("8. Lineage (from the Dagster instance)", H2),
            text.para("Each asset this report is made from, the run that made its current version, that data "
                      "version, its code version, and the data versions of its inputs as Dagster recorded them."),
            table(text, ["asset", "made", "run id", "data version", "code version", "made from"], rows,
                  [2.2, 1.6, 2.2, 2.2, 1.6, 4.2])]


def render(data: ReportData, mask: Callable[[str], str] = lambda s: s) -> bytes:
    """The PDF's bytes."""
    text = _Text(mask)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN, title=f"Nexus COS compliance report {data.version}",
                            author="nexus-assets", subject=f"release {data.version}", creator="nexus-assets",
                            invariant=1, pageCompression=0)

    def footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(MARGIN, 8 * mm, f"Nexus COS compliance report {data.version} - {data.report_date}")
        canvas.drawRightString(A4[0] - MARGIN, 8 * mm, f"page {document.page}")
        canvas.restoreState()

    story = [*_cover(text, data),
             Paragraph("1. Discovery summary", H2), table(text, ["item", "value"], _frame(data.discovery,
                                                                                        ["item", "value"]), [1, 2]),
             *_parity(text, data),
             Paragraph("3. Scaffolded modules", H2),
             table(text, ["module", "language", "port", "created", "reason"],
                   _frame(data.scaffolded, ["module", "language", "port", "created", "reason"]), [3, 1.2, 1, 1, 3]),
             *_tests(text, data), *_images(text, data), *_policy_and_security(text, data), *_lineage(text, data),
             Paragraph("9. Artifacts and their sha256", H2),
             text.para("Every file under reports/ and artifacts/ when this report was made, except this report and "
                       "the deployment package made from it (the package's SHA256SUMS lists both)."),
             table(text, ["path", "bytes", "sha256"], _frame(data.artifacts, ["path", "bytes", "sha256"]),
                   [5, 1, 5])]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
