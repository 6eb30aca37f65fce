"""The canonical module list comes from docs/investor_synopsis.md, never from code."""

from __future__ import annotations

import json
from pathlib import Path

from nexus_assets.parity.synopsis import parse_synopsis

FIXTURE = Path(__file__).parent / "fixtures" / "nexus_mini" / "docs" / "investor_synopsis.md"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "investor_synopsis.md"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def by_name(synopsis):
    return {m.name: m for m in synopsis.modules}


def test_fixture_synopsis_categories_modules_and_flags():
    s = parse_synopsis(FIXTURE, display_path="docs/investor_synopsis.md")
    assert s.problems == []
    assert s.categories == ["Core Backend", "Content & Streaming", "Monetization", "Notifications",
                            "AI & Intelligence", "Frontend", "PUABO NUKI"]
    mods = by_name(s)
    assert len(s.modules) == 15
    assert mods["auth"].mandatory and mods["auth"].description == "Authentication and sessions"
    assert mods["auth"].category == "Core Backend" and mods["auth"].line == 8
    assert mods["users"].description == "User profiles and accounts"  # en dash separator
    assert mods["streaming-engine"].description == "HLS/DASH streaming"  # `*` bullet, em dash
    assert mods["streaming-engine"].mandatory
    assert mods["transcoder"].description == "Media transcoding"  # colon separator
    assert mods["payments"].description == "" and not mods["payments"].mandatory  # no description
    family = mods["puabo-nuki-*"]
    assert family.family and family.family_count == 3 and family.category == "PUABO NUKI"
    assert not mods["auth"].family and mods["auth"].family_count is None


def test_phase_heading_ends_collection_and_records_pmmg():
    s = parse_synopsis(FIXTURE)
    assert "pmmg-engine" not in by_name(s)  # listed under "## Phase 11: PMMG ...", not a category
    assert s.pmmg["mentioned"] is True and s.pmmg["browser_only"] is True
    assert s.pmmg["lines"]


def test_no_pmmg_section(tmp_path):
    s = parse_synopsis(write(tmp_path, "## 1. Core\n- **auth** - a\n"))
    assert s.pmmg == {"mentioned": False, "browser_only": False, "lines": []}


def test_pmmg_mentioned_in_section_without_browser_only(tmp_path):
    s = parse_synopsis(write(tmp_path, "## 1. Core\n- **auth** - a\n\n## Notes\nPMMG ships later.\n\n"
                                       "## Elsewhere\nThe player is browser-only.\n"))
    # "browser-only" in another section does not make PMMG browser-only.
    assert s.pmmg == {"mentioned": True, "browser_only": False, "lines": [5]}


def test_missing_file_is_a_problem_not_an_exception(tmp_path):
    s = parse_synopsis(tmp_path / "docs" / "investor_synopsis.md", display_path="docs/investor_synopsis.md")
    assert s.modules == [] and s.categories == []
    assert len(s.problems) == 1
    assert s.problems[0]["file"] == "docs/investor_synopsis.md"
    assert "not found" in s.problems[0]["message"]


def test_empty_and_blank_file(tmp_path):
    for text in ("", "\n\n   \n"):
        s = parse_synopsis(write(tmp_path, text))
        assert s.modules == []
        assert "empty" in s.problems[0]["message"]


def test_prose_only_file_has_no_modules(tmp_path):
    s = parse_synopsis(write(tmp_path, "# Synopsis\n\nWe build **great** things - soon.\n- **not-a-module** - no category yet\n"))
    assert s.modules == []
    assert any("no canonical modules" in p["message"] for p in s.problems)


def test_non_utf8_file_names_the_line(tmp_path):
    s = parse_synopsis(write(tmp_path, b"## 1. Core\n- **auth** - ok\n- **users** - caf\xe9\n"))
    assert s.modules == []
    assert s.problems[0]["line"] == 3
    assert "UTF-8" in s.problems[0]["message"]


