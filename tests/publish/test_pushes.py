"""The step's pushes (publish.pushes.Pushes) against the real engine and a registry of the test's
own: pushes run while the caller goes on, an interrupt stops them within seconds and nothing
half-pushed is named, and a registry that is down is one error line for every image."""

from __future__ import annotations

import threading
import time

import pytest

from nexus_assets.core.settings import Settings
from nexus_assets.publish.pushes import Pushes
from nexus_assets.resources import DockerEngine
from nexus_assets.resources.registry import Registry

pytestmark = pytest.mark.docker


class Log:
    """The step's log as Pushes sees it (info, warning, error), kept as (level, text)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.info = lambda text: self.lines.append(("info", text))
        self.warning = lambda text: self.lines.append(("warning", text))
        self.error = lambda text: self.lines.append(("error", text))


def _settings(tmp_path, registry: str, max_parallel: int = 1) -> Settings:
    return Settings(repo=tmp_path, workdir=tmp_path / "work", registry=registry, version="1.0.0",
                    max_parallel=max_parallel)


def _push_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("push")]


def test_pushes_run_while_the_caller_goes_on_and_end_one_by_one(tmp_path, make_registry, images, registry_resource,
                                                                  monkeypatch):
    server = make_registry()
    log = Log()
    registry = registry_resource(server.address)
    for name in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD", "DOCKER_REGISTRY_TOKEN"):  # the resource alone holds them
        monkeypatch.delenv(name, raising=False)
    with Pushes(DockerEngine(), registry, _settings(tmp_path, server.address, max_parallel=2), log) as pushes:
        submitted = time.monotonic()
        pushes.submit("one", images(), cache_key="k1")
        pushes.submit("two", images())
        assert time.monotonic() - submitted < 5, "submit does not wait for the push"
        ended = pushes.ended()  # whatever ended already, without waiting
        ended += list(pushes.wait())
    assert sorted(ended) == ["one", "two"] and pushes.problems == {}
    assert pushes.results["one"].cache_tagged and not pushes.results["two"].cache_tag
    client = registry.client()
    assert client.manifest_digest("nexus/one", "1.0.0") == pushes.results["one"].digest
    client.close()
    assert next(text for level, text in log.lines if level == "info").startswith(f"pushing images to {server.address}")


def test_an_interrupt_stops_the_pushes_in_flight_within_seconds(tmp_path, make_registry, images, registry_resource):
    server = make_registry()
    big = [images(size=160 * 1024 * 1024), images(size=160 * 1024 * 1024)]  # too big to finish before the interrupt
    registry = registry_resource(server.address)
    pushes = Pushes(DockerEngine(), registry, _settings(tmp_path, server.address), Log())
    with pytest.raises(KeyboardInterrupt), pushes:
        pushes.submit("big1", big[0])
        pushes.submit("big2", big[1])  # one at a time: this one waits, and is dropped
        time.sleep(1.0)
        raise KeyboardInterrupt
    stopped = time.monotonic()
    while _push_threads() and time.monotonic() - stopped < 30:
        time.sleep(0.1)
    assert not _push_threads(), "a push thread still runs"
    assert time.monotonic() - stopped < 10, f"took {time.monotonic() - stopped:.1f}s to stop"
    assert pushes.results == {}
    client = registry.client()
    assert client.manifest_digest("nexus/big1", "1.0.0") is None and client.manifest_digest("nexus/big2", "1.0.0") is None
    client.close()


def test_a_registry_down_is_one_error_line_and_the_same_reason_for_every_image(tmp_path, make_registry, images):
    server = make_registry()
    server.stop(kill=True)
    log = Log()
    with Pushes(DockerEngine(), Registry(address=server.address), _settings(tmp_path, server.address), log) as pushes:
        pushes.submit("one", images())
        pushes.submit("two", images())
        assert list(pushes.wait()) == []
    assert pushes.results == {} and sorted(pushes.problems) == ["one", "two"]
    assert pushes.problems["one"] == pushes.problems["two"] and "cannot be reached" in pushes.problems["one"]
    errors = [text for level, text in log.lines if level == "error"]
    assert len(errors) == 1 and errors[0].startswith(f"push to {server.address} failed:"), log.lines
