"""The attest stage inside real `nexus-agent run`s: a service that fails to build does not stop
the other services' SBOMs; an unchanged service gets no new SBOM; a changed one gets one."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from nexus_assets.cli.pipeline import open_instance, run_pipeline
from nexus_assets.core.keys import ATTESTATIONS, sbom_key
from nexus_assets.synthetic import generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def small_repo(tmp_path):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    return repo


@pytest.fixture
def settings(small_repo, settings_for, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("NEXUS_SIGNING_KEY", str(tmp_path / "keys" / "signing.pem"))
    return settings_for(small_repo, signing_key=str(tmp_path / "keys" / "signing.pem"))


def _sbom_runs(settings, names):
    instance = open_instance(settings)
    found = {}
    for record in instance.get_asset_records([sbom_key(n) for n in names]):
        entry = record.asset_entry.last_materialization
        if entry is not None:
            found[record.asset_entry.asset_key.path[-1]] = entry.run_id
    return found


def test_a_failed_service_does_not_stop_the_others_sboms(settings, small_repo, remove_test_images):
    names = ["node-svc-001", "node-svc-002", "py-svc-003"]
    dockerfile = small_repo / "services" / "node-svc-001" / "Dockerfile"
    good = dockerfile.read_text()
    dockerfile.write_text(good.replace("WORKDIR /app", "RUN exit 7\nWORKDIR /app", 1))
    first = run_pipeline(settings)
    assert first.failed == ["node-svc-001"]
    made = _sbom_runs(settings, names)
    assert sorted(made) == ["node-svc-002", "py-svc-003"], "the failed build skipped the other SBOMs"
    for name in ("node-svc-002", "py-svc-003"):
        bom = json.loads((settings.artifacts / "sbom" / f"{name}.cdx.json").read_text())
        purls = {c["purl"] for c in bom["components"]}
        assert any(p.startswith("pkg:deb/debian/nodejs@") for p in purls)  # the base's dpkg database
    assert not (settings.artifacts / "sbom" / "node-svc-001.cdx.json").exists()
    attested = open_instance(settings).get_latest_materialization_event(ATTESTATIONS)
    assert attested is not None and attested.run_id == made["py-svc-003"]
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    sboms = {e["service"]: e.get("sbom") for e in manifest["images"]}
    assert sboms["node-svc-001"] is None and sboms["py-svc-003"]["path"] == "sbom/py-svc-003.cdx.json"

    dockerfile.write_text(good)
    fixed = run_pipeline(settings)
    assert fixed.built == ["node-svc-001"]
    again = _sbom_runs(settings, names)
    assert again["node-svc-001"] == fixed.run_ids[-1]
    assert {n: again[n] for n in ("node-svc-002", "py-svc-003")} == {n: made[n] for n in ("node-svc-002", "py-svc-003")}, \
        "an unchanged image got a new SBOM"
    assert not dg.AssetKey(["sbom", "node-svc-001"]) is None
