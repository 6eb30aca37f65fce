"""Compose files: the services they declare, with build contexts resolved and refused when they
leave the repository, ports, env keys (their values are secrets for the caller to mask); and the
stack the pipeline builds from them (`build_stack`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexus_assets.core.textfiles import inside, problem, read_text, rel_path
from nexus_assets.target.compose_model import (
    STACK_DEFAULTS,
    compose_files,
    load_compose_yaml,
    resolve_build,
    stack_file,
)
from nexus_assets.target.services import scan_services, valid_service_name


def _ports(raw: Any) -> list[str]:
    out = []
    for p in raw if isinstance(raw, list) else []:
        if isinstance(p, dict):
            published = f"{p['published']}:" if p.get("published") is not None else ""
            out.append(f"{str(p['host_ip']) + ':' if p.get('host_ip') else ''}{published}{p.get('target')}"
                       f"/{p.get('protocol', 'tcp')}")
        else:
            out.append(str(p))
    return sorted(out)


def parse_compose_file(repo: Path, path: Path) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One compose file: its services (image, build context resolved against the file's folder
    and flagged when outside services/ or the repository, ports, depends_on, environment keys);
    plus inline environment (key, value) pairs, which are secrets. Invalid YAML is a problem with
    the line from the YAML error mark."""
    shown = rel_path(path, repo)
    result: dict[str, Any] = {"file": shown, "valid": False, "services": [], "problems": []}
    pairs: list[tuple[str, str]] = []
    if not inside(repo, path):
        result["problems"].append(problem(shown, None, "link pointing outside the repository; not read"))
        return result, pairs
    text, probs = read_text(path, shown)
    result["problems"] = probs
    data, errors = load_compose_yaml(text or "", shown)
    if errors:
        probs += errors
        return result, pairs
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        probs.append(problem(shown, None, "no `services:` mapping; not a compose file"))
        return result, pairs
    result["valid"] = True
    for name in sorted(services, key=str):
        spec = services[name] if isinstance(services[name], dict) else {}
        name = str(name)
        if not valid_service_name(name.lower()):
            probs.append(problem(shown, None, f"compose service {name[:60]!r} is not a valid service name", name))
        env = spec.get("environment") or {}
        if not isinstance(env, (dict, list)):
            probs.append(problem(shown, None, "`environment:` is neither a mapping nor a list; ignored", name))
            env = {}
        env_items = env.items() if isinstance(env, dict) else (str(e).partition("=")[::2] for e in env)
        env_keys = []
        for key, value in env_items:
            env_keys.append(str(key))
            if value is not None:
                pairs.append((str(key), str(value)))
        depends = spec.get("depends_on") or []
        depends = [depends] if isinstance(depends, str) else depends if isinstance(depends, (list, dict)) else []
        build = resolve_build(repo, path, spec.get("build"))
        if build and build["refused"]:
            where = "build context" if build["outside_repo"] else "dockerfile"
            probs.append(problem(shown, None, f"{where} of compose service {name[:60]!r} resolves outside the "
                                 "repository; refused: not built, no evidence of a module", name))
        result["services"].append({
            "name": name,
            "image": str(spec["image"]) if spec.get("image") is not None else None,
            "build": build,
            "container_name": None if spec.get("container_name") is None else str(spec["container_name"]),
            "ports": _ports(spec.get("ports")),
            "depends_on": sorted(str(d) for d in depends),
            "environment_keys": sorted(set(env_keys)),
            "healthcheck": isinstance(spec.get("healthcheck"), dict) and not spec["healthcheck"].get("disable"),
        })
    return result, pairs


# --- git and the engine -----------------------------------------------------------------


def build_stack(repo: Path, compose_file: str | None = None) -> dict[str, Any]:
    """What the pipeline builds, as target.services decides it (compose first, folders second):
    the compose file used (and why), the other compose files (not built from), and every
    buildable service with both its names (compose service and folder), its compose file,
    Dockerfile and the keys of its build args (values never: they may come from .env)."""
    chosen, _notes = stack_file(repo, compose_file)
    found = compose_files(repo)
    if compose_file:
        chosen_by = "NEXUS_COMPOSE_FILE" if chosen is not None else "NEXUS_COMPOSE_FILE names no compose file"
    elif chosen is None:
        chosen_by = "no compose file"
    else:
        chosen_by = "default name" if chosen.name in STACK_DEFAULTS else "first compose file by name"
    services, _problems = scan_services(repo, compose_file)
    return {
        "compose_file": rel_path(chosen, repo) if chosen is not None else None,
        "chosen_by": chosen_by,
        "other_compose_files": [rel_path(p, repo) for p in found if chosen is None or p.resolve() != chosen.resolve()],
        "services": [{"name": s.name, "compose_name": s.compose_name, "folder": s.folder or rel_path(s.path, repo),
                      "compose_file": s.compose_file,
                      "dockerfile": rel_path(s.dockerfile, repo) if s.dockerfile is not None else None,
                      "build_arg_keys": sorted({*s.build_args, *s.secret_args})} for s in services],
    }
