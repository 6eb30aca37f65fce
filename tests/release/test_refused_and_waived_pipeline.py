"""The real pipeline, engine and registry: a critical service refused (a link out of the repository
inside its folder) is never counted (issue 16, item 2: it used to get a verified release, parity
100%); then a non-critical service whose unit test fails is waived on the record and the release
goes out without it; then its waiver expires and it blocks again."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pypdf
import pytest

from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.core.settings import Settings
from nexus_assets.testrepos.synthetic import generate_monorepo

from .conftest import commit_file, git

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CRITICAL, OTHER, BROKEN = "node-svc-001", "node-svc-002", "py-svc-003"
CONFIG = f'[parity]\ncritical = ["{CRITICAL}"]\n'
WAIVE = (CONFIG + "\n[release]\nwaive = [\n"
         f'  {{ service = "{BROKEN}", reason = "unit test broken upstream, ticket OPS-12", until = "UNTIL" }},\n]\n')
FAILING_TEST = ("\n\nclass Broken(unittest.TestCase):\n    def test_broken_on_purpose(self) -> None:\n"
                "        self.fail('broken on purpose')\n")


def _json(path) -> dict:
    return json.loads(path.read_text())


def test_a_refused_critical_service_blocks_and_a_waived_one_lets_the_release_go(tmp_path, monkeypatch, capsys,
                                                                              unique_registry, remove_test_images):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("VERSION", "GITHUB_TOKEN", "NEXUS_RELEASE_PUSH"):
        monkeypatch.delenv(name, raising=False)
    repo, work, host = tmp_path / "repo", tmp_path / "work", tmp_path / "host"
    generate_monorepo(repo, 3)
    (repo / "nexus-agent.toml").write_text(CONFIG)
    host.mkdir()
    (host / "id_rsa").write_text("a host file the image must never get\n")
    (repo / "services" / CRITICAL / "keys").symlink_to(host)  # inside the service's folder, pointing out
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "monorepo")

    # 1. The critical service is refused: missing in parity, refused in the manifest, no release.
    first = run_pipeline(Settings.from_env(repo=repo, workdir=work, registry=unique_registry, version="1.0.0"))
    out = capsys.readouterr().out
    assert not first.ok
    assert git(repo, "tag", "--list") == ""
    discovery = _json(work / "reports" / "discovery_parsed.json")
    assert [(r["service"], r["reason"]) for r in discovery["refused"]] == [
        (CRITICAL, f"services/{CRITICAL}/keys resolves outside the repository (a link)")]
    parity = _json(work / "reports" / "discrepancy_report.json")
    row = next(m for m in parity["modules"] if m["name"] == CRITICAL)
    assert (row["status"], row["evidence"], row["critical"]) == ("missing", [], True)
    assert parity["parity_percent"] < 100 and parity["critical_missing"] == [CRITICAL]
    assert not (work / "services" / CRITICAL / ".nexus-scaffolded").exists()  # never scaffolded over
    manifest = _json(work / "artifacts" / "artifacts_manifest.json")
    entry = next(i for i in manifest["images"] if i["service"] == CRITICAL)
    assert (entry["status"], entry["digest"]) == ("refused", None)
    assert manifest["totals"]["refused"] == 1
    assert f"artifacts_manifest:manifest_has_digests FAILED: no registry digest for: {CRITICAL} (refused:" in out
    assert "release 1.0.0 not made" in out
    assert not (work / "releases" / "v1.0.0").exists()

    # 2. The link goes; a non-critical service's unit test breaks and is waived: the release is made without it.
    (repo / "services" / CRITICAL / "keys").unlink()
    tests = repo / "services" / BROKEN / "tests" / "test_app.py"
    tests.write_text(tests.read_text() + FAILING_TEST)
    commit_file(repo, "nexus-agent.toml", WAIVE.replace("UNTIL", "2099-12-31"), "waive the broken service")
    second = run_pipeline(Settings.from_env(repo=repo, workdir=work, registry=unique_registry, version="1.0.0"))
    out = capsys.readouterr().out
    assert second.ok, out
    assert git(repo, "tag", "--list") == "verified_release_v1.0.0"
    assert f"check image/{BROKEN}:unit FAILED" in out and f"waived (nexus-agent.toml [release] waive), not " \
                                                         f"released: {BROKEN}" in out
    manifest = _json(work / "artifacts" / "artifacts_manifest.json")
    [waived] = manifest["waived"]
    head = git(repo, "rev-parse", "HEAD")
    assert (waived["service"], waived["status"], waived["until"], waived["committed_by"], waived["commit"]) == (
        BROKEN, "tests_failed", "2099-12-31", "Test", head)
    assert manifest["problems"] == [] and {i["service"]: i["status"] for i in manifest["images"]} == {
        CRITICAL: "current", OTHER: "current", BROKEN: "tests_failed"}
    notes = git(repo, "show", "verified_release_v1.0.0:releases/v1.0.0/release_notes.md")
    assert "## Waived services" in notes and f"| {BROKEN} | unit tests failed | unit test broken upstream" in notes
    assert f"| image/{BROKEN}:unit | waived |" in notes
    [pdf] = (work / "reports").glob("compliance_report_*.pdf")
    text = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages)
    assert f"waived: {BROKEN} WAIVED" in text and "committed by Test" in text
    [package] = (work / "reports").glob("deployment_package_*.tar.gz")
    with tarfile.open(package) as archive:
        files = {m.name.split("/", 1)[1]: archive.extractfile(m).read().decode() for m in archive.getmembers()
                 if m.isfile() and m.name.split("/", 1)[1] in ("docker-compose.full.yml", "README.md")}
    assert BROKEN not in files["docker-compose.full.yml"] and CRITICAL in files["docker-compose.full.yml"]
    assert f"`{BROKEN}`: WAIVED until 2099-12-31: unit test broken upstream" in files["README.md"]

    # 3. The waiver expires: the service blocks the next release again, naming the waiver and its date.
    commit_file(repo, "nexus-agent.toml", WAIVE.replace("UNTIL", "2020-01-31"), "the waiver's day")
    third = run_pipeline(Settings.from_env(repo=repo, workdir=work, registry=unique_registry, version="1.0.1"))
    out = capsys.readouterr().out
    assert not third.ok and third.built == []
    assert (f"the waiver of {BROKEN} (nexus-agent.toml line 6) expired on 2020-01-31: unit tests failed"
            in out), out
    assert git(repo, "tag", "--list") == "verified_release_v1.0.0"
