"""The push in the whole pipeline, against a real registry with htpasswd auth: a broken service
does not stop the others' pushes, nothing is pushed twice, a new version re-tags and pushes
without a rebuild, the manifest validates against its schema and names registry digests that
pull; wrong credentials end in one clear line and the secret is nowhere."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from jsonschema import Draft202012Validator

from nexus_assets.cli.pipeline import open_instance, run_pipeline
from nexus_assets.synthetic import generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "artifacts_manifest.schema.json"


@pytest.fixture
def settings(tmp_path, settings_for, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    return settings_for(repo)


def _manifest(settings) -> dict:
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    errors = [e.message for e in Draft202012Validator(json.loads(SCHEMA.read_text())).iter_errors(manifest)]
    assert errors == []
    return manifest


def test_a_broken_service_does_not_stop_the_others_pushes_and_nothing_is_pushed_twice(
        settings, docker_client, remove_test_images):
    dockerfile = settings.repo / "services" / "node-svc-001" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app", "RUN exit 7\nWORKDIR /app", 1))
    first = run_pipeline(settings)
    assert first.failed == ["node-svc-001"] and not first.ok
    assert sorted(first.pushed) == ["node-svc-002", "py-svc-003"], "the push ran for the services that built"
    manifest = _manifest(settings)
    entries = {i["service"]: i for i in manifest["images"]}
    assert entries["node-svc-001"]["status"] == "failed" and entries["node-svc-001"]["digest"] is None
    for name in ("node-svc-002", "py-svc-003"):
        entry = entries[name]
        assert entry["status"] == "current" and entry["digest"].startswith("sha256:")
        assert entry["image_id"] == docker_client.images.get(entry["image"]).id != entry["digest"]
        assert entry["repo_digest"] == f"{settings.registry}/nexus/{name}@{entry['digest']}"
        assert entry["push_run_id"] == entry["image_run_id"] == manifest["dagster_run_id"]
        assert entry["sbom"] is None and entry["provenance"] is None
    assert manifest["totals"]["with_digest"] == 2

    instance = open_instance(settings)
    pushed = instance.get_latest_materialization_event(dg.AssetKey(["pushed", "py-svc-003"]))
    assert pushed is not None and pushed.asset_materialization is not None
    metadata = {k: v.value for k, v in pushed.asset_materialization.metadata.items()}
    assert metadata["repo_digest"] == entries["py-svc-003"]["repo_digest"] and metadata["pushed"] is True
    assert metadata["tag"] == f"{settings.registry}/nexus/py-svc-003:1.0.0" and metadata["registry"] == settings.registry
    assert pushed.asset_materialization.tags["dagster/data_version"] == metadata["digest"]

    dockerfile.write_text(dockerfile.read_text().replace("RUN exit 7\n", ""))
    fixed = run_pipeline(settings)
    assert fixed.ok and fixed.built == ["node-svc-001"] and fixed.pushed == ["node-svc-001"]

    unchanged = run_pipeline(settings)
    assert unchanged.ok and unchanged.built == [] and unchanged.pushed == [] and unchanged.run_ids == []

    newer = run_pipeline(replace(settings, version="1.0.1"))
    assert newer.ok and newer.built == [], "a new version re-tags, never rebuilds"
    assert sorted(newer.pushed) == ["node-svc-001", "node-svc-002", "py-svc-003"]
    entry = next(i for i in _manifest(settings)["images"] if i["service"] == "py-svc-003")
    assert entry["image"].endswith(":1.0.1") and entry["digest"] == entries["py-svc-003"]["digest"]

    docker_client.images.remove(entry["image_id"], force=True)
    auth = {"username": os.environ["REGISTRY_USERNAME"], "password": os.environ["REGISTRY_PASSWORD"]}
    assert docker_client.images.pull(entry["repo_digest"], auth_config=auth).id == entry["image_id"]


def test_wrong_credentials_end_in_one_clear_line_and_the_secret_is_nowhere(
        settings, monkeypatch, capfd, remove_test_images):
    secret = "wrong-password-5b1f0c9e7d"
    monkeypatch.setenv("REGISTRY_PASSWORD", secret)
    summary = run_pipeline(settings)
    assert not summary.ok and summary.pushed == [] and sorted(summary.built) == sorted(summary.not_pushed)
    registry_host = settings.registry.split("/")[0]
    out = capfd.readouterr()
    said = [line for line in (out.out + out.err).splitlines() if "refused the credentials" in line]
    assert said and all(registry_host in line for line in said), said
    assert any("artifacts_manifest:manifest_has_digests FAILED" in line for line in out.out.splitlines())
    assert secret not in out.out + out.err
    for path in [*settings.reports.rglob("*"), *settings.artifacts.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    instance = open_instance(settings)
    for run_id in summary.run_ids:
        for record in instance.all_logs(run_id):
            assert secret not in dg.serialize_value(record), record.dagster_event_type