def test_invalid_module_names_are_problems_with_lines(tmp_path):
    text = ("## 1. Core\n"
            "- **auth** - fine\n"
            "- **../../etc/passwd** - traversal\n"
            "- **auth; rm -rf /** - shell\n"
            "- **my module** - spaces\n"
            "- **$(reboot)** - substitution\n"
            "- **users** - fine\n")
    s = parse_synopsis(write(tmp_path, text))
    assert [m.name for m in s.modules] == ["auth", "users"]
    lines = sorted(p["line"] for p in s.problems)
    assert lines == [3, 4, 5, 6]
    assert all("not a valid module name" in p["message"] for p in s.problems)


def test_duplicate_module_names_report_both_lines(tmp_path):
    s = parse_synopsis(write(tmp_path, "## 1. Core\n- **auth** - one\n\n## 2. Again\n- **auth** - two\n"))
    assert [m.name for m in s.modules] == ["auth"]
    assert s.modules[0].description == "one"
    (problem,) = s.problems
    assert problem["line"] == 5 and "lines 2 and 5" in problem["message"]


def test_family_counts_in_every_accepted_form(tmp_path):
    text = ("## 1. Families\n"
            "- **puabo-nuki-*** - NUKI family (family of 4)\n"
            "- **rtx-*** - render workers (5 services)\n"
            "- **ingest-*** - ingest x6\n"
            "- **edge-*** - edge nodes ×7\n"
            "- **misc-*** - no count given\n")
    mods = by_name(parse_synopsis(write(tmp_path, text)))
    assert {n: m.family_count for n, m in mods.items()} == {
        "puabo-nuki-*": 4, "rtx-*": 5, "ingest-*": 6, "edge-*": 7, "misc-*": None}
    assert all(m.family for m in mods.values())


def test_declared_category_count_is_checked(tmp_path):
    s = parse_synopsis(write(tmp_path, "## 1. Core Backend (3)\n- **auth** - a\n- **users** - u\n"))
    assert s.categories == ["Core Backend"]
    (problem,) = s.problems
    assert problem["line"] == 1 and "declares 3 modules but lists 2" in problem["message"]


def test_unnumbered_subheading_ends_collection_and_numbered_h3_starts_one(tmp_path):
    text = ("## 1. Core\n- **auth** - a\n### Notes\n- **not-a-module** - prose bullet\n"
            "### 2. Streaming\n- **streaming-engine** - s\n")
    s = parse_synopsis(write(tmp_path, text))
    assert [m.name for m in s.modules] == ["auth", "streaming-engine"]
    assert s.categories == ["Core", "Streaming"]


def test_code_fences_and_plain_bullets_are_ignored(tmp_path):
    text = ("## 1. Core\n- plain bullet without bold\n```\n- **fenced** - not a module\n```\n"
            "- **auth** - a\n+ **users**\n")
    assert [m.name for m in parse_synopsis(write(tmp_path, text)).modules] == ["auth", "users"]


def test_uppercase_names_are_lowercased_and_backticks_stripped(tmp_path):
    s = parse_synopsis(write(tmp_path, "## 1. Core\n- **`Backend-API`** - gateway\n"))
    assert [m.name for m in s.modules] == ["backend-api"]


def test_editing_the_markdown_changes_the_module_list(tmp_path):
    path = write(tmp_path, FIXTURE.read_text(encoding="utf-8"))
    before = {m.name for m in parse_synopsis(path).modules}
    text = path.read_text(encoding="utf-8").replace(
        "- **payments**\n", "- **payments**\n- **wallet** - Creator wallet (mandatory)\n")
    text = text.replace("- **drm-service** - DRM licences\n", "")
    path.write_text(text, encoding="utf-8")
    after = parse_synopsis(path)
    assert {m.name for m in after.modules} == (before | {"wallet"}) - {"drm-service"}
    assert by_name(after)["wallet"].mandatory


def test_to_dict_is_json_serializable_and_stable():
    a = parse_synopsis(FIXTURE).to_dict()
    b = parse_synopsis(FIXTURE).to_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["module_count"] == 15 and a["modules"][0]["name"] == "backend-api"
