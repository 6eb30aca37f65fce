"""A GitHub Release through GitHub's REST API: the release for a tag is found or created, its
notes kept up to date, and every attachment uploaded through the release's `upload_url` unless
an asset of the same name and size is already there (so a re-run uploads only what is missing
or different). Settings as in GitHub Actions: GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name)
and GITHUB_API_URL (default https://api.github.com). The token goes in one header and in no
message, log or report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from nexus_assets.core.errors import NexusError
from nexus_assets.release.gitrelease import scrub
from nexus_assets.resources.github import GitHubTarget

API_VERSION = "2022-11-28"
RETRIES = 3  # for a refused connection and GitHub's 5xx; 4xx are answers, not accidents


class GitHubError(NexusError):
    """GitHub refused or could not be reached; names the repository and the call, never the token."""


@dataclass
class Published:
    """What the publication did: the release's page and each attachment's fate."""

    url: str
    release_id: int
    created: bool
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already there with the same size
    replaced: list[str] = field(default_factory=list)  # there with another size: deleted, uploaded again


class GitHubClient:
    def __init__(self, target: GitHubTarget, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {target.token}",
                                     "Accept": "application/vnd.github+json",
                                     "X-GitHub-Api-Version": API_VERSION,
                                     "User-Agent": "nexus-agent"})

    def _call(self, method: str, url: str, what: str, ok: tuple[int, ...], **kwargs: Any) -> requests.Response:
        for attempt in range(RETRIES):
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                if attempt + 1 == RETRIES:
                    raise GitHubError(f"GitHub API {self.target.api_url} unreachable while trying to {what} "
                                      f"for {self.target.repository}: {scrub(type(exc).__name__)}") from None
            else:
                if response.status_code in ok:
                    return response
                if response.status_code < 500 or attempt + 1 == RETRIES:
                    raise GitHubError(self._refusal(response, what))
            time.sleep(0.5 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _refusal(self, response: requests.Response, what: str) -> str:
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = response.text[:200]
        hint = {401: ": the token (GITHUB_TOKEN) was refused", 403: ": the token lacks contents:write",
                404: ": no such repository for this token"}.get(response.status_code, "")
        return scrub(f"GitHub refused to {what} for {self.target.repository} "
                     f"(HTTP {response.status_code}{hint}): {message}")

    def _repo_url(self, path: str) -> str:
        return f"{self.target.api_url}/repos/{self.target.repository}/{path}"

    def release_for_tag(self, tag: str) -> dict[str, Any] | None:
        response = self._call("GET", self._repo_url(f"releases/tags/{quote(tag, safe='')}"), f"read release {tag}",
                              (200, 404))
        return response.json() if response.status_code == 200 else None

    def create_release(self, tag: str, commit: str | None, name: str, body: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"tag_name": tag, "name": name, "body": body, "draft": False, "prerelease": False}
        if commit:
            payload["target_commitish"] = commit
        return _object(self._call("POST", self._repo_url("releases"), f"create release {tag}", (201,), json=payload))

    def update_notes(self, release: dict[str, Any], name: str, body: str) -> dict[str, Any]:
        return _object(self._call("PATCH", self._repo_url(f"releases/{release['id']}"),
                                  f"update release {release['id']}", (200,), json={"name": name, "body": body}))

    def assets(self, release: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self._call("GET", self._repo_url(f"releases/{release['id']}/assets"), "list release assets",
                               (200,), params={"per_page": 100, "page": page}).json()
            found += batch
            if len(batch) < 100:
                return found
            page += 1

    def delete_asset(self, asset: dict[str, Any]) -> None:
        self._call("DELETE", self._repo_url(f"releases/assets/{asset['id']}"), f"delete asset {asset['name']}", (204,))

    def upload(self, release: dict[str, Any], path: Path, name: str) -> dict[str, Any]:
        # upload_url is a URI template: https://uploads.github.com/repos/o/r/releases/1/assets{?name,label}
        url = str(release["upload_url"]).split("{", 1)[0]
        with path.open("rb") as fh:
            return _object(self._call("POST", url, f"upload {name}", (201,), params={"name": name}, data=fh.read(),
                                      headers={"Content-Type": _content_type(name)}))


def _object(response: requests.Response) -> dict[str, Any]:
    """The JSON object GitHub answered with."""
    body: dict[str, Any] = response.json()
    return body


def _content_type(name: str) -> str:
    for suffix, kind in ((".pdf", "application/pdf"), (".json", "application/json"), (".tar.gz", "application/gzip"),
                         (".md", "text/markdown"), (".pub", "text/plain")):
        if name.endswith(suffix):
            return kind
    return "application/octet-stream"


def publish(target: GitHubTarget, *, tag: str, commit: str | None, name: str, body: str,
            attachments: list[Path]) -> Published:
    """The GitHub Release of tag with these notes and attachments, made or completed."""
    client = GitHubClient(target)
    release = client.release_for_tag(tag)
    created = release is None
    if release is None:
        release = client.create_release(tag, commit, name, body)
    elif release.get("body") != body or release.get("name") != name:
        release = client.update_notes(release, name, body)
    done = Published(url=str(release.get("html_url", "")), release_id=int(release["id"]), created=created)
    present = {asset["name"]: asset for asset in ([] if created else client.assets(release))}
    for path in attachments:
        there = present.get(path.name)
        if there is not None and int(there.get("size", -1)) == path.stat().st_size \
                and there.get("state", "uploaded") == "uploaded":
            done.skipped.append(path.name)
            continue
        if there is not None:
            client.delete_asset(there)
            done.replaced.append(path.name)
        client.upload(release, path, path.name)
        done.uploaded.append(path.name)
    return done
