"""The release version when none is given: the next patch after the target's last
verified_release_vX.Y.Z tag, that version again when it already released HEAD, 1.0.0 first."""

from __future__ import annotations

from nexus_assets.core.release_version import auto_version, is_git_checkout, release_versions
from nexus_assets.core.settings import SAMPLE_REPO, Settings
from nexus_assets.release.verified import make_release

from .conftest import commit_file, git, write_inputs


def test_first_release_is_1_0_0(target_repo):
    assert auto_version(target_repo) == ("1.0.0", "no verified_release_v* tag yet: first release")


def test_next_patch_after_the_highest_tag_by_number_not_by_text(target_repo):
    for version in ("1.0.0", "1.2.0", "1.10.3", "1.9.9"):
        git(target_repo, "tag", f"verified_release_v{version}")
        commit_file(target_repo, "README.md", version)
    git(target_repo, "tag", "verified_release_vbanana")  # not a version: ignored
    git(target_repo, "tag", "v9.9.9")  # not a release tag: ignored
    assert release_versions(target_repo) == ["1.0.0", "1.2.0", "1.9.9", "1.10.3"]
    assert auto_version(target_repo) == ("1.10.4", "next patch after verified_release_v1.10.3")


def test_a_tag_made_by_hand_on_head_is_that_version_again(target_repo):
    git(target_repo, "tag", "-a", "-m", "by hand", "verified_release_v2.0.0")
    assert auto_version(target_repo)[0] == "2.0.0"


def test_settings_without_a_version_take_the_next_patch(target_repo, tmp_path, monkeypatch):
    monkeypatch.delenv("VERSION", raising=False)
    git(target_repo, "tag", "verified_release_v1.2.0")
    commit_file(target_repo, "services/users/app.py", "print('users 2')\n")
    settings = Settings.from_env(repo=target_repo, workdir=tmp_path / "w")
    assert (settings.version, settings.version_auto) == ("1.2.1", True)
    given = Settings.from_env(repo=target_repo, workdir=tmp_path / "w", version="3.0.0")
    assert (given.version, given.version_auto) == ("3.0.0", False)
    monkeypatch.setenv("VERSION", "4.0.0")
    assert Settings.from_env(repo=target_repo, workdir=tmp_path / "w").version == "4.0.0"


def test_after_a_release_of_head_the_same_version_again_then_the_next_patch(release_settings, target_repo):
    """A release commit's source trailer says which commit it released: nothing new, same version."""
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    assert make_release(settings, []).made
    assert auto_version(target_repo)[0] == "1.2.0"
    commit_file(target_repo, "services/users/app.py", "print('users 2')\n")
    assert auto_version(target_repo)[0] == "1.2.1"


def test_a_folder_inside_another_checkout_has_no_release_tags(tmp_path, monkeypatch):
    """The bundled sample lives inside this project's checkout: its tags are not the target's."""
    monkeypatch.delenv("VERSION", raising=False)
    assert not is_git_checkout(SAMPLE_REPO)
    assert release_versions(SAMPLE_REPO) == []
    assert Settings.from_env(workdir=tmp_path / "w").version == "1.0.0"
