"""The publish tests' images: small ones made from a tarball on the real engine, removed afterwards."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import uuid

import pytest


def _import_image(client, size: int = 1024) -> str:
    """A small image made from a tarball (no base): size bytes of random data and a marker file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("marker", uuid.uuid4().hex.encode()), ("blob", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    answer = client.api.import_image_from_data(buffer.getvalue(), repository=f"nexus-push-test-{uuid.uuid4().hex[:8]}")
    image_id = next(line for line in answer.splitlines() if "sha256:" in line).split('"status":"')[1].split('"')[0]
    return client.images.get(image_id).id


@pytest.fixture
def images(docker_client):
    """Images made by the test; removed afterwards with every tag they got."""
    made: list[str] = []

    def make(size: int = 1024) -> str:
        made.append(_import_image(docker_client, size))
        return made[-1]

    yield make
    for image_id in made:
        with contextlib.suppress(Exception):
            docker_client.images.remove(image_id, force=True)
