"""The gates as the compliance PDF states them: PMMG rules with the file that decided each, "no tests"
per service (warn or block), a skipped e2e never passed, and the report's own contents gate
judged from what it holds (and read back from the PDF by its check), never a constant."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pypdf

from nexus_assets.compliance.checks import contents_problems
from nexus_assets.compliance.data import assemble
from nexus_assets.compliance.layout import render
from nexus_assets.policy.pmmg import RATIFICATION_INDEX, ratification_index
from tests.compliance.test_report_layout import _lineage, release_inputs


def _manifest(settings) -> dict:
    return json.loads((settings.artifacts / "artifacts_manifest.json").read_text())


def _set_manifest(settings, manifest: dict) -> None:
    (settings.artifacts / "artifacts_manifest.json").write_text(json.dumps(manifest))


def _assemble(settings, **kw):
    return assemble(settings, commit="c" * 40, lineage=_lineage(3), run_id="run", today=date(2026, 12, 7), **kw)


def _gate(data, name):
    return next(g for g in data.gates if g.name == name)


def _text(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def _no_failures(settings, e2e: dict) -> None:
    manifest = _manifest(settings)
    for image in manifest["images"]:
        image["tests"] = {"lint": "passed", "unit": "passed", "integration": "passed"}
        image["status"] = "current"
    manifest["images"][1]["tests"]["unit"] = "no_tests"
    manifest["e2e"] = e2e
    _set_manifest(settings, manifest)


def test_no_tests_warns_per_service_and_a_skipped_e2e_is_skipped(tmp_path):
    settings = release_inputs(tmp_path, count=3)
    _no_failures(settings, {"passed": False, "skipped": True, "seconds": 0.1})
    data = _assemble(settings)
    assert list(data.tests["unit"]) == ["passed", "no tests (warn)", "passed"]
    tests = _gate(data, "tests pass")
    assert tests.passed is True  # warn: reported, not blocking; e2e skipped: "if applicable"
    assert "not passed, not blocking: svc-002 unit (no tests (warn))" in tests.detail
    assert tests.detail.endswith("e2e skipped")
    assert data.e2e == "skipped (the repository defines no e2e stack: not passed, not blocking)"
    text = _text(render(data))
    assert "no tests (warn)" in text and "End-to-end stack: skipped" in text


def test_no_tests_blocks_when_the_repository_says_so(tmp_path):
    settings = release_inputs(tmp_path, count=3)
    _no_failures(settings, {"passed": True, "skipped": False, "seconds": 2})
    (settings.repo / "nexus-agent.toml").write_text('[tests]\nno_tests = "block"\n')
    data = _assemble(settings)
    assert list(data.tests["unit"]) == ["passed", "no tests (blocks)", "passed"]
    tests = _gate(data, "tests pass")
    assert tests.passed is False and tests.detail.startswith("failed: svc-002 unit")
    assert data.verdict.startswith("FAIL: tests pass")


def test_pmmg_rules_name_their_file_on_the_cover_and_in_section_6(tmp_path):
    settings = release_inputs(tmp_path, count=3)
    (settings.repo / RATIFICATION_INDEX).write_text(ratification_index(owner="Someone Else Inc"))
    (settings.repo / "docker-compose.pmmg.yml").write_text(
        "services:\n  pmmg-renders:\n    image: worker\n    command: ffmpeg -i /srv/pmmg/in.wav out.mp3\n")
    engine = {"passed": False, "detail": "its command runs a media engine (ffmpeg): `ffmpeg -i x`",
              "where": "services/svc-001/Dockerfile:4"}
    data = _assemble(settings, pmmg_images={"svc-001": engine, "gone-service": {"passed": False, "detail": "old"}})
    pmmg = _gate(data, "PMMG policy")
    assert pmmg.passed is False
    assert pmmg.detail == ("ownership lock: VIOLATED (CANONICAL_RATIFICATION_INDEX.md:5); browser-only: VIOLATED "
                           "(services/svc-001/Dockerfile:4); never scaffolded: ok; no transcoding: VIOLATED "
                           "(docker-compose.pmmg.yml:2)")
    assert "gone-service" not in data.pmmg.rule("browser-only").detail  # not in the manifest: not judged here
    text = "".join(_text(render(data)).split())
    for said in ("isownedby'SomeoneElseInc',notPUABOHoldingsLLC", "services/svc-001/Dockerfile:4",
                 "docker-compose.pmmg.yml:2(pmmg-renders)", "6.PMMGpolicy(N3XUS-SYSTEM-PMMG):FAIL"):
        assert said in text, said


def test_the_report_gate_judges_its_contents_and_its_check_reads_the_pdf_back(tmp_path):
    settings = release_inputs(tmp_path, count=3)
    data = _assemble(settings)
    gate = _gate(data, "compliance report")
    assert gate.passed is True and gate.detail.startswith("9 sections with their data;")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render(data))
    metadata = {"gates": [g.name for g in data.gates], "contents_passed": True}
    assert contents_problems(pdf, metadata) == []
    # a gate the PDF does not list, or a report made without its inputs: the check says what lacks
    assert contents_problems(pdf, {**metadata, "gates": [*metadata["gates"], "waiver register"]}) == [
        "report.pdf lacks: gate waiver register"]
    (settings.reports / "scaffold_report.json").unlink()
    bare = _assemble(settings)
    gate = _gate(bare, "compliance report")
    assert gate.passed is False
    assert gate.detail == "section(s) without their data: scaffolded modules (reports/scaffold_report.json not available)"
    assert bare.verdict.endswith("compliance report")


def test_an_empty_pdf_fails_the_check(tmp_path: Path):
    pdf = tmp_path / "empty.pdf"
    writer = pypdf.PdfWriter()
    writer.add_blank_page(100, 100)
    with pdf.open("wb") as fh:
        writer.write(fh)
    problems = contents_problems(pdf, {"gates": ["tests pass"], "contents_passed": False, "contents": "bad"})
    assert problems[0] == "empty.pdf: bad"
    assert problems[1].startswith("empty.pdf lacks: Overall gate verdict, 1. Discovery summary")
