"""What a killed run leaves behind, and how the next one removes it.

`kill -9` during the tests used to leave test containers running with their ports open, and the
run STARTED in Dagster forever. So every container and network a step creates carries who made
it: `io.nexus-assets.owner=<host>:<pid>` and `io.nexus-assets.workdir=<working copy>` (added by
`label_created` on the step's docker client, whatever module creates them), and every run
nexus-agent launches carries the tag `nexus/owner=<host>:<pid>`.

At the start of a run, holding the working copy's lock, `remove_leftovers` removes the test
containers and networks (label io.nexus-assets.test) that no live run can own: those of this
working copy (its lock is ours, so no other run is using it), those whose owner process on this
host is gone, and unowned ones (made before owners were recorded) older than an hour.
`fail_orphan_runs` marks failed the runs still STARTED whose owner process on this host is gone."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from calendar import timegm
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexus_assets.core.cancel import Cancelled

if TYPE_CHECKING:
    import dagster as dg
    from docker import DockerClient  # untyped package: Any to mypy, a name to the reader

TEST_LABEL = "io.nexus-assets.test"  # every test container and network (verify/sandbox.py)
OWNER_LABEL = "io.nexus-assets.owner"
WORKDIR_LABEL = "io.nexus-assets.workdir"
OWNER_TAG = "nexus/owner"  # on the Dagster runs nexus-agent launches
UNOWNED_GRACE_SECONDS = 3600.0


def owner() -> str:
    """This process, as the owner labels and tags name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(value: str) -> bool | None:
    """Whether the owner process is alive: None when it is not on this host (cannot tell)."""
    host, _, pid = value.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@dataclass
class Created:
    """The containers and networks one docker client created, labelled with their owner."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    closed: bool = False  # removed: nothing more may be created (a test that retries after a cancel)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def remove_with(self, client: DockerClient) -> None:
        """Force-remove what was created (a killed container ends its test at once), then the
        networks; what is already gone is skipped. From then on, creating raises Cancelled."""
        with self._lock:
            self.closed = True
            containers, networks = list(self.containers), list(self.networks)
        for ident in containers:
            with contextlib.suppress(Exception):
                client.api.remove_container(ident, force=True, v=True)
        for ident in networks:
            with contextlib.suppress(Exception):
                client.api.remove_network(ident)


def label_created(client: DockerClient, workdir: Path) -> Created:
    """Make client label every container and network it creates with this process and workdir,
    and record their ids. For a client used by one thread (the SDK's session is not shared)."""
    api, created = client.api, Created()
    labels = {OWNER_LABEL: owner(), WORKDIR_LABEL: str(workdir)}
    create_container, create_network = api.create_container, api.create_network

    def record(kind: list[str], create: Any, remove: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if created.closed:
            raise Cancelled("not started: the run was interrupted and its test containers removed")
        kwargs["labels"] = {**(kwargs.get("labels") or {}), **labels}
        result = create(*args, **kwargs)
        with created._lock:
            closed = created.closed
            if not closed:
                kind.append(result["Id"])
        if closed:  # removed while this one was being created: it goes too
            with contextlib.suppress(Exception):
                remove(result["Id"])
            raise Cancelled("not started: the run was interrupted and its test containers removed")
        return result

    def container(*args: Any, **kwargs: Any) -> Any:
        return record(created.containers, create_container,
                      lambda ident: api.remove_container(ident, force=True, v=True), args, kwargs)

    def network(*args: Any, **kwargs: Any) -> Any:
        return record(created.networks, create_network, api.remove_network, args, kwargs)

    api.create_container, api.create_network = container, network
    return created


def _created_at(value: str) -> float | None:
    """Seconds since the epoch from the engine's `Created` (RFC 3339, nanoseconds, any offset)."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$", value or "")
    if not match:
        return None
    seconds = float(timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")))
    offset = match.group(2) or "Z"
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds


def is_leftover(labels: dict[str, Any], created: float | None, workdir: Path, *, now: float | None = None) -> bool:
    """True when no live run can own a test container or network with these labels, created
    then (seconds since the epoch, None if unknown)."""
    if labels.get(WORKDIR_LABEL) == str(workdir):
        return True  # the caller holds this working copy's lock: no other run uses it
    if labels.get(OWNER_LABEL):
        return owner_alive(labels[OWNER_LABEL]) is False
    return created is not None and (now or time.time()) - created > UNOWNED_GRACE_SECONDS


def remove_leftovers(client: DockerClient, workdir: Path) -> tuple[list[str], list[str]]:
    """Remove the test containers, then the test networks, that no live run owns. Call it
    holding workdir's lock. Returns the names removed."""
    containers, networks = [], []
    for item in client.api.containers(all=True, filters={"label": TEST_LABEL}):
        if is_leftover(item.get("Labels") or {}, item.get("Created"), workdir):
            with contextlib.suppress(Exception):
                client.api.remove_container(item["Id"], force=True, v=True)
                containers.append((item.get("Names") or [item["Id"][:12]])[0].lstrip("/"))
    for item in client.api.networks(filters={"label": TEST_LABEL}):
        if is_leftover(item.get("Labels") or {}, _created_at(item.get("Created", "")), workdir):
            with contextlib.suppress(Exception):
                client.api.remove_network(item["Id"])
                networks.append(item.get("Name") or item["Id"][:12])
    return containers, networks


def fail_orphan_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs of instance still starting or started whose owner process (tag
    nexus/owner) on this host is gone. Runs without the tag (the UI's, the daemon's) are left to
    Dagster's own run monitoring. Returns their run ids."""
    import dagster as dg

    live = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=live)):
        who = run.tags.get(OWNER_TAG)
        if who and owner_alive(who) is False:
            instance.report_run_failed(run, message=f"the process that ran it ({who}) is gone: marked failed "
                                                    "at the start of the next nexus-agent run")
            failed.append(run.run_id)
    return failed
