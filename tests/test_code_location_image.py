"""The Dockerfile packages the code location and builds here, offline, on the project's own
base image; the image loads the definitions with Dagster's own CLI."""

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
        output = docker_client.containers.run(
            tag, ["dagster", "definitions", "validate", "-f", "definitions.py"], remove=True, stderr=True,
        ).decode()
        assert "Validation successful" in output, output
    finally:
        docker_client.images.remove(tag, force=True)
