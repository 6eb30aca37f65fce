"""The embedded default target: the bundled sample as a git checkout of its own, so that its
release is a real tag, made once, the same commit on every machine, refreshed only when the
bundled sample changes, with its tags kept."""

from __future__ import annotations

import shutil
import subprocess
import threading

from nexus_assets.core import sample_checkout as checkout
from nexus_assets.core.release_version import is_git_checkout
from nexus_assets.core.settings import Settings


def _git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_the_default_target_is_a_checkout_of_the_sample_beside_the_workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("NEXUS_REPO", raising=False)
    settings = Settings.from_env(workdir=tmp_path / "work")
    assert settings.repo == tmp_path / "work-sample-repo"
    assert is_git_checkout(settings.repo)
    assert _git(settings.repo, "status", "--porcelain") == ""
    tracked = _git(settings.repo, "ls-files").splitlines()
    assert "docker-compose.yml" in tracked and ".env" not in tracked  # .env stays out of git, as in a real checkout
    assert (settings.repo / ".env").is_file()  # but the pipeline reads it, as it reads the bundled one
    # Deterministic: another machine (another working copy) has the very same commit.
    other = Settings.from_env(workdir=tmp_path / "elsewhere" / "work")
    assert _git(other.repo, "rev-parse", "HEAD") == _git(settings.repo, "rev-parse", "HEAD")
    # A repository given explicitly is used as it is.
    assert Settings.from_env(workdir=tmp_path / "work", repo=tmp_path / "mine").repo == tmp_path / "mine"


def test_made_once_refreshed_when_the_bundled_sample_changes_tags_kept(tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"
    shutil.copytree(checkout.SAMPLE_REPO, bundled, symlinks=True)
    monkeypatch.setattr(checkout, "SAMPLE_REPO", bundled)
    workdir = tmp_path / "work"
    # Two runs at once make it once.
    threads = [threading.Thread(target=checkout.sample_checkout, args=(workdir,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    repo = checkout.sample_checkout_path(workdir)
    assert len(_git(repo, "log", "--format=%H").splitlines()) == 1
    first = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "-a", "verified_release_v1.0.0", "-m", "release")
    assert checkout.sample_checkout(workdir) == repo
    assert _git(repo, "rev-parse", "HEAD") == first  # unchanged: no new commit
    (bundled / "services" / "users" / "NOTES.md").write_text("a new file in the bundled sample\n")
    checkout.sample_checkout(workdir)
    assert _git(repo, "rev-parse", "HEAD~1") == first
    assert "services/users/NOTES.md" in _git(repo, "show", "--name-only", "--format=", "HEAD")
    assert _git(repo, "tag") == "verified_release_v1.0.0"
    assert (repo / ".git" / "refs").is_dir()  # the refresh never empties git's own folders


def test_without_git_the_bundled_sample_is_used_in_place(tmp_path, monkeypatch):
    """The code-location image has no git: loading the definitions must not fail there."""
    monkeypatch.delenv("NEXUS_REPO", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    settings = Settings.from_env(workdir=tmp_path / "work")
    assert settings.repo == checkout.SAMPLE_REPO and settings.version == "1.0.0"
    assert not (tmp_path / "work-sample-repo").exists()
