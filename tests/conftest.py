"""Shared fixtures. Tests marked `docker` use the real engine that scripts/bootstrap.sh starts."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

import pytest

from nexus_assets.core.settings import SAMPLE_REPO, Settings


@pytest.fixture(scope="session")
def docker_client():
    from nexus_assets.resources import docker_client as connect

    client = connect()
    yield client
    client.close()


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled sample monorepo, safe to edit."""
    target = tmp_path / "repo"
    shutil.copytree(SAMPLE_REPO, target, symlinks=True)
    return target


@pytest.fixture
def unique_registry() -> str:
    """A registry name no other test uses, so image tags never collide between tests."""
    return f"test-{uuid.uuid4().hex[:8]}.local"


@pytest.fixture
def settings_for(tmp_path: Path, unique_registry: str):
    def make(repo: Path, **overrides) -> Settings:
        values = {"repo": repo, "workdir": tmp_path / "work", "registry": unique_registry, "version": "1.0.0",
                  "max_parallel": 4}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def remove_test_images(docker_client, unique_registry):
    """Removes every image tagged under this test's registry name afterwards."""
    yield
    for image in docker_client.images.list():
        if any(tag.startswith(unique_registry + "/") for tag in image.tags):
            with contextlib.suppress(Exception):
                docker_client.images.remove(image.id, force=True)


@pytest.fixture
def auth_service_container(docker_client):
    """A running container on the real engine that compose would call auth-service: (name, image)."""
    import time

    from nexus_assets.core.baseimages import load_base_image_map

    image = load_base_image_map().base
    name = f"nexus-inventory-test-{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.run(image, ["sleep", "60"], name=name, detach=True,
                                             labels={"com.docker.compose.service": "auth-service"})
    try:
        for _ in range(50):
            container.reload()
            if container.status == "running":
                break
            time.sleep(0.1)
        assert container.status == "running", container.status
        yield name, image
    finally:
        container.remove(force=True)
