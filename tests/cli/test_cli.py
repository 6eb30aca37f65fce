"""Bad input at the operator's command line ends in one line that says what is wrong and
what to do, with exit code 2, and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]


def _run(args, tmp_path, **env):
    import os

    full_env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dh"), **env}
    return subprocess.run(NEXUS_AGENT + args, capture_output=True, text=True, env=full_env, timeout=300)


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


def test_a_registry_that_cannot_name_an_image_is_refused_before_any_build(tmp_path):
    """It used to reach every build and fail each service as "lost the Docker engine"."""
    line = _one_error_line(_run(["run", "--registry", "127.0.0.1:5000/Team", "--workdir", str(tmp_path / "w")],
                                tmp_path))
    assert "registry '127.0.0.1:5000/Team' cannot name an image" in line and "lowercase" in line


def test_bad_version_is_refused(tmp_path):
    line = _one_error_line(_run(["run", "--version", "1.0/evil", "--workdir", str(tmp_path / "w")], tmp_path))
    assert "is not X.Y.Z" in line  # more cases: test_bad_settings.py


@pytest.mark.docker
def test_named_pipes_in_the_repository_are_named_on_screen_and_never_read(tmp_path, unique_registry,
                                                                           remove_test_images):
    """Issue 10, fault 7: `mkfifo REPO/nexus-discovery/docker_ps.json` crashed the workspace step
    with its cause hidden, and a pipe anywhere else hung the source hash for ever. Now a pipe is
    never read or copied: a warning names it, the run completes, and the next one has nothing to
    do. And an invalid compose file is named on screen with its line (fault 10)."""
    import os

    from nexus_assets.testrepos.synthetic import generate_monorepo

    repo = tmp_path / "repo"
    generate_monorepo(repo, 1)
    (repo / "nexus-discovery").mkdir()
    pipes = ["nexus-discovery/docker_ps.json", "services/node-svc-001/pipe", ".env"]
    for rel in pipes:
        os.mkfifo(repo / rel)
    (repo / "docker-compose.bad.yml").write_text("services:\n  web:\n    image: nginx\n\tports: []\n")
    args = ["run", "--repo", str(repo), "--workdir", str(tmp_path / "w"), "--registry", unique_registry]
    first = _run(args, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    for rel in pipes:
        assert (f"[nexus] WARNING {rel} (named pipe): not a regular file; not copied into the working "
                "copy") in first.stdout, first.stdout
    assert "built node-svc-001" in first.stdout
    # An invalid compose file is named on screen with its line, not only counted (fault 10).
    assert "[nexus] WARNING docker-compose.bad.yml:4 invalid YAML" in first.stdout, first.stdout
    second = _run(args, tmp_path)
    assert second.returncode == 0 and "nothing changed since the last run: no run launched" in second.stdout, second
