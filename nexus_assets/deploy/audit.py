"""The digest-level audit of a staging host against the release deployed there: every service of
the release runs, is healthy, and runs the image its manifest pins (same registry digest); and
nothing else is named: a missing service, an extra container in the project, a container started
from another image, a changed published port or env key set. Env values are never read out:
only the key names are compared.

`collect` reads what the host runs over SSH (`docker inspect`, one call for the project's
containers and one for their images); `audit` is pure, so it is tested without a host."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from nexus_assets.resources.staging import Session

PROJECT = "nexus-cos"  # the package scripts' compose project (NEXUS_COMPOSE_PROJECT)
COMPOSE_NAME = "docker-compose.full.yml"


@dataclass
class ServiceRow:
    service: str
    expected: str  # the pinned repo digest (released services) or the compose image
    running: str | None  # the running image's matching repo digest, else its id
    state: str
    health: str
    ok: bool


@dataclass
class Audit:
    release: str | None
    drifts: list[str] = field(default_factory=list)
    services: list[ServiceRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.release is not None and not self.drifts

    def as_dict(self) -> dict[str, Any]:
        return {"release": self.release, "passed": self.ok, "drifts": self.drifts,
                "services": [asdict(row) for row in self.services]}


def _env_keys(environment: object) -> set[str]:
    if isinstance(environment, dict):
        return {str(k) for k in environment}
    if isinstance(environment, list):
        return {str(item).split("=", 1)[0] for item in environment}
    return set()


def _ports(ports: object) -> set[str]:
    """Published ports as host_ip:host_port->container_port/proto (short and long compose syntax)."""
    found = set()
    for item in ports if isinstance(ports, list) else []:
        if isinstance(item, dict):
            if item.get("published") is not None:
                found.add(f"{item.get('host_ip') or ''}:{item['published']}->{item['target']}/"
                          f"{item.get('protocol') or 'tcp'}")
            continue
        text, _, proto = str(item).partition("/")
        parts = text.rsplit(":", 2)
        if len(parts) == 3:
            found.add(f"{parts[0]}:{parts[1]}->{parts[2]}/{proto or 'tcp'}")
        elif len(parts) == 2:
            found.add(f":{parts[0]}->{parts[1]}/{proto or 'tcp'}")
    return found


def _running_ports(container: dict[str, Any]) -> set[str]:
    found = set()
    for spec, bindings in ((container.get("HostConfig") or {}).get("PortBindings") or {}).items():
        port, _, proto = spec.partition("/")
        for binding in bindings or []:
            if not binding.get("HostPort"):  # an ephemeral port the engine picks: not the release's to pin
                continue
            host_ip = binding.get("HostIp") or ""
            found.add(f"{'' if host_ip in ('', '0.0.0.0') else host_ip}:{binding.get('HostPort')}->{port}/{proto}")
    return found


def _norm_ports(ports: set[str]) -> set[str]:
    return {p.replace("0.0.0.0:", ":", 1) if p.startswith("0.0.0.0:") else p for p in ports}


def audit(release: str | None, compose_text: str, images_txt: str, containers: list[dict[str, Any]],
          images: dict[str, dict[str, Any]]) -> Audit:
    """The release's compose file and images.txt against the project's containers (docker inspect)
    and their images (docker image inspect, by id)."""
    result = Audit(release)
    if release is None:
        result.drifts.append("no release is deployed on the host (no current release)")
        return result
    compose = (yaml.safe_load(compose_text) or {}).get("services") or {}
    pinned = dict(line.split("\t", 1) for line in images_txt.splitlines() if "\t" in line)
    by_service: dict[str, list[dict[str, Any]]] = {}
    for container in containers:
        labels = (container.get("Config") or {}).get("Labels") or {}
        by_service.setdefault(labels.get("com.docker.compose.service", "?"), []).append(container)
    for service in sorted(set(by_service) - set(compose)):
        for container in by_service[service]:
            result.drifts.append(f"extra container {container.get('Name', '?').lstrip('/')} (service {service}) "
                                 "is not in the release")
    for service, spec in sorted(compose.items()):
        spec = spec or {}
        expected = pinned.get(service) or str(spec.get("image") or "")
        found = by_service.get(service) or []
        if not found:
            result.drifts.append(f"missing service {service}: no container")
            result.services.append(ServiceRow(service, expected, None, "missing", "none", False))
            continue
        for container in found:
            name = container.get("Name", "?").lstrip("/")
            state = container.get("State") or {}
            status = state.get("Status") or "?"
            health = (state.get("Health") or {}).get("Status") or "none"
            image = images.get(container.get("Image") or "") or {}
            digests = image.get("RepoDigests") or []
            problems = []
            if status != "running":
                problems.append(f"{service}: container {name} is {status}")
            elif health not in ("healthy", "none"):
                problems.append(f"{service}: container {name} is {health}")
            if service in pinned:
                running = expected if expected in digests else (digests[0] if digests else container.get("Image"))
                if expected not in digests:
                    problems.append(f"{service}: container {name} runs another image {running}, not the pinned "
                                    f"{expected}")
            else:
                running = (container.get("Config") or {}).get("Image")
                if running != expected:
                    problems.append(f"{service}: container {name} runs {running}, not {expected}")
            want_ports, have_ports = _norm_ports(_ports(spec.get("ports"))), _running_ports(container)
            if want_ports != have_ports:
                problems.append(f"{service}: published ports {sorted(have_ports) or 'none'} differ from the "
                                f"release's {sorted(want_ports) or 'none'}")
            have_keys = _env_keys((container.get("Config") or {}).get("Env"))
            want_keys = _env_keys(spec.get("environment")) | _env_keys((image.get("Config") or {}).get("Env"))
            if have_keys != want_keys:
                added, gone = sorted(have_keys - want_keys), sorted(want_keys - have_keys)
                problems.append(f"{service}: env key set differs" + (f", added {', '.join(added)}" if added else "")
                                + (f", missing {', '.join(gone)}" if gone else ""))
            result.drifts += problems
            result.services.append(ServiceRow(service, expected, running, status, health, not problems))
    return result


def collect(session: Session, host_dir: str, project: str = PROJECT) -> Audit:
    """Audit the host's current release (HOST_DIR/current) against what its engine runs."""
    q = shlex.quote
    current = session.run(f"readlink {q(host_dir + '/current')} || true").out.strip()
    if not current:
        return audit(None, "", "", [], {})
    release = current.rstrip("/").rsplit("/", 1)[-1]
    folder = f"{host_dir}/releases/{release}"
    compose_text = session.read(f"{folder}/{COMPOSE_NAME}")
    images_txt = session.read(f"{folder}/deployment/images.txt") or ""
    if compose_text is None:
        result = Audit(release)
        result.drifts.append(f"{folder}/{COMPOSE_NAME} is missing on the host")
        return result
    ids = session.run(f"docker ps -aq --no-trunc --filter label=com.docker.compose.project={q(project)}").out.split()
    containers = json.loads(session.run("docker inspect " + " ".join(ids)).out) if ids else []
    image_ids = sorted({c.get("Image") for c in containers if c.get("Image")})
    images = {i["Id"]: i for i in json.loads(session.run("docker image inspect " + " ".join(image_ids)).out)} \
        if image_ids else {}
    return audit(release, compose_text, images_txt, containers, images)
