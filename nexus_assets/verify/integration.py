"""The integration stage: the service's container, on a test network of its own when it
declares infrastructure (which runs beside it there) and with no network at all otherwise,
ready as soon as GET /health answers (probed every 100 ms from inside the engine, not at the
HEALTHCHECK's interval), its HEALTHCHECK passing, then GET /health (200) and every
parameter-free GET path of its openapi.json (2xx). Nothing is published on the host, so the
stage runs the same on the host and in a run launched in a container."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nexus_assets.target.compose_runtime import RunSettings
from nexus_assets.target.services import Service
from nexus_assets.testing.stage import Stage
from nexus_assets.verify.infrastructure import prepare
from nexus_assets.verify.sandbox import (
    LOOPBACK,
    POLL,
    Prober,
    container_logs,
    create_network,
    exec_in,
    healthcheck_command,
    start_container,
)

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient
    from docker.models.containers import Container
    from docker.models.networks import Network


def spec_get_paths(spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(testable, skipped): GET paths of an OpenAPI document, with the base path of its first
    server; paths with {parameters} cannot be called blindly, so they are skipped."""
    servers = spec.get("servers") or [{}]
    base = urllib.parse.urlsplit(str(servers[0].get("url", ""))).path.rstrip("/")
    testable: list[str] = []
    skipped: list[str] = []
    for path, ops in (spec.get("paths") or {}).items():
        if isinstance(ops, dict) and "get" in ops:
            (skipped if "{" in path else testable).append(base + path)
    return testable, skipped


def _exited(container: Container) -> str | None:
    state = container.attrs["State"]
    if state["Status"] not in ("exited", "dead"):
        return None

    tail = " | ".join(container_logs(container).strip().splitlines()[-3:])[-300:]
    return f"container exited with code {state.get('ExitCode')} before it was ready: {tail}"


def _engine_unhealthy(st: Stage, state: dict[str, Any]) -> str:
    last = (state["Health"].get("Log") or [{}])[-1]
    st.write(f"# last health probe: {last}")
    said = str(last.get("Output") or "").strip()[:120]
    return (f"container became unhealthy (failing streak {state['Health'].get('FailingStreak')}, "
            f"last probe exit {last.get('ExitCode')}{': ' + said if said else ''})")


def _wait_answering(st: Stage, container: Container, prober: Prober, port: str, order: list[str],
                    api_error: type[Exception]) -> tuple[str | None, list[dict[str, Any]], int | None, str]:
    """Until GET /health answers (any status) from inside the engine, then GET every path of
    order in the same probe run. Returns (failure or None, the GET answers, the probe's exit
    code and output). The probe waits in slices of at most 2 s, between which the container is
    looked at: one that exited or that the engine found unhealthy fails at once."""
    while True:
        container.reload()
        failure = _exited(container)
        if failure:
            return failure, [], None, ""
        state = container.attrs["State"]
        st.details["engine_health"] = (state.get("Health") or {}).get("Status")
        if st.details["engine_health"] == "unhealthy":
            st.details["health"] = "unhealthy"
            return _engine_unhealthy(st, state), [], None, ""
        if st.remaining() <= 0:
            return f"{st.timed_out()} waiting for GET /health to answer", [], None, ""
        if st.details["network"]:
            networks = container.attrs["NetworkSettings"].get("Networks") or {}
            ip = (networks.get(st.details["network"]) or {}).get("IPAddress")
        else:  # no network: called from inside its own container
            ip = LOOPBACK
        st.details["address"] = f"{ip}:{port.split('/')[0]}"
        try:
            code, found, output = prober.run(["wait", f"http://{st.details['address']}",
                                              f"{min(2.0, st.remaining()):.2f}", *order], st.remaining())
        except api_error as exc:  # the container stopped between the two looks
            st.write(f"# probe refused: {exc}")
            time.sleep(POLL)
            continue
        waited = [a for a in found if a.get("wait")]
        if waited and waited[-1]["status"] is not None:
            return None, [a for a in found if not a.get("wait")], code, output
        if code not in (0, None):
            st.write(f"# probe exit {code}: {output.strip()[-300:]}")


