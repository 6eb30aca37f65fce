"""A released version is immutable, on the real engine, registry and a git checkout (issue 16):
re-running `--version 1.0.0` after a change refuses before anything goes under the version's
tags (the registry's :1.0.0 and :latest stay on the released digests: the bar check), records
the refusal (made: false) and `nexus-agent verify` does not claim the release; back on the
released commit, a tag moved in the registry is reported by a run with nothing to do (exit 1,
naming the tag) and `nexus-agent repair-tags` puts it back. After a service fails to build, e2e
names it instead of the registry's `no basic auth credentials`."""

from __future__ import annotations

import json
import subprocess

import pytest

from nexus_assets.cli.main import main
from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.cli.verify import verify
from nexus_assets.core.settings import Settings
from nexus_assets.registry.client import RegistryClient, credentials_from_env
from nexus_assets.testrepos.synthetic import generate_monorepo

from .conftest import commit_file, git

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def registry_tags(registry: str, names: list[str], *tags: str) -> dict[str, str | None]:
    host, _, prefix = registry.partition("/")
    with RegistryClient(host, credentials_from_env()) as client:
        return {f"{n}:{t}": client.manifest_digest(f"{prefix}/nexus/{n}", t) for n in names for t in tags}


@pytest.fixture
def git_monorepo(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("VERSION", "GITHUB_TOKEN", "NEXUS_RELEASE_PUSH"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    names = generate_monorepo(repo, 2)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "monorepo")
    return repo, names


def test_rerunning_a_released_version_after_a_change_leaves_its_registry_tags_on_the_released_digests(
        git_monorepo, tmp_path, unique_registry, remove_test_images, capsys):
    repo, names = git_monorepo
    settings = Settings.from_env(repo=repo, workdir=tmp_path / "work", registry=unique_registry, version="1.0.0")
    first = run_pipeline(settings)
    assert first.ok, first
    released = registry_tags(unique_registry, names, "1.0.0", "latest")
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    assert {f"{i['service']}:{t}": i["digest"] for i in manifest["images"] for t in ("1.0.0", "latest")} == released
    assert verify(settings.workdir) == 0

    changed = names[-1]  # node services (generate_monorepo: every third one is Python)
    app = repo / "services" / changed / "server.js"
    commit_file(repo, f"services/{changed}/server.js", app.read_text() + "\n// changed after 1.0.0\n")
    capsys.readouterr()
    second = run_pipeline(settings)
    out = capsys.readouterr().out
    assert not second.ok and second.built == [changed]
    unreleased = next(i for i in json.loads((settings.artifacts / "artifacts_manifest.json").read_text())["images"]
                      if i["service"] == changed)
    assert unreleased["digest"] not in released.values()  # pushed, by digest only
    assert registry_tags(unique_registry, names, "1.0.0", "latest") == released  # the bar check
    assert "verified_release_v1.0.0 is already released: images are pushed under build-<image id> only" in out
    assert "a new version is required to ship changed images" in out
    record = json.loads((settings.artifacts / "verified_release.json").read_text())
    assert record["made"] is False and "already exists for commit" in record["messages"][0]
    capsys.readouterr()
    assert verify(settings.workdir) == 1  # its evidence is of a build that was never released
    said = capsys.readouterr().out
    assert "NOT RELEASED verified_release_v1.0.0" in said and said.rstrip().splitlines()[-1].startswith("NOT VERIFIED")
    assert git(repo, "tag", "--list") == "verified_release_v1.0.0"
    capsys.readouterr()
    idle = run_pipeline(settings)  # nothing changed since: no run, the refusal said again
    assert not idle.ok and idle.run_ids == []
    assert "already exists for commit" in capsys.readouterr().out

    # Back on the released commit: the release is that one again; then a tag moved in the registry.
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    back = run_pipeline(settings)
    assert back.ok, back
    assert registry_tags(unique_registry, names, "1.0.0") == {k: v for k, v in released.items() if k.endswith("1.0.0")}
    host, _, prefix = unique_registry.partition("/")
    with RegistryClient(host, credentials_from_env()) as client:  # the unreleased image pushed over a released tag
        assert client.tag_manifest(f"{prefix}/nexus/{changed}", unreleased["digest"], "1.0.0")
    capsys.readouterr()
    moved = run_pipeline(settings)
    out = capsys.readouterr().out
    assert not moved.ok and moved.run_ids == []  # nothing changed here: no run, but the tag is reported
    assert f"{unique_registry}/nexus/{changed}:1.0.0 names {unreleased['digest']}, not the released " \
           f"{released[f'{changed}:1.0.0']}" in out and "nexus-agent repair-tags --version 1.0.0" in out
    assert main(["repair-tags", "--version", "1.0.0", "--repo", str(repo), "--workdir", str(settings.workdir)]) == 0
    assert registry_tags(unique_registry, names, "1.0.0") == {k: v for k, v in released.items() if k.endswith("1.0.0")}
    assert run_pipeline(settings).ok


def test_e2e_names_the_service_that_did_not_build_instead_of_a_registry_error(
        git_monorepo, tmp_path, unique_registry, remove_test_images):
    repo, names = git_monorepo
    broken = names[0]
    dockerfile = repo / "services" / broken / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app", "RUN exit 7\nWORKDIR /app", 1))
    outside = tmp_path / "outside"  # a service folder that is a link out of the repository: refused
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM scratch\n")
    (repo / "services" / "linked").symlink_to(outside)
    e2e = ["version: '3.8'", "services:"] + [line for n in [*names, "linked"] for line in (
        f"  {n}:", f"    image: ${{REGISTRY}}/nexus/{n}:${{VERSION}}")]
    (repo / "docker-compose.e2e.yml").write_text("\n".join(e2e) + "\n")
    settings = Settings.from_env(repo=repo, workdir=tmp_path / "work", registry=unique_registry, version="1.0.0")
    summary = run_pipeline(settings)
    assert not summary.ok and summary.failed == [broken]
    [event] = [e for e in _check_evaluations(settings) if e["name"] == "e2e"]
    assert not event["passed"]
    assert event["text"].startswith("e2e not started: the stack needs 2 service(s) with no image: ")
    assert f"{broken} (its build failed: service {broken}: docker build failed at " in event["text"]
    assert "linked (refused by discovery: resolves outside the repository" in event["text"]
    assert "no basic auth credentials" not in event["text"] and names[1] not in event["text"]


def _check_evaluations(settings: Settings) -> list[dict]:
    import dagster as dg

    from nexus_assets.cli.pipeline import open_instance

    instance = open_instance(settings)
    key = dg.AssetCheckKey(dg.AssetKey("e2e_tests"), "e2e")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    evaluation = record.evaluation if record else None
    return [{"name": "e2e", "passed": evaluation.passed, "text": evaluation.description or ""}] if evaluation else []
