"""The deployment compose file: every released service pinned by its registry digest, plus the
infrastructure (PostgreSQL, Redis, nginx) exactly as the repository's compose declares it.

A released service keeps the runtime settings its stack compose entry declares (ports,
environment, depends_on, healthcheck, ...) without `build:`; a service compose does not
declare (a folder or a scaffolded module) gets its image and a restart policy. `${VAR}`
references are kept as written, never filled: the host's `.env` fills them at deploy time, so
no value of the repository's `.env` can reach the package."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nexus_assets.core.textfiles import read_text, rel_path
from nexus_assets.policy.waivers import by_line
from nexus_assets.target.compose_model import compose_files, load_compose_yaml, stack_file

INFRASTRUCTURE = ("postgres", "redis", "nginx")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class DeploymentCompose:
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, Any] = field(default_factory=dict)
    networks: dict[str, Any] = field(default_factory=dict)
    released: dict[str, str] = field(default_factory=dict)  # service -> pinned image reference
    excluded: dict[str, str] = field(default_factory=dict)  # service -> why it is not in the package
    infrastructure: dict[str, str] = field(default_factory=dict)  # kind -> "service (image) from file"
    infrastructure_missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def yaml_text(self, header: str) -> str:
        body: dict[str, Any] = {"services": self.services}
        if self.volumes:
            body["volumes"] = self.volumes
        if self.networks:
            body["networks"] = self.networks
        comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
        return comment + str(yaml.safe_dump(body, sort_keys=False, default_flow_style=False, width=1000))

    def variables(self) -> list[str]:
        """The `${VAR}` names the compose file needs from the host's `.env`."""
        text = yaml.safe_dump(self.services)
        return sorted({a or b for a, b in _VAR_RE.findall(text)})


def _declared(repo: Path, path: Path) -> dict[str, dict[str, Any]]:
    text, _ = read_text(path, rel_path(path, repo))
    data, _ = load_compose_yaml(text or "", rel_path(path, repo))
    services = data.get("services") if isinstance(data, dict) else None
    return {str(k): v for k, v in services.items() if isinstance(v, dict)} if isinstance(services, dict) else {}


def _top_level(repo: Path, path: Path, section: str) -> dict[str, Any]:
    text, _ = read_text(path, rel_path(path, repo))
    data, _ = load_compose_yaml(text or "", rel_path(path, repo))
    found = data.get(section) if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def _infra_kind(name: str, spec: dict[str, Any]) -> str | None:
    image = str(spec.get("image") or "")
    base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0].lower()
    for kind in INFRASTRUCTURE:
        if base == kind or base.startswith(kind + "-") or (not image and kind in name.lower()):
            return kind
    return None


def _uses(spec: dict[str, Any], key: str) -> set[str]:
    """Named volumes or networks a service uses (a bind mount is a path, not a name)."""
    items = spec.get(key)
    names: set[str] = set()
    if isinstance(items, dict):
        return {str(k) for k in items}
    for item in items if isinstance(items, list) else []:
        source = item.get("source") if isinstance(item, dict) else str(item).split(":", 1)[0] if key == "volumes" \
            else str(item)
        if source and not str(source).startswith((".", "/", "~", "$")):
            names.add(str(source))
    return names


def deployment_compose(repo: Path, chosen: str | None, manifest: dict[str, Any]) -> DeploymentCompose:
    """The compose file of the release: released services by digest, then the infrastructure."""
    result = DeploymentCompose()
    stack, _ = stack_file(repo, chosen)
    declared = _declared(repo, stack) if stack is not None else {}
    sources: list[tuple[Path, dict[str, dict[str, Any]]]] = [(stack, declared)] if stack is not None else []
    sources += [(p, _declared(repo, p)) for p in compose_files(repo) if stack is None or p.resolve() != stack.resolve()]
    used_volumes: set[str] = set()
    used_networks: set[str] = set()
    for path, services in sources:
        for name, spec in services.items():
            kind = _infra_kind(name, spec)
            if kind is None or kind in result.infrastructure or spec.get("build") is not None:
                continue
            result.services[name] = dict(spec)
            result.infrastructure[kind] = f"{name} ({spec.get('image') or 'no image'}) from {path.name}"
            used_volumes |= _uses(spec, "volumes")
            used_networks |= _uses(spec, "networks")
    waived = {str(w.get("service")): w for w in manifest.get("waived") or []}
    for image in sorted(manifest.get("images") or [], key=lambda i: str(i.get("service"))):
        name = str(image.get("service"))
        if name in waived:  # the release goes without it, on the record: not pinned, not deployed
            w = waived[name]
            result.excluded[name] = (f"WAIVED until {w.get('until')}: {w.get('reason')} ({by_line(w)}); "
                                     f"not released: {w.get('why')}")
            continue
        if image.get("status") != "current":
            result.excluded[name] = f"status {image.get('status')}: {image.get('reason') or 'no current image'}"
            continue
        if not image.get("repo_digest"):
            result.excluded[name] = "no registry digest recorded in the manifest (not pushed)"
            continue
        spec = {k: v for k, v in (declared.get(name) or {}).items() if k not in ("build", "image")}
        result.services[name] = {"image": str(image["repo_digest"]), **(spec or {"restart": "unless-stopped"})}
        result.released[name] = str(image["repo_digest"])
        used_volumes |= _uses(spec, "volumes")
        used_networks |= _uses(spec, "networks")
    for name in result.released:  # infrastructure the repository builds itself is released like a service
        kind = _infra_kind(name, {})
        if kind is not None and kind not in result.infrastructure:
            result.infrastructure[kind] = f"{name} (built by the pipeline, pinned by digest)"
    result.infrastructure_missing = [k for k in INFRASTRUCTURE if k not in result.infrastructure]
    # depends_on a service that is not in the package would stop compose from starting: drop it, say so
    for name, spec in result.services.items():
        deps = spec.get("depends_on")
        if not isinstance(deps, (list, dict)):
            continue
        gone = [d for d in deps if d not in result.services]
        if gone:
            kept = {d: v for d, v in deps.items() if d not in gone} if isinstance(deps, dict) else \
                [d for d in deps if d not in gone]
            if kept:
                spec["depends_on"] = kept
            else:
                spec.pop("depends_on")
            result.notes.append(f"{name}: depends_on {', '.join(map(str, gone))} dropped (not in the package)")
    for path, _ in sources:
        for volume, value in _top_level(repo, path, "volumes").items():
            if volume in used_volumes:
                result.volumes.setdefault(volume, value)
        for network, value in _top_level(repo, path, "networks").items():
            if network in used_networks:
                result.networks.setdefault(network, value)
    return result
