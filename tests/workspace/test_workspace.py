from __future__ import annotations

from nexus_assets.workspace.sync import sync_workspace


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
