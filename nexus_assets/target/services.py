"""The services of a target repository: compose first, folders second.

A service is what compose's stack file builds (its `build:` context, Dockerfile and args, named
by the compose service), then every folder under services/ (or services/<group>/) holding a
Dockerfile that no compose service builds, named by its folder. `scan_folders` is the plain
folder view discovery reports on. Plain functions, no Dagster: discovery, parity, images and
the benchmark all use them."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import TargetRepoError
from nexus_assets.core.hashing import IGNORED_NAMES, context_hash
from nexus_assets.core.settings import Settings
from nexus_assets.core.textfiles import inside, problem, read_text, rel_path
from nexus_assets.target.compose_model import compose_builds
from nexus_assets.target.secrets import ENV_NAME_RE, TEMPLATE_SUFFIXES
from nexus_assets.target.secrets_rule import secret_line_rules

# A name that is safe as a folder, a compose key and a Docker repository path component.
# Real repositories use underscores; we keep them (Docker accepts them in repository names).
# Written into every scaffolded folder: such a folder is not evidence that the repository has
# the module, so later reports keep it "scaffolded" until the real service arrives.
SCAFFOLD_MARKER = ".nexus-scaffolded"

SERVICE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class Service:
    """One buildable service: `path` is its build context folder, `dockerfile` the Dockerfile the
    build uses (None: there is none). Compose services carry their compose name, the compose
    file and their build args; folder services have none of these."""

    name: str
    path: Path
    dockerfile: Path | None
    language: str  # "node", "python" or "unknown"
    build_args: dict[str, str] = field(default_factory=dict, hash=False)
    compose_name: str | None = None
    compose_file: str | None = None
    folder: str | None = None  # the context relative to the repository, POSIX
    env_args: tuple[str, ...] = field(default=(), hash=False)  # build args read from .env: secrets
    secret_args: tuple[str, ...] = ()  # compose build args refused: they carry a secret (not in build_args)
    secret_arg_rules: tuple[tuple[str, str], ...] = field(default=(), hash=False, compare=False)  # (arg, why)
    # The image-only compose services it depends_on: {name, image, environment}; its
    # integration test starts them (verify/infrastructure.py).
    infrastructure: tuple[dict[str, Any], ...] = field(default=(), hash=False, compare=False)
    # How its compose service runs it (target.compose_runtime.ComposeRuntime, templates only: no
    # value of .env); None for a folder service. The tests run the image with it.
    runtime: Any = field(default=None, hash=False, compare=False)

    def sources_hash(self) -> str:
        """The hash of what its build reads (core.hashing.context_hash)."""
        return context_hash(self.path, self.dockerfile)

    @property
    def own_folder(self) -> Path:
        """Its own folder (tests/, openapi.json, language): the context, unless the context is
        wider than the folder holding its Dockerfile (`context: .`, `dockerfile: services/x/Dockerfile`)."""
        return own_folder(self.path, self.dockerfile)

    @property
    def image_repo(self) -> str:
        """The repository part of the image name: nexus/<service>."""
        return f"nexus/{self.name.lower()}"


@dataclass(frozen=True)
class Refusal:
    """A service the repository declares that is never built nor counted: a link out of the
    repository in its folder (or its folder one), a secret its build would keep, an unreadable
    Dockerfile. `file` is what decided it, relative to the repository."""

    service: str
    file: str
    reason: str
    compose_name: str | None = None
    folder: str | None = None

    def record(self) -> dict[str, Any]:
        return {"service": self.service, "file": self.file, "reason": self.reason,
                "compose_name": self.compose_name, "folder": self.folder}


def own_folder(context: Path, dockerfile: Path | None) -> Path:
    """The Dockerfile's folder when it lies below the context, else the context."""
    if dockerfile is not None and dockerfile.parent != context and dockerfile.parent.is_relative_to(context):
        return dockerfile.parent
    return context


def release_tags(registry: str, service: str, version: str) -> list[str]:
    """The tags a release gives a service's image: REGISTRY/nexus/<service>:VERSION and :latest."""
    repo = f"{registry}/nexus/{service.lower()}"
    return [f"{repo}:{version}", f"{repo}:latest"]


def valid_service_name(name: str) -> bool:
    """True when name can safely be a folder, a compose service and an image name."""
    return bool(SERVICE_NAME_RE.match(name)) and ".." not in name


def detect_language(folder: Path) -> str:
    if (folder / "package.json").is_file():
        return "node"
    if any((folder / f).is_file() for f in ("requirements.txt", "pyproject.toml", "setup.py")):
        return "python"
    if any(folder.glob("*.js")):
        return "node"
    if any(folder.glob("*.py")):
        return "python"
    return "unknown"


