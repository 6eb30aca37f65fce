"""The one client of the image registry's HTTP API (Docker Registry HTTP API v2), shared by the
stages that need the registry: publish (is a tag there, which digest it names), images (the
registry as a shared build cache: is there an image for this fingerprint, what its labels say)
and `nexus-agent verify` (is the signed digest there, does the release tag still name it).

The credentials come from the environment only and are never logged; every message names the
registry and never a secret. Failures worth another try (connection refused or reset, 5xx) are
told apart from those that are not (401, 403, 404, a name that does not resolve).

A registry is `host[:port][/path]` (`127.0.0.1:5000`, `ghcr.io/acme`): images go to
`REGISTRY/nexus/<service>`. Loopback registries are spoken to over HTTP, as the Docker engine
does by default; every other one over HTTPS."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from nexus_assets.core.errors import ConfigError, RegistryAuthError, RegistryError
from nexus_assets.core.settings import attempts_from_env

WAIT_MAX_SECONDS = 8.0  # backoff: 0.5 s, 1 s, 2 s, ... up to this
REQUEST_TIMEOUT = 15.0
# What the engine sends for an image it pushes; a HEAD must accept it to be answered with its digest.
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
_TRANSIENT = re.compile(r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|timed? ?out|"
                        r"unexpected HTTP status: 5\d\d|\b50[0234]\b|service unavailable|bad gateway|"
                        r"server closed|remote end closed|connection aborted", re.IGNORECASE)
# The registry as a shared build cache: an image that passed its tests is also tagged
# cache-<key> (images.cache.cache_key: what determines the image), so any machine asks for it first.
CACHE_TAG_PREFIX = "cache-"
_AUTH = re.compile(r"unauthori[sz]ed|authentication required|\bdenied\b|\b40[13]\b|forbidden", re.IGNORECASE)
_NO_NAME = re.compile(r"no such host|name or service not known|temporary failure in name resolution|"
                      r"nodename nor servname", re.IGNORECASE)


class TransientRegistryError(RegistryError):
    """A failure worth another try: the registry was away or answered 5xx."""


@dataclass(frozen=True)
class Credentials:
    """Who we are to the registry. The password is never in a repr, a log or a message."""

    username: str
    password: str = field(repr=False)
    source: str  # the environment variables they came from, for messages

    def auth_config(self) -> dict[str, str]:
        """What the Docker engine takes with a push."""
        return {"username": self.username, "password": self.password}


def credentials_from_env(env: Mapping[str, str] | None = None) -> Credentials | None:
    """REGISTRY_USERNAME + REGISTRY_PASSWORD, else DOCKER_REGISTRY_TOKEN (sent as the password,
    with REGISTRY_USERNAME or "token" as the user name), else None (an open registry)."""
    env = os.environ if env is None else env
    user, password, token = (env.get(k) or "" for k in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD",
                                                           "DOCKER_REGISTRY_TOKEN"))
    if user and password:
        return Credentials(user, password, "REGISTRY_USERNAME/REGISTRY_PASSWORD")
    if token:
        return Credentials(user or "token", token, "DOCKER_REGISTRY_TOKEN")
    if password:
        raise ConfigError("REGISTRY_PASSWORD is set without REGISTRY_USERNAME: set both, or DOCKER_REGISTRY_TOKEN")
    return None


class CredentialSource(Protocol):
    """Who we are to a registry, asked when a step needs it: the Registry resource
    (resources/registry.py) answers, built once per process and handed to the steps."""

    def credentials(self) -> Credentials | None: ...


def split_registry(registry: str) -> tuple[str, str]:
    """(host[:port], path prefix without slashes) of REGISTRY."""
    host, _, prefix = registry.strip().rstrip("/").partition("/")
    if not host:
        raise ConfigError(f"registry {registry!r} names no host: use host[:port][/path], e.g. 127.0.0.1:5000")
    return host, prefix.strip("/")


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def classify(registry: str, text: str, secret: str | None = None) -> RegistryError:
    """The error to raise for a failure message from the engine or the registry: auth refused,
    transient, or final. The message names the registry and holds no secret."""
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    if _AUTH.search(text):
        return RegistryAuthError(f"registry {registry} refused the credentials ({text}): check REGISTRY_USERNAME/"
                                 "REGISTRY_PASSWORD or DOCKER_REGISTRY_TOKEN")
    if _NO_NAME.search(text):
        return RegistryError(f"registry {registry}: its host name does not resolve ({text})")
    if _TRANSIENT.search(text):
        return TransientRegistryError(f"registry {registry} cannot be reached or is failing: {text}")
    return RegistryError(f"registry {registry}: {text}")


T = TypeVar("T")


def with_retries(call: Callable[[], T], *, attempts: int | None = None, on_retry: Callable[[str], None] | None = None,
                 wait_max: float = WAIT_MAX_SECONDS) -> T:
    """call(), tried again with exponential backoff while it raises TransientRegistryError, at
    most `attempts` times in all (NEXUS_PUSH_ATTEMPTS, default 4); anything else (auth refused,
    not found) goes up at once."""
    attempts = attempts or attempts_from_env()

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            wait = state.next_action.sleep if state.next_action else 0.0
            on_retry(f"{state.outcome.exception()}; try {state.attempt_number + 1}/{attempts} in {wait:.1f}s")

    retrying = Retrying(retry=retry_if_exception_type(TransientRegistryError), stop=stop_after_attempt(attempts),
                        wait=wait_exponential(multiplier=0.5, max=wait_max), reraise=True, before_sleep=before_sleep)
    return retrying(call)


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry holds it: its digest (the sha256 of these very bytes), media type and bytes."""

    digest: str
    media_type: str
    body: bytes = field(repr=False)


