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
