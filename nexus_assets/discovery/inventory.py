"""Step B of the guide: inventory a target repository into `reports/discovery_parsed.json`.

`discover()` only reads: service folders (Dockerfile stages, ports, HEALTHCHECK, package
manifest, tests), `deployment/service_list.txt`, every compose file, `.env*` keys, git state,
the containers of a Docker engine when a client is given, and the VPS discovery archive when
there is one (opened and parsed by `discovery.archive`). Every bad input becomes a problem
`{file, line, service, message}` and discovery goes on; only a missing repository or
`services/` folder raises (TargetRepoError), since nothing useful can follow.

Dockerfiles are parsed by `dockerfile`, text files read by `textfiles`.

Secrets: the values of every `.env*` file, of the archive's `env_dump.txt` and of inline
compose `environment:` entries are collected once (rules in `secret_values`) and every string
of the result, dict keys included, is scrubbed by `mask_secrets` (both in `target.secrets`).
Keys are reported, values never.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nexus_assets.core.git import git_answer
from nexus_assets.core.masking import MASK, mask_secrets, mask_tree  # noqa: F401
from nexus_assets.core.textfiles import (  # noqa: F401
    MAX_TEXT_BYTES,
    OUTPUT_DIRS,
    SKIP_DIRS,
    inside,
    problem,
    read_text,
    rel_path,
    walk_files,
)
from nexus_assets.discovery.archive_contents import read_discovery_archive
from nexus_assets.discovery.compose import build_stack, parse_compose_file

# Secret handling and Dockerfile parsing live in their own modules; the public names that
# used to be defined here (mask_secrets, secret_values, parse_dockerfile, ...) stay importable.
from nexus_assets.target.compose_model import SECRET_ARG_ADVICE, compose_builds
from nexus_assets.target.dockerfile import no_healthcheck, parse_dockerfile, read_dockerfile
from nexus_assets.target.secrets import MIN_SECRET_LEN, parse_env_text, read_env_files, repo_secrets, secret_values  # noqa: F401
from nexus_assets.target.services import (  # noqa: F401
    env_files_in_context,
    find_services,
    refused_services,
    scan_folders,
    scan_services,
    services_root,
    valid_service_name,
)

# Secret handling and Dockerfile parsing live in their own modules; the public names that
# used to be defined here (mask_secrets, secret_values, parse_dockerfile, ...) stay importable.

SERVICE_LIST = Path("deployment") / "service_list.txt"
MANIFESTS = ("package.json", "requirements.txt", "pyproject.toml", "setup.py")
_COMPOSE_RE = re.compile(r"^(docker-)?compose([.-][\w.-]*)?\.ya?ml$")
_TEST_DIRS = frozenset({"test", "tests", "__tests__", "spec"})
_TEST_FILE_RE = re.compile(r"^(test_.*\.py|.*_test\.py|.*\.(test|spec)\.[cm]?[jt]sx?)$")


# --- services, service list, compose ------------------------------------------------------

def inspect_service(repo: Path, svc: Any) -> dict[str, Any]:
    """One services/<name>/ folder: language, Dockerfile facts, manifest, tests, problems."""
    folder_rel = rel_path(svc.path, repo)
    info: dict[str, Any] = {"name": svc.name, "path": folder_rel, "language": svc.language,
                            "dockerfile": None, "stages": [], "base_images": [], "final_base_image": None,
                            "exposed_ports": [], "healthcheck": no_healthcheck(), "problems": []}
    if svc.dockerfile is None:
        info["problems"].append(problem(folder_rel, None, "no Dockerfile: the service cannot be built "
                                        "(add one, or let scaffolding create it)", svc.name))
    else:
        shown = rel_path(svc.dockerfile, repo)
        info["dockerfile"] = shown
        text, probs = read_dockerfile(svc.dockerfile, shown, svc.name)
        info["problems"] += probs
        if text is not None:
            parsed = parse_dockerfile(text, shown, svc.name)
            info["problems"] += parsed.pop("problems")
            info.update(parsed)
    manifest = next((m for m in MANIFESTS if (svc.path / m).is_file()), None)
    info["package_manifest"] = f"{folder_rel}/{manifest}" if manifest else None
    if manifest == "package.json":
        text, probs = read_text(svc.path / manifest, info["package_manifest"], svc.name)
        info["problems"] += probs
        try:
            json.loads(text or "{}")
        except json.JSONDecodeError as exc:  # a broken package.json breaks `npm ci` in the build
            info["problems"].append(problem(info["package_manifest"], exc.lineno,
                                            f"invalid JSON: {exc.msg}", svc.name))
    info["problems"] += env_files_in_context(svc)
    test_files = _test_files(svc.path)
    info["tests_present"] = bool(test_files)
    info["test_files"] = len(test_files)
    return info


def _test_files(folder: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        in_test_dir = bool(_TEST_DIRS & set(Path(dirpath).relative_to(folder).parts))
        found.extend(f for f in filenames if in_test_dir or _TEST_FILE_RE.match(f))
    return found


def read_service_list(repo: Path) -> dict[str, Any]:
    """Names from deployment/service_list.txt (`#` comments, blank lines), with a problem per
    line that is not a valid service name (path traversal, shell characters, spaces)."""
    path, shown = repo / SERVICE_LIST, SERVICE_LIST.as_posix()
    if (path.is_file() or path.is_symlink()) and not inside(repo, path):
        return {"file": None, "names": [], "problems": [problem(
            shown, None, "link pointing outside the repository; not read")]}
    if not path.is_file():
        return {"file": None, "names": [], "problems": [problem(
            shown, None, "service list not found (the guide's step 'Adding New Services' writes it)")]}
    text, probs = read_text(path, shown)
    names: dict[str, int] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        if not valid_service_name(entry.lower()):
            shown_entry = entry if len(entry) <= 60 else entry[:57] + "..."
            probs.append(problem(shown, number, f"{shown_entry!r} is not a valid service name (lowercase "
                                 "letters, digits, '-', '_', '.'; no spaces, '..', '/' or shell characters); skipped"))
        elif entry in names:
            probs.append(problem(shown, number, f"{entry!r} is listed twice (lines {names[entry]} and {number})"))
        else:
            names[entry] = number
    return {"file": shown, "names": sorted(names), "problems": probs}


def git_state(repo: Path) -> dict[str, Any] | None:
    """Commit, branch and dirtiness (scoped to repo) of the checkout; None when not in git."""
    def git(*args: str) -> str | None:
        return git_answer(repo, *args, timeout=20)
    top = git("rev-parse", "--show-toplevel")
    if top is None:
        return None
    status = git("status", "--porcelain", "--", ".")
    return {"commit": git("rev-parse", "HEAD"), "branch": git("symbolic-ref", "--short", "-q", "HEAD"),
            "dirty": bool(status), "changed_files": len(status.splitlines()) if status else 0,
            "repo_is_toplevel": Path(top).resolve() == repo.resolve()}


def _health(status_text: str) -> str | None:
    m = re.search(r"\((healthy|unhealthy|health: starting)\)", status_text or "")
    return m.group(1).replace("health: ", "") if m else None


def list_containers(client: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every container of the engine (running or not), from the list endpoint only: no inspect
    per container, so a container removed meanwhile cannot fail the listing."""
    try:
        items = client.containers.list(all=True, sparse=True)
    except Exception as exc:  # noqa: BLE001 - the SDK raises many types; each means "no inventory"
        return [], [problem("docker engine", None, f"cannot list containers ({type(exc).__name__}); "
                            "is dockerd running? continuing without running containers")]
    out = []
    for c in items:
        a = getattr(c, "attrs", {}) or {}
        labels = a.get("Labels") or {}
        names = a.get("Names") or [getattr(c, "name", "") or ""]
        ports = sorted(f"{p.get('IP', '')}:{p['PublicPort']}->{p['PrivatePort']}/{p.get('Type', 'tcp')}" if p.get("PublicPort")
                       else f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}" for p in a.get("Ports") or [])
        out.append({"name": names[0].lstrip("/"), "image": a.get("Image"), "status": a.get("State"),
                    "health": _health(a.get("Status", "")), "ports": sorted(set(ports)),
                    "compose_service": labels.get("com.docker.compose.service"),
                    "compose_project": labels.get("com.docker.compose.project")})
    return sorted(out, key=lambda c: c["name"]), []


