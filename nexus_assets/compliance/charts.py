"""The compliance report's charts, drawn with matplotlib (Agg, no display) into PNG bytes.

PNGs carry no timestamp or software tag, so the same data draws the same bytes and the PDF
stays reproducible. That also lets a chart be kept: `ChartCache` stores each PNG in the working
copy under the sha256 of what it is drawn from (the chart's kind, its table and CHART_VERSION),
so a report remade after one service changed draws only a chart whose numbers changed, and
matplotlib (about half a second to import) is loaded only then."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from nexus_assets.core.fileio import write_atomic

if TYPE_CHECKING:  # type names only: matplotlib is imported when a chart is drawn
    from matplotlib.figure import Figure

COLOURS = {"present": "#2e7d32", "partial": "#f9a825", "missing": "#c62828", "scaffolded": "#1565c0",
           "passed": "#2e7d32", "failed": "#c62828", "not run": "#9e9e9e"}
DPI = 150
CHART_VERSION = "charts-1"  # bump when how a chart is drawn changes: every kept chart is drawn again
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the last chunk: a file cut short lacks it


def _png(fig: Figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _stacked_barh(table: pd.DataFrame, columns: list[str], title: str, xlabel: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: no display on a build machine
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = max(len(table), 1)
    fig, ax = plt.subplots(figsize=(7.0, max(2.0, 0.32 * rows + 1.2)))
    left = pd.Series(0, index=table.index, dtype=float)
    labels = [str(i) for i in table.index]
    for column in columns:
        values = table[column].astype(float) if column in table else pd.Series(0.0, index=table.index)
        ax.barh(labels, values, left=left, color=COLOURS.get(column, "#607d8b"), label=column)
        left = left + values
    ax.invert_yaxis()  # first row on top, as the table lists it
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _png(fig)


def parity_chart(by_category: pd.DataFrame) -> bytes:
    """Canonical modules per category: present, partial, missing (stacked)."""
    return _stacked_barh(by_category, ["present", "partial", "missing"],
                         "Canonical modules by category", "modules")


def tests_chart(stage_counts: pd.DataFrame) -> bytes:
    """Services per test stage: passed, failed, not run (stacked)."""
    return _stacked_barh(stage_counts, ["passed", "failed", "not run"], "Test results by stage", "services")


CHARTS: dict[str, Callable[[pd.DataFrame], bytes]] = {"parity": parity_chart, "tests": tests_chart}


def chart_key(kind: str, table: pd.DataFrame) -> str:
    """The sha256 of everything a chart is drawn from: its kind, its table (index, columns and
    values, as CSV) and CHART_VERSION."""
    payload = f"{CHART_VERSION}\n{kind}\n{table.to_csv()}".encode()
    return hashlib.sha256(payload).hexdigest()


class ChartCache:
    """Charts kept as PNG files in folder (None: none kept, every chart drawn), one per kind:
    drawing a kind again replaces the file the last drawing of that kind left."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.drawn: list[str] = []  # kinds drawn by this cache (not found kept)

    def png(self, kind: str, table: pd.DataFrame) -> bytes:
        if self.folder is None:
            self.drawn.append(kind)
            return CHARTS[kind](table)
        path = self.folder / f"{kind}-{chart_key(kind, table)}.png"
        try:
            kept = path.read_bytes()
        except OSError:
            kept = b""
        if kept.startswith(_PNG_MAGIC) and kept.endswith(_PNG_END):
            return kept
        png = CHARTS[kind](table)
        self.drawn.append(kind)
        for old in self.folder.glob(f"{kind}-*.png") if self.folder.is_dir() else []:
            old.unlink(missing_ok=True)
        write_atomic(path, png)
        return png
