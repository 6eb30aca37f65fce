"""The engine's image listing read with the standard library over the Unix socket (the
nothing-changed check) is the Docker SDK's listing; any other engine address is left to the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_assets.core.engine_images import EngineImages


@pytest.mark.docker
def test_the_socket_listing_is_the_sdks(docker_client) -> None:
    through_sdk = EngineImages.read(docker_client)
    over_socket = EngineImages.read_unix_socket()
    assert over_socket is not None and over_socket.client is None
    assert over_socket.ids == through_sdk.ids
    assert {tag: row["Id"] for tag, row in over_socket.by_tag.items()} == \
        {tag: row["Id"] for tag, row in through_sdk.by_tag.items()}
    unknown = "sha256:" + "0" * 64
    assert not over_socket.has(unknown)  # no SDK client: only what the listing shows


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "ssh://user@host"])
def test_other_engine_addresses_are_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    assert EngineImages.read_unix_socket() is None


def test_a_socket_nobody_answers_on_is_no_listing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    assert EngineImages.read_unix_socket(timeout=2) is None
