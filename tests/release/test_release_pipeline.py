"""`nexus-agent run` releases, on the real engine and a real git checkout: 1.2.0 tags the target,
a change to one service and a run without a version release 1.2.1 whose notes name that service,
and a run with nothing new makes no run, no tag and keeps 1.2.1."""

from __future__ import annotations

import json
import subprocess

import pytest

from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.core.settings import Settings
from nexus_assets.testrepos.synthetic import generate_monorepo

from .conftest import commit_file, git

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_release_then_next_patch_after_one_change(tmp_path, monkeypatch, unique_registry, remove_test_images,
                                                  capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("VERSION", "GITHUB_TOKEN", "NEXUS_RELEASE_PUSH"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "repo"
    generate_monorepo(repo, 3)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "monorepo")
    work = tmp_path / "work"

    first = run_pipeline(Settings.from_env(repo=repo, workdir=work, registry=unique_registry, version="1.2.0"))
    assert first.ok, first
    assert git(repo, "tag", "--list") == "verified_release_v1.2.0"
    record = json.loads((work / "artifacts" / "verified_release.json").read_text())
    assert record["made"] and record["previous_version"] is None
    [report_path] = (work / "reports").glob("deployment_report_*.json")
    report = json.loads(report_path.read_text())
    assert report["release"]["made"] and len(report["built"]) == 3
    assert all(row["run_id"] == first.run_ids[0] for row in report["built"])

    app = repo / "services" / "py-svc-003" / "app.py"
    commit_file(repo, "services/py-svc-003/app.py", app.read_text() + "\n# changed for 1.2.1\n")
    settings = Settings.from_env(repo=repo, workdir=work, registry=unique_registry)
    assert (settings.version, settings.version_auto) == ("1.2.1", True)
    second = run_pipeline(settings)
    assert second.ok, second
    assert second.built == ["py-svc-003"]
    assert git(repo, "tag", "--list").splitlines() == ["verified_release_v1.2.0", "verified_release_v1.2.1"]
    notes = git(repo, "show", "verified_release_v1.2.1:releases/v1.2.1/release_notes.md")
    assert "1 of 3 service(s) changed since v1.2.0" in notes and "**py-svc-003**: digest" in notes

    capsys.readouterr()
    again = run_pipeline(Settings.from_env(repo=repo, workdir=work, registry=unique_registry))
    assert again.ok and again.run_ids == []  # nothing new: no run, no tag
    assert len(git(repo, "tag", "--list").splitlines()) == 2
    assert "verified_release_v1.2.1 already released" in capsys.readouterr().out
