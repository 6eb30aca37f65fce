"""What a registry says a tag or digest is: one HEAD of the manifest (Docker Registry HTTP API
v2), with the credentials from the environment (REGISTRY_USERNAME / REGISTRY_PASSWORD, or
DOCKER_REGISTRY_TOKEN as a bearer token). Used to check a signed subject against the registry.
No credential appears in any message."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

import requests

from nexus_assets.core.errors import NexusError

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
TIMEOUT = 15.0


class RegistryError(NexusError):
    """The registry could not be asked, or refused the credentials."""


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    token: str = ""

    @classmethod
    def from_env(cls) -> Credentials:
        env = os.environ
        return cls(env.get("REGISTRY_USERNAME", ""), env.get("REGISTRY_PASSWORD", ""),
                   env.get("DOCKER_REGISTRY_TOKEN", ""))


def _base_url(registry: str) -> str:
    host = registry.rsplit(":", 1)[0].strip("[]") if registry.count(":") <= 1 else registry.strip("[]")
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    return f"{'http' if local else 'https'}://{registry}"


def _bearer(session: requests.Session, challenge: str, credentials: Credentials) -> str | None:
    """A token from the realm a `Bearer realm=…,service=…,scope=…` challenge names."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        return None
    auth = (credentials.username, credentials.password) if credentials.username else None
    answer = session.get(realm, params=params, auth=auth, timeout=TIMEOUT)
    if answer.status_code != 200:
        return None
    body = answer.json()
    return body.get("token") or body.get("access_token")


def manifest_digest(registry: str, repository: str, reference: str, credentials: Credentials | None = None) -> str | None:
    """The Docker-Content-Digest the registry gives for repository:reference (a tag or a
    sha256 digest), or None when it has no such manifest. RegistryError when the registry cannot
    be reached or refuses the credentials (naming the registry, never the credentials)."""
    credentials = credentials or Credentials.from_env()
    separator = "@" if reference.startswith("sha256:") else ":"
    url = f"{_base_url(registry)}/v2/{repository}/manifests/{reference}"
    headers = {"Accept": MANIFEST_TYPES}
    shown = f"{registry}/{repository}{separator}{reference}"
    with requests.Session() as session:
        try:
            answer = session.head(url, headers=headers, timeout=TIMEOUT)
            if answer.status_code == 401:
                challenge = answer.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("bearer"):
                    token = credentials.token or _bearer(session, challenge, credentials)
                    if token:
                        headers["Authorization"] = f"Bearer {token}"
                    answer = session.head(url, headers=headers, timeout=TIMEOUT)
                elif credentials.username:
                    answer = session.head(url, headers=headers, timeout=TIMEOUT,
                                          auth=(credentials.username, credentials.password))
                elif credentials.token:
                    headers["Authorization"] = f"Bearer {credentials.token}"
                    answer = session.head(url, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise RegistryError(f"registry {registry} cannot be reached ({type(exc).__name__}) while "
                                f"checking {shown}") from None
    if answer.status_code in (401, 403):
        raise RegistryError(f"registry {registry} refused the credentials (HTTP {answer.status_code}) for {shown}: "
                            "set REGISTRY_USERNAME and REGISTRY_PASSWORD, or DOCKER_REGISTRY_TOKEN")
    if answer.status_code == 404:
        return None
    if answer.status_code != 200:
        raise RegistryError(f"registry {registry} answered HTTP {answer.status_code} for {shown}")
    return answer.headers.get("Docker-Content-Digest")
