"""Compose files: the services they declare, with build contexts resolved and refused when they
leave the repository, ports, env keys (their values are secrets for the caller to mask)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from nexus_assets.core.services import valid_service_name
from nexus_assets.core.textfiles import inside, problem, read_text, rel_path


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


class _ComposeLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, except that a value it cannot build (`2001-13-45`, `!!int x`)
    raises a YAMLError with the value's line instead of a bare ValueError; the message names
    only the kind of failure, never the value."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"this {node.tag.rsplit(':', 1)[-1]} value cannot be read ({type(exc).__name__})",
                node.start_mark) from exc


def parse_compose_file(repo: Path, path: Path) -> tuple[dict, list[tuple[str, str]]]:
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
    try:
        data = yaml.load(text or "", Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        what = getattr(exc, "problem", None) or "syntax error"
        # Only the error's own words: its snippet would quote the file, which may hold a secret.
        probs.append(problem(shown, mark.line + 1 if mark else None, f"invalid YAML: {what}; file skipped"))
        return result, pairs
    except RecursionError:
        probs.append(problem(shown, None, "invalid YAML: nested too deeply; file skipped"))
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
        build = _build(repo, path, spec.get("build"))
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


def _build(repo: Path, compose: Path, build: Any) -> dict | None:
    """A compose `build:` resolved against the compose file's folder. A context or Dockerfile
    that resolves outside the repository (links followed) is `refused`: nothing there is looked
    at, built or counted as evidence of a module."""
    if build is None:
        return None
    spec = build if isinstance(build, dict) else {}
    context = build if isinstance(build, str) else str(spec.get("context") or ".")
    dockerfile = str(spec.get("dockerfile") or "Dockerfile")
    remote = "://" in context or context.startswith(("git@", "github.com/"))
    if remote or "$" in context or "\0" in context + dockerfile:
        # A URL or an unexpanded ${VAR}: nothing on disk to check.
        return {"context": context, "remote": remote, "unresolved": not remote, "exists": None,
                "dockerfile": dockerfile, "dockerfile_exists": None, "outside_services": True,
                "outside_repo": remote, "refused": False}
    resolved = Path(os.path.normpath(compose.parent / context))
    rel = Path(os.path.relpath(resolved, repo)).as_posix()
    outside_repo = not inside(repo, resolved)
    unresolved = "$" in dockerfile  # `${DOCKERFILE}`: the file cannot be checked, the context can
    refused = outside_repo or (not unresolved and not inside(repo, resolved / dockerfile))
    return {"context": rel, "remote": False, "unresolved": unresolved,
            "exists": None if refused else resolved.is_dir(), "dockerfile": dockerfile,
            "dockerfile_exists": None if refused or unresolved else (resolved / dockerfile).is_file(),
            "outside_services": outside_repo or not rel.startswith("services/"), "outside_repo": outside_repo,
            "refused": refused}


# --- git and the engine -----------------------------------------------------------------
