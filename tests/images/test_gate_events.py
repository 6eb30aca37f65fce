"""What the image step records for the gates: a stage with no tests is a check that did not pass
(WARN, or ERROR with `[tests] no_tests = "block"`), never a pass; a PMMG image's verdict is its
check, and the push refuses an image that containerizes PMMG execution logic."""

from __future__ import annotations

import dagster as dg

from nexus_assets.images import outcome, pmmg
from nexus_assets.images.outcome import check_result
from nexus_assets.publish.assets import _why_not
from nexus_assets.testing.stage import Stage


def _no_tests(tmp_path):
    return Stage("users", "unit", tmp_path, 10).no_tests("no tests/ folder with tests in services/users")


def test_no_tests_is_a_warn_by_default_and_an_error_when_blocking(tmp_path):
    stage = _no_tests(tmp_path)
    warn = check_result(stage)
    assert warn.passed is False and warn.severity == dg.AssetCheckSeverity.WARN
    assert warn.description == ("no tests: no tests/ folder with tests in services/users: reported, does not block "
                                "([tests] no_tests = \"warn\", the default; \"block\" makes it block)")
    block = check_result(stage, "block")
    assert block.passed is False and block.severity == dg.AssetCheckSeverity.ERROR
    assert block.description.endswith("blocks the release ([tests] no_tests = \"block\" in nexus-agent.toml)")
    assert outcome.test_states([stage]) == {"unit": "no_tests"}


def test_a_pmmg_verdict_is_its_check_and_a_violation_is_never_pushed():
    bad = {"passed": False, "detail": "its command runs a media engine (ffmpeg): `ffmpeg -i x`",
           "where": "services/pmmg-engine/Dockerfile:5"}
    result = pmmg.check_result("pmmg-engine", bad)
    assert result.passed is False and result.check_name == "pmmg_browser_only"
    assert result.description == ("PMMG execution logic containerized, not pushed: its command runs a media engine "
                                  "(ffmpeg): `ffmpeg -i x`")
    assert result.metadata["file"].value == "services/pmmg-engine/Dockerfile:5"
    assert pmmg.check_result("pmmg-engine", None).description == "not judged: the image did not build"
    passed = {"lint": "passed", "unit": "passed", "integration": "passed"}
    assert _why_not("pmmg-engine", "sha256:1", passed, {}, bad) == (
        "PMMG is browser-only and this image containerizes its execution logic: its command runs a media engine "
        "(ffmpeg): `ffmpeg -i x`")
    assert _why_not("pmmg-static", "sha256:1", passed, {}, {**bad, "passed": True}) is None