# --- the whole inventory -----------------------------------------------------------------

def locate_archive(repo: Path, archive: Path | None) -> tuple[Path | None, list[dict[str, Any]]]:
    """The explicit archive, else repo/nexus-discovery/ or repo/nexus-discovery.tar.gz when it
    lies inside the repository (a link out of it is a problem, not an archive), else None."""
    if archive is not None:
        return archive, []
    for candidate in (repo / "nexus-discovery", repo / "nexus-discovery.tar.gz"):
        if candidate.is_symlink() and not inside(repo, candidate):
            return None, [problem(candidate.name, None, "link pointing outside the repository; archive not read "
                                  "(name it with NEXUS_DISCOVERY_ARCHIVE to use it)")]
        if candidate.exists():
            return candidate, []
    return None, []


def discover(repo: Path, *, archive: Path | None = None, docker_client: Any = None,
             extra_secrets: Iterable[str] = (), git_repo: Path | None = None,
             compose_file: str | None = None) -> dict[str, Any]:
    """The full inventory of repo as a JSON-serializable dict (see the module docstring).

    archive: a discovery archive folder or .tar.gz (default: nexus-discovery[.tar.gz] in repo);
    docker_client: a docker SDK client whose containers are listed (None: not queried);
    extra_secrets: more values to scrub from the output (e.g. tokens from the environment);
    git_repo: where the git state is read (default repo). The pipeline inventories the working
    copy, which has no .git (and may sit inside some other checkout): it passes the target
    repository, so commit, branch and dirtiness are the repository's;
    compose_file: the stack compose file (NEXUS_COMPOSE_FILE; None: the default choice), which
    `stack` reports with the others and which names each folder's compose service.
    Raises TargetRepoError when repo or its services/ folder is missing."""
    repo = Path(repo)
    svcs, problems = scan_folders(repo, nested=True)  # the folder view; the build model is scan_services
    service_list = read_service_list(repo)
    services = [inspect_service(repo, s) for s in svcs]
    stack = build_stack(repo, compose_file)
    by_folder = {b["folder"]: b for b in stack["services"] if b["compose_name"]}
    for s in services:
        s["in_service_list"] = s["name"] in service_list["names"]
        built = by_folder.get(s["path"])  # the compose service that builds this folder, by its own name
        s["compose_name"] = built["compose_name"] if built else None
        s["compose_file"] = built["compose_file"] if built else None
    # The guide adds a service in two places (list and folder): report each half on its own.
    service_list["without_folder"] = sorted(set(service_list["names"]) - {s["name"] for s in services})
    service_list["folders_not_listed"] = sorted(s["name"] for s in services if not s["in_service_list"])
    compose, pairs = [], []
    for path in walk_files(repo, _COMPOSE_RE):
        parsed, env_pairs = parse_compose_file(repo, path)
        compose.append(parsed)
        pairs += env_pairs
    outside = sorted(({"compose_file": c["file"], "service": s["name"], **s["build"]} for c in compose
                      for s in c["services"] if s["build"] and s["build"]["outside_services"]),
                     key=lambda b: (b["context"], b["compose_file"], b["service"]))
    env_files, env_pairs = read_env_files(repo)
    pairs += env_pairs
    # The build model's refusals that only it sees: a build arg that carries a secret.
    _builds, _stack, build_problems = compose_builds(repo, os.environ.get("NEXUS_COMPOSE_FILE") or None)
    problems += [p for p in build_problems if SECRET_ARG_ADVICE in p["message"]]
    # Services the build refuses, whatever the reason: never built nor counted (parity skips them).
    # The secrets as the build judges them: from the target repository, whose git says what is committed.
    refused = [r.record() for r in refused_services(repo, compose_file,
                                                    repo_secrets(Path(git_repo) if git_repo is not None else repo))]
    containers: list[dict[str, Any]] = []
    engine = {"queried": docker_client is not None, "reachable": None}
    if docker_client is not None:
        containers, probs = list_containers(docker_client)
        engine["reachable"] = not probs
        problems += probs
    located, probs = locate_archive(repo, Path(archive) if archive is not None else None)
    problems += probs
    if located is None:
        archive_info: dict[str, Any] = {"present": False, "message": "no discovery archive: proceeding with "
                                        "current system discovery (normal without a pre-existing archive)"}
    else:
        archive_info, archive_pairs = read_discovery_archive(located, rel_path(located, repo))
        pairs += archive_pairs
        problems += archive_info.get("problems", [])
    public = ({s["name"] for s in services} | {s["name"] for c in compose for s in c["services"]}
              | set(service_list["names"]))
    secrets = secret_values(pairs, public, extra_secrets)
    problems += service_list["problems"]
    problems += [p for s in services for p in s["problems"]]
    problems += [p for c in compose for p in c["problems"]]
    problems += [p for e in env_files for p in e["problems"]]
    result = {
        "generated_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "repo": str(repo),
        "services": services,
        "service_list": service_list,
        "compose": compose,
        "stack": stack,
        "build_contexts_outside_services": outside,
        "env_files": env_files,
        "git": git_state(Path(git_repo) if git_repo is not None else repo),
        "engine": engine,
        "containers": containers,
        "archive": archive_info,
        "refused": refused,
        "summary": {
            "services": len(services),
            "services_with_dockerfile": sum(1 for s in services if s["dockerfile"]),
            "services_without_dockerfile": sum(1 for s in services if not s["dockerfile"]),
            "services_with_healthcheck": sum(1 for s in services if s["healthcheck"]["present"]),
            "services_with_tests": sum(1 for s in services if s["tests_present"]),
            "services_refused": len(refused),
            "service_list_entries": len(service_list["names"]),
            "compose_files": len(compose),
            "compose_services": sum(len(c["services"]) for c in compose),
            "build_contexts_outside_services": len(outside),
            "env_files": len(env_files),
            "env_keys": len({k for e in env_files for k in e["keys"]}),
            "containers": len(containers),
            "containers_running": sum(1 for c in containers if c["status"] == "running"),
            "archive_present": bool(archive_info.get("present")),
            "problems": len(problems),
        },
        "problems": sorted(problems, key=lambda p: (str(p["file"]), p["line"] or 0, str(p["service"]), p["message"])),
    }
    masked: dict[str, Any] = mask_tree(result, secrets)
    return masked
