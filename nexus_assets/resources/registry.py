"""The image registry as a Dagster resource: handed to the steps that push, read the shared
build cache and gate the release, built once per process instead of inside each step from the
environment. Tests hand the steps one pointed at their registry, with its credentials."""

from __future__ import annotations

import os

import dagster as dg

from nexus_assets.core.errors import ConfigError
from nexus_assets.registry.client import REQUEST_TIMEOUT, Credentials, RegistryClient, credentials_from_env


class Registry(dg.ConfigurableResource):  # type: ignore[type-arg]  # subclassed bare, as Dagster documents it
    """REGISTRY (`host[:port][/path]`) and who we are to it. Empty credentials are read from the
    environment when a step asks (REGISTRY_USERNAME and REGISTRY_PASSWORD, or
    DOCKER_REGISTRY_TOKEN), so no password is part of a run's config unless given here."""

    address: str
    username: str = ""
    password: str = ""

    def credentials(self) -> Credentials | None:
        """The credentials given, else the environment's; None for an open registry."""
        if not self.username and not self.password:
            return credentials_from_env()
        if not (self.username and self.password):
            raise ConfigError(f"the registry resource for {self.address} needs both a username and a password")
        return Credentials(self.username, self.password, "the registry resource's username/password")

    def credentials_origin(self) -> str:
        """Where the credentials come from, for a record; never a value."""
        if self.username:
            return "registry resource"
        return "from environment" if any(os.environ.get(k) for k in ("REGISTRY_USERNAME", "DOCKER_REGISTRY_TOKEN")) else "none"

    def client(self, address: str | None = None, *, timeout: float = REQUEST_TIMEOUT) -> RegistryClient:
        """A client of this registry (or of address, a registry a manifest names), with these credentials."""
        return RegistryClient(address or self.address, self.credentials(), timeout=timeout)
