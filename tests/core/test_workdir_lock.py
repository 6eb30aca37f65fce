"""One writer per working copy: a second holder waits, then fails naming the first; the lock is
re-entrant for the invocation that holds it and gone when its holder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from nexus_assets.core.workdir_lock import WorkdirBusyError, holder_of, workdir_lock

HOLD = """
import sys, time
from pathlib import Path
from nexus_assets.core.workdir_lock import workdir_lock
with workdir_lock(Path(sys.argv[1]), "holder-inv"):
    print("held", flush=True)
    time.sleep(120)
"""


def _hold_in_another_process(workdir):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_fails_naming_the_holder_and_gets_it_once_the_holder_dies(tmp_path):
    holder = _hold_in_another_process(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(WorkdirBusyError) as caught, workdir_lock(tmp_path, "second", wait_seconds=1.0):
            pass
        assert 0.9 <= time.monotonic() - started < 10
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and "holder-inv" in message and str(tmp_path) in message
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # a killed run: the kernel drops its flock
        holder.wait()
    with workdir_lock(tmp_path, "second", wait_seconds=5.0):
        assert holder_of(tmp_path)["invocation"] == "second"
    assert holder_of(tmp_path) == {}


def test_the_invocation_that_holds_it_enters_again(tmp_path):
    with workdir_lock(tmp_path, "inv-1"):
        with workdir_lock(tmp_path, "inv-1", wait_seconds=0):  # a step inside nexus-agent's own run
            assert holder_of(tmp_path)["invocation"] == "inv-1"
        with pytest.raises(WorkdirBusyError), workdir_lock(tmp_path, "inv-2", wait_seconds=0):
            pass


@pytest.mark.docker
def test_a_second_nexus_agent_on_one_working_copy_fails_naming_the_first(tmp_path, unique_registry, remove_test_images):
    """Issue 10, fault 9, with two real `nexus-agent run`: the second builds nothing, waits
    NEXUS_LOCK_WAIT seconds, then says in one line who holds the working copy (exit 2)."""
    import random

    from nexus_assets.testrepos.synthetic import generate_monorepo

    repo, workdir = tmp_path / "repo", tmp_path / "work"
    generate_monorepo(repo, 1)
    dockerfile = repo / "services" / "node-svc-001" / "Dockerfile"
    command = f"sleep {random.randint(100000, 199999)}"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app\n", f"WORKDIR /app\nRUN {command}\n", 1))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "PYTHONUNBUFFERED": "1",
           "NEXUS_LOCK_WAIT": "3"}
    agent = [sys.executable, "-m", "nexus_assets.cli", "run", "--repo", str(repo), "--workdir", str(workdir),
             "--registry", unique_registry]
    first_out = tmp_path / "first.out"
    with open(first_out, "w") as sink:
        first = subprocess.Popen(agent, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        log = workdir / "reports" / "build_node-svc-001.log"
        while not (log.is_file() and command in log.read_text()):
            assert time.monotonic() < deadline and first.poll() is None, first_out.read_text()
            time.sleep(0.5)
        started = time.monotonic()
        second = subprocess.run(agent, capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 2, second
        assert 3 <= time.monotonic() - started < 60
        assert "building" not in second.stdout and "Traceback" not in second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert line.startswith(f"nexus-agent: error: working copy {workdir} is in use by another run "
                               f"(pid {first.pid}, invocation "), line
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 130, first_out.read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
