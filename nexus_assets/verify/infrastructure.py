"""The infrastructure a service's integration test needs: the image-only compose services it
depends_on (postgres, redis), started for the duration of its test on its test network under
their compose names, from images the engine has (a real one, or a substitute bootstrap built
from typing import TYPE_CHECKING
from Debian packages: the manifest says which). An image the engine does not have makes the
integration stage "not run", never a false failure or a false pass."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from nexus_assets.target.baseimages import PROVIDES_LABEL, SUBSTITUTE_LABEL
from nexus_assets.testing.stage import Stage
from nexus_assets.verify.sandbox import container_logs, start_container

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient
    from docker.models.networks import Network

# Waits, from a container on the test network, until every host:port accepts a connection.
_WAIT_PORTS = """
import json, socket, sys, time
targets, deadline = json.loads(sys.argv[1]), time.monotonic() + float(sys.argv[2])
for host, port in targets:
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                print(f"{host}:{port} not accepting connections"); sys.exit(1)
            time.sleep(0.2)
print("ready")
"""


def unavailable(client: DockerClient, needs: tuple[dict[str, Any], ...]) -> str | None:
    """The reason integration cannot run (an image the engine does not have), or None."""
    import docker.errors

    missing = []
    for need in needs:
        try:
            client.images.get(need["image"])
        except docker.errors.ImageNotFound:
            missing.append(need["image"])
    if not missing:
        return None

    return (f"integration not run: needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            "not available (no such image in the engine, and none can be pulled here)")


def _record(client: DockerClient, need: dict[str, Any]) -> dict[str, Any]:
    """name and image, and whether the image is a substitute (and of what), for the manifest."""
    labels = client.images.get(need["image"]).labels or {}
    substituted = labels.get(SUBSTITUTE_LABEL) == need["image"]
    return {"name": need["name"], "image": need["image"], "substituted": substituted,
            "provides": labels.get(PROVIDES_LABEL) if substituted else None}


def _ports(client: DockerClient, image: str) -> list[int]:
    exposed = (client.images.get(image).attrs.get("Config") or {}).get("ExposedPorts") or {}
    return sorted(int(p.split("/")[0]) for p in exposed if p.endswith("/tcp"))


def start_infrastructure(client: DockerClient, st: Stage, network: Network, needs: tuple[dict[str, Any], ...],
                         probe_image: str) -> list[Any]:
    """Start every need on network under its compose name (with its compose environment, whose
    values are never written anywhere) and wait until their exposed ports accept connections.
    Returns the containers (counted on st, removed by its cleanup); raises RuntimeError with a
    reason when one does not come up."""
    started = []
    targets: list[tuple[str, int]] = []
    for need in needs:
        endpoint = {network.name: client.api.create_endpoint_config(aliases=[need["name"]])}
        container = start_container(client, st, need["image"], role=f"infra-{need['name']}", network=network.name,
                                    networking_config=endpoint, environment=dict(need["environment"]))
        started.append(container)
        ports = _ports(client, need["image"])
        st.write(f"# infrastructure {need['name']} from {need['image']} "
                 f"(environment keys: {', '.join(sorted(need['environment'])) or 'none'}; ports {ports})")
        targets += [(need["name"], port) for port in ports]
    st.details["infrastructure"] = [_record(client, n) for n in needs]
    if targets:
        began = time.monotonic()
        waiter = start_container(client, st, probe_image, role="infra-wait", network=network.name,
                                 command=["python3", "-c", _WAIT_PORTS, json.dumps(targets),
                                          f"{max(st.remaining() - 1, 1):.1f}"])
        code = waiter.wait(timeout=max(st.remaining(), 1))["StatusCode"]
        said = container_logs(waiter).strip()
        if code != 0:
            for container in started:
                st.write(f"# {container.name} output:\n{container_logs(container)[-2000:]}")
            raise RuntimeError(f"infrastructure did not come up: {said or f'exit {code}'}")
        st.write(f"# infrastructure ready after {time.monotonic() - began:.1f}s")
    return started


def prepare(client: DockerClient, st: Stage, network: Network, needs: tuple[dict[str, Any], ...],
            probe_image: str) -> tuple[str | None, str | None, list[Any]]:
    """(not run reason, failure reason, containers started): what the integration stage makes
    of a service's infrastructure before its own container starts."""
    if not needs:
        return None, None, []
    reason = unavailable(client, needs)
    if reason:
        st.write(f"# {reason}")
        st.details["infrastructure_missing"] = reason
        return reason, None, []
    try:
        return None, None, start_infrastructure(client, st, network, needs, probe_image)
    except RuntimeError as exc:
        return None, str(exc), []
