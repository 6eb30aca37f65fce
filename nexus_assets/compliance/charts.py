"""The compliance report's charts, drawn with matplotlib (Agg, no display) into PNG bytes.

PNGs carry no timestamp or software tag, so the same data draws the same bytes and the PDF
stays reproducible."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on a build machine

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

COLOURS = {"present": "#2e7d32", "partial": "#f9a825", "missing": "#c62828", "scaffolded": "#1565c0",
           "passed": "#2e7d32", "failed": "#c62828", "not run": "#9e9e9e"}
DPI = 150


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _stacked_barh(table: pd.DataFrame, columns: list[str], title: str, xlabel: str) -> bytes:
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