def services_root(repo: Path) -> Path:
    """The services/ folder of a target repository, or a TargetRepoError saying what to do."""
    if not repo.exists():
        raise TargetRepoError(f"target repository {repo} does not exist: pass --repo PATH or set NEXUS_REPO")
    if not repo.is_dir():
        raise TargetRepoError(f"target repository {repo} is not a folder: pass the checkout's top folder")
    root = repo / "services"
    if not root.is_dir():
        raise TargetRepoError(
            f"target repository {repo} has no services/ folder: point --repo at a Nexus COS monorepo "
            "(services/<name>/ with a Dockerfile each)"
        )
    return root


def find_services(repo: Path, compose_file: str | None = None, secrets_file: str | None = None) -> list[Service]:
    """Every buildable service of repo, sorted by name; `scan_services` says why others are
    left out."""
    return scan_services(repo, compose_file, secrets_file=secrets_file)[0]


def _refusal(repo: Path, folder: Path, shown: str, name: str, refused: list[Refusal]) -> dict[str, Any] | None:
    """Why folder cannot be a service (hidden, invalid name, outside the repository), or None;
    a folder that links out of the repository is also added to refused."""
    if not inside(repo, folder):
        refused.append(Refusal(name, shown, "its folder resolves outside the repository (a link)", folder=shown))
        return problem(shown, None, "resolves outside the repository (a link); not a service, never built or counted")
    if name.startswith("."):
        return problem(shown[:80], None, "hidden folder (name starts with '.'); not a service: rename it if it is one")
    if not valid_service_name(name.lower()):
        return problem(shown[:80], None, "folder name is not a valid service name "
                                         "(lowercase letters, digits, '-', '_', '.'); skipped")
    escaped = link_outside(repo, folder)
    if escaped is not None:
        where = escaped.relative_to(repo).as_posix()
        refused.append(Refusal(name, where, f"{where} resolves outside the repository (a link)", folder=shown))
        return problem(escaped.relative_to(repo).as_posix(), None, "resolves outside the repository (a link); the "
                       "service is refused: nothing is built from outside the repository", name)
    return None


def _is_group(repo: Path, folder: Path) -> bool:
    """A grouping folder: no Dockerfile of its own, and a subfolder with one (services/media/encoder)."""
    if (folder / "Dockerfile").exists() or folder.name.startswith(".") or not inside(repo, folder):
        return False
    return any(c.is_dir() and (c / "Dockerfile").is_file() for c in folder.iterdir())


def scan_folders(repo: Path, *, nested: bool = False,
                 refused: list[Refusal] | None = None) -> tuple[list[Service], list[dict[str, Any]]]:
    """The folders under services/ as services named by folder, and a problem `{file, line,
    service, message}` for every folder that is not one: hidden (`.x`, `...`), an invalid name,
    a folder, Dockerfile or file that resolves outside the repository (a link: building it would
    put host files in the image), or an image name another folder already has (`users`,
    `Users`). A folder name with upper case is a service, reported with the image name it gets.
    With nested, a grouping folder (`services/<group>/`, no Dockerfile, subfolders with one)
    stands for its subfolders that hold a Dockerfile. refused, when given, gets a Refusal per
    folder refused for a link out of the repository."""
    refused = [] if refused is None else refused
    root = services_root(repo)
    problems: list[dict[str, Any]] = []
    usable: list[Path] = []
    candidates: list[Path] = []
    for folder in sorted(root.iterdir()):
        shown = f"services/{folder.name}"
        if not folder.is_dir():
            if folder.is_symlink():
                problems.append(problem(shown, None, "link under services/ that is not a folder inside the "
                                                     "repository; not a service"))
            continue  # plain files (a README) are not services
        if nested and _is_group(repo, folder):
            candidates += [c for c in sorted(folder.iterdir()) if c.is_dir() and (c / "Dockerfile").is_file()]
        else:
            candidates.append(folder)
    for folder in candidates:
        why = _refusal(repo, folder, rel_path(folder, repo), folder.name, refused)
        if why is not None:
            problems.append(why)
        else:
            usable.append(folder)
    by_image: dict[str, list[Path]] = {}
    for folder in usable:
        by_image.setdefault(folder.name.lower(), []).append(folder)
    found = []
    for image_name, folders in sorted(by_image.items()):
        if len(folders) > 1:
            exact = [f for f in folders if f.name == image_name]  # two when nested: services/a/x, services/x
            keep = exact[0] if len(exact) == 1 else None
            names = " and ".join(rel_path(f, repo) for f in folders)
            outcome = (f"only {rel_path(keep, repo)} is built" if keep
                       else "none is built: rename all but one")
            problems.append(problem(rel_path(folders[0], repo), None,
                                    f"folders {names} map to the same image name nexus/{image_name}; {outcome}",
                                    image_name))
            folders = [keep] if keep else []
        for folder in folders:
            if folder.name != image_name:
                problems.append(problem(rel_path(folder, repo), None,
                                        f"warning: folder name has upper case; its image is named nexus/{image_name}",
                                        folder.name))
            dockerfile = folder / "Dockerfile"
            found.append(Service(name=folder.name, path=folder,
                                 dockerfile=dockerfile if dockerfile.is_file() else None,
                                 language=detect_language(folder), folder=rel_path(folder, repo)))
    return sorted(found, key=lambda s: s.name), problems


