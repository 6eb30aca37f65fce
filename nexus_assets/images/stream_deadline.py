"""Stopping a build or a pull that streams from the engine: at its deadline, or when the run
is cancelled, the client's socket is shut so the blocked read ends at once and the engine
cancels what a client that went away asked for (the classic builder's builds, registry pulls)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nexus_assets.core.cancel import Cancellation

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (Any to mypy)
    from docker import APIClient


class StreamStopper:
    """Stops a build or a pull that streams on a client's connection: shutting the socket down
    ends the blocked read at once, and the engine cancels what a client that went away asked
    for (the classic builder kills and removes the step's container; a pull is dropped).
    Installed on a per-thread client only."""

    def __init__(self, api: APIClient) -> None:
        self.reason: str | None = None
        self._responses: list[Any] = []
        self._lock = threading.Lock()
        original = api._stream_helper

        def stream_helper(response: Any, decode: bool = False) -> Any:  # the SDK hands every streamed response here
            with self._lock:
                self._responses.append(response)
                stopped = self.reason is not None
            if stopped:
                self._shut(response)
            return original(response, decode=decode)

        api._stream_helper = stream_helper
        self._api, self._original = api, original

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            responses = list(self._responses)
        for response in responses:
            self._shut(response)

    @staticmethod
    def _shut(response: Any) -> None:
        with contextlib.suppress(Exception):
            raw = response.raw._fp.fp.raw  # the socket file under http.client's response
            sock = getattr(raw, "_sock", raw)
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            response.close()

    def restore(self) -> None:
        self._api._stream_helper = self._original


@contextlib.contextmanager
def stream_deadline(api: APIClient, timeout: float | None, cancel: Cancellation | None) -> Iterator[StreamStopper]:
    """A StreamStopper on api, thrown after timeout seconds or when cancel is thrown: inside,
    a stream the engine sends ends at once, and stopper.reason says why."""
    stopper = StreamStopper(api)
    timer = threading.Timer(timeout, stopper.stop, args=(f"timed out after {timeout:g}s",)) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        with cancel.hook(lambda: stopper.stop(f"stopped: the run was {cancel.reason}")) if cancel \
                else contextlib.nullcontext():
            yield stopper
    finally:
        if timer is not None:
            timer.cancel()
        stopper.restore()
