"""A staging host of the tests' own (scripts/staging_host.sh with another name, /30, port and
state folder), whose engine pulls from the session's registry; removed after the session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def staging_host(tmp_path_factory, session_registry):
    env = {**os.environ, "NEXUS_STAGING_NAME": "nexus-staging-test", "NEXUS_STAGING_NET": "10.254.253.4",
           "NEXUS_STAGING_PORT": "2223", "NEXUS_STAGING_STATE": str(tmp_path_factory.mktemp("staging") / "host"),
           "NEXUS_STAGING_REGISTRY": session_registry.address}
    script = ["bash", str(ROOT / "scripts" / "staging_host.sh")]
    subprocess.run([*script, "down"], env=env, capture_output=True, timeout=120)
    try:
        done = subprocess.run([*script, "up"], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        settings = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
        settings["DOCKER_HOST"] = f"unix://{env['NEXUS_STAGING_STATE']}/docker.sock"
        yield settings
    finally:
        done = subprocess.run([*script, "down"], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
