"""Bad input at the operator's command line ends in one line that says what is wrong and
what to do, with exit code 2, and no traceback."""

from __future__ import annotations

import subprocess
import sys

NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]


def _run(args, tmp_path, **env):
    import os

    full_env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dh"), **env}
    return subprocess.run(NEXUS_AGENT + args, capture_output=True, text=True, env=full_env, timeout=120)


def _one_error_line(done):
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, lines
    return lines[0]


def test_missing_target_path(tmp_path):
    line = _one_error_line(_run(["run", "--repo", str(tmp_path / "nope"), "--workdir", str(tmp_path / "w")], tmp_path))
    assert "does not exist" in line and "--repo" in line


def test_target_without_services_folder(tmp_path):
    (tmp_path / "repo").mkdir()
    line = _one_error_line(_run(["run", "--repo", str(tmp_path / "repo"), "--workdir", str(tmp_path / "w")], tmp_path))
    assert "no services/ folder" in line


def test_no_docker_engine_reachable(tmp_path):
    done = _run(["run", "--workdir", str(tmp_path / "w")], tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no.sock")
    line = _one_error_line(done)
    assert "no Docker engine reachable" in line and "bootstrap.sh" in line


def test_bad_version_is_refused(tmp_path):
    line = _one_error_line(_run(["run", "--version", "1.0/evil", "--workdir", str(tmp_path / "w")], tmp_path))
    assert "cannot be an image tag" in line
