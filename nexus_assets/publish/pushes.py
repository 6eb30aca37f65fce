"""One step's pushes, each started the moment its image may go: the image step hands over a
service as soon as it is built and tested, and its push runs (up to max_parallel at a time)
while the other services still build, so the step ends soon after its last build instead of
pushing everything at the end.

The registry is asked once, before the first push: a registry that is down or refuses the
credentials is one error line, and the same reason for every image. A push's failure is that
service's alone. Leaving the `with` block on an interrupt (Ctrl-C, SIGTERM) or an error drops
the pushes not started and makes those in flight stop at their next progress line; cancel_all
reaches the switch too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from types import TracebackType
from typing import Any

import dagster as dg

from nexus_assets.core.cancel import Cancellation
from nexus_assets.core.errors import NexusError
from nexus_assets.core.release_version import release_tag
from nexus_assets.core.settings import Settings
from nexus_assets.publish.push import PushResult, push_image
from nexus_assets.registry.client import Credentials, CredentialSource, RegistryClient
from nexus_assets.registry.released import IMMUTABLE, released_manifest
from nexus_assets.resources import DockerEngine


class Pushes:
    """The pushes of one step: submit() as each image passes, ended() between builds, wait() at
    the end; results and problems ({service: reason}) fill in as pushes end."""

    def __init__(self, docker_engine: DockerEngine, registry: CredentialSource, settings: Settings,
                 log: dg.DagsterLogManager) -> None:
        self._engine, self._registry, self._settings, self._log = docker_engine, registry, settings, log
        self._stop = Cancellation()
        self._pool: ThreadPoolExecutor | None = None  # started with the first push
        self._credentials: Credentials | None = None
        self._down: str | None = None  # why the registry cannot be pushed to, once asked
        self._checked = False
        self._released = False  # the version is already released: its registry tags are never moved
        self._futures: dict[Future[Any], str] = {}
        self._notes: dict[str, list[str]] = {}
        self.results: dict[str, PushResult] = {}
        self.problems: dict[str, str] = {}

    def __enter__(self) -> Pushes:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 _traceback: TracebackType | None) -> None:
        if self._pool is None:
            return
        if exc is not None:  # interrupted or failed: drop what has not started, stop what runs
            self._stop.cancel("interrupted" if not isinstance(exc, Exception) else "stopped after an error")
            self._pool.shutdown(wait=False, cancel_futures=True)
        else:
            self._pool.shutdown(wait=True)

    def submit(self, name: str, image_id: str, cache_key: str | None = None) -> None:
        """Start pushing name's image (tagged cache-<cache_key> too when given), after asking
        the registry once on the first push; a registry that cannot be pushed to makes it a
        problem at once."""
        if not self._registry_ready():
            self.problems[name] = f"not pushed: {self._down}"
            return
        if self._pool is None:
            self._log.info(f"pushing images to {self._settings.registry} as they pass their tests, "
                           f"up to {self._settings.max_parallel} at a time")
            self._pool = ThreadPoolExecutor(max_workers=self._settings.max_parallel, thread_name_prefix="push")
        self._notes[name] = []
        self._futures[self._pool.submit(self._push, name, image_id, cache_key, self._notes[name])] = name

    def ended(self) -> list[str]:
        """The services whose push ended since last asked, without waiting."""
        return [self._collect(future) for future in [f for f in self._futures if f.done()]]

    def wait(self) -> Iterator[str]:
        """Every push still in flight, as each ends."""
        for future in as_completed(list(self._futures)):
            yield self._collect(future)

    def _registry_ready(self) -> bool:
        if not self._checked:
            self._checked = True
            try:
                self._credentials = self._registry.credentials()
                checker = RegistryClient(self._settings.registry, self._credentials)
                try:
                    checker.check(on_retry=lambda text: self._log.warning(text))
                finally:
                    checker.close()
            except NexusError as exc:  # one line for the run, the same reason on every service
                self._down = str(exc)
                self._log.error(f"push to {self._settings.registry} failed: {exc}")
            # Decided before anything goes under the version's tags: once released, they are the release's.
            self._released = released_manifest(self._settings.repo, self._settings.version) is not None
            if self._released and self._down is None:
                self._log.warning(f"{release_tag(self._settings.version)} is already released: images are pushed "
                                  f"under build-<image id> only, the registry's :{self._settings.version} and "
                                  f":latest stay on the released images ({IMMUTABLE})")
        return self._down is None

    def _push(self, name: str, image_id: str, cache_key: str | None, notes: list[str]) -> PushResult:
        client = self._engine.client()
        registry = RegistryClient(self._settings.registry, self._credentials)
        on_progress: Callable[[dict[str, Any]], None] = lambda _chunk: self._stop.raise_if_cancelled(f"push of {name}")
        try:  # retries are noted here and logged from the step's thread
            self._stop.raise_if_cancelled(f"push of {name}")
            return push_image(client, registry, name, image_id, self._settings.version, log=notes.append,
                              on_progress=on_progress, cache_key=cache_key, version_tags=not self._released)
        finally:
            registry.close()
            client.close()

    def _collect(self, future: Future[Any]) -> str:
        name = self._futures.pop(future)
        for note in self._notes.pop(name, []):
            self._log.warning(f"{name}: {note}")
        try:
            self.results[name] = future.result()
        except NexusError as exc:
            self.problems[name] = f"not pushed: {exc}"
            self._log.error(f"{name}: push to {self._settings.registry} failed: {exc}")
        return name
