"""The substitute base images stand in faithfully for what they replace (issue 8): node has npm,
python has pip and venv under the real images' command names, *-alpine has busybox's
`addgroup -S` / `adduser -S`, every one trusts the host's CA bundle, and npm and pip install
real packages through the local caches on the build network. And the bootstrap keeps a real
image the engine has, substituting only a name it cannot pull. Real engine, real registries."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from nexus_assets.target.baseimages import PROVIDES_LABEL, SUBSTITUTE_LABEL, load_base_image_map

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def _run(docker_client, image: str, script: str, *, network: str | None = None) -> str:
    """Run script with sh in a throwaway container of image; its output (fails the test on exit != 0)."""
    container = docker_client.containers.run(
        image, ["sh", "-ec", script], detach=True, network=network, name=f"nexus-subst-test-{uuid.uuid4().hex[:8]}",
        network_disabled=network is None)
    try:
        code = container.wait(timeout=300)["StatusCode"]
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert code == 0, output
    return output


def _substitute(docker_client, name: str):
    image = docker_client.images.get(name)
    if (image.labels or {}).get(SUBSTITUTE_LABEL) != name:
        pytest.fail(f"{name} is not a substitute on this engine: these tests check the substitutes bootstrap builds")
    return image


def test_alpine_substitute_has_node_npm_and_busybox_user_tools(docker_client):
    image = _substitute(docker_client, "node:20-alpine")
    assert "npm" in image.labels[PROVIDES_LABEL]
    out = _run(docker_client, "node:20-alpine", """
        node --version; npm --version
        addgroup -S grp
        adduser -S -G grp usr
        adduser -S lonely
        addgroup -S extra && addgroup usr extra
        getent passwd usr lonely; getent group grp; id -Gn usr
        """)
    lines = out.splitlines()
    assert lines[0].startswith("v") and lines[1][0].isdigit(), out
    usr = next(line for line in lines if line.startswith("usr:")).split(":")
    assert usr[5:] == ["/home/usr", "/sbin/nologin"], usr  # as Alpine's busybox: system user, nologin
    assert usr[3] == _gid(out, "grp"), out  # -G: its primary group
    lonely = next(line for line in lines if line.startswith("lonely:")).split(":")
    assert lonely[3] == "65534", lonely  # a system user without -G joins nogroup, as busybox does
    assert lines[-1].split() == ["grp", "extra"], out


def _gid(out: str, group: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(group + ":")).split(":")[2]


def test_python_substitute_has_python_pip_and_venv_under_the_real_names(docker_client):
    _substitute(docker_client, "python:3.11-slim")
    out = _run(docker_client, "python:3.11-slim", """
        python --version; python3 --version; pip --version; pip3 --version
        python -m venv /tmp/venv && /tmp/venv/bin/python -c 'import sys; print(sys.prefix)'
        """)
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines[:4]] == ["Python", "Python", "pip", "pip"] and lines[4] == "/tmp/venv", out


def test_every_substitute_trusts_the_host_ca_bundle(docker_client):
    host = hashlib.sha256(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()).hexdigest()
    for name in ("node:18-alpine", "python:3.12-slim"):
        image = _substitute(docker_client, name)
        env = dict(e.split("=", 1) for e in image.attrs["Config"]["Env"])
        bundle = env["SSL_CERT_FILE"]
        assert {env[k] for k in ("PIP_CERT", "REQUESTS_CA_BUNDLE")} == {bundle}, env
        out = _run(docker_client, name, f"sha256sum {bundle} /etc/ssl/certs/ca-certificates.crt")
        assert [line.split()[0] for line in out.splitlines()] == [host, host], out
        # Debian's node reads SSL_CERT_FILE on its first TLS connection; NODE_EXTRA_CA_CERTS would
        # make every node start parse the whole root store (seconds on a busy machine).
        assert "NODE_EXTRA_CA_CERTS" not in env


def test_npm_and_pip_install_real_packages_through_the_caches_and_tls_works(docker_client):
    """npm ci / install and pip install -r (system-wide and in a venv) from the registries, via
    the local caches on the build network; and a direct HTTPS call through the host's proxy."""
    network = load_base_image_map().build_network
    assert network, "the shipped map names the build network"
    out = _run(docker_client, "node:20-alpine", """
        cd /tmp && echo '{"name":"t","version":"1.0.0","dependencies":{"ms":"2.1.3"}}' > package.json
        npm install --production --no-audit --no-fund >/dev/null
        node -e 'console.log("ms", require("ms")("2 days"))'
        node -e 'require("https").get("https://registry.npmjs.org/ms", r => console.log("tls", r.statusCode))'
        """, network=network)
    assert "ms 172800000" in out and "tls 200" in out, out
    out = _run(docker_client, "python:3.11-slim", """
        echo 'six==1.16.0' > /tmp/requirements.txt
        pip install -q --no-cache-dir -r /tmp/requirements.txt 2>/dev/null
        python -c 'import six; print("six", six.__version__)'
        python -m venv /tmp/v && /tmp/v/bin/pip install -q --no-cache-dir -r /tmp/requirements.txt
        /tmp/v/bin/python -c 'import six; print("venv six", six.__version__)'
        """, network=network)
    assert "six 1.16.0" in out and "venv six 1.16.0" in out, out


def test_bootstrap_keeps_a_real_image_and_substitutes_only_what_it_cannot_pull(docker_client, tmp_path):
    """A name the engine has as a real image is used unchanged; a name no hub serves becomes a
    labelled substitute (its pull fails here at once: no hub is reachable)."""
    tag = uuid.uuid4().hex[:8]
    real, absent = f"nexus-subst-test-real-{tag}:1", f"nexus-subst-test-absent-{tag}:1"
    base_map = load_base_image_map()
    docker_client.images.get(base_map.base).tag(real)
    real_id = docker_client.images.get(real).id
    shipped = base_map.path.read_text(encoding="utf-8").split("[substitutes]")[0]
    custom = tmp_path / "map.toml"
    custom.write_text(f'{shipped}[substitutes]\n"{real}" = "{base_map.base}"\n"{absent}" = "{base_map.base}"\n')
    try:
        done = subprocess.run(["bash", str(ROOT / "scripts" / "bootstrap.sh")], capture_output=True, text=True,
                              timeout=600, env={**os.environ, "NEXUS_BASE_IMAGE_MAP": str(custom)})
        assert done.returncode == 0, done.stdout + done.stderr
        assert docker_client.images.get(real).id == real_id  # unchanged
        assert SUBSTITUTE_LABEL not in (docker_client.images.get(real).labels or {})
        assert docker_client.images.get(absent).labels[SUBSTITUTE_LABEL] == absent
        assert f"{absent}: cannot be pulled" in done.stdout and real not in done.stdout, done.stdout
    finally:
        for name in (real, absent):
            with contextlib.suppress(Exception):  # already gone
                docker_client.images.remove(name)
