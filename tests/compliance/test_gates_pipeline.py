"""The gates that gate, through `nexus-agent run` on the real engine and registry, on small repositories:

- the PMMG ownership lock: missing, then another owner, each blocks the release naming the file
  (the PDF says FAIL and why); the lock put right releases;
- a service with no tests is "no tests" (a WARN check, the manifest's state), a skipped e2e is
  "skipped", and neither blocks;
- a PMMG image whose CMD runs ffmpeg is refused (its check fails, it is not pushed) while the
  PMMG static file server passes and is pushed; a compose worker transcoding PMMG assets blocks
  the release naming the compose file and line."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pypdf
import pytest

from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.core.settings import SAMPLE_REPO
from nexus_assets.policy.pmmg import RATIFICATION_INDEX, ratification_index
from nexus_assets.testrepos.synthetic import generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("VERSION", "GITHUB_TOKEN", "NEXUS_RELEASE_PUSH"):
        monkeypatch.delenv(name, raising=False)


def _pdf_text(settings) -> str:
    [pdf] = settings.reports.glob("compliance_report_*.pdf")
    return "".join("".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages)


def _release(settings) -> dict:
    return json.loads((settings.artifacts / "verified_release.json").read_text())


def test_the_ownership_lock_blocks_until_it_is_right_no_tests_and_skipped_e2e_do_not(
        tmp_path, dagster_home, settings_for, remove_test_images, capsys):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 1)
    shutil.rmtree(repo / "services" / "node-svc-001" / "tests")
    (repo / RATIFICATION_INDEX).unlink()
    settings = settings_for(repo)

    missing = run_pipeline(settings)
    out = capsys.readouterr().out
    assert not missing.ok and missing.built == ["node-svc-001"]
    assert missing.failed_gates == ["compliance_report:pmmg_ownership_lock"], missing
    assert f"check compliance_report:pmmg_ownership_lock FAILED: {RATIFICATION_INDEX} not found" in out
    assert "release 1.0.0 not made: blocking gate" in out
    assert "check image/node-svc-001:unit NO TESTS: no tests/ folder with tests in services/node-svc-001" in out
    assert "check e2e_tests:e2e SKIPPED: no compose file docker-compose.e2e.yml" in out
    assert not (settings.workdir / "releases" / "v1.0.0").exists()
    assert not list(settings.reports.glob("deployment_package_*.tar.gz")), "no package without the lock"
    text = _pdf_text(settings)
    assert "PMMGpolicy(N3XUS-SYSTEM-PMMG):FAIL" in text and f"{RATIFICATION_INDEX}notfoundintherepository" in text
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    assert manifest["images"][0]["tests"]["unit"] == "no_tests"
    assert manifest["e2e"]["passed"] is False and manifest["e2e"]["skipped"] is True
    assert "notests(warn)" in text and "End-to-endstack:skipped" in text

    (repo / RATIFICATION_INDEX).write_text(ratification_index(owner="Somebody Else LLC"))
    other = run_pipeline(settings)
    out = capsys.readouterr().out
    assert not other.ok and other.built == [] and other.failed_gates == ["compliance_report:pmmg_ownership_lock"]
    assert (f"FAILED: {RATIFICATION_INDEX}:5: N3XUS-SYSTEM-PMMG is owned by 'Somebody Else LLC', not PUABO "
            "Holdings LLC") in out
    assert "isownedby'SomebodyElseLLC',notPUABOHoldingsLLC" in _pdf_text(settings), "the PDF was made again"

    (repo / RATIFICATION_INDEX).write_text(ratification_index())
    right = run_pipeline(settings)
    assert right.ok and right.built == [], right
    assert _release(settings)["made"] and (settings.workdir / "releases" / "v1.0.0").is_dir()
    assert "PMMGpolicy(N3XUS-SYSTEM-PMMG):PASS" in _pdf_text(settings)
    gates = {g["name"]: g for g in _release(settings)["gates"]}
    assert gates["image/node-svc-001:unit"]["passed"] is False and not gates["image/node-svc-001:unit"]["blocking"]
    assert gates["e2e_tests:e2e"]["detail"].startswith("skipped:") and not gates["e2e_tests:e2e"]["blocking"]
    notes = (settings.workdir / "releases" / "v1.0.0" / "release_notes.md").read_text()
    assert "| e2e_tests:e2e | skipped |" in notes and "| image/node-svc-001:unit | no tests |" in notes


ENGINE_DOCKERFILE = """FROM python:3.12-slim
# pmmg-engine: the PMMG N3XUS R3CORDINGS M3DIA 3NGIN3 media engine, server side (forbidden).
WORKDIR /app
COPY . .
USER 10001
EXPOSE 8080
CMD ["ffmpeg", "-i", "/srv/pmmg/in.wav", "/srv/pmmg/out.mp3"]
"""
WORKER = """  pmmg-renders:
    image: 127.0.0.1:5000/nexus/render-worker:1
    environment:
      ASSETS: /srv/pmmg/assets
    command: ffmpeg -i /srv/pmmg/assets/in.wav -f hls /srv/out/