def cache_tag(key: str) -> str:
    """The tag the shared build cache keeps an image under: cache-<key>."""
    return CACHE_TAG_PREFIX + key


class RegistryClient:
    """The registry's HTTP API, for what the engine cannot say: is it there, do these credentials
    work, which manifest digest a tag names, what a manifest and an image config hold, and a
    second tag for a manifest it already has. Basic auth, or a bearer token fetched from the
    realm the registry names (as Docker Hub, GHCR and GitLab do), one per scope asked for."""

    def __init__(self, registry: str, credentials: Credentials | None, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.registry = registry
        self.host, self.prefix = split_registry(registry)
        self.credentials = credentials
        self.timeout = timeout
        self.base = f"{'http' if is_loopback(self.host) else 'https'}://{self.host}/v2/"
        self._session = requests.Session()
        self._bearer: str | None = None
        self._scopes: set[str] = set()  # the bearer challenges already answered

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def repository(self, service: str) -> str:
        """The repository path of a service's image in this registry."""
        return "/".join(p for p in (self.prefix, "nexus", service.lower()) if p)

    def _auth(self) -> tuple[str, str] | None:
        return (self.credentials.username, self.credentials.password) if self.credentials else None

    def _send(self, method: str, path: str, headers: dict[str, str], data: bytes | None = None) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        try:
            if self._bearer:
                return self._session.request(method, url, headers={**headers, "Authorization": f"Bearer {self._bearer}"},
                                             data=data, timeout=self.timeout, allow_redirects=True)
            return self._session.request(method, url, headers=headers, auth=self._auth(), data=data,
                                         timeout=self.timeout, allow_redirects=True)
        except requests.RequestException as exc:
            raise classify(self.registry, _why(exc)) from None

    def _request(self, method: str, path: str, headers: dict[str, str] | None = None,
                 data: bytes | None = None) -> requests.Response:
        """One call (no retry): 401/403 raise RegistryAuthError, 5xx TransientRegistryError."""
        headers = headers or {}
        response = self._send(method, path, headers, data)
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and challenge.lower().startswith("bearer") and challenge not in self._scopes:
            self._scopes.add(challenge)  # a new scope (a push after a pull) gets a token of its own, once
            self._bearer = self._token(challenge)
            response = self._send(method, path, headers, data)
        if response.status_code in (401, 403):
            who = f"the credentials from {self.credentials.source}" if self.credentials else "anonymous access"
            raise RegistryAuthError(f"registry {self.registry} refused {who} (HTTP {response.status_code}): check "
                                    "REGISTRY_USERNAME/REGISTRY_PASSWORD or DOCKER_REGISTRY_TOKEN")
        if response.status_code >= 500:
            raise TransientRegistryError(f"registry {self.registry} answered HTTP {response.status_code} "
                                         f"{response.reason} to {method} /v2/{path}")
        return response

    def _token(self, challenge: str) -> str:
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in fields:
            raise RegistryError(f"registry {self.registry} asked for a bearer token without naming where to get one")
        params = {k: v for k, v in fields.items() if k in ("service", "scope")}
        try:
            answer = self._session.get(fields["realm"], params=params, auth=self._auth(), timeout=self.timeout)
        except requests.RequestException as exc:
            raise classify(self.registry, _why(exc)) from None
        if answer.status_code in (401, 403):
            raise RegistryAuthError(f"registry {self.registry} refused the credentials"
                                    + (f" from {self.credentials.source}" if self.credentials else "")
                                    + f" (token endpoint HTTP {answer.status_code})")
        if answer.status_code >= 500:
            raise TransientRegistryError(f"registry {self.registry}: token endpoint answered HTTP {answer.status_code}")
        body = answer.json() if answer.ok else {}
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"registry {self.registry}: its token endpoint gave no token (HTTP {answer.status_code})")
        return str(token)

    def check(self, on_retry: Callable[[str], None] | None = None, attempts: int | None = None) -> None:
        """The registry answers and takes our credentials, or a RegistryError in one line."""
        def ping() -> None:
            response = self._request("GET", "")
            if response.status_code != 200:
                raise RegistryError(f"registry {self.registry} answered HTTP {response.status_code} to GET /v2/: "
                                    "not a Docker registry (API v2)?")
        with_retries(ping, on_retry=on_retry, attempts=attempts)

    def manifest_digest(self, repository: str, reference: str, on_retry: Callable[[str], None] | None = None,
                        attempts: int | None = None) -> str | None:
        """The manifest digest `repository:tag` (or `repository@sha256:...`) names in the
        registry, or None when it has none: one HEAD."""
        def head() -> str | None:
            response = self._manifest_request("HEAD", repository, reference)
            return None if response is None else response.headers.get("Docker-Content-Digest")
        return with_retries(head, on_retry=on_retry, attempts=attempts)

    def _manifest_request(self, method: str, repository: str, reference: str) -> requests.Response | None:
        """The registry's answer about a manifest: None for 404, an error for anything but 200."""
        response = self._request(method, f"{repository}/manifests/{reference}", {"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(f"registry {self.registry} answered HTTP {response.status_code} to {method} "
                                f"/v2/{repository}/manifests/{reference}")
        return response

    def manifest(self, repository: str, reference: str, attempts: int | None = None) -> Manifest | None:
        """The manifest a tag or digest names, or None when there is none. Its digest is computed
        from the bytes received, so a digest asked for is a digest checked."""
        def get() -> Manifest | None:
            response = self._manifest_request("GET", repository, reference)
            if response is None:
                return None
            digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
            if reference.startswith("sha256:") and digest != reference:
                raise RegistryError(f"registry {self.registry}: {repository}@{reference} sent a manifest whose "
                                    f"sha256 is {digest}")
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            return Manifest(digest=digest, media_type=media_type, body=response.content)
        return with_retries(get, attempts=attempts)

    def image_id(self, repository: str, reference: str, attempts: int | None = None) -> str | None:
        """The image id (config digest) of the one image a tag or digest names, or None (no such
        manifest, or an index of several): what tells whether a local image is already there."""
        manifest = self.manifest(repository, reference, attempts=attempts)
        if manifest is None or "index" in manifest.media_type or "list" in manifest.media_type:
            return None
        try:
            config = json.loads(manifest.body).get("config") or {}
        except ValueError:
            return None
        digest = config.get("digest") if isinstance(config, dict) else None
        return str(digest) if digest else None

    def blob(self, repository: str, digest: str, attempts: int | None = None) -> bytes:
        """A blob's bytes (an image config: small), checked against its digest."""
        def get() -> bytes:
            response = self._request("GET", f"{repository}/blobs/{digest}")
            if response.status_code != 200:
                raise RegistryError(f"registry {self.registry} answered HTTP {response.status_code} to GET "
                                    f"/v2/{repository}/blobs/{digest}")
            if "sha256:" + hashlib.sha256(response.content).hexdigest() != digest:
                raise RegistryError(f"registry {self.registry}: blob {repository}@{digest} does not match its digest")
            return response.content
        return with_retries(get, attempts=attempts)

    def tag_manifest(self, repository: str, digest: str, tag: str,
                     on_retry: Callable[[str], None] | None = None) -> bool:
        """Give the manifest `repository@digest` another tag, unless the tag names it already:
        one manifest PUT (the layers are there). True when the tag was written."""
        if self.manifest_digest(repository, tag, on_retry=on_retry) == digest:
            return False
        manifest = self.manifest(repository, digest)
        if manifest is None:
            raise RegistryError(f"registry {self.registry} has no manifest {repository}@{digest} to tag {tag}")
        self.put_manifest(repository, manifest, tag, on_retry=on_retry)
        return True

    def put_manifest(self, repository: str, manifest: Manifest, tag: str,
                     on_retry: Callable[[str], None] | None = None) -> None:
        """PUT these very manifest bytes (its media type as the Content-Type) under tag; the
        registry's answer must name the same digest, else a RegistryError."""
        def put() -> str | None:
            response = self._request("PUT", f"{repository}/manifests/{tag}", {"Content-Type": manifest.media_type},
                                     manifest.body)
            if response.status_code not in (200, 201):
                raise RegistryError(f"registry {self.registry} answered HTTP {response.status_code} to PUT "
                                    f"/v2/{repository}/manifests/{tag}")
            return response.headers.get("Docker-Content-Digest")
        written = with_retries(put, on_retry=on_retry)
        if written not in (None, manifest.digest):
            raise RegistryError(f"registry {self.registry}: {repository}:{tag} names {written} after the PUT, "
                                f"not {manifest.digest}")

    def put_blob(self, repository: str, data: bytes, on_retry: Callable[[str], None] | None = None) -> str:
        """Put a small blob (an SBOM, a signed statement) in repository unless it is there: one
        HEAD, else a POST that opens an upload and one PUT of the bytes. Its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()

        def upload() -> None:
            if self._request("HEAD", f"{repository}/blobs/{digest}").status_code == 200:
                return
            opened = self._request("POST", f"{repository}/blobs/uploads/")
            location = opened.headers.get("Location") or ""
            if opened.status_code != 202 or not location:
                raise RegistryError(f"registry {self.registry} answered HTTP {opened.status_code} to POST "
                                    f"/v2/{repository}/blobs/uploads/")
            target = _relative(location, self.base)
            done = self._request("PUT", target + ("&" if "?" in target else "?") + f"digest={digest}",
                                 {"Content-Type": "application/octet-stream"}, data)
            if done.status_code != 201:
                raise RegistryError(f"registry {self.registry} answered HTTP {done.status_code} to the PUT of "
                                    f"blob {repository}@{digest}")
        with_retries(upload, on_retry=on_retry)
        return digest


def _relative(location: str, base: str) -> str:
    """An upload Location (absolute URL, or a path from /v2/) as a path under base."""
    path = location.removeprefix(base[:-len("/v2/")]) if location.startswith(("http://", "https://")) else location
    return path.removeprefix("/v2/")


def _why(exc: requests.RequestException) -> str:
    """A connection failure in a few words (requests nests urllib3's long reprs)."""
    text = str(exc)
    for pattern, words in ((r"refused", "connection refused"), (r"reset", "connection reset"),
                           (r"timed out|timeout", "timed out"), (_NO_NAME.pattern, "no such host"),
                           (r"aborted|closed", "connection aborted")):
        if re.search(pattern, text, re.IGNORECASE):
            return words
    return type(exc).__name__
