"""The Acceptance Gates' rules: no tests (warn or block), a skipped e2e, and the compliance report's
own contents."""

from __future__ import annotations

import pytest

from nexus_assets.core.errors import InputError
from nexus_assets.policy.acceptance import (
    REPORT_SECTIONS,
    blocking_states,
    e2e_state,
    missing_from_text,
    no_tests_mode,
    report_contents,
)


def test_no_tests_warns_by_default_and_blocks_when_the_repository_says_so(tmp_path):
    assert no_tests_mode(tmp_path) == "warn" and blocking_states("warn") == {"failed"}
    (tmp_path / "nexus-agent.toml").write_text('[tests]\nno_tests = "block"\n')
    assert no_tests_mode(tmp_path) == "block" and blocking_states("block") == {"failed", "no_tests"}


def test_an_unknown_no_tests_mode_is_one_error_naming_the_file_and_key(tmp_path):
    (tmp_path / "nexus-agent.toml").write_text('[tests]\nno_tests = "ignore"\n')
    with pytest.raises(InputError, match=r"nexus-agent.toml: \[tests\] no_tests = 'ignore' is not one of 'warn', "
                                         r"'block'"):
        no_tests_mode(tmp_path)


@pytest.mark.parametrize(("record", "state"), [
    (None, "not available"), ({"passed": True, "skipped": True}, "skipped"), ({"passed": False, "skipped": True},
                                                                             "skipped"),
    ({"passed": True, "skipped": False}, "passed"), ({"passed": False, "skipped": False}, "failed"),
])
def test_a_skipped_e2e_is_skipped_whatever_else_its_record_says(record, state):
    assert e2e_state(record) == state


def test_the_report_gate_needs_every_section_and_every_gate_with_evidence():
    sections = {"discovery": "", "tests": ""}
    ok, detail = report_contents(sections, [("tests pass", "3 services: lint, unit and integration passed")])
    assert ok and detail == "2 sections with their data; 1 gates listed, each with its evidence"
    ok, detail = report_contents({**sections, "lineage": "no lineage read from the Dagster instance"},
                                 [("tests pass", ""), ("artifacts manifest", "not available (no manifest)")])
    assert not ok
    assert detail == ("section(s) without their data: lineage (no lineage read from the Dagster instance); "
                      "gate(s) without evidence: tests pass, artifacts manifest")


def test_text_read_back_from_a_pdf_is_checked_for_sections_and_gate_rows():
    text = "\n".join(REPORT_SECTIONS) + "\ntests pass PASS ...\nPMMG\npolicy FAIL"  # a cell wrapped in two lines
    assert missing_from_text(text, ["tests pass", "PMMG policy"]) == []
    assert missing_from_text(text.replace("7. Security", ""), ["tests pass", "no secret in outputs"]) == [
        "7. Security", "gate no secret in outputs"]
