"""Stopping work in progress: one switch per step, thrown once (the operator's Ctrl-C, SIGTERM, a
run terminated from the UI), and the hooks that work in progress registered with it.

A build blocked on its streaming connection or a test waiting on its container cannot look at a
flag; so what it holds (the connection, the containers) is registered as a hook, and throwing the
switch runs every hook at once, from the thread that threw it. Work that can look checks
`raise_if_cancelled()` between its stages.

Every switch alive in the process is also reachable through `cancel_all()`: an interrupt that
Dagster delivers while a step is suspended between two of its events never re-enters the step,
so nexus-agent throws every switch itself once it sees the run was interrupted."""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections.abc import Callable, Iterator

from nexus_assets.core.errors import NexusError


class Cancelled(NexusError):
    """The run was interrupted: what was in progress was stopped."""


_ALIVE: weakref.WeakSet[Cancellation] = weakref.WeakSet()


def cancel_all(reason: str = "interrupted") -> None:
    """Throw every switch still alive in this process."""
    for switch in list(_ALIVE):
        switch.cancel(reason)


class Cancellation:
    """A stop switch shared by one step and the threads it started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self.reason: str | None = None
        _ALIVE.add(self)

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def cancel(self, reason: str = "interrupted") -> None:
        """Throw the switch (once) and run every registered hook; a hook that fails does not stop
        the others."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            hooks = list(self._hooks.values())
        for hook in hooks:
            with contextlib.suppress(Exception):
                hook()

    def raise_if_cancelled(self, what: str) -> None:
        if self.reason is not None:
            raise Cancelled(f"{what}: not run, the run was {self.reason}")

    @contextlib.contextmanager
    def hook(self, stop: Callable[[], None]) -> Iterator[None]:
        """Run stop() if the switch is thrown while inside; at once if it was thrown already."""
        with self._lock:
            key = next(self._ids)
            self._hooks[key] = stop
            already = self.reason is not None
        if already:
            with contextlib.suppress(Exception):
                stop()
        try:
            yield
        finally:
            with self._lock:
                self._hooks.pop(key, None)
