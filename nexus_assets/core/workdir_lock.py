"""One writer per working copy: a lock file under WORKDIR held for as long as a run writes there.

Two runs on one working copy used to interleave (94 builds for 47 services, wrong manifest
entries). `nexus-agent run` holds the lock for its whole invocation; a step of a run launched
elsewhere (the UI, the sensor) takes it for its own duration, unless its run belongs to the
invocation that holds it. The lock is an flock(2): the kernel drops it when the holder dies, so
a killed run never leaves the working copy locked."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import NexusError

LOCK_NAME = ".nexus-workdir.lock"


class WorkdirBusyError(NexusError):
    """Another run holds the working copy."""


def _holder(path: Path) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8") or "{}")
        return found
    except (OSError, ValueError):
        return {}


def holder_of(workdir: Path) -> dict[str, Any]:
    """Who holds the working copy's lock now (pid, invocation, since), or {}."""
    return _holder(workdir / LOCK_NAME)


@contextlib.contextmanager
def workdir_lock(workdir: Path, invocation: str, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the working copy for invocation; wait up to wait_seconds for another holder, then
    fail naming it. Re-entrant for the same invocation (a step inside the run that holds it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / LOCK_NAME
    current = _holder(path)
    if current.get("invocation") == invocation and current.get("pid") == os.getpid():
        yield  # the nexus-agent invocation running this step already holds it
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    who = _holder(path)
                    raise WorkdirBusyError(
                        f"working copy {workdir} is in use by another run (pid {who.get('pid', '?')}, "
                        f"invocation {who.get('invocation', '?')}, since {who.get('since', '?')}): wait for it "
                        "to finish, or use another --workdir") from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "invocation": invocation,
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
