"""The Dockerfile packages the code location FROM the public python:3.11-slim (here the base-image
map provides that name), so it builds on any machine; its Python packages install offline, and
the image loads the definitions with Dagster's own CLI and carries what the containerized
deployment needs (git, docker-compose, node, dagster-postgres, dagster-docker)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_code_location_image_builds_and_validates_its_definitions(docker_client):
    tag = f"nexus-assets-test:{uuid.uuid4().hex[:8]}"
    done = subprocess.run(["bash", "scripts/build_image.sh", tag], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        image = docker_client.images.get(tag)
        assert image.attrs["Config"]["User"] == "10001"
        # built on the engine's python:3.11-slim, whichever image that name is here
        assert docker_client.images.get("python:3.11-slim").id in {layer["Id"] for layer in image.history()}
        output = docker_client.containers.run(
            tag, ["dagster", "definitions", "validate", "-f", "definitions.py"], remove=True, stderr=True,
        ).decode()
        assert "Validation successful" in output, output
        tools = docker_client.containers.run(
            tag, ["sh", "-c", "git --version && docker-compose version --short && node --version && "
                  "python -c 'import dagster_postgres, dagster_docker; print(\"ok\")'"],
            remove=True, stderr=True,
        ).decode()
        assert "git version" in tools and "ok" in tools, tools
    finally:
        docker_client.images.remove(tag, force=True)
