"""Real images for the attest tests, built on the real engine from the project's base image:
a Python image whose packages pip installed inside the build (from the wheels CPython bundles
for ensurepip: pip and setuptools, no network), and a Node image whose node_modules npm
installed (offline, from packages npm itself ships, packed with `npm pack`)."""

from __future__ import annotations

import contextlib
import ensurepip
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from nexus_assets.target.baseimages import load_base_image_map

# The base image the bootstrap builds (its name in the base-image map, never a copy of it here:
# a fresh machine has only the current one).
BASE = load_base_image_map().base
PREFIX = "nexus-attest-test"


def _bundled_wheels() -> list[Path]:
    wheels = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("*.whl"))
    assert any(w.name.startswith("pip-") for w in wheels), "this Python ships no ensurepip wheels"
    return wheels


def _build(client, context: Path, tag: str) -> str:
    image, _ = client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False, network_mode="none")
    return image.id


@pytest.fixture(scope="session")
def attest_images(docker_client, tmp_path_factory):
    """{"python": (tag, image id, {name: version}), "node": (...)}; removed after the session."""
    root = tmp_path_factory.mktemp("attest-images")
    unique = uuid.uuid4().hex[:8]
    made: dict[str, tuple[str, str, dict[str, str]]] = {}
    try:
        # Python: pip runs inside the build, from its own wheel, and installs pip and setuptools.
        py = root / "python"
        (py / "wheels").mkdir(parents=True)
        wheels = _bundled_wheels()
        for wheel in wheels:
            shutil.copy2(wheel, py / "wheels" / wheel.name)
        pip_wheel = next(w.name for w in wheels if w.name.startswith("pip-"))
        (py / "Dockerfile").write_text(
            f"FROM {BASE}\nCOPY wheels/ /wheels/\n"
            f"RUN python3 /wheels/{pip_wheel}/pip install --no-index --no-cache-dir --break-system-packages "
            f"/wheels/*.whl && rm -rf /wheels\n"
            'CMD ["python3", "-c", "print(1)"]\n')
        versions = {w.name.split("-")[0]: w.name.split("-")[1] for w in wheels}
        tag = f"{PREFIX}-py-{unique}:1"
        made["python"] = (tag, _build(docker_client, py, tag), versions)

        # Node: npm installs two real packages offline into the app's node_modules, with its lockfile.
        node = root / "node"
        app = node / "app"
        app.mkdir(parents=True)
        shipped = Path("/usr/lib/node_modules/npm/node_modules")
        packs = subprocess.run(["npm", "pack", "--silent", str(shipped / "semver"), str(shipped / "ms")],
                               cwd=app, capture_output=True, text=True, check=True).stdout.split()
        (app / "package.json").write_text('{"name": "attest-app", "version": "1.0.0", "private": true}\n')
        subprocess.run(["npm", "install", "--offline", "--no-audit", "--no-fund", *(f"./{p}" for p in packs)],
                       cwd=app, capture_output=True, text=True, check=True)
        for pack in packs:
            (app / pack).unlink()
        node_versions = {p.rsplit("-", 1)[0]: p.rsplit("-", 1)[1].removesuffix(".tgz") for p in packs}
        (node / "Dockerfile").write_text(f"FROM {BASE}\nWORKDIR /srv/app\nCOPY app/ ./\nCMD [\"node\", \"-e\", \"1\"]\n")
        tag = f"{PREFIX}-node-{unique}:1"
        made["node"] = (tag, _build(docker_client, node, tag), node_versions)
        yield made
    finally:
        for tag, _, _ in made.values():
            with contextlib.suppress(Exception):
                docker_client.images.remove(tag, force=True)



@pytest.fixture(scope="session")
def registry_auth(registry_credentials) -> dict[str, str]:
    """The session's registry credentials (tests/conftest.py) as the Docker SDK takes them."""
    return {"username": registry_credentials[0], "password": registry_credentials[1]}


def push(client, image_id: str, registry: str, repository: str, tag: str, auth: dict[str, str]) -> str:
    """Tag and push an image to a real registry; returns the registry's manifest digest."""
    client.images.get(image_id).tag(f"{registry}/{repository}", tag)
    for line in client.images.push(f"{registry}/{repository}", tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line
        digest = (line.get("aux") or {}).get("Digest")
        if digest:
            return digest
    raise AssertionError(f"no digest from pushing {repository}:{tag}")