def scan_services(repo: Path, compose_file: str | None = None,
                  refused: list[Refusal] | None = None, secrets_file: str | None = None) -> tuple[list[Service],
                  list[dict[str, Any]]]:
    """The buildable services of repo, compose first, folders second, and the problems found.

    Compose: every service of the stack file (compose_model.stack_file: compose_file, else
    docker-compose.yml, else the first by name) with a `build:` inside the repository, named by
    the compose service, with its build args. Folders: every folder under services/ (or one
    level down under a grouping folder) with a Dockerfile that no compose service builds (its
    context or its Dockerfile's folder), named by the folder. A folder with no Dockerfile that
    compose does not build (a library) is not a service. Refused as in `scan_folders`; a folder
    whose image name a compose service has is not built (the compose service is). refused, when
    given, gets a Refusal per service refused for a link out of the repository."""
    refused = [] if refused is None else refused
    folders, problems = scan_folders(repo, nested=True, refused=refused)
    builds, _stack, compose_problems = compose_builds(repo, compose_file, secrets_file)
    problems += compose_problems
    refused += [Refusal(str(p["service"]), str(p["file"]), p["message"].split(";", 1)[0], compose_name=p["service"])
                for p in compose_problems if p.get("service") and "refused: nothing is built from outside" in p["message"]]
    found: dict[str, Service] = {}
    covered: set[Path] = set()
    clean = {s.path for s in folders}  # link_outside just found no link out under these (scan_folders)
    for build in builds:
        if not valid_service_name(build.name):
            problems.append(problem(build.compose_file, None, f"compose service {build.name[:60]!r} is not a valid "
                                    "service name (lowercase letters, digits, '-', '_', '.'); not built", build.name))
            continue
        escaped = None if build.context in clean else link_outside(repo, build.context)
        if escaped is not None:
            where = rel_path(escaped, repo)
            refused.append(Refusal(build.name, where, f"{where} resolves outside the repository (a link)",
                                   compose_name=build.name, folder=rel_path(build.context, repo)))
            problems.append(problem(rel_path(escaped, repo), None, "resolves outside the repository (a link); the "
                                    "service is refused: nothing is built from outside the repository", build.name))
            continue
        covered |= {build.context, build.dockerfile.parent}
        found[build.name] = Service(
            name=build.name, path=build.context, dockerfile=build.dockerfile if build.dockerfile.is_file() else None,
            language=detect_language(own_folder(build.context, build.dockerfile)),
            build_args=dict(build.build_args), compose_name=build.name, compose_file=build.compose_file,
            folder=rel_path(build.context, repo), env_args=build.env_args,
            secret_args=build.secret_args, secret_arg_rules=build.secret_arg_rules,
            infrastructure=build.infrastructure, runtime=build.runtime)
    for service in folders:
        shown = rel_path(service.path, repo)
        if service.path in covered:
            continue
        if service.dockerfile is None:
            problems.append(problem(shown, None, "info: no Dockerfile and no compose service builds it (a library?); "
                                                 "not a service", service.name))
        elif service.name.lower() in found:
            problems.append(problem(shown, None, f"compose service {service.name.lower()} builds elsewhere and has "
                                    f"the image name nexus/{service.name.lower()}; this folder is not built",
                                    service.name))
        else:
            found[service.name] = service
    return sorted(found.values(), key=lambda s: s.name), problems


def link_outside(repo: Path, folder: Path) -> Path | None:
    """The first link under folder (Dockerfile included) that resolves outside repo, or None.
    Tool caches (node_modules, .git, ...) are not looked into: the pipeline never treats them
    as source, and the build stores a link as a link, never the file it points to."""
    todo = [folder]
    while todo:
        here = todo.pop()
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError:
            continue  # unreadable: the build reports it
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                if not inside(repo, path):
                    return path
            elif entry.is_dir(follow_symlinks=False) and entry.name not in IGNORED_NAMES:
                todo.append(path)
    return None


