"""The parts of stopping and cleaning up that need no engine: the cancel switch, which labelled
container a killed run left, runs whose nexus-agent is gone, the build deadline setting, and a
full disk said in one line."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest

from nexus_assets.core.cancel import Cancellation, Cancelled, cancel_all
from nexus_assets.core.errors import ConfigError, no_space_line
from nexus_assets.core.settings import Settings
from nexus_assets.testing.cleanup import (
    OWNER_LABEL,
    OWNER_TAG,
    WORKDIR_LABEL,
    _created_at,
    fail_orphan_runs,
    is_leftover,
    owner,
)
from tests.conftest import fill_disk, mounted_tmpfs

NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_switch_runs_hooks_once_at_once_and_only_while_registered():
    switch, calls = Cancellation(), []
    with switch.hook(lambda: calls.append("build")):
        with switch.hook(lambda: 1 / 0):  # a failing hook does not stop the others
            pass
        with switch.hook(lambda: calls.append("tests")):
            switch.cancel("interrupted")
            switch.cancel("again")
    assert calls == ["build", "tests"] and switch.reason == "interrupted"
    with switch.hook(lambda: calls.append("late")):  # registered after the throw: runs at once
        pass
    assert calls[-1] == "late"
    with pytest.raises(Cancelled, match="service a: not run, the run was interrupted"):
        switch.raise_if_cancelled("service a")


def test_cancel_all_reaches_a_switch_nobody_holds_a_name_for():
    stopped = threading.Event()
    switch = Cancellation()
    with switch.hook(stopped.set):
        cancel_all("interrupted")
    assert stopped.is_set()


def test_leftover_rules(tmp_path):
    here = socket.gethostname()
    mine, other = tmp_path / "work", tmp_path / "other"
    now = time.time()
    # this working copy: its lock is held by the caller, so nothing of it is live
    assert is_leftover({WORKDIR_LABEL: str(mine), OWNER_LABEL: owner()}, now, mine)
    # another working copy: only when its owner process is gone
    assert is_leftover({WORKDIR_LABEL: str(other), OWNER_LABEL: f"{here}:{_dead_pid()}"}, now, mine)
    assert not is_leftover({WORKDIR_LABEL: str(other), OWNER_LABEL: owner()}, now, mine)
    assert not is_leftover({WORKDIR_LABEL: str(other), OWNER_LABEL: f"elsewhere:{_dead_pid()}"}, now, mine)
    # made before owners were recorded: only once it is older than any test stage
    assert not is_leftover({}, now - 60, mine)
    assert is_leftover({}, now - 7200, mine)
    assert not is_leftover({}, None, mine)


def test_engine_timestamps_with_nanoseconds_and_offsets():
    assert _created_at("2026-11-25T13:27:14.123456789Z") == 1795613234.0
    assert _created_at("2026-11-25T14:27:14.5+01:00") == 1795613234.0
    assert _created_at("yesterday") is None


def _started_run(instance, who: str) -> dg.DagsterRun:
    @dg.op
    def nothing():
        pass

    @dg.job
    def job():
        nothing()

    run = instance.create_run_for_job(job_def=job, tags={OWNER_TAG: who})
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name, message="started"))
    return instance.get_run_by_id(run.run_id)


def test_runs_of_a_dead_nexus_agent_are_marked_failed_and_live_ones_left(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        dead = _started_run(instance, f"{socket.gethostname()}:{_dead_pid()}")
        live = _started_run(instance, owner())
        assert dead.status == live.status == dg.DagsterRunStatus.STARTED
        assert fail_orphan_runs(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED


def test_build_timeout_from_env_and_flag(monkeypatch, tmp_path):
    monkeypatch.setenv("NEXUS_BUILD_TIMEOUT", "42")
    assert Settings.from_env(workdir=tmp_path).build_timeout == 42
    assert Settings.from_env(workdir=tmp_path, build_timeout=7.5).build_timeout == 7.5
    monkeypatch.delenv("NEXUS_BUILD_TIMEOUT")
    assert Settings.from_env(workdir=tmp_path).build_timeout == 1800
    for bad in (0, -1, float("nan")):
        with pytest.raises(ConfigError, match=r"build timeout \(--build-timeout, NEXUS_BUILD_TIMEOUT\) must be positive"):
            Settings.from_env(workdir=tmp_path, build_timeout=bad).validate()
    monkeypatch.setenv("NEXUS_BUILD_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="NEXUS_BUILD_TIMEOUT must be a number of seconds"):
        Settings.from_env()


def test_bad_build_timeout_flag_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([*NEXUS_AGENT, "run", "--build-timeout", "0", "--workdir", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path / "dh")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "nexus-agent: error: build timeout (--build-timeout, NEXUS_BUILD_TIMEOUT) must be positive seconds up to 86400, got 0.0"]


def test_no_space_lines():
    assert no_space_line(OSError(errno.ENOSPC, "No space left on device", "/w/reports/x.json")) == \
        "no space left on device: /w/reports/x.json"
    assert no_space_line("OSError: [Errno 28] No space left on device: '/w/a'\n") == "no space left on device: /w/a"
    copy = OSError(errno.ENOSPC, "No space left on device", "/repo/blob.bin", None, "/w/blob.bin")
    assert no_space_line(copy) == "no space left on device: /w/blob.bin"
    assert no_space_line(f"OSError: {copy}") == "no space left on device: /w/blob.bin"
    assert no_space_line("sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database or disk is full",
                         ["/dh"]) == "no space left on device: /dh (database or disk is full)"
    assert no_space_line(OSError(errno.EACCES, "Permission denied", "/w")) is None
    assert no_space_line("ValueError: [Errno 280] not it") is None


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 2 MB tmpfs (filled up by the test that needs it full); unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "full", "2m") as mount:
        yield mount


def test_dagster_home_on_a_full_disk_is_one_line(full_tmpfs, tmp_path):
    home = full_tmpfs / "dagster_home"
    home.mkdir()
    fill_disk(full_tmpfs)
    done = subprocess.run([*NEXUS_AGENT, "status", "--workdir", str(tmp_path / "w")], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "DAGSTER_HOME": str(home)})
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and "sqlalchemy" not in done.stderr.lower()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nexus-agent: error: no space left on device: "), lines
    assert str(home) in lines[0], lines
