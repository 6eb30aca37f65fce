"""benchmarks/load_benchmark.py: the code location's load time, with engine calls counted."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import docker
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "load_benchmark.py"
_spec = importlib.util.spec_from_file_location("load_benchmark", SCRIPT)
bench = importlib.util.module_from_spec(_spec)
assert _spec.loader is not None
_spec.loader.exec_module(bench)


def test_the_socket_where_docker_host_points_counts_a_client_that_calls_it(tmp_path: Path):
    """What the benchmark counts as an engine call: a docker client asking the socket DOCKER_HOST
    names fails there (no engine answers) and is counted."""
    engine = bench.FakeEngine(tmp_path / "engine.sock")
    try:
        with pytest.raises(docker.errors.DockerException):  # the SDK asks the engine's version first
            docker.DockerClient(base_url=f"unix://{engine.path}", timeout=5).ping()
        assert engine.connections >= 1
    finally:
        engine.close()


def test_every_load_is_measured_in_a_fresh_process_without_an_engine_call(tmp_path: Path):
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "2", "--runs", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| 2 |" in done.stdout and "engine calls while loading: 0" in done.stdout
    measured = json.loads(out.read_text())["sides"]["this"]["2"]
    assert set(measured) == {"dagster", "agent", "cli"}
    assert all(m["engine_calls"] == 0 and m["total_s"] > 0 for m in measured.values())
    # the code location and nexus-agent's graph have the same assets; the CLI alone loads no Dagster
    assert measured["dagster"]["assets"] == measured["agent"]["assets"] > 2 * 5
    assert measured["dagster"]["snapshot_s"] > 0 and measured["cli"]["dagster_loaded"] is False


def test_bad_sizes_stop_before_generating_anything():
    done = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--sizes" in done.stderr
