"""What the lint stage checks of a service whose build context is wider than its own folder
(the repository root, or a parent of the folder holding its Dockerfile): only the files its
Dockerfile's COPY and ADD bring into the image, not every file the context holds, so that an
unrelated file elsewhere in the repository never fails its lint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nexus_assets.core.textfiles import read_text
from nexus_assets.target.dockerfile import instructions, substitute
from nexus_assets.target.services import Service
from nexus_assets.testing.stage import Stage

SKIP_DIRS = {"node_modules", "__pycache__", ".git", "venv", ".venv", "dist", "build"}


def wider_context(service: Service) -> bool:
    """True when the context is more than the service's folder: the repository's root, or a
    folder above the one holding its Dockerfile (`context: .`, `dockerfile: services/x/Dockerfile`).
    A shared Dockerfile outside a service's own context (docker/node.Dockerfile) is not that."""
    if service.dockerfile is None:
        return False
    return service.folder == "." or service.own_folder != service.path


def walk_sources(path: Path) -> list[Path]:
    """path itself (a file), or every file under it outside tool caches and hidden folders."""
    if path.is_file():
        return [path]
    found = []
    for here, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        found += [Path(here) / f for f in sorted(files)]
    return found


def _sources(args: str) -> list[str] | None:
    """The sources of a COPY/ADD (shell or JSON form); None for one that copies from another
    stage or image (`--from`), or writes a heredoc: nothing of the context."""
    if "<<" in args:
        return None
    tokens: list[str]
    if args.lstrip().startswith("["):
        try:
            tokens = [str(t) for t in json.loads(args)]
        except ValueError:
            return []
    else:
        tokens = args.split()
    flags = [t for t in tokens if t.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        return None
    rest = [t for t in tokens if not t.startswith("--")]
    return rest[:-1]


def copied_files(service: Service) -> tuple[list[Path], dict[str, Any]]:
    """The files of the context that the Dockerfile's COPY/ADD bring in (globs expanded, folders
    walked, the context's .dockerignore applied), and what was read, for the stage's details."""
    from docker.utils.build import PatternMatcher

    assert service.dockerfile is not None
    context = service.path
    text, _ = read_text(service.dockerfile, service.dockerfile.name, service.name)
    variables = dict(service.build_args)
    sources: list[str] = []
    for _line, keyword, args in instructions(text or ""):
        if keyword == "ARG":
            name, _, default = args.partition("=")
            variables.setdefault(name.strip(), default.strip().strip("\"'"))
        elif keyword in ("COPY", "ADD"):
            sources += [substitute(s, variables) for s in (_sources(args) or []) if "://" not in s]
    patterns: list[str] = []
    ignore = context / ".dockerignore"
    if ignore.is_file():
        ignored, _ = read_text(ignore, ".dockerignore", service.name)
        patterns = [ln.strip() for ln in (ignored or "").splitlines() if ln.strip() and not ln.strip().startswith("#")]
    matcher = PatternMatcher(patterns)
    files: dict[Path, None] = {}
    for source in sources:
        relative = os.path.normpath(source.lstrip("/")) if source.strip("/.") else "."
        if relative.startswith("..") or "$" in relative:
            continue  # outside the context (the build refuses it) or a variable left unset
        matches = sorted(context.glob(relative)) if any(c in relative for c in "*?[") else [context / relative]
        for match in matches:
            for path in (walk_sources(match) if match.exists() else []):
                if not matcher.matches(path.relative_to(context).as_posix()):
                    files.setdefault(path)
    return list(files), {"scope": "the files the Dockerfile's COPY/ADD bring in (the context is wider than the "
                                  "service's folder)", "sources": sources, "files": len(files)}


def scoped_files(service: Service) -> tuple[list[Path], dict[str, Any] | None]:
    """The files the syntax checks read, and the scope's record (None: the whole context): the
    whole context when it is the service's folder, else (a context at the repository root, or
    above the Dockerfile's folder) only what the Dockerfile's COPY/ADD bring in."""
    if not wider_context(service):
        return walk_sources(service.path), None
    return copied_files(service)


def lint_files(st: Stage, service: Service) -> list[Path]:
    """scoped_files, with the scope said in the stage's details and log."""
    files, scope = scoped_files(service)
    if scope is None:
        return files
    st.details["lint_scope"] = scope
    st.write(f"# the build context {service.folder} is wider than the service's folder: checking the "
             f"{scope['files']} file(s) that COPY/ADD bring in ({', '.join(scope['sources']) or 'none'})")
    return files


def lint_stage(service: Service, log_dir: Path, timeout: float) -> Stage:
    """The lint stage of service, its log opened, with where its build came from (names only)."""
    st = Stage(service.name, "lint", log_dir, timeout)
    if service.compose_name:
        st.details["compose"] = {"compose_file": service.compose_file, "compose_service": service.compose_name}
    return st
