"""The release documents from the real pipeline on the bundled sample (engine, Dagster instance,
every step): `nexus-agent run` makes the compliance PDF and the deployment package, their
gates pass, the PDF's text holds the run's real values and lineage, the package verifies, and
only stale documents are made again."""

from __future__ import annotations

import io
import json
import re
import tarfile

import pypdf
import pytest

from nexus_assets.cli.pipeline import open_instance
from nexus_assets.core.keys import ARTIFACTS_MANIFEST, COMPLIANCE_REPORT, DEPLOYMENT_PACKAGE
from nexus_assets.core.settings import Settings
from nexus_assets.definitions import PIPELINE_JOB, build_definitions
from nexus_assets.package.archive import verify_tar_gz

# Two whole pipeline runs on a shared engine: give them more than the suite's 900 s.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(2400)]
SECRET_MARKER = "DO-NOT-LEAK"


@pytest.fixture(scope="module")
def sample_release(sample_pipeline_runs):
    """(settings, first run, the PDF and package bytes after it, second run): the two whole runs
    on the sample that tests/cli/test_sample_run.py reads too (tests/conftest.py)."""
    return sample_pipeline_runs


def _one(settings: Settings, pattern: str):
    found = sorted(settings.reports.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def settings_ok(settings: Settings) -> bool:
    """The gates the cover sums up, from the run's own reports (the tests may fail on a loaded engine)."""
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    e2e = manifest.get("e2e") or {}
    return all(stage == "passed" for i in manifest["images"] for stage in (i.get("tests") or {"x": "no"}).values()) \
        and bool(e2e.get("passed") or e2e.get("skipped")) and len(manifest["images"]) == manifest["totals"]["with_digest"]


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_the_run_makes_both_documents_and_their_gates_pass(sample_release):
    settings, first, _, _ = sample_release
    # Whether every service's tests passed is test_sample_run's business; the documents' own gates pass.
    assert not [g for g in first.failed_gates if g.startswith(("compliance_report", "deployment_package"))], first
    assert not first.broken_steps, first
    assert re.fullmatch(r"compliance_report_\d{8}\.pdf", _one(settings, "compliance_report_*.pdf").name)
    assert re.fullmatch(r"deployment_package_\d{8}\.tar\.gz", _one(settings, "deployment_package_*.tar.gz").name)


def test_pdf_text_holds_the_runs_values_and_lineage(sample_release):
    settings, _, _, _ = sample_release
    pdf = _one(settings, "compliance_report_*.pdf")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    flat = _flat(text)
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    report = json.loads((settings.reports / "discrepancy_report.json").read_text())
    verdict = "PASS" if settings_ok(settings) else "FAIL"
    assert f"Overall gate verdict: {verdict}" in text
    assert "1.0.0" in text and "PMMG policy (N3XUS-SYSTEM-PMMG): PASS" in text
    for image in manifest["images"]:
        assert _flat(image["image_id"]) in flat and image["service"] in flat
    for module in report["scaffolded"]:
        assert module in flat
    assert "0 found (expected 0)" in text and SECRET_MARKER not in text
    instance = open_instance(settings)
    event = instance.get_latest_materialization_event(ARTIFACTS_MANIFEST)
    assert event is not None and event.run_id in flat
    assert event.asset_materialization.tags["dagster/data_version"] in flat
    assert "image/users" in flat and "source/users" in flat  # an image and what it was made from
    sha = __import__("hashlib").sha256((settings.artifacts / "artifacts_manifest.json").read_bytes()).hexdigest()
    assert sha in flat


def test_package_verifies_and_pins_or_names_every_service(sample_release):
    settings, _, _, _ = sample_release
    path = _one(settings, "deployment_package_*.tar.gz")
    verified = verify_tar_gz(path.read_bytes(), str(path))
    with tarfile.open(path) as tar:
        body = {m.name.split("/", 1)[-1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert verified.top == path.name.removesuffix(".tar.gz")
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    compose = body["docker-compose.full.yml"].decode()
    readme = body["README.md"].decode()
    for image in manifest["images"]:
        if image.get("repo_digest"):
            assert f"image: {image['repo_digest']}" in compose
        else:
            assert f"`{image['service']}`:" in readme, image["service"]
    assert f"reports/{_one(settings, 'compliance_report_*.pdf').name}" in body
    assert not any(SECRET_MARKER.encode() in data for data in body.values())
    assert "POSTGRES_PASSWORD=" in body["deployment/.env.template"].decode()
    assert not any(name.endswith("/.env") or name == ".env" for name in body)


def _documents(settings: Settings) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in settings.reports.glob("*") if p.suffix in (".pdf", ".gz")}


def test_nothing_changed_leaves_both_documents_as_they_are(sample_release, monkeypatch):
    settings, _, files, second = sample_release
    monkeypatch.setenv("DAGSTER_HOME", str(settings.workdir / ".dagster_home"))  # the runs' instance
    if not second.stale:  # a loaded engine can fail a build, which the second run retries
        assert second.run_ids == []  # nothing stale: no run at all
        assert _documents(settings) == files
    # Selected again while fresh (as "Materialize all" does): recorded, not remade.
    before = _documents(settings)
    instance = open_instance(settings)
    result = build_definitions(settings).resolve_job_def(PIPELINE_JOB).execute_in_process(
        instance=instance, asset_selection=[COMPLIANCE_REPORT, DEPLOYMENT_PACKAGE], raise_on_error=False)
    assert result.success
    remade = {e.asset_key: e.materialization.metadata["remade"].value for e in result.get_asset_materialization_events()}
    assert remade == {COMPLIANCE_REPORT: False, DEPLOYMENT_PACKAGE: False}
    assert _documents(settings) == before
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"compliance_report_gate": True, "deployment_package_verifies": True,
                      # the guide's PMMG rules hold on the sample (its pmmg-static is a static file server)
                      "pmmg_ownership_lock": True, "pmmg_browser_only": True, "pmmg_no_transcoding": True}


def test_package_bytes_do_not_depend_on_when_files_were_written(sample_release, tmp_path):
    settings, _, _, _ = sample_release
    path = _one(settings, "deployment_package_*.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes()), mode="r:gz") as tar:
        times = {m.mtime for m in tar.getmembers()}
        owners = {(m.uid, m.gid, m.uname, m.gname) for m in tar.getmembers()}
    assert len(times) == 1 and owners == {(0, 0, "root", "root")}
