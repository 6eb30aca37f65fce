"""The engine's image ids asked with the standard library over the Unix socket (the
nothing-changed check) are the Docker SDK's; any other engine address is left to the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexus_assets.core.engine_images import EngineImages, image_ids_over_socket


@pytest.mark.docker
def test_the_socket_answers_as_the_sdks_listing(docker_client) -> None:
    listing = EngineImages.read(docker_client)
    tags = sorted(listing.by_tag)[:40]
    some_id = next(iter(sorted(listing.ids)))
    missing = ["nexus-test/never-built:0.0.0", "sha256:" + "0" * 64]
    found = image_ids_over_socket([*tags, some_id, *missing])
    assert found is not None
    assert {tag: found[tag] for tag in tags} == {tag: listing.tag_id(tag) for tag in tags}
    assert found[some_id] == some_id
    assert found[missing[0]] is None and found[missing[1]] is None


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "ssh://user@host"])
def test_other_engine_addresses_are_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", host)
    assert image_ids_over_socket(["anything:1"]) is None


def test_a_socket_nobody_answers_on_gives_no_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    assert image_ids_over_socket(["anything:1"], timeout=2) is None


@pytest.mark.docker
def test_the_sdk_fallback_answers_as_the_socket(docker_client) -> None:
    """For an engine the standard library does not reach, the nothing-changed check asks the SDK
    the same question (cli/unchanged.py): the answers agree on the real engine."""
    from nexus_assets.cli.unchanged import _image_ids_through_sdk

    listing = EngineImages.read(docker_client)
    tags = [*sorted(listing.by_tag)[:20], "nexus-test/never-built:0.0.0"]
    ids = [next(iter(sorted(listing.ids))), "sha256:" + "0" * 64]
    assert _image_ids_through_sdk(tags, ids) == image_ids_over_socket([*tags, *ids])
