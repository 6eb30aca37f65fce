"""The service folders of a target repository (services/<name>/) and what each holds.

Plain functions, no Dagster: discovery, parity, images and the benchmark all use them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.core.errors import TargetRepoError
from nexus_assets.core.hashing import IGNORED_NAMES
from nexus_assets.core.secrets import ENV_NAME_RE, TEMPLATE_SUFFIXES
from nexus_assets.core.settings import Settings
from nexus_assets.core.textfiles import inside, problem, read_text

# A name that is safe as a folder, a compose key and a Docker repository path component.
# Real repositories use underscores; we keep them (Docker accepts them in repository names).
# Written into every scaffolded folder: such a folder is not evidence that the repository has
# the module, so later reports keep it "scaffolded" until the real service arrives.
SCAFFOLD_MARKER = ".nexus-scaffolded"

SERVICE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class Service:
    """One folder under services/."""

    name: str
    path: Path
    dockerfile: Path | None
    language: str  # "node", "python" or "unknown"

    @property
    def image_repo(self) -> str:
        """The repository part of the image name: nexus/<service>."""
        return f"nexus/{self.name.lower()}"


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


def find_services(repo: Path) -> list[Service]:
    """Every usable folder under services/, sorted by name; `scan_services` says why the others
    are left out."""
    return scan_services(repo)[0]


def scan_services(repo: Path) -> tuple[list[Service], list[dict]]:
    """The service folders of repo, and a problem `{file, line, service, message}` for every
    folder under services/ that is not one: hidden (`.x`, `...`), an invalid name, a folder,
    Dockerfile or file that resolves outside the repository (a link: building it would put host
    files in the image), or an image name another folder already has (`users`, `Users`).
    A folder name with upper case is a service, reported with the image name it gets."""
    root = services_root(repo)
    problems: list[dict] = []
    usable: list[Path] = []
    for folder in sorted(root.iterdir()):
        shown = f"services/{folder.name}"
        if not folder.is_dir():
            if folder.is_symlink():
                problems.append(problem(shown, None, "link under services/ that is not a folder inside the "
                                                     "repository; not a service"))
            continue  # plain files (a README) are not services
        if not inside(repo, folder):
            problems.append(problem(shown, None, "resolves outside the repository (a link); not a service, "
                                                 "never built or counted"))
            continue
        if folder.name.startswith("."):
            problems.append(problem(shown[:80], None, "hidden folder (name starts with '.'); not a service: "
                                                      "rename it if it is one"))
            continue
        if not valid_service_name(folder.name.lower()):
            problems.append(problem(shown[:80], None, "folder name is not a valid service name "
                                    "(lowercase letters, digits, '-', '_', '.'); skipped"))
            continue
        escaped = link_outside(repo, folder)
        if escaped is not None:
            problems.append(problem(escaped.relative_to(repo).as_posix(), None,
                                    "resolves outside the repository (a link); the service is refused: "
                                    "nothing is built from outside the repository", folder.name))
            continue
        usable.append(folder)
    by_image: dict[str, list[Path]] = {}
    for folder in usable:
        by_image.setdefault(folder.name.lower(), []).append(folder)
    found = []
    for image_name, folders in sorted(by_image.items()):
        if len(folders) > 1:
            keep = next((f for f in folders if f.name == image_name), None)
            names = " and ".join(f"services/{f.name}" for f in folders)
            outcome = (f"only services/{keep.name} is built" if keep
                       else "none is built: rename all but one")
            problems.append(problem(f"services/{folders[0].name}", None,
                                    f"folders {names} map to the same image name nexus/{image_name}; {outcome}",
                                    image_name))
            folders = [keep] if keep else []
        for folder in folders:
            if folder.name != image_name:
                problems.append(problem(f"services/{folder.name}", None,
                                        f"warning: folder name has upper case; its image is named nexus/{image_name}",
                                        folder.name))
            dockerfile = folder / "Dockerfile"
            found.append(Service(name=folder.name, path=folder,
                                 dockerfile=dockerfile if dockerfile.is_file() else None,
                                 language=detect_language(folder)))
    return sorted(found, key=lambda s: s.name), problems


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


def env_files_in_context(svc: Service) -> list[dict]:
    """A warning per env file (`.env.local`, `config/prod.env`) the image build would send to the
    engine, where `COPY . .` puts it in the image. Files the service's `.dockerignore` excludes
    are fine: the patterns are matched by the docker SDK that sends the build context."""
    from docker.utils.build import PatternMatcher

    folder_rel = f"services/{svc.path.name}"
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
    by_name: dict[str, Service] = {s.name: s for s in find_services(settings.repo)}
    if (settings.workdir / "services").is_dir():
        for service in find_services(settings.workdir):
            if in_workdir or service.name not in by_name:
                by_name[service.name] = service
    return [by_name[name] for name in sorted(by_name)]
