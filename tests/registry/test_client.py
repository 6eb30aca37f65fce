"""The registry's settings and error classes, without a registry: where the credentials come
from, what is worth a retry, and that no message carries the secret."""

from __future__ import annotations

import pytest

from nexus_assets.core.errors import ConfigError, RegistryAuthError, RegistryError
from nexus_assets.core.settings import attempts_from_env
from nexus_assets.registry.client import (
    TransientRegistryError,
    classify,
    credentials_from_env,
    is_loopback,
    split_registry,
)


def test_credentials_come_from_the_environment_only():
    assert credentials_from_env({}) is None
    both = credentials_from_env({"REGISTRY_USERNAME": "ci", "REGISTRY_PASSWORD": "pw-1"})
    assert both is not None and (both.username, both.password) == ("ci", "pw-1") and "pw-1" not in repr(both)
    token = credentials_from_env({"DOCKER_REGISTRY_TOKEN": "tok-2"})
    assert token is not None and (token.username, token.password, token.source) == ("token", "tok-2",
                                                                                     "DOCKER_REGISTRY_TOKEN")
    with pytest.raises(ConfigError, match="REGISTRY_USERNAME") as half:
        credentials_from_env({"REGISTRY_PASSWORD": "pw-3"})
    assert "pw-3" not in str(half.value)


@pytest.mark.parametrize(("text", "kind"), [
    ("unauthorized: authentication required", RegistryAuthError),
    ("denied: requested access to the resource is denied", RegistryAuthError),
    ('Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused', TransientRegistryError),
    ("Put http://r/v2/x/blobs/uploads/1: read: connection reset by peer", TransientRegistryError),
    ("received unexpected HTTP status: 503 Service Unavailable", TransientRegistryError),
    ("Patch http://r/v2/x/blobs/uploads/1: EOF", TransientRegistryError),
    ("dial tcp: lookup nowhere.invalid: no such host", RegistryError),
    ("manifest invalid: manifest invalid", RegistryError),
])
def test_only_transient_failures_are_classed_as_worth_a_retry(text, kind):
    error = classify("127.0.0.1:5000", text, secret="s3cr3t-value")
    assert type(error) is kind and "127.0.0.1:5000" in str(error)


def test_the_secret_is_masked_in_any_message():
    error = classify("r.example", "unauthorized: bad password s3cr3t-value", secret="s3cr3t-value")
    assert "s3cr3t-value" not in str(error) and "***" in str(error)


def test_registry_names_and_attempts():
    assert split_registry("127.0.0.1:5000") == ("127.0.0.1:5000", "")
    assert split_registry("ghcr.io/acme/team/") == ("ghcr.io", "acme/team")
    with pytest.raises(ConfigError):
        split_registry("/acme")
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost:5000") and is_loopback("[::1]:5000")
    assert not is_loopback("ghcr.io") and not is_loopback("10.0.0.5:5000")
    assert attempts_from_env() >= 1


def test_attempts_must_be_a_number(monkeypatch):
    monkeypatch.setenv("NEXUS_PUSH_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match="NEXUS_PUSH_ATTEMPTS"):
        attempts_from_env()
