"""The release gate reads the registry itself (a real registry process, images put through its
API): a version tag naming another digest than the manifest's, or a provenance naming another
subject, blocks the release naming both digests; a made release whose tags moved since is
reported on the next run with the repair command, and `nexus-agent repair-tags` puts them back
on the released digests; `nexus-agent verify` never claims a release that was not made."""

from __future__ import annotations

import base64
import hashlib
import json

from nexus_assets.cli.main import main
from nexus_assets.cli.outcome import say_release
from nexus_assets.cli.verify import release_claim
from nexus_assets.resources.registry import Registry

from .conftest import git, put_image
from .test_release_assets import check, run_release


def tag_digest(registry: str, service: str, tag: str) -> str | None:
    host, _, prefix = registry.partition("/")
    with Registry(address=host).client() as client:
        return client.manifest_digest(f"{prefix}/nexus/{service}", tag)


def test_a_version_tag_naming_another_image_blocks_the_release_naming_both_digests(
        release_settings, target_repo, unique_registry):
    settings = release_settings("1.2.0", registry=unique_registry)
    ours = {name: put_image(unique_registry, name, "1.2.0") for name in ("auth", "users")}
    theirs = put_image(unique_registry, "users", "1.2.0")  # another run pushed over it
    result = run_release(settings, manifest_gate_passes=True, digests=ours)
    evaluation = check(result, "release_gates")
    assert not evaluation.passed
    text = evaluation.description or ""
    assert f"{unique_registry}/nexus/users:1.2.0 names {theirs}, not the manifest's {ours['users']}" in text
    assert "auth" not in text.split("not made", 1)[1]
    assert git(target_repo, "tag", "--list") == ""
    record = json.loads((settings.artifacts / "verified_release.json").read_text())
    assert record["made"] is False and record["problems"]


def test_a_provenance_naming_another_digest_blocks_the_release(release_settings, target_repo, unique_registry,
                                                                registry_resource):
    settings = release_settings("1.2.0", registry=unique_registry)
    digests = {name: put_image(unique_registry, name, "1.2.0") for name in ("auth", "users")}
    run_release(settings, manifest_gate_passes=True, digests=digests)  # writes the inputs; released
    git(target_repo, "tag", "-d", "verified_release_v1.2.0")  # start over: not released yet
    manifest_path = settings.artifacts / "artifacts_manifest.json"
    statement = {"subject": [{"name": f"{unique_registry}/nexus/users", "digest": {"sha256": "f" * 64}}]}
    envelope = json.dumps({"payload": base64.b64encode(json.dumps(statement).encode()).decode()}) + "\n"
    (settings.artifacts / "provenance").mkdir(exist_ok=True)
    (settings.artifacts / "provenance" / "users.intoto.jsonl").write_text(envelope)
    from nexus_assets.release.registry_gate import registry_gate

    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["images"]:
        if entry["service"] == "users":
            entry["provenance"] = {"path": "provenance/users.intoto.jsonl",
                                   "sha256": hashlib.sha256(envelope.encode()).hexdigest()}
    manifest_path.write_text(json.dumps(manifest))
    assert registry_gate(settings, registry_resource(unique_registry)) == [f"users: the signed provenance names sha256:{'f' * 64}, "
                                       f"the manifest {digests['users']}"]


def test_a_made_release_whose_tags_moved_is_reported_and_repair_tags_puts_them_back(
        release_settings, target_repo, unique_registry, capsys):
    settings = release_settings("1.2.0", registry=unique_registry)
    digests = {name: put_image(unique_registry, name, "1.2.0") for name in ("auth", "users")}
    assert check(run_release(settings, manifest_gate_passes=True, digests=digests), "release_gates").passed
    moved = put_image(unique_registry, "users", "1.2.0")  # someone pushed over the released tag

    again = check(run_release(settings, manifest_gate_passes=True, digests=digests), "release_gates")
    assert not again.passed  # exit 1 for the next run, naming the tag and the command
    text = again.description or ""
    assert f"{unique_registry}/nexus/users:1.2.0 names {moved}, not the released {digests['users']}" in text
    assert "nexus-agent repair-tags --version 1.2.0" in text
    capsys.readouterr()
    assert say_release(settings) is False  # the run with nothing to do says the same
    assert f"users:1.2.0 names {moved}" in capsys.readouterr().out

    assert main(["repair-tags", "--version", "1.2.0", "--repo", str(target_repo),
                 "--workdir", str(settings.workdir)]) == 0
    out = capsys.readouterr().out
    assert f"users:1.2.0 re-pointed from {moved} to {digests['users']}" in out
    assert f"auth:1.2.0 already names {digests['auth']}" in out
    assert tag_digest(unique_registry, "users", "1.2.0") == digests["users"]
    assert say_release(settings) is True
    assert check(run_release(settings, manifest_gate_passes=True, digests=digests), "release_gates").passed
    assert main(["repair-tags", "--version", "9.9.9", "--repo", str(target_repo),
                 "--workdir", str(settings.workdir)]) == 2  # no such release: nothing to repair


def test_verify_never_claims_a_release_that_was_not_made(tmp_path):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    manifest = {"version": "1.0.0", "release_tag": "verified_release_v1.0.0",
                "images": [{"service": "users", "digest": "sha256:" + "a" * 64}]}
    assert release_claim(tmp_path, manifest)[0]  # no record: no release claimed, nothing to refute
    record = {"version": "1.0.0", "made": False, "messages": ["release 1.0.0 not made: version already released"]}
    (artifacts / "verified_release.json").write_text(json.dumps(record))
    holds, line = release_claim(tmp_path, manifest)
    assert not holds and line.startswith("NOT RELEASED verified_release_v1.0.0") and "already released" in line
    (artifacts / "verified_release.json").write_text(json.dumps({**record, "made": True}))
    kept = tmp_path / "releases" / "v1.0.0"
    kept.mkdir(parents=True)
    (kept / "artifacts_manifest.json").write_text(json.dumps(
        {"images": [{"service": "users", "digest": "sha256:" + "b" * 64}]}))
    holds, line = release_claim(tmp_path, manifest)
    assert not holds and "not the released ones" in line
    (kept / "artifacts_manifest.json").write_text(json.dumps(manifest))
    assert release_claim(tmp_path, manifest) == (True, "RELEASE verified_release_v1.0.0: made from these images")
