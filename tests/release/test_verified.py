"""The verified release in a real git repository: a release commit with releases/vX.Y.Z/, an
annotated tag and the verified_release branch, the target's working tree untouched; a re-run
makes no duplicate tag and says so; a failed gate blocks and is named; the notes of the next
release name the service whose digest and SBOM changed, read from the previous tag."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from nexus_assets.core.errors import NexusError
from nexus_assets.release.notes import Gate
from nexus_assets.release.verified import make_release

from .conftest import commit_file, git, write_inputs

PASSED = [Gate("artifacts_manifest:manifest_has_digests", True, "every service has an image digest"),
          Gate("discrepancy_report:critical_modules_gate", True, "1 critical module missing")]


def tags(repo) -> list[str]:
    return git(repo, "tag", "--list").splitlines()


def test_release_makes_commit_tag_and_branch_and_leaves_the_checkout_alone(release_settings, target_repo):
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a", "auth": "b"})
    (target_repo / "untracked.txt").write_text("mine")
    head, status = git(target_repo, "rev-parse", "HEAD"), git(target_repo, "status", "--porcelain")

    outcome = make_release(settings, PASSED, run_id="run-1")

    assert outcome.made and not outcome.already_released and outcome.failed_gates == []
    assert tags(target_repo) == ["verified_release_v1.2.0"]
    assert git(target_repo, "cat-file", "-t", "verified_release_v1.2.0") == "tag"  # annotated
    released = git(target_repo, "rev-parse", "verified_release_v1.2.0^{commit}")
    assert released == outcome.release_commit == git(target_repo, "rev-parse", "verified_release")
    assert git(target_repo, "rev-parse", f"{released}^1") == head == outcome.source_commit
    files = git(target_repo, "ls-tree", "-r", "--name-only", released).splitlines()
    assert {"releases/v1.2.0/artifacts_manifest.json", "releases/v1.2.0/release_notes.md",
            "releases/v1.2.0/sbom_components.json", "services/users/app.py"} <= set(files)
    # the target's HEAD, branch, index and working tree are as they were
    assert git(target_repo, "rev-parse", "HEAD") == head
    assert git(target_repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(target_repo, "status", "--porcelain") == status
    folder = settings.workdir / "releases" / "v1.2.0"
    assert sorted(p.name for p in folder.iterdir()) == [
        "artifacts_manifest.json", "compliance_report_20261125.pdf", "deployment_package_20261125.tar.gz",
        "discovery_parsed.json", "discrepancy_report.json", "release.json", "release_notes.md",
        "sbom_components.json"]
    notes = (folder / "release_notes.md").read_text()
    assert "# Verified release 1.2.0" in notes and "First release" in notes
    assert "127.0.0.1:5000/nexus/users@sha256:" + "a" * 64 in notes
    assert "| artifacts_manifest:manifest_has_digests | passed |" in notes
    assert "| auth | missing | yes |" in notes  # the critical modules and what was scaffolded


def test_same_version_again_makes_no_duplicate_tag_and_says_so(release_settings, target_repo):
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    first = make_release(settings, PASSED)
    again = make_release(settings, PASSED)
    assert again.made and again.already_released
    assert tags(target_repo) == ["verified_release_v1.2.0"]
    assert again.release_commit == first.release_commit == git(target_repo, "rev-parse", "verified_release")
    assert any("already exists" in m and "no new tag" in m for m in again.messages)
    assert again.notes == first.notes  # the notes the tag holds


def test_a_failed_gate_blocks_the_release_and_is_named(release_settings, target_repo):
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    gates = [*PASSED, Gate("image/users:unit", False, "2 tests failed"),
             Gate("compliance_report:pdf_readable", False, "no pages"),
             Gate("sbom/users:advisory", False, "one advisory", severity="WARN")]
    outcome = make_release(settings, gates)
    assert not outcome.made
    assert outcome.failed_gates == ["image/users:unit", "compliance_report:pdf_readable"]  # not the WARN one
    assert "image/users:unit" in outcome.messages[0] and "compliance_report:pdf_readable" in outcome.messages[0]
    assert tags(target_repo) == []
    assert git(target_repo, "branch", "--list", "verified_release") == ""
    assert not (settings.workdir / "releases").exists()


def test_a_version_tagged_on_another_commit_is_refused(release_settings, target_repo):
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    make_release(settings, PASSED)
    commit_file(target_repo, "services/users/app.py", "print('users 2')\n")
    outcome = make_release(settings, PASSED)  # a refusal on record, not a crash that leaves "made" behind
    assert not outcome.made and outcome.problems
    assert re.search(r"verified_release_v1\.2\.0 already exists for commit .* leave it out", outcome.messages[0])
    assert "a new version is required to ship changed images" in outcome.messages[0]
    assert tags(target_repo) == ["verified_release_v1.2.0"]


def test_the_same_version_and_commit_with_other_images_is_not_released_again(release_settings, target_repo):
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a", "auth": "b"})
    first = make_release(settings, PASSED)
    write_inputs(settings, {"users": "c", "auth": "b"})  # rebuilt: another image for the same commit
    again = make_release(settings, PASSED)
    assert not again.made and not again.already_released
    assert f"users: released sha256:{'a' * 64}, this build sha256:{'c' * 64}" in again.messages[0]
    assert "auth" not in again.messages[0] and "a new version is required" in again.messages[0]
    assert tags(target_repo) == ["verified_release_v1.2.0"]
    assert git(target_repo, "rev-parse", "verified_release") == first.release_commit


def test_next_release_names_the_changed_service_read_from_the_previous_tag(release_settings, target_repo):
    first = release_settings("1.2.0")
    write_inputs(first, {"users": "a", "auth": "b"},
                 {"users": {"express": "4.18.2", "lodash": "4.17.20"}, "auth": {"flask": "3.0.0"}})
    make_release(first, PASSED)
    commit_file(target_repo, "services/users/app.py", "print('users 2')\n")
    shutil.rmtree(first.workdir)  # a fresh runner: the previous release is read from its tag
    second = release_settings("1.2.1")
    write_inputs(second, {"users": "c", "auth": "b", "search": "d"},
                 {"users": {"express": "4.19.0", "left-pad": "1.3.0"}, "auth": {"flask": "3.0.0"},
                  "search": {"x": "1"}})
    outcome = make_release(second, PASSED)
    assert outcome.previous_version == "1.2.0"
    assert outcome.changed_services == ["search", "users"]  # auth: same digest, same components
    notes = outcome.notes or ""
    assert "2 of 3 service(s) changed since v1.2.0" in notes
    assert f"**users**: digest `127.0.0.1:5000/nexus/users@sha256:{'a' * 64}` -> " \
           f"`127.0.0.1:5000/nexus/users@sha256:{'c' * 64}`" in notes
    assert "components added (1): `left-pad 1.3.0`" in notes
    assert "components removed (1): `lodash 4.17.20`" in notes
    assert "components updated (1): `express 4.18.2 -> 4.19.0`" in notes
    assert "**search**: new service" in notes and "**auth**" not in notes
    # the branch only moves forward: the new release commit has the previous one as parent
    parents = git(target_repo, "rev-list", "--parents", "-n", "1", "verified_release").split()
    assert parents[2] == git(target_repo, "rev-parse", "verified_release_v1.2.0^{commit}")


def test_a_target_that_is_not_a_git_checkout_gets_the_folder_only(release_settings, tmp_path):
    plain = tmp_path / "plain"
    (plain / "services").mkdir(parents=True)
    settings = release_settings("1.0.0", repo=plain)
    write_inputs(settings, {"users": "a"}, pdf=False, package=False)
    outcome = make_release(settings, PASSED)
    assert outcome.made and outcome.release_commit is None
    assert any("not a git checkout" in m for m in outcome.messages)
    notes = (settings.workdir / "releases" / "v1.0.0" / "release_notes.md").read_text()
    assert "Not produced by this run: compliance PDF" in notes
    # the next release compares with the previous folder
    settings2 = release_settings("1.0.1", repo=plain)
    write_inputs(settings2, {"users": "b"})
    assert make_release(settings2, PASSED).changed_services == ["users"]


def test_push_sends_branch_and_tag_to_the_remote(release_settings, target_repo, tmp_path, monkeypatch):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(target_repo, "remote", "add", "origin", str(remote))
    monkeypatch.setenv("NEXUS_RELEASE_PUSH", "origin")
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    outcome = make_release(settings, PASSED)
    assert git(remote, "rev-parse", "verified_release_v1.2.0^{commit}") == outcome.release_commit
    assert git(remote, "rev-parse", "refs/heads/verified_release") == outcome.release_commit
    assert make_release(settings, PASSED).already_released  # pushing again is fine


def test_no_commit_yet_is_a_clear_error(release_settings, tmp_path):
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    settings = release_settings("1.0.0", repo=empty)
    write_inputs(settings, {"users": "a"})
    with pytest.raises(NexusError, match="has no commit yet"):
        make_release(settings, PASSED)


def test_release_record_is_json(release_settings):
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    make_release(settings, PASSED)
    record = json.loads((settings.workdir / "releases" / "v1.2.0" / "release.json").read_text())
    assert record["made"] and record["tag"] == "verified_release_v1.2.0" and record["notes"] is None
