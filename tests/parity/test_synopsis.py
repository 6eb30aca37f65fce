"""The canonical module list comes from docs/investor_synopsis.md, never from code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nexus_assets.core.errors import NexusError
from nexus_assets.parity.synopsis import parse_synopsis
from nexus_assets.target.services import valid_service_name

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nexus_mini" / "docs" / "investor_synopsis.md"


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


# --- Any well-formed Markdown (markdown-it-py): fixtures under tests/fixtures/synopses/ -------

SYNOPSES = Path(__file__).resolve().parents[1] / "fixtures" / "synopses"
SAMPLE = Path(__file__).parents[2] / "nexus_assets" / "sample_repo" / "docs" / "investor_synopsis.md"
# The bundled sample's modules and lines as the regex parser read them before markdown-it-py.
SAMPLE_MODULES = [
    ("backend-api", 14), ("auth", 15), ("users", 16), ("content-cms", 20), ("transcoder", 21),
    ("streaming-engine", 22), ("drm-service", 23), ("asset-pipeline", 24), ("thumbnailer", 25),
    ("transcode-worker", 26), ("ingest-worker", 27), ("metadata-worker", 28), ("manifest-builder", 29),
    ("monetization", 33), ("puabo-blac-financing", 34), ("billing-worker", 35), ("payments", 36),
    ("wallet", 37), ("analytics", 41), ("analytics-worker", 42), ("recommendation", 43),
    ("marketplace", 47), ("frontend-app", 51), ("creator-dashboard", 52), ("ott-mini", 53),
    ("nexus-stream", 57), ("player-api", 58), ("puabo-nexus-fleet-manager", 62),
    ("puabo-nexus-ai-dispatch", 63), ("puabo-nexus-driver-app-backend", 64),
    ("puabo-nexus-route-optimizer", 65), ("puaboverse-v2", 66), ("puabo-ai-core", 70),
    ("rtx-orchestrator", 71), ("rtx-worker", 72), ("notifications", 76), ("email-worker", 77),
    ("webhook-worker", 78), ("thirdparty-connector", 79), ("crm-sync", 80), ("search", 84),
    ("profiles", 85), ("live-ingest", 89), ("recorder", 90), ("stream-monitor", 91), ("uploader", 95),
    ("audit-exporter", 99)]


def test_bundled_sample_reads_the_same_modules_and_lines_as_before():
    s = parse_synopsis(SAMPLE)
    assert [(m.name, m.line) for m in s.modules] == SAMPLE_MODULES
    assert s.problems == [] and len(s.categories) == 14
    assert {m.name for m in s.modules if m.mandatory} == {
        "backend-api", "auth", "users", "streaming-engine", "puabo-blac-financing", "ott-mini", "nexus-stream"}


def test_platform_shaped_synopsis_reads_only_the_required_modules_section():
    s = parse_synopsis(SYNOPSES / "platform_nested.md", display_path="docs/investor_synopsis.md")
    assert s.problems == []  # every declared count holds, the 43 total counting family members
    assert s.categories == ["Core Infrastructure", "Content & Streaming", "Monetization & Commerce",
                            "PUABO Universe", "Frontend Applications", "Engagement"]
    mods = by_name(s)
    assert len(s.modules) == 41
    # Bold bullets before and after the section are not modules, nor is the fenced example.
    for outside in ("sandbox", "multi-region", "mandatory", "risk-engine", "health-checks", "pmmg-engine",
                    "example-service"):
        assert outside not in mods
    # `####` sub-groups count for their `###` category; the heading level is no module's business.
    assert mods["edge-proxy"].category == "Core Infrastructure" and mods["edge-proxy"].line == 19
    assert mods["edge-proxy"].description == "TLS termination and request routing"  # en dash
    assert mods["auth"].mandatory and mods["auth"].description == "authentication and token issuing"  # em dash
    assert mods["users"].mandatory and mods["users"].description == "accounts, profiles and roles"  # colon
    assert mods["streaming-engine"].mandatory and mods["streaming-engine"].description == "live and VOD delivery"
    assert mods["stream-monitor"].category == "Engagement" and mods["stream-monitor"].line == 76
    assert s.pmmg["mentioned"] and s.pmmg["browser_only"]


def test_family_whose_description_names_its_members_is_expanded():
    mods = by_name(parse_synopsis(SYNOPSES / "platform_nested.md"))
    members = {n: m for n, m in mods.items() if m.member_of == "puabo-nuki-*"}
    assert sorted(members) == ["puabo-nuki-inventory-mgr", "puabo-nuki-order-processor",
                               "puabo-nuki-product-catalog", "puabo-nuki-shipping-service"]
    assert "puabo-nuki-*" not in mods  # the members replace the wildcard
    assert {m.line for m in members.values()} == {47, 48}  # the line each name is written on
    assert all(not m.family and m.category == "Monetization & Commerce" for m in members.values())
    # A family whose description names no member stays one wildcard module; `****` reads as `*`.
    dsp = mods["puabo-dsp-*"]
    assert dsp.family and dsp.family_count == 3 and dsp.member_of is None and dsp.line == 53
    assert dsp.description == "music distribution (upload, metadata, streaming)"


def test_heading_levels_do_not_matter(tmp_path):
    original = parse_synopsis(SYNOPSES / "platform_nested.md")
    text = (SYNOPSES / "platform_nested.md").read_text(encoding="utf-8")
    deeper = "\n".join("#" + line if line.startswith("#") else line for line in text.split("\n"))
    shifted = parse_synopsis(write(tmp_path, deeper))
    assert shifted.to_dict()["modules"] == original.to_dict()["modules"]
    assert shifted.categories == original.categories and shifted.problems == []


def test_required_modules_under_another_section_with_real_count_mistakes():
    s = parse_synopsis(SYNOPSES / "architecture_h3.md")
    mods = by_name(s)
    assert len(mods) == 19 and mods["backend-api"].line == 14 and mods["nexus-stream"].line == 42
    nuki = mods["puabo-nuki-*"]  # `**puabo-nuki-****` (4 services): inventory, orders... are not names
    assert nuki.family and nuki.family_count == 4 and nuki.description.startswith("E-commerce inventory")
    assert "mandatory" not in mods and "redis" not in mods and "health endpoints" not in mods
    # "(2 modules)" over marketplace + a family of 4 holds (a family counts as one); "(24 Total)"
    # holds counting family members; "AI & Intelligence (2 modules)" lists 3.
    assert [(p["line"], p["message"]) for p in s.problems] == [
        (34, "category 'AI & Intelligence' declares 2 modules but lists 3")]


def test_operator_guide_list_is_a_valid_synopsis():
    s = parse_synopsis(SYNOPSES / "operator_guide.md")
    assert [m.name for m in s.modules] == [name for name, _ in SAMPLE_MODULES]
    assert s.categories[0] == "Core Backend" and s.categories[-1] == "Audit" and len(s.categories) == 14
    assert by_name(s)["thumbnailer"].line == 113 and by_name(s)["puaboverse-v2"].line == 133
    # Its heading says 103 in total but the list holds 47: said, not fatal.
    assert [(p["line"], p["message"]) for p in s.problems] == [
        (104, "section 'Required Modules' declares 103 modules but lists 47")]


def test_setext_headings_nested_details_comments_and_member_sub_bullets():
    s = parse_synopsis(SYNOPSES / "setext_variants.md")
    assert s.problems == []
    assert s.categories == ["Streaming", "Commerce", "Data"]
    assert [m.name for m in s.modules] == [
        "streaming-engine", "player-api", "live-ingest", "payments", "wallet", "rtx-orchestrator", "rtx-worker",
        "analytics", "analytics-worker", "uploader", "search", "profiles"]
    mods = by_name(s)
    assert mods["rtx-orchestrator"].member_of == "rtx-*" and mods["rtx-orchestrator"].line == 23
    assert mods["rtx-orchestrator"].description == "hands out GPU jobs"
    assert mods["rtx-worker"].description == "GPU workers x2"  # no text of its own: the family's
    assert mods["payments"].description == "charges and refunds"  # `--` separator
    assert mods["analytics-worker"].line == 27 and mods["uploader"].description == "resumable uploads"


def test_only_code_block_candidates_are_named_with_their_lines():
    s = parse_synopsis(SYNOPSES / "code_only.md", display_path="docs/investor_synopsis.md")
    assert s.modules == []
    (p,) = s.problems
    assert p["file"] == "docs/investor_synopsis.md" and p["line"] == 9
    assert p["message"].startswith("the only module candidates are inside code blocks (lines 9, 10, 15): "
                                   "backend-api, auth, users")


def test_empty_required_section_names_the_section_and_what_was_expected(tmp_path):
    text = "# S\n\n## Required Modules (3 Total)\n\nTo be decided.\n\n## Feature Requirements\n- **auth** - later\n"
    s = parse_synopsis(write(tmp_path, text), display_path="docs/investor_synopsis.md")
    assert s.modules == []
    messages = [p["message"] for p in s.problems]
    assert "section 'Required Modules' declares 3 modules but lists 0" in messages
    assert any(m.startswith("no canonical modules found under 'Required Modules (3 Total)' (line 3): expected")
               for m in messages)


def test_family_member_count_mismatch_is_a_problem_and_named_members_are_kept(tmp_path):
    text = ("## Required Modules\n### Commerce\n"
            "- **puabo-nuki-*** (4 services) - puabo-nuki-wallet, puabo-nuki-ledger and puabo-nuki-shop\n")
    s = parse_synopsis(write(tmp_path, text))
    assert [m.name for m in s.modules] == ["puabo-nuki-wallet", "puabo-nuki-ledger", "puabo-nuki-shop"]
    (p,) = s.problems
    assert p["line"] == 3 and "declares 4 members but names 3" in p["message"]


def test_numbered_and_counted_headings_at_any_level_without_a_section(tmp_path):
    text = ("# Title\n#### 1. Core (2)\n- **auth** - a\n- **users**\n##### Notes\n- **not-this** - prose\n"
            "### Streaming (10 modules)\n- **streaming-engine**\n")
    s = parse_synopsis(write(tmp_path, text))
    assert [m.name for m in s.modules] == ["auth", "users", "streaming-engine"]
    assert s.categories == ["Core", "Streaming"]
    assert [p["message"] for p in s.problems] == ["category 'Streaming' declares 10 modules but lists 1"]


def test_oversized_and_unreadable_files_are_problems(tmp_path):
    from nexus_assets.parity import synopsis as module

    big = tmp_path / "big.md"
    big.write_bytes(b"## 1. Core\n" + b"- **auth** - a\n" * (module.MAX_SYNOPSIS_BYTES // 15 + 1))
    s = parse_synopsis(big)
    assert s.modules == [] and "larger than" in s.problems[0]["message"]
    folder = tmp_path / "dir.md"
    folder.mkdir()
    assert "not found" in parse_synopsis(folder).problems[0]["message"]


_FRAGMENTS = ["#", "## ", "### ", "#### ", "1. ", "- ", "* ", "+ ", "  ", "    ", "**", "*", "`", "```", "~~~",
              "auth", "puabo-nuki-", "Required Modules", "(3)", "(4 services)", "(43 Total)", "(Mandatory)",
              " - ", " – ", " — ", ": ", ", ", "PMMG", "browser-only", "<!--", "-->", "> ", "===", "---",
              "\\*", "é", "\t", "\r", "\u2028", "x3"]
_NAMES = (st.from_regex(r"[a-zA-Z0-9][a-z0-9._-]{0,12}\*{0,4}", fullmatch=True) | st.sampled_from(_FRAGMENTS)
          | st.sampled_from(["puabo-nuki-*", "puabo-nuki-****", "puabo-nuki-\\*"]))
_HEADINGS = st.builds(lambda level, num, title, count: "#" * level + " " + num + title + count,
                      st.integers(1, 6), st.sampled_from(["", "1. ", "12) "]),
                      st.sampled_from(["Required Modules", "Core", "Feature Requirements", "Phase 11: PMMG", "Notes"]),
                      st.sampled_from(["", " (2)", " (3 modules)", " (43 Total)"]))
_BULLETS = st.builds(lambda indent, marker, name, other, tail: indent + marker + name.replace("N", other) + tail,
                     st.sampled_from(["", "  ", "    "]), st.sampled_from(["- ", "* ", "+ ", "1. "]),
                     st.sampled_from(["**N**", "N", "N, N", "`N`", "**N****"]), _NAMES,
                     st.sampled_from(["", " - desc", " – d", ": d", " (Mandatory)", " (4 services) - a-b, a-c",
                                      " (2 services): puabo-nuki-a, puabo-nuki-b"]))
_CHAOS = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=4), max_size=8).map("".join)
_MARKDOWNISH = st.lists(_HEADINGS | _BULLETS | _BULLETS | _BULLETS | _CHAOS, max_size=25).map("\n".join)


@settings(max_examples=200, deadline=None)
@given(_MARKDOWNISH)
def test_random_markdownish_text_never_raises(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("syn") / "investor_synopsis.md"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        s = parse_synopsis(path, display_path="docs/investor_synopsis.md")
    except NexusError:
        return  # the project's own errors are allowed; anything else fails the test
    json.dumps(s.to_dict())
    lines = re.sub(r"\r\n?", "\n", text.removeprefix("\ufeff")).split("\n")
    for m in s.modules:  # a valid name, found on the line the module says it is written on
        assert valid_service_name(m.name.replace("*", "x")) and 1 <= m.line <= len(lines)
        assert m.name.split("*")[0] in lines[m.line - 1].lower()
    assert all(p["file"] == "docs/investor_synopsis.md" and p["message"] for p in s.problems)
    assert s.modules or s.problems  # no modules is always said
