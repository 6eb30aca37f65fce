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
from nexus_assets.testrepos.synthetic import generate_monorepo

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
    manifest = _manifest(settings)
    entries = {i["service"]: i for i in manifest["images"]}
    # Every service that built and passed its tests is pushed (a test that fails on a loaded
    # machine keeps that one image out, never the others); the broken one is not.
    released = sorted(n for n, e in entries.items() if e["status"] == "current")
    assert released and sorted(first.pushed) == released, "the push ran for the services that built"
    assert sorted(first.not_pushed) == sorted(set(entries) - set(released))
    assert entries["node-svc-001"]["status"] == "failed" and entries["node-svc-001"]["digest"] is None
    for name in released:
        entry = entries[name]
        assert entry["digest"].startswith("sha256:")
        assert entry["image_id"] == docker_client.images.get(entry["image"]).id != entry["digest"]
        assert entry["repo_digest"] == f"{settings.registry}/nexus/{name}@{entry['digest']}"
        assert entry["push_run_id"] == entry["image_run_id"] == manifest["dagster_run_id"]
        assert entry["sbom"]["path"] == f"sbom/{name}.cdx.json"  # the attest step's, for every pushed image
        assert entry["provenance"]["path"].startswith(f"provenance/{name}")
    assert manifest["totals"]["with_digest"] == len(released)

    name = released[0]
    instance = open_instance(settings)
    pushed = instance.get_latest_materialization_event(dg.AssetKey(["pushed", name]))
    assert pushed is not None and pushed.asset_materialization is not None
    metadata = {k: v.value for k, v in pushed.asset_materialization.metadata.items()}
    assert metadata["repo_digest"] == entries[name]["repo_digest"] and metadata["pushed"] is True
    assert metadata["tag"] == f"{settings.registry}/nexus/{name}:1.0.0" and metadata["registry"] == settings.registry
    assert pushed.asset_materialization.tags["dagster/data_version"] == metadata["repo_digest"]

    dockerfile.write_text(dockerfile.read_text().replace("RUN exit 7\n", ""))
    fixed = run_pipeline(settings)
    assert fixed.built == ["node-svc-001"]
    fixed_entry = next(i for i in _manifest(settings)["images"] if i["service"] == "node-svc-001")
    assert fixed.pushed == (["node-svc-001"] if fixed_entry["status"] == "current" else [])

    unchanged = run_pipeline(settings)
    assert unchanged.built == [] and unchanged.pushed == [] and unchanged.run_ids == [], "nothing changed: no run"

    newer = run_pipeline(replace(settings, version="1.0.1"))
    assert newer.built == [], "a new version re-tags, never rebuilds"
    current = sorted(i["service"] for i in _manifest(settings)["images"] if i["status"] == "current")
    assert sorted(newer.pushed) == current and name in current
    entry = next(i for i in _manifest(settings)["images"] if i["service"] == name)
    assert entry["image"].endswith(":1.0.1") and entry["digest"] == entries[name]["digest"]

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


def test_an_image_is_pushed_while_the_other_services_still_build(tmp_path, settings_for, monkeypatch,
                                                                 remove_test_images):
    # One build and one push at a time: an image whose tests passed goes to the registry while
    # the next services build, so a push ends (and pushed/<service> is recorded) before the last
    # image is built, not after every build as a push at the end of the step would.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    repo = tmp_path / "repo"
    generate_monorepo(repo, 4)
    settings = settings_for(repo, max_parallel=1)
    summary = run_pipeline(settings)
    assert len(summary.built) == 4 and sorted(summary.pushed) == sorted(summary.built), summary
    instance = open_instance(settings)
    order = [entry.dagster_event.asset_key.path for run_id in summary.run_ids  # in the order yielded
             for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)]
    built = [i for i, key in enumerate(order) if key[0] == "image"]
    pushed = [i for i, key in enumerate(order) if key[0] == "pushed"]
    assert len(built) == 4 and len(pushed) == 4, order
    assert pushed[0] < built[-1], f"the first push ended only after the last build: {order}"
    for name in summary.pushed:  # and each push after its own image
        assert order.index(["image", name]) < order.index(["pushed", name]), order
