"""Reading an image's files from the engine's overlay2 layer folders gives what the archive
endpoint gives: on the attest images (pip and npm installs over the base) and on an image built to
exercise how layers merge (a file deleted in a later layer, a folder emptied and refilled, a file
overwritten, a folder reached through a symbolic link, a link inside a root)."""

import uuid

import pytest

from nexus_assets.attest.image_files import read_image_files
from nexus_assets.attest.layer_files import LayeredImage
from tests.attest.conftest import BASE

pytestmark = pytest.mark.docker

_PACKAGE = "mkdir -p /{0}/node_modules/{1} && echo '{{\"name\": \"{1}\", \"version\": \"{2}\"}}' > /{0}/node_modules/{1}/package.json"

DOCKERFILE = f"""FROM {BASE}
RUN {_PACKAGE.format("opt/a", "keep", "1.0.0")} && {_PACKAGE.format("opt/a", "gone", "1.0.0")} \\
 && {_PACKAGE.format("opt/b", "old", "1.0.0")} && {_PACKAGE.format("opt/real", "x", "3.0.0")}
RUN rm -rf /opt/a/node_modules/gone \\
 && rm -rf /opt/b/node_modules && {_PACKAGE.format("opt/b", "new", "2.0.0")} \\
 && {_PACKAGE.format("opt/a", "keep", "1.1.0")} \\
 && ln -s /opt/real /data && ln -s /opt/real /srv/inside
ENV NODE_PATH=/data/node_modules
CMD ["node", "-e", "1"]
"""


@pytest.fixture(scope="module")
def layered_image(docker_client, tmp_path_factory):
    context = tmp_path_factory.mktemp("layers")
    (context / "Dockerfile").write_text(DOCKERFILE)
    tag = f"nexus-attest-test-layers-{uuid.uuid4().hex[:8]}:1"
    image, _ = docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False,
                                          network_mode="none")
    yield image.id
    docker_client.images.remove(image.id, force=True)


def _both(docker_client, image_id: str):
    assert LayeredImage.of(docker_client.api.inspect_image(image_id)) is not None, \
        "the engine's layer folders are not readable here: the test would compare the archive with itself"
    return read_image_files(docker_client, image_id, from_layers=False), read_image_files(docker_client, image_id)


def test_layers_merge_as_the_engine_merges_them(docker_client, layered_image):
    from_archive, from_layers = _both(docker_client, layered_image)
    assert from_layers == from_archive
    found = {path: data for path, data in from_layers.node_packages.items() if not path.startswith("/usr/")}
    assert sorted(found) == ["/data/node_modules/x/package.json", "/opt/a/node_modules/keep/package.json",
                             "/opt/b/node_modules/new/package.json", "/opt/real/node_modules/x/package.json"]
    assert b'"1.1.0"' in found["/opt/a/node_modules/keep/package.json"]  # the upper layer's copy
    assert from_layers.dpkg_status and "Package: dpkg" in from_layers.dpkg_status
    assert from_layers.os_release.startswith(("PRETTY_NAME", "NAME"))  # /etc/os-release is a relative link


def test_pip_and_npm_installs_read_the_same_from_layers(docker_client, attest_images):
    for _, image_id, _ in attest_images.values():
        from_archive, from_layers = _both(docker_client, image_id)
        assert from_layers == from_archive
        assert from_layers.node_packages or from_layers.python_metadata


def test_an_engine_without_readable_layers_is_read_through_the_archive(docker_client, layered_image):
    info = docker_client.api.inspect_image(layered_image)
    assert LayeredImage.of({**info, "GraphDriver": {"Name": "vfs", "Data": None}}) is None
    missing = {"Name": "overlay2", "Data": {"UpperDir": "/nonexistent/diff", "LowerDir": ""}}
    assert LayeredImage.of({**info, "GraphDriver": missing}) is None