def _healthcheck(client: DockerClient, st: Stage, container: Container, config: dict[str, Any],
                 command: list[str]) -> str | None:
    """Run the image's HEALTHCHECK command now rather than at its interval: healthy as soon as it
    (or the engine) says so; unhealthy only when the engine says so (its retries exhausted)."""
    per_try = ((config.get("Healthcheck") or {}).get("Timeout") or 30_000_000_000) / 1e9
    if st.details.get("engine_health") == "healthy":  # the engine ran it already: no exec needed
        st.write("# HEALTHCHECK: the engine says healthy")
        st.details["health"] = "healthy"
        return None
    while True:
        code, output = exec_in(client, container, command, min(per_try, max(st.remaining(), 0.1)))
        st.write(f"# HEALTHCHECK run now -> exit {code}{': ' + output.strip()[:200] if code else ''}")
        if code == 0:
            st.details["health"] = "healthy"
            return None
        container.reload()
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status")
        st.details["engine_health"] = health
        if health == "healthy":
            st.details["health"] = "healthy"
            return None
        if health == "unhealthy":
            st.details["health"] = "unhealthy"
            return _engine_unhealthy(st, state)
        if _exited(container):
            return _exited(container)
        if st.remaining() <= 0:
            return f"{st.timed_out()} waiting for the HEALTHCHECK to pass (health: {health})"
        time.sleep(0.5)


def _endpoints(st: Stage, order: list[str], found: list[dict[str, Any]], code: int | None, output: str) -> tuple[bool,
               str]:
    bad = []
    for answer in found:
        path, status, error = str(answer["path"]), answer.get("status"), answer.get("error") or ""
        ok = status == 200 if path == "/health" else status is not None and 200 <= status < 300
        st.details["endpoints"].append({"path": path, "status": status, "ok": ok})
        st.write(f"GET {path} -> {status if status is not None else error}")
        if not ok:
            bad.append(f"GET {path} -> {status if status is not None else error}")
    if len(found) < len(order):
        if code is None:
            return False, f"{st.timed_out()} while calling the endpoints"
        st.write(output)
        return False, f"the HTTP probe stopped after {len(found)} of {len(order)} endpoints (exit {code})"
    if bad:
        return False, f"{len(bad)} endpoint(s) failed: {', '.join(bad)}"
    return True, f"healthy; {len(st.details['endpoints'])} endpoints answered 2xx"


def own_network(client: DockerClient, st: Stage, service: Service) -> Network | None:
    """A test network of its own for a service that declares infrastructure (which must reach
    it by name); None for one that does not: its container then has no network at all, which
    saves creating a network, wiring the container into it and removing both (the probes run
    inside the container)."""
    if service.infrastructure:
        return create_network(client, st)
    st.details["network"] = None
    st.write("# no network: the service declares no infrastructure; probed from inside its container")
    return None


def attach(network: Network | None) -> dict[str, Any]:
    """The container arguments that put it on network, or on none."""
    return {"network": network.name} if network is not None else {"network_mode": "none"}


class NotRun(Exception):
    """The stage cannot run on this machine (its infrastructure's image is not available)."""


def _probe_port(st: Stage, config: dict[str, Any], run: RunSettings | None) -> str | None:
    """The port the probes call: the image's first EXPOSEd TCP port, else the first port compose
    publishes or exposes for the service (`ports:`, `expose:`)."""
    ports = sorted((p for p in (config.get("ExposedPorts") or {}) if p.endswith("/tcp")),
                   key=lambda p: int(p.split("/")[0]))
    if ports:
        return str(ports[0])
    if run is not None and run.ports:
        st.details["port_from"] = "compose"
        st.write(f"# the image EXPOSEs no port: probing {run.ports[0]}, which compose publishes for it")
        return f"{run.ports[0]}/tcp"
    return None


def _health(config: dict[str, Any], run: RunSettings | None) -> tuple[dict[str, Any], list[str] | None, str]:
    """(the Healthcheck config in the engine's form, its exec command or None, where it came
    from): compose's healthcheck over the image's HEALTHCHECK when compose defines one."""
    if run is not None and run.healthcheck is not None:
        check = run.healthcheck
        health = {"Test": check["test"], "Timeout": check.get("timeout")}
        source = f"compose's healthcheck of {run.record['compose_service']} in {run.record['compose_file']}"
        return {"Healthcheck": health}, healthcheck_command({"Healthcheck": health}), source
    return config, healthcheck_command(config), "the image's HEALTHCHECK"