"""


def _pmmg_repo(repo: Path) -> None:
    (repo / "services").mkdir(parents=True)
    shutil.copytree(SAMPLE_REPO / "services" / "pmmg-static", repo / "services" / "pmmg-static")
    (repo / "services" / "pmmg-engine").mkdir()
    (repo / "services" / "pmmg-engine" / "Dockerfile").write_text(ENGINE_DOCKERFILE)
    (repo / "services" / "pmmg-engine" / "engine.py").write_text("print('mixing')\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "investor_synopsis.md").write_text(
        "# Synopsis\n\n## Required Modules\n\n### 1. Media\n\n- **pmmg-static** - PMMG client files\n")
    (repo / "docker-compose.yml").write_text(
        "services:\n  pmmg-static:\n    build: ./services/pmmg-static\n"
        "  pmmg-engine:\n    build: ./services/pmmg-engine\n")
    (repo / "nexus-agent.toml").write_text("[parity]\ncritical = []\n")
    (repo / RATIFICATION_INDEX).write_text(ratification_index())


def test_a_pmmg_media_engine_is_never_pushed_and_a_transcoding_worker_blocks_the_release(
        tmp_path, dagster_home, settings_for, remove_test_images, capsys):
    repo = tmp_path / "repo"
    _pmmg_repo(repo)
    settings = settings_for(repo)

    first = run_pipeline(settings)
    out = capsys.readouterr().out
    assert not first.ok and sorted(first.built) == ["pmmg-engine", "pmmg-static"]
    assert "pmmg-engine" in first.not_pushed and first.pushed == ["pmmg-static"]
    assert "image/pmmg-engine:pmmg_browser_only" in first.failed_gates
    assert "image/pmmg-static:pmmg_browser_only" not in first.failed_gates
    assert ("check image/pmmg-engine:pmmg_browser_only FAILED: PMMG execution logic containerized, not pushed: its "
            "command runs a media engine (ffmpeg): `ffmpeg -i /srv/pmmg/in.wav /srv/pmmg/out.mp3` "
            "(services/pmmg-engine/Dockerfile:7)") in out
    # its integration test fails too (no ffmpeg in it), so the manifest gate leaves it to its checks: the
    # PDF is made and its own PMMG rule blocks the package and the release, naming the Dockerfile line
    assert "compliance_report:pmmg_browser_only" in first.failed_gates
    text = _pdf_text(settings)
    assert "pmmg-engine:itscommandrunsamediaengine(ffmpeg)" in text
    assert "(services/pmmg-engine/Dockerfile:7)" in text
    assert not (settings.workdir / "releases" / "v1.0.0").exists()

    shutil.rmtree(repo / "services" / "pmmg-engine")
    (repo / "docker-compose.yml").write_text("services:\n  pmmg-static:\n    build: ./services/pmmg-static\n" + WORKER)
    second = run_pipeline(settings)
    out = capsys.readouterr().out
    assert not second.ok and second.built == []
    # (the manifest of the run that removes a service still lists it: its browser-only rule fails too)
    assert "compliance_report:pmmg_no_transcoding" in second.failed_gates, second
    assert ("check compliance_report:pmmg_no_transcoding FAILED: transcoding job(s) scheduled for PMMG assets: "
            "docker-compose.yml:4 (pmmg-renders)") in out
    text = _pdf_text(settings)
    assert "docker-compose.yml:4(pmmg-renders)" in text
    assert "pmmg-static:runs`nodeserver.js`:nomediaengine" in text, "the static file server passes, with why"
    assert not (settings.workdir / "releases" / "v1.0.0").exists()
