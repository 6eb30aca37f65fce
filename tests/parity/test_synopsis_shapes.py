"""Synopses in shapes the parser was not written around (tests/fixtures/synopses/): numbered and
lettered lists, `*`/`+` bullets, names in backticks or links, emoji in headings, CRLF line
endings, a table of modules, bullets or labels that name a category, criteria nested inside the
module section. Each parses to the modules a reader sees, on their lines, or is a clear error
naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_assets.parity.synopsis import parse_synopsis

SYNOPSES = Path(__file__).resolve().parents[1] / "fixtures" / "synopses"


def read(name: str):
    return parse_synopsis(SYNOPSES / name, display_path=f"docs/{name}")


def rows(s) -> list[tuple[str, int, str]]:
    return [(m.name, m.line, m.category) for m in s.modules]


def test_numbered_and_lettered_lists():
    s = read("numbered_lists.md")
    assert s.problems == []
    assert s.categories == ["Core Backend", "Streaming", "Monetization"]
    assert rows(s) == [("backend-api", 9, "Core Backend"), ("auth", 10, "Core Backend"), ("users", 11, "Core Backend"),
                       ("streaming-engine", 15, "Streaming"), ("transcoder", 16, "Streaming"),
                       ("payments", 20, "Monetization"), ("puabo-blac-financing", 21, "Monetization")]
    assert [m.name for m in s.modules if m.mandatory] == ["auth", "puabo-blac-financing"]
    assert s.modules[0].description == "the REST gateway every client talks to"


def test_star_and_plus_bullets_and_names_in_backticks():
    s = read("star_bullets_backticks.md")
    assert s.problems == []
    assert [(m.name, m.line) for m in s.modules] == [
        ("backend-api", 7), ("auth", 8), ("users", 9), ("search", 13), ("profiles", 14),
        ("recommendation", 15), ("analytics", 15)]
    assert s.categories == ["Core", "Search & discovery"]  # the prose-only category adds nothing


def test_emoji_in_headings_are_decoration():
    s = read("emoji_headings.md")
    assert s.problems == []
    assert s.categories == ["Core Backend", "Streaming"]
    assert [m.name for m in s.modules] == ["backend-api", "auth", "streaming-engine", "ott-mini", "nexus-stream"]
    assert "mandatory" not in {m.name for m in s.modules}  # ✅ Success Criteria is a later section


def test_crlf_line_endings_read_like_lf():
    assert b"\r\n" in (SYNOPSES / "crlf_endings.md").read_bytes()
    s = read("crlf_endings.md")
    assert s.problems == []
    assert [(m.name, m.line, m.mandatory) for m in s.modules] == [
        ("backend-api", 6, False), ("auth", 7, True), ("search", 10, False), ("profiles", 10, False)]


def test_a_table_of_modules_with_category_mandatory_and_a_named_family():
    s = read("modules_table.md")
    assert s.problems == []
    assert rows(s) == [("backend-api", 9, "Core Backend"), ("auth", 10, "Core Backend"), ("users", 11, "Core Backend"),
                       ("streaming-engine", 12, "Streaming"), ("puabo-nuki-wallet", 13, "PUABO NUKI"),
                       ("puabo-nuki-shop", 13, "PUABO NUKI"), ("ott-mini", 14, "Frontend")]
    by = {m.name: m for m in s.modules}
    assert by["backend-api"].mandatory and by["auth"].mandatory and not by["users"].mandatory
    assert by["puabo-nuki-shop"].member_of == "puabo-nuki-*"
    assert by["auth"].description == "sessions and tokens"
    assert s.categories == ["Core Backend", "Streaming", "PUABO NUKI", "Frontend"]


def test_bullets_that_name_a_category_hold_its_modules():
    s = read("bullet_categories.md")
    assert s.problems == []
    assert rows(s) == [
        ("backend-api", 6, "Core Backend"), ("auth", 7, "Core Backend"), ("users", 8, "Core Backend"),
        ("streaming-engine", 10, "Streaming & Media"), ("transcoder", 11, "Streaming & Media"),
        ("thumbnailer", 12, "Streaming & Media"), ("notifications", 14, "Notifications"),
        ("email-worker", 15, "Notifications"),
        # a module whose sub-bullets are details (`uses postgres`), not a category
        ("backend-api-v2", 17, "Required Modules")]
    assert "postgres" not in {m.name for m in s.modules}


def test_label_and_names_in_paragraphs_and_bullets():
    s = read("label_paragraphs.md")
    assert s.problems == []
    assert rows(s) == [
        ("backend-api", 7, "Core Backend"), ("auth", 7, "Core Backend"), ("users", 7, "Core Backend"),
        ("streaming-engine", 9, "Streaming"), ("transcoder", 9, "Streaming"), ("drm-service", 9, "Streaming"),
        ("analytics", 11, "Analytics"), ("analytics-worker", 11, "Analytics"), ("marketplace", 12, "Marketplace")]


def test_criteria_and_requirements_nested_in_the_section_are_not_modules():
    s = read("nested_criteria.md")
    assert s.problems == []
    assert [m.name for m in s.modules] == ["auth", "users", "ott-mini", "creator-dashboard"]  # a link's text
    assert s.categories == ["Core", "Frontend"]


def test_a_section_cut_short_by_same_level_headings_is_a_clear_error():
    s = read("all_h1.md")
    assert s.modules == []
    (issue,) = s.problems
    assert issue["file"] == "docs/all_h1.md" and issue["line"] == 1
    assert "no canonical modules found under 'Required Modules'" in issue["message"]
    assert "section ends at line 3" in issue["message"] and "deeper headings" in issue["message"]


@pytest.mark.parametrize("text, names", [
    ("## Required Modules\n| Service | Notes |\n|---|---|\n| auth |\n| My Module | x |\n| `a`, b | y |\n| | z |\n",
     ["auth", "a", "b"]),
    ("## Required Modules\n- **auth; rm -rf /** - shell\n- **my module** - spaces\n", []),
    ("## Required Modules\n> **Core:** auth, users\n\n- **Note:** see the docs\n", []),
])
def test_what_is_not_a_module_in_the_new_shapes_is_said_or_ignored(tmp_path, text, names):
    path = tmp_path / "investor_synopsis.md"
    path.write_text(text, encoding="utf-8")
    s = parse_synopsis(path, display_path="docs/investor_synopsis.md")
    assert [m.name for m in s.modules] == names
    assert s.problems, "no module, or an invalid one, is always said"
    assert all(p["file"] == "docs/investor_synopsis.md" for p in s.problems)
