"""The PMMG ownership lock and the verdict the compliance report shows: each rule names the file
(and line) that decided it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_assets.policy.pmmg import (
    RATIFICATION_INDEX,
    browser_only,
    ownership_lock,
    pmmg_verdict,
    ratification_index,
)

SAMPLE = Path(__file__).resolve().parents[2] / "nexus_assets" / "sample_repo"


def test_the_sample_holds_the_lock_and_the_rule_names_its_line():
    rule = ownership_lock(SAMPLE)
    assert rule.passed, rule
    assert rule.where == f"{RATIFICATION_INDEX}:13"
    assert "owned by PUABO Holdings LLC, LOCKED" in rule.detail


def test_a_missing_index_blocks_naming_the_file(tmp_path):
    rule = ownership_lock(tmp_path)
    assert not rule.passed and rule.where == RATIFICATION_INDEX
    assert rule.detail.startswith(f"{RATIFICATION_INDEX} not found in the repository")


@pytest.mark.parametrize(("owner", "status", "said"), [
    ("Acme Media Corp", "LOCKED", "is owned by 'Acme Media Corp', not PUABO Holdings LLC"),
    ("", "LOCKED", "is owned by 'nobody', not PUABO Holdings LLC"),
    ("PUABO Holdings LLC", "RATIFIED", "has status 'RATIFIED', not LOCKED"),
])
def test_another_owner_or_status_blocks_naming_the_line(tmp_path, owner, status, said):
    (tmp_path / RATIFICATION_INDEX).write_text(ratification_index(owner=owner, status=status))
    rule = ownership_lock(tmp_path)
    assert not rule.passed and rule.where == f"{RATIFICATION_INDEX}:5"
    assert said in rule.detail


def test_an_index_without_a_pmmg_row_blocks(tmp_path):
    (tmp_path / RATIFICATION_INDEX).write_text("# Index\n\n| Primitive | Owner | Status |\n| --- | --- | --- |\n"
                                                "| `N3XUS-SYSTEM-CORE` | PUABO Holdings LLC | LOCKED |\n"
                                                "\nN3XUS-SYSTEM-PMMG is owned by PUABO Holdings LLC, in prose only.\n")
    rule = ownership_lock(tmp_path)
    assert not rule.passed and "has no table row for N3XUS-SYSTEM-PMMG" in rule.detail


def test_a_link_in_place_of_the_index_is_not_read(tmp_path):
    real = tmp_path / "elsewhere.md"
    real.write_text(ratification_index())
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / RATIFICATION_INDEX).symlink_to(real)
    assert not ownership_lock(repo).passed


def test_browser_only_aggregates_each_image_verdict_with_its_file():
    good = {"pmmg-static": {"passed": True, "detail": "a static file server (nginx)", "where": "s/Dockerfile:9"}}
    assert browser_only(good).passed and "pmmg-static: a static file server" in browser_only(good).detail
    bad = {**good, "pmmg-engine": {"passed": False, "detail": "its command runs a media engine (ffmpeg)",
                                   "where": "services/pmmg-engine/Dockerfile:7"}}
    rule = browser_only(bad)
    assert not rule.passed and rule.where == "services/pmmg-engine/Dockerfile:7"
    assert rule.detail == ("PMMG execution logic containerized: pmmg-engine: its command runs a media engine "
                           "(ffmpeg). Allowed: pmmg-static: a static file server (nginx)")
    assert browser_only({}).passed  # no image of the release belongs to PMMG


def test_the_verdict_has_four_rules_and_fails_on_any(tmp_path):
    verdict = pmmg_verdict(tmp_path, {}, {}, {})
    assert [r.name for r in verdict.rules] == ["ownership lock", "browser-only", "never scaffolded", "no transcoding"]
    assert not verdict.passed and verdict.rule("ownership lock").passed is False
    (tmp_path / RATIFICATION_INDEX).write_text(ratification_index())
    assert pmmg_verdict(tmp_path, {}, {}, {}).passed