def env_files_in_context(svc: Service) -> list[dict[str, Any]]:
    """A warning per env file (`.env.local`, `config/prod.env`) the image build would send to the
    engine, where `COPY . .` puts it in the image. Files the service's `.dockerignore` excludes
    are fine: the patterns are matched by the docker SDK that sends the build context."""
    from docker.utils.build import PatternMatcher

    folder_rel = svc.folder or f"services/{svc.path.name}"
    patterns: list[str] = []
    ignore = svc.path / ".dockerignore"
    if ignore.is_file():
        text, _ = read_text(ignore, f"{folder_rel}/.dockerignore", svc.name)
        # The SDK's own reading of .dockerignore (docker.api.build): stripped, no blanks or comments.
        patterns = [line.strip() for line in (text or "").splitlines() if line.strip() and not line.strip().startswith("#")]
    matcher = PatternMatcher(patterns)
    found = []
    for dirpath, dirnames, filenames in os.walk(svc.path):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES)
        for name in sorted(filenames):
            if not ENV_NAME_RE.match(name) or name.endswith(TEMPLATE_SUFFIXES):
                continue
            rel = (Path(dirpath) / name).relative_to(svc.path).as_posix()
            if not matcher.matches(rel):
                found.append(problem(f"{folder_rel}/{rel}", None, "warning: env file in the build context: the "
                                     f"image would get it (COPY . .); add {rel} to {folder_rel}/.dockerignore",
                                     svc.name))
    return found


def build_services(settings: Settings, *, in_workdir: bool = False) -> list[Service]:
    """The services the pipeline builds: the repository's, plus those that exist only in the
    working copy (scaffolded ones). Paths point into the repository, the source of truth that
    observations hash, or with in_workdir into the synced working copy that builds read."""
    in_repo, in_copy = both_views(settings)
    return in_copy if in_workdir else in_repo


def both_views(settings: Settings) -> tuple[list[Service], list[Service]]:
    """build_services(settings) and build_services(settings, in_workdir=True) from one scan of
    the repository and one of the working copy."""
    repo = {s.name: s for s in find_services(settings.repo, settings.compose_file, settings.secrets_file)}
    copy = (find_services(settings.workdir, settings.compose_file, settings.secrets_file)
            if (settings.workdir / "services").is_dir() else [])
    in_repo, in_copy = dict(repo), dict(repo)
    for service in copy:
        in_copy[service.name] = service
        in_repo.setdefault(service.name, service)
    return [in_repo[n] for n in sorted(in_repo)], [in_copy[n] for n in sorted(in_copy)]


def refused_services(repo: Path, compose_file: str | None = None, secrets: Sequence[str] = ()) -> list[Refusal]:
    """Every service of repo that is refused, one per name (the compose name when compose builds
    it): a link out of the repository (scan_services), a compose build arg carrying a secret, a
    Dockerfile line holding a value of secrets (what the image build refuses, by the same rule:
    target.secrets_rule, whose words say why; never a value) or a Dockerfile that cannot be read."""
    refused: list[Refusal] = []
    services = scan_services(repo, compose_file, refused)[0]
    for service in services:
        folder = service.folder or rel_path(service.path, repo)
        if service.secret_args:
            rules = dict(service.secret_arg_rules)
            why = "; ".join(dict.fromkeys(rules[a] for a in service.secret_args if a in rules))
            refused.append(Refusal(service.name, service.compose_file or folder, f"build arg "
                                   f"{', '.join(service.secret_args)} carries a secret{f' ({why})' if why else ''}",
                                   service.compose_name, folder))
        if service.dockerfile is None:
            continue  # not refused: it fails to build, saying so
        shown = rel_path(service.dockerfile, repo)
        try:
            text = service.dockerfile.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            refused.append(Refusal(service.name, shown, f"{shown} cannot be read ({exc.strerror or type(exc).__name__})",
                                   service.compose_name, folder))
            continue
        found = secret_line_rules(text, secrets) if secrets else []
        if found:
            why = "; ".join(dict.fromkeys(rule for _, rule in found))
            refused.append(Refusal(service.name, shown, f"{shown} line {', '.join(str(n) for n, _ in found)} holds a "
                                   f"value of an .env file ({why})", service.compose_name, folder))
    # A folder compose also builds is refused once, under its compose name.
    by_compose = {r.folder for r in refused if r.compose_name}
    unique: dict[str, Refusal] = {}
    for refusal in refused:
        if refusal.compose_name is None and refusal.folder in by_compose:
            continue
        unique.setdefault(refusal.service, refusal)
    return [unique[name] for name in sorted(unique)]
