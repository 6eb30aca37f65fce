"""The compliance PDF's table cells are wrapped before the table lays them out, and its charts are
kept by what they are drawn from: every wrapped line fits its column and holds the same text; a
chart whose table did not change is not drawn again, one whose numbers changed is."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from reportlab.pdfbase.pdfmetrics import stringWidth

from nexus_assets.compliance.charts import ChartCache, chart_key
from nexus_assets.compliance.layout import CELL, wrap_line

FONT, SIZE = CELL.fontName, CELL.fontSize
WORDS = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x17F), min_size=1, max_size=90)


@settings(max_examples=300, deadline=None)
@given(words=st.lists(WORDS, max_size=12), width=st.floats(min_value=20, max_value=400))
def test_every_line_fits_and_no_character_is_lost(words, width):
    text = " ".join(words)
    lines = wrap_line(text, FONT, SIZE, width)
    assert all(stringWidth(line, FONT, SIZE) <= width + 1e-6 for line in lines), lines
    assert "".join(lines).replace(" ", "") == "".join(text.split())  # whitespace only between words


def test_words_fill_lines_and_a_digest_is_split_where_it_reaches_the_edge():
    digest = "sha256:" + "ab" * 32
    width = stringWidth("pushed/users = 127.0.0.1", FONT, SIZE) + 1
    lines = wrap_line(f"pushed/users   =   {digest}", FONT, SIZE, width)
    assert lines[0].startswith("pushed/users = sha")  # spaces collapse; the digest starts on the first line
    assert "".join(lines).replace(" ", "") == f"pushed/users={digest}"
    assert wrap_line("", FONT, SIZE, 50) == [""] and wrap_line("a b", FONT, SIZE, 500) == ["a b"]


def _table(passed: int) -> pd.DataFrame:
    return pd.DataFrame({"passed": [passed, 3], "failed": [0, 1], "not run": [0, 0]}, index=["lint", "unit"])


def test_a_chart_is_drawn_once_per_table_and_again_when_its_numbers_change(tmp_path):
    first = ChartCache(tmp_path)
    png = first.png("tests", _table(4))
    assert png.startswith(b"\x89PNG") and first.drawn == ["tests"]
    again = ChartCache(tmp_path)
    assert again.png("tests", _table(4)) == png and again.drawn == []  # kept: not drawn
    changed = ChartCache(tmp_path)
    assert changed.png("tests", _table(5)) != png and changed.drawn == ["tests"]
    assert [p.name for p in tmp_path.iterdir()] == [f"tests-{chart_key('tests', _table(5))}.png"]  # one per kind


def test_a_kept_chart_cut_short_is_drawn_again(tmp_path):
    png = ChartCache(tmp_path).png("tests", _table(4))
    kept = tmp_path / f"tests-{chart_key('tests', _table(4))}.png"
    kept.write_bytes(png[: len(png) // 2])
    cache = ChartCache(tmp_path)
    assert cache.png("tests", _table(4)) == png and cache.drawn == ["tests"]
