"""SBOMs and signed provenance beside each image in a real registry (with auth), inside real
`nexus-agent run`s: a new version of unchanged services re-tags by manifest PUT and keeps their
statements; a fresh machine (empty Dagster instance and working copy, none of the images in the
engine, the same signing key) fetches and verifies them instead of making them, and a tampered
copy is refused and made again."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import pytest

from nexus_assets.attest.in_registry import artifact_tag, fetch, store
from nexus_assets.cli.main import main as nexus_agent
from nexus_assets.cli.pipeline import open_instance, run_pipeline
from nexus_assets.core.keys import provenance_key, pushed_key, sbom_key
from nexus_assets.registry.client import RegistryClient, credentials_from_env
from nexus_assets.testrepos.synthetic import generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]
NAMES = ["node-svc-001", "node-svc-002", "py-svc-003"]


def _metadata(settings, key) -> dict[str, dict]:
    instance = open_instance(settings)
    found = {}
    for record in instance.get_asset_records([key(n) for n in NAMES]):
        entry = record.asset_entry.last_materialization
        if entry is not None and entry.asset_materialization is not None:
            found[record.asset_entry.asset_key.path[-1]] = {
                k: getattr(v, "value", v) for k, v in entry.asset_materialization.metadata.items()} | {
                "run_id": entry.run_id}
    return found


def _drop_local_images(docker_client, registry: str) -> None:
    for image in docker_client.api.images():
        for tag in image.get("RepoTags") or []:
            if tag.startswith(registry + "/"):
                with contextlib.suppress(Exception):
                    docker_client.api.remove_image(tag, force=True)


def test_new_version_keeps_statements_and_a_fresh_machine_fetches_them(
        tmp_path, settings_for, monkeypatch, docker_client, remove_test_images):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    key = tmp_path / "keys" / "signing.pem"
    monkeypatch.setenv("NEXUS_SIGNING_KEY", str(key))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = settings_for(repo, signing_key=str(key))
    first = run_pipeline(settings)
    assert sorted(first.built) == NAMES, first
    pushed = _metadata(settings, pushed_key)
    provenance = _metadata(settings, provenance_key)
    client = RegistryClient(settings.registry, credentials_from_env())
    for name in NAMES:  # both beside the image, byte for byte the files here
        repository = client.repository(name)
        digest = pushed[name]["digest"]
        assert fetch(client, repository, digest, "sbom") == (settings.artifacts / "sbom" / f"{name}.cdx.json").read_bytes()
        assert fetch(client, repository, digest, "att") == (
            settings.artifacts / "provenance" / f"{name}.intoto.jsonl").read_bytes()
        assert "written now" in provenance[name]["in_registry"]

    # A new version, nothing changed: one manifest PUT per tag, the statements kept as signed.
    newer = run_pipeline(dataclasses.replace(settings, version="1.0.1"))
    assert newer.built == [], newer
    repushed = _metadata(settings, pushed_key)
    kept = _metadata(settings, provenance_key)
    for name in NAMES:
        assert repushed[name]["attempts"] == 0 and repushed[name]["digest"] == pushed[name]["digest"], repushed[name]
        assert repushed[name]["retagged"] == [f"{settings.registry}/nexus/{name}:1.0.1"]
        assert client.manifest_digest(client.repository(name), "1.0.1") == pushed[name]["digest"]
        assert kept[name]["sha256"] == provenance[name]["sha256"], "an unchanged image's statement was signed again"
    assert nexus_agent(["verify", "--workdir", str(settings.workdir)]) == 0

    # Tamper with one service's SBOM in the registry: the same tag, another document.
    victim = NAMES[1]
    repository, digest = client.repository(victim), pushed[victim]["digest"]
    subject = client.manifest(repository, digest)
    assert subject is not None
    bom = json.loads(fetch(client, repository, digest, "sbom") or b"{}")
    bom["components"] = bom["components"][1:]
    store(client, repository, subject, {"sbom": (json.dumps(bom).encode(), "tampered.cdx.json")})

    # A fresh machine: a new Dagster instance and working copy, no images, the same key.
    _drop_local_images(docker_client, settings.registry)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home_fresh"))
    fresh = dataclasses.replace(settings, version="1.0.1", workdir=tmp_path / "work_fresh")
    summary = run_pipeline(fresh)
    assert summary.built == [] and len(summary.pulled) == 3, summary
    sboms = _metadata(fresh, sbom_key)
    for name in NAMES:
        if name == victim:
            assert "from_registry" not in sboms[name], "a tampered SBOM was taken"
        else:
            tag = artifact_tag(pushed[name]["digest"], "sbom")
            assert sboms[name]["from_registry"] == f"{settings.registry}/nexus/{name}:{tag}"
            assert (fresh.artifacts / "sbom" / f"{name}.cdx.json").read_bytes() == (
                settings.artifacts / "sbom" / f"{name}.cdx.json").read_bytes()
    signed = _metadata(fresh, provenance_key)
    assert all(signed[n]["reused"] == "kept" for n in NAMES if n != victim), signed
    # The made-again SBOM is the true one: the same bytes as before, so the registry holds it again.
    assert fetch(client, repository, digest, "sbom") == (settings.artifacts / "sbom" / f"{victim}.cdx.json").read_bytes()
    assert nexus_agent(["verify", "--workdir", str(fresh.workdir)]) == 0
    client.close()
