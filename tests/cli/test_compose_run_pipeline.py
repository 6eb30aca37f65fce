"""Issue 15 on the real engine, one small repository built in the test: services that only run
as compose runs them (PORT only compose sets, variables from an env_file and .env, a published
port without EXPOSE, a compose healthcheck, a context at the repository root) pass lint, unit
and integration and are pushed; the truly broken one (its health check probes a port it never
opens) fails alone, naming that port; no value compose passes leaves the test container."""

from __future__ import annotations

import io
import json
import tarfile

import dagster as dg
import pypdf
import pytest

from nexus_assets.cli.pipeline import open_instance, run_pipeline
from nexus_assets.testrepos.realistic_compose import NEVER_OPENED, UNHEALTHY, generate_compose_run_repo

pytestmark = [pytest.mark.docker]


def _files_holding(root, value: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink() and value in p.read_bytes()]


def test_sound_services_pass_as_compose_runs_them_and_the_broken_health_check_fails_alone(
        tmp_path, settings_for, monkeypatch, docker_client, remove_test_images):
    traits = generate_compose_run_repo(tmp_path / "repo")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = settings_for(tmp_path / "repo")

    summary = run_pipeline(settings)
    names = sorted(traits.services)
    sound = [n for n in names if n != UNHEALTHY]
    assert sorted(summary.built) == names and summary.failed == [], summary
    # The broken one fails alone; the release gate says so.
    assert sorted(summary.failed_gates) == [f"image/{UNHEALTHY}:integration", "verified_release:release_gates"]
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    entries = {e["service"]: e for e in manifest["images"]}
    for name in sound:
        assert entries[name]["tests"] == {"lint": "passed", "unit": "passed", "integration": "passed"}, name
        assert entries[name]["repo_digest"], name
    assert entries[UNHEALTHY]["tests"] == {"lint": "passed", "unit": "passed", "integration": "failed"}

    instance = open_instance(settings)
    keys = [dg.AssetCheckKey(dg.AssetKey(["image", n]), "integration") for n in names]
    checks = {k.asset_key.path[-1]: r.evaluation
              for k, r in instance.event_log_storage.get_latest_asset_check_execution_by_key(keys).items()}
    failure = checks[UNHEALTHY].description
    assert f"probes port {NEVER_OPENED}, where nothing listens" in failure, failure
    assert "compose's healthcheck of status-board in docker-compose.yml" in failure
    # Each check says which compose file and service its settings came from: keys, never values.
    ledger = checks["ledger"].metadata["details"].value["compose"]
    assert ledger["compose_file"] == "docker-compose.yml" and ledger["compose_service"] == "ledger"
    assert ledger["environment_keys"] == ["LEDGER_CURRENCY", "LEDGER_SIGNING_KEY"]
    assert ledger["env_files"] == ["config/ledger.env"]
    assert checks["notifier"].metadata["details"].value["compose"]["healthcheck"] == "compose"
    assert checks["notifier"].metadata["details"].value["port_from"] == "compose"
    # The secret .env gives ledger (which it prints as it starts) reached its test container only.
    secret = traits.secret[1].encode()
    assert "ledger: signing with ***" in (settings.reports / "test_results_ledger_integration.log").read_text()
    leaks = [f for root in (settings.reports, settings.artifacts, tmp_path / "dagster_home")
             for f in _files_holding(root, secret)]
    assert leaks == []
    ledger_image = docker_client.images.get(entries["ledger"]["image_id"])  # nothing baked into the image
    assert secret.decode() not in json.dumps([ledger_image.attrs, ledger_image.history()])

    # The root context is built from a mirror of the repository, not from the working copy's root
    # (reports, Dagster's storage, the signing key): nothing changed, nothing is built again.
    second = run_pipeline(settings)
    assert second.built == [], second

    # The operator waives the broken one on the record: the release is made without it, and the
    # manifest, the release notes, the PDF and the package say it was waived (issue 15's bar).
    (settings.repo / "nexus-agent.toml").write_text(
        f'[parity]\ncritical = []\n\n[release]\nwaive = [{{ service = "{UNHEALTHY}", reason = "health check probes the wrong port, OPS-7", '
        'until = "2099-12-31" }]\n')
    third = run_pipeline(settings)
    # (gateway builds again: its context is the repository root, which nexus-agent.toml is part of)
    assert third.ok and third.built == ["gateway"], third
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    [waived] = manifest["waived"]
    assert (waived["service"], waived["until"], waived["committed_by"]) == (UNHEALTHY, "2099-12-31", "uncommitted")
    assert sorted(e["service"] for e in manifest["images"] if e.get("repo_digest")) == sound
    [notes] = settings.workdir.glob("releases/v1.0.0/release_notes.md")
    assert f"| {UNHEALTHY} | " in notes.read_text() and "health check probes the wrong port" in notes.read_text()
    [pdf] = settings.reports.glob("compliance_report_*.pdf")
    text = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert f"waived: {UNHEALTHY} WAIVED" in text
    [package] = settings.reports.glob("deployment_package_*.tar.gz")
    with tarfile.open(package) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/docker-compose.full.yml"))
        stack = archive.extractfile(member).read().decode()
    assert UNHEALTHY not in stack and all(name in stack for name in sound)