_HEALTH_PORT_RE = re.compile(r"(?:(?<![\w.])(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\])|\bport['\"]?)\s*[:=]\s*"
                             r"['\"]?(\d{2,5})\b")


def health_ports(command: list[str]) -> list[int]:
    """The ports a health check command names (`127.0.0.1:3008`, `localhost:80`, `port:3008`)."""
    return sorted({int(p) for p in _HEALTH_PORT_RE.findall(" ".join(command)) if 0 < int(p) <= 65535})


def explain_health(st: Stage, prober: Prober, command: list[str], source: str, port: str) -> str:
    """What the failing health check calls, and whether anything listens there: the failure then
    names the port that is wrong, not only that the check failed."""
    host, serving = str(st.details.get("address", "")).rpartition(":")[0], port.split("/")[0]
    said = []
    for target in health_ports(command):
        if str(target) == serving:
            said.append(f"it probes port {target}, where the service answers")
            continue
        _code, found, _ = prober.run(["get", f"http://{host}:{target}", "2", "/"], 5.0)
        error = (found[0].get("error") if found else "") or ""
        listening = bool(found and found[0].get("status") is not None)
        said.append(f"it probes port {target}, " + ("which answers" if listening else
                    f"where nothing listens ({error or 'no answer'})") + f"; the service answers on {serving}")
        st.details.setdefault("health_ports", []).append({"port": target, "listening": listening})
    return f"{source}: " + "; ".join(said) if said else source


def integration_body(client: DockerClient, st: Stage, service: Service, image_id: str, paths: list[str],
                     shared: tuple[Any, ...] | None, api_error: type[Exception],
                     run: RunSettings | None = None) -> Callable[[], tuple[bool, str]]:
    """The stage as a body for service_tests._guarded: -> (passed, reason), or NotRun. shared is
    the (container, network, (not run, infrastructure failure)) the unit stage left running
    (with the service's infrastructure), or None to start them here. run: how compose runs it
    (target.compose_runtime.RunSettings): its environment, command, ports and healthcheck."""
    from nexus_assets.target.baseimages import load_base_image_map

    def body() -> tuple[bool, str]:
        config = client.images.get(image_id).attrs.get("Config") or {}
        port = _probe_port(st, config, run)
        if port is None:
            return False, ("the image EXPOSEs no TCP port and compose publishes none: add EXPOSE <port> to the "
                           "Dockerfile (or `ports:`/`expose:` to its compose service)")
        health_config, health_cmd, source = _health(config, run)
        st.details.update(port=port, healthcheck=health_cmd is not None, health=None,
                          healthcheck_from="compose" if source.startswith("compose") else "image")
        if shared:
            container, network, (not_run, infra_failure) = shared[0], shared[1], shared[2][:2]
            st.details.update(network=network.name if network is not None else None, shared_container=True)
        else:
            network = own_network(client, st, service)
            not_run, infra_failure, _ = prepare(client, st, network, service.infrastructure,
                                                load_base_image_map().base)
            container = None if not_run or infra_failure else start_container(
                client, st, image_id, **(run.container_args() if run is not None else {}), **attach(network))
        if not_run:
            raise NotRun(not_run)
        if infra_failure or container is None:
            return False, str(infra_failure)
        prober = Prober(client, st, container, network, service.language, lambda: load_base_image_map().base)
        # The endpoints are called as soon as /health answers (one probe run), but reported only
        # once the HEALTHCHECK has passed: an unhealthy container fails with none reported.
        order = ["/health"] + [p for p in paths if p != "/health"]
        failure, found, code, output = _wait_answering(st, container, prober, port, order, api_error)
        if failure is None and health_cmd:
            failure = _healthcheck(client, st, container, health_config, health_cmd)
        if failure and health_cmd and (st.details.get("health") == "unhealthy" or "HEALTHCHECK" in failure):
            try:  # name what the failing check calls (the container may have stopped meanwhile)
                failure = f"{failure}; {explain_health(st, prober, health_cmd, source, port)}"
            except api_error:
                failure = f"{failure}; {source}"
        if failure:
            st.write("# container output:\n" + container_logs(container))
            return False, failure
        st.write(f"# ready after {time.monotonic() - st.started:.1f}s at {st.details['address']} "
                 f"(probed with {prober.how})")
        passed, reason = _endpoints(st, order, found, code, output)
        st.write("# container output:\n" + container_logs(container))
        return passed, reason

    return body
