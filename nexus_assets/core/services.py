"""The service folders of a target repository (services/<name>/) and what each holds.

Plain functions, no Dagster: discovery, parity, images and the benchmark all use them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nexus_assets.core.errors import TargetRepoError
from nexus_assets.core.settings import Settings

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
    """Every folder under services/, sorted by name. Folders whose names are not valid service
    names are left out here; discovery reports them."""
    found = []
    for folder in sorted(services_root(repo).iterdir()):
        if not folder.is_dir() or folder.name.startswith(".") or not valid_service_name(folder.name.lower()):
            continue
        dockerfile = folder / "Dockerfile"
        found.append(
            Service(
                name=folder.name,
                path=folder,
                dockerfile=dockerfile if dockerfile.is_file() else None,
                language=detect_language(folder),
            )
        )
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
