"""Publishing a GitHub Release through the REST API, against a local server that speaks the
parts of it we use: created with every attachment, a re-run uploads nothing, a changed file is
replaced, the token is never in a message; without GITHUB_TOKEN the release is the folder.
The release step is handed the GitHub resource (resources/github.py); these tests hand it one
pointed at the local server, and check that an empty one reads the environment as Actions sets it."""

from __future__ import annotations

import pytest

from nexus_assets.core.errors import ConfigError
from nexus_assets.release.github import GitHubError, publish
from nexus_assets.release.notes import Gate
from nexus_assets.release.verified import make_release
from nexus_assets.resources.github import GitHub, GitHubTarget

from .conftest import git, write_inputs
from .fake_github import FakeGitHub

TOKEN = "ghs_FAKE0123456789abcdefTOKENvalue"
REPOSITORY = "nexus-org/nexus-cos"
PASSED = [Gate("artifacts_manifest:manifest_has_digests", True, "ok")]
ATTACHED = {"artifacts_manifest.json", "compliance_report_20261125.pdf", "deployment_package_20261125.tar.gz",
            "discovery_parsed.json", "discrepancy_report.json"}


@pytest.fixture
def github(monkeypatch):
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL"):  # the resource alone says where
        monkeypatch.delenv(name, raising=False)
    with FakeGitHub(TOKEN, REPOSITORY) as fake:
        yield fake


def _target(fake: FakeGitHub, token: str = TOKEN) -> GitHubTarget:
    target = GitHub(repository=REPOSITORY, api_url=fake.url, token=token).target()
    assert target is not None
    return target


def test_release_is_published_with_every_attachment_then_rerun_uploads_nothing(github, release_settings,
                                                                               target_repo, capfd):
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    outcome = make_release(settings, PASSED, github=_target(github))
    release = github.release("verified_release_v1.2.0")
    assert release is not None and release["name"] == "Verified release 1.2.0"
    assert release["target_commitish"] == git(target_repo, "rev-parse", "HEAD")  # the tag is not pushed
    assert release["body"] == outcome.notes
    assert {a["name"] for a in release["assets"]} == ATTACHED
    folder = settings.workdir / "releases" / "v1.2.0"
    for asset in release["assets"]:
        assert github.blobs[asset["id"]] == (folder / asset["name"]).read_bytes()
    assert outcome.github and outcome.github["created"] and sorted(outcome.github["uploaded"]) == sorted(ATTACHED)
    assert outcome.github["url"] == "https://github.com/nexus-org/nexus-cos/releases/tag/verified_release_v1.2.0"

    calls = len(github.requests)
    again = make_release(settings, PASSED, github=_target(github))
    assert again.already_released and again.github
    assert again.github["uploaded"] == [] and sorted(again.github["skipped"]) == sorted(ATTACHED)
    assert len(github.releases) == 1
    new_calls = github.requests[calls:]
    assert [m for m, _ in new_calls] == ["GET", "GET"]  # release by tag, its assets; nothing written
    out, err = capfd.readouterr()
    assert TOKEN not in out + err + str(outcome) + str(again)


def test_a_missing_or_different_attachment_is_uploaded_again(github, tmp_path):
    target = _target(github)
    files = [tmp_path / "a.json", tmp_path / "b.pdf"]
    for path in files:
        path.write_text("one")
    publish(target, tag="verified_release_v1.0.0", commit=None, name="r", body="notes", attachments=files)
    files[1].write_text("longer now")
    (tmp_path / "c.tar.gz").write_bytes(b"new")
    done = publish(target, tag="verified_release_v1.0.0", commit=None, name="r", body="notes 2",
                   attachments=[*files, tmp_path / "c.tar.gz"])
    assert (done.created, done.skipped, done.replaced, done.uploaded) == (False, ["a.json"], ["b.pdf"],
                                                                          ["b.pdf", "c.tar.gz"])
    release = github.release("verified_release_v1.0.0")
    assert release is not None and release["body"] == "notes 2"
    assert {a["name"]: a["size"] for a in release["assets"]} == {"a.json": 3, "b.pdf": 10, "c.tar.gz": 3}


def test_a_refused_token_is_a_clear_error_without_the_token(github, tmp_path):
    target = _target(github, token="ghp_WRONGwrongWRONGwrong0123456789")
    with pytest.raises(GitHubError) as err:
        publish(target, tag="verified_release_v1.0.0", commit=None, name="r", body="b", attachments=[])
    message = str(err.value)
    assert "nexus-org/nexus-cos" in message and "HTTP 401" in message and "GITHUB_TOKEN" in message
    assert "ghp_WRONG" not in message and "Bearer" not in message


def test_a_server_error_is_retried(github, tmp_path):
    github.fail_next = 502
    target = _target(github)
    done = publish(target, tag="verified_release_v1.0.0", commit=None, name="r", body="b", attachments=[])
    assert done.created and github.requests[0] == github.requests[1]  # the same call, twice


def test_unreachable_api_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    target = GitHub().target()  # an empty resource: the environment, as GitHub Actions sets it
    assert target is not None
    with pytest.raises(GitHubError, match=r"http://127\.0\.0\.1:9 unreachable .* nexus-org/nexus-cos"):
        publish(target, tag="t", commit=None, name="r", body="b", attachments=[])


def test_bad_repository_setting_is_named(monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", "just-a-name")
    with pytest.raises(ConfigError, match="GITHUB_REPOSITORY must be owner/name"):
        GitHub().target()
    with pytest.raises(ConfigError, match="GITHUB_REPOSITORY must be owner/name"):
        GitHub(repository="owner/", token=TOKEN).target()


def test_without_a_token_the_release_is_the_local_folder(release_settings, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    settings = release_settings("1.2.0")
    write_inputs(settings, {"users": "a"})
    assert GitHub().target() is None  # a repository and no token: not published
    outcome = make_release(settings, PASSED, github=GitHub().target())
    assert outcome.github is None
    folder = settings.workdir / "releases" / "v1.2.0"
    assert ATTACHED <= {p.name for p in folder.iterdir()}
    assert (folder / "release_notes.md").read_text() == outcome.notes
