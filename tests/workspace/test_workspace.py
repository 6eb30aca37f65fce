from __future__ import annotations

import json
import shutil
from pathlib import Path

from nexus_assets.target.services import SCAFFOLD_MARKER, find_services
from nexus_assets.workspace.sync import sync_workspace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_sync_copies_only_changes_and_removes_deleted_files(tmp_path):
    repo, work = tmp_path / "repo", tmp_path / "work"
    (repo / "services" / "a").mkdir(parents=True)
    (repo / "services" / "a" / "Dockerfile").write_text("FROM x\n")
    (repo / "services" / "b").mkdir()
    (repo / "services" / "b" / "app.py").write_text("1\n")
    first = sync_workspace(repo, work)
    assert (first.files, first.copied, first.removed) == (2, 2, 0)
    assert (work / "reports").is_dir() and (work / "artifacts").is_dir()

    again = sync_workspace(repo, work)
    assert again.copied == 0 and again.removed == 0

    (repo / "services" / "a" / "Dockerfile").write_text("FROM y\n")
    (repo / "services" / "b" / "app.py").unlink()
    changed = sync_workspace(repo, work)
    assert (changed.copied, changed.removed) == (1, 1)
    assert (work / "services" / "a" / "Dockerfile").read_text() == "FROM y\n"
    assert not (work / "services" / "b").exists(), "an emptied service folder must not linger"


def test_sync_leaves_generated_files_and_scaffolded_services_alone(tmp_path):
    repo, work = tmp_path / "repo", tmp_path / "work"
    (repo / "services" / "a").mkdir(parents=True)
    (repo / "services" / "a" / "Dockerfile").write_text("FROM x\n")
    sync_workspace(repo, work)
    (work / "reports" / "discovery_parsed.json").write_text("{}")
    (work / "services" / "scaffolded").mkdir()
    (work / "services" / "scaffolded" / "Dockerfile").write_text("FROM x\n")
    sync_workspace(repo, work)
    assert (work / "reports" / "discovery_parsed.json").exists()
    assert (work / "services" / "scaffolded" / "Dockerfile").exists()
    assert (repo / "reports").exists() is False, "the target repository stays pristine"


def test_workdir_inside_repo_is_not_copied_into_itself(tmp_path):
    repo = tmp_path / "repo"
    (repo / "services" / "a").mkdir(parents=True)
    (repo / "services" / "a" / "Dockerfile").write_text("FROM x\n")
    work = repo / "nexus_work"
    sync_workspace(repo, work)
    sync_workspace(repo, work)
    assert not (work / "nexus_work").exists()


# --- a scaffold is replaced when the real service arrives in the repository -------------------

def _scaffold(work, name):
    from nexus_assets.scaffold.generate import scaffold_service

    result = scaffold_service(work, name, f"{name} module", {})
    assert result.created and (work / "services" / name / SCAFFOLD_MARKER).is_file()


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_real_service_in_the_repository_replaces_the_scaffold_whole(tmp_path):
    repo, work = tmp_path / "repo", tmp_path / "work"
    (repo / "services" / "a").mkdir(parents=True)
    (repo / "services" / "a" / "Dockerfile").write_text("FROM x\n")
    sync_workspace(repo, work)
    _scaffold(work, "payments")
    assert sync_workspace(repo, work).retired == (), "a scaffold stays while the repository has no such service"
    assert (work / "services" / "payments" / SCAFFOLD_MARKER).is_file()

    real = repo / "services" / "payments"
    (real / "src").mkdir(parents=True)
    (real / "Dockerfile").write_text("FROM node:18-alpine\nCOPY . .\n")
    (real / "src" / "main.js").write_text("console.log('real')\n")
    result = sync_workspace(repo, work)
    assert result.retired == ("payments",)
    copy = work / "services" / "payments"
    assert not (copy / SCAFFOLD_MARKER).exists()
    assert _files(copy) == _files(real) == ["Dockerfile", "src/main.js"], "no scaffold file may be left over"
    (service,) = [s for s in find_services(work) if s.name == "payments"]
    assert _files(service.path) == _files(real)
    assert sync_workspace(repo, work).retired == ()


def test_compose_service_of_the_scaffolds_name_replaces_it(tmp_path):
    # The module `auth` arrives as compose service `auth`, built from services/auth-service/.
    repo, work = tmp_path / "repo", tmp_path / "work"
    (repo / "services" / "auth-service").mkdir(parents=True)
    (repo / "services" / "auth-service" / "Dockerfile").write_text("FROM x\n")
    sync_workspace(repo, work)
    _scaffold(work, "auth")
    (repo / "docker-compose.yml").write_text("services:\n  auth:\n    build: ./services/auth-service\n")
    assert sync_workspace(repo, work).retired == ("auth",)
    assert not (work / "services" / "auth").exists()
    assert [s.name for s in find_services(work)] == ["auth"]


def test_prepare_assets_report_the_arrived_module_present_not_scaffolded(tmp_path):
    """Steps A-D in-process on a real copy of the mini repository: `payments` is scaffolded, then
    the repository gets its own services/payments/; the next run reports it present, by the
    repository's folder, and the working copy's folder holds the repository's files only."""
    import dagster as dg

    from nexus_assets.definitions import PREPARE_ASSETS
    from nexus_assets.resources import DockerEngine, NexusConfig

    repo, work = tmp_path / "repo", tmp_path / "work"
    shutil.copytree(FIXTURES / "nexus_mini", repo)
    resources = {"nexus": NexusConfig(repo=str(repo), workdir=str(work), registry="arrive.local", version="1.0.0"),
                 "docker_engine": DockerEngine(base_url=f"unix://{tmp_path}/no-engine.sock", timeout_seconds=5)}

    def payments() -> dict:
        assert dg.materialize(PREPARE_ASSETS, resources=resources).success
        report = json.loads((work / "reports" / "discrepancy_report.json").read_text())
        return next(m for m in report["modules"] if m["name"] == "payments")

    first = payments()
    assert (first["status"], first["scaffolded"]) == ("missing", True)
    assert (work / "services" / "payments" / SCAFFOLD_MARKER).is_file()

    real = repo / "services" / "payments"
    real.mkdir()
    (real / "Dockerfile").write_text('FROM node:18-alpine\nCOPY . .\nCMD ["node", "main.js"]\n')
    (real / "main.js").write_text("console.log('payments')\n")
    second = payments()
    assert (second["status"], second["scaffolded"]) == ("present", False)
    assert [(e["source"], e["file"], e["strong"]) for e in second["evidence"]] == [
        ("folder", "services/payments", True)]
    assert _files(work / "services" / "payments") == ["Dockerfile", "main.js"]
    scaffold = json.loads((work / "reports" / "scaffold_report.json").read_text())
    assert "payments" not in [row["name"] for row in scaffold["services"]]
