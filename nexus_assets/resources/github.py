"""GitHub, where a verified release is also published, as a Dagster resource handed to the
release step (tests hand it one pointed at their local API)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import dagster as dg

from nexus_assets.core.errors import ConfigError

DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class GitHubTarget:
    """One repository's API: where releases go, and the token that may write them."""

    api_url: str
    repository: str  # owner/name
    token: str = field(repr=False)


class GitHub(dg.ConfigurableResource):  # type: ignore[type-arg]  # subclassed bare, as Dagster documents it
    """The GitHub repository a release is published to. Empty fields are read from the
    environment when the release asks, as GitHub Actions sets it (GITHUB_TOKEN, GITHUB_REPOSITORY,
    GITHUB_API_URL), so no token is part of a run's config; without a token and a repository
    the release is the local folder only."""

    repository: str = ""  # owner/name
    api_url: str = ""  # "": GITHUB_API_URL, else https://api.github.com
    token: str = ""
    publish: bool = True  # False: never published, whatever the environment says

    def target(self) -> GitHubTarget | None:
        """The target when a token and a repository are both known, else None; a repository
        that is not owner/name is a ConfigError naming GITHUB_REPOSITORY."""
        if not self.publish:
            return None
        token = self.token or os.environ.get("GITHUB_TOKEN", "")
        repository = self.repository or os.environ.get("GITHUB_REPOSITORY", "")
        if not token or not repository:
            return None
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise ConfigError(f"GITHUB_REPOSITORY must be owner/name, got {repository!r}")
        api_url = self.api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
        return GitHubTarget(api_url.rstrip("/"), repository, token)
