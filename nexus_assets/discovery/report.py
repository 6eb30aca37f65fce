"""The shape of `reports/discovery_parsed.json` (step B), as `inventory.discover()` builds it.

Schema: `schemas/discovery_parsed.schema.json`. Every string in the report has been through
secret masking: environment values never appear, only keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from nexus_assets.core.report_models import Problem, ReportModel, sometimes

Health = Literal["healthy", "unhealthy", "starting"]


class Stage(ReportModel):
    """One `FROM` of the Dockerfile."""

    line: int = Field(description="Line of the FROM instruction.")
    image: str = Field(description="The image or earlier stage named, with ARG values substituted.")
    alias: str | None = Field(description="The stage's `AS name`, lowercased.")
    from_stage: str | None = Field(description="The earlier stage this one builds on, when it names one.")


class Healthcheck(ReportModel):
    """The HEALTHCHECK of the image the Dockerfile builds (inherited from parent stages)."""

    present: bool = Field(description="A HEALTHCHECK with a CMD applies to the final image.")
    disabled: bool = Field(description="`HEALTHCHECK NONE` switches a parent image's check off.")
    command: str | None = Field(description="The check's command (exec form shown as a shell line).")
    line: int | None = Field(description="Line of the HEALTHCHECK instruction.")
    options: dict[str, str] = Field(description="The `--name=value` options (interval, timeout, ...).")


class Service(ReportModel):
    """One folder services/<name>/ of the repository."""

    name: str = Field(description="The folder name, which is the service name.")
    path: str = Field(description="The folder, relative to the repository.")
    language: Literal["node", "python", "unknown"] = Field(description="Detected from the package manifest.")
    dockerfile: str | None = Field(description="The Dockerfile, relative to the repository; null when there is none.")
    stages: list[Stage] = Field(description="The Dockerfile's stages in order.")
    base_images: list[str] = Field(description="External images pulled by the build (not earlier stages, "
                                               "not scratch), in order of first use.")
    final_base_image: str | None = Field(description="The external image the final stage derives from; "
                                                     "null for scratch or without Dockerfile.")
    exposed_ports: list[int] = Field(description="EXPOSEd ports of the final image, inherited ones included.")
    healthcheck: Healthcheck
    problems: list[Problem] = Field(description="What is wrong in this service's files (also in the top-level list).")
    package_manifest: str | None = Field(description="package.json, requirements.txt, pyproject.toml or setup.py "
                                                     "of the service, relative to the repository.")
    tests_present: bool = Field(description="The service has test files.")
    test_files: int = Field(description="How many test files the service has.")
    in_service_list: bool = Field(description="The name is in deployment/service_list.txt.")
    compose_name: str | None = Field(description="The compose service of the stack file that builds this folder, "
                                                 "by its own name (it differs from the folder name when compose "
                                                 "names it otherwise); null when no compose service builds it.")
    compose_file: str | None = Field(description="The stack compose file that declares compose_name.")


class ServiceList(ReportModel):
    """deployment/service_list.txt, the guide's list of services to deploy."""

    file: str | None = Field(description="The list's path; null when the file does not exist.")
    names: list[str] = Field(description="Valid service names listed, sorted, each once.")
    problems: list[Problem] = Field(description="Invalid or repeated lines, or the file missing.")
    without_folder: list[str] = Field(description="Listed names with no services/<name>/ folder.")
    folders_not_listed: list[str] = Field(description="Service folders missing from the list.")


class BuildContext(ReportModel):
    """A compose service's `build:`, resolved against the compose file's folder."""

    context: str = Field(description="The context relative to the repository, or as written when remote "
                                     "or holding an unexpanded ${VAR}.")
    remote: bool = Field(description="A URL or git remote: nothing on disk to check.")
    unresolved: bool = Field(description="Holds an unexpanded ${VAR}: nothing on disk to check.")
    exists: bool | None = Field(description="The context folder exists; null when remote or unresolved.")
    dockerfile: str = Field(description="The Dockerfile named by `build.dockerfile` (default Dockerfile).")
    dockerfile_exists: bool | None = Field(description="That Dockerfile exists in the context; null when remote "
                                                       "or unresolved.")
    outside_services: bool = Field(description="The context is not under services/.")
    outside_repo: bool = Field(description="The context leaves the repository (or is remote).")
    refused: bool = Field(description="The context or its Dockerfile resolves outside the repository: never "
                                      "built, never counted as evidence of a module.")


class StackService(ReportModel):
    """One service the pipeline builds (compose first, folders second), with both its names."""

    name: str = Field(description="The service and image name: the compose name, else the folder name.")
    compose_name: str | None = Field(description="The compose service name; null for a folder no compose "
                                                 "service builds.")
    folder: str = Field(description="Its build context, relative to the repository (the folder).")
    compose_file: str | None = Field(description="The compose file it comes from; null for a folder service.")
    dockerfile: str | None = Field(description="The Dockerfile the build uses; null when there is none.")
    build_arg_keys: list[str] = Field(description="Its compose build args, keys only (values may come from .env); those carrying a secret are refused and listed among the problems.")


class BuildStack(ReportModel):
    """Which compose file is the stack to build, which are not, and what is built."""

    compose_file: str | None = Field(description="The compose file built from; null when there is none.")
    chosen_by: str = Field(description="Why: `NEXUS_COMPOSE_FILE`, `default name` (docker-compose.yml, ...), "
                                       "`first compose file by name`, or why there is none.")
    other_compose_files: list[str] = Field(description="The repository's other compose files: reported, "
                                                       "not built from (set NEXUS_COMPOSE_FILE to pick one).")
    services: list[StackService] = Field(description="Every buildable service, by name.")


class OutsideBuildContext(BuildContext):
    """A build context outside services/: built by compose, but not by the pipeline."""

    compose_file: str = Field(description="The compose file that declares it.")
    service: str = Field(description="The compose service it builds.")


class ComposeService(ReportModel):
    """One service of a compose file."""

    name: str = Field(description="The compose service name.")
    image: str | None = Field(description="Its `image:`, when set.")
    build: BuildContext | None = Field(description="Its `build:`; null for an image-only service.")
    container_name: Any = Field(description="Its `container_name:` as written (normally a string), or null.")
    ports: list[str] = Field(description="Published ports as `[ip:]published:target/protocol` or as written.")
    depends_on: list[str] = Field(description="Services it depends on, sorted.")
    environment_keys: list[str] = Field(description="Keys of its inline `environment:` (values never reported).")
    healthcheck: bool = Field(description="It declares a healthcheck that is not disabled.")


class ComposeFile(ReportModel):
    """One docker-compose*.yml / compose*.yaml of the repository."""

    file: str = Field(description="Path relative to the repository.")
    valid: bool = Field(description="Parsed as YAML with a `services:` mapping.")
    services: list[ComposeService] = Field(description="Its services, sorted by name.")
    problems: list[Problem]


class EnvFile(ReportModel):
    """One `.env*` file: its keys, never its values."""

    file: str = Field(description="Path relative to the repository.")
    keys: list[str] = Field(description="The keys it sets, sorted.")
    template: bool = Field(description="An example/template file (.env.example, ...), committed on purpose.")
    problems: list[Problem]


class GitState(ReportModel):
    """The git checkout the target repository is in (never the working copy, which has no .git)."""

    commit: str | None = Field(description="HEAD's commit id; null without commits.")
    branch: str | None = Field(description="The branch checked out; null when detached.")
    dirty: bool = Field(description="Files under the repository differ from HEAD.")
    changed_files: int = Field(description="How many (from `git status --porcelain`).")
    repo_is_toplevel: bool = Field(description="The target repository is the checkout's top folder (not a subfolder).")


class Engine(ReportModel):
    """Whether the local Docker engine was asked for its containers."""

    queried: bool = Field(description="A Docker client was given to discovery.")
    reachable: bool | None = Field(description="The engine answered; null when not queried.")


class Container(ReportModel):
    """A container of the local engine, running or not."""

    name: str
    image: str | None = Field(description="The image it runs.")
    status: str | None = Field(description="The engine's state: running, exited, created, ...")
    health: Health | None = Field(description="The healthcheck's verdict, when it has one.")
    ports: list[str] = Field(description="`ip:public->private/proto` or `private/proto`, sorted.")
    compose_service: str | None = Field(description="The compose service label, when compose started it.")
    compose_project: str | None = Field(description="The compose project label, when compose started it.")


class ArchiveContainer(ReportModel):
    """A container listed in the archive's docker_ps.json. Values copied from the archive
    are kept as written there (normally strings)."""

    name: str
    image: Any = Field(description="The image, as written in the archive.")
    status: Any = Field(description="The state, as written or read from the status text (running, exited, created).")
    status_text: str = Field(description="The `docker ps` STATUS column.")
    health: Health | None = Field(description="Read from the status text, when it says.")
    ports: list[str] = Field(description="Ports, sorted.")
    compose_service: Any = Field(description="The compose service label, or null.")
    compose_project: Any = Field(description="The compose project label, or null.")


class SystemdUnit(ReportModel):
    """A line of the archive's systemd_services.txt."""

    unit: str = Field(description="The unit name (*.service).")
    load: str = Field(description="LOAD column.")
    active: str | None = Field(description="ACTIVE column.")
    sub: str | None = Field(description="SUB column.")


class ListeningPort(ReportModel):
    """A listening port of the archive's port_map.txt."""

    port: int
    process: str | None = Field(description="The process listening, when the line names it.")


class ComposeDump(ReportModel):
    """The archive's compose_dump.txt (`docker compose config`); environments never copied."""

    lines: int = Field(description="Lines in the dump (0 when missing).")
    services: list[str] = Field(description="Compose service names, sorted.")
    images: list[str] = Field(description="Images named, sorted.")


class Journal(ReportModel):
    """The archive's docker_journal.txt."""

    lines: int = Field(description="Lines in the journal (0 when missing).")
    last_lines: list[str] = Field(description="Its last lines (at most 20), e-mail addresses and secrets masked.")


class ArchiveAbsent(ReportModel):
    """No VPS discovery archive: discovery proceeds with the current system only."""

    present: Literal[False]
    path: str | SkipJsonSchema[None] = sometimes("Where the archive given was looked for; absent when "
                                                 "none was given or found in the repository.")
    message: str


class ArchiveUnusable(ReportModel):
    """An archive that could not be opened safely (broken, unsafe member, too large)."""

    present: Literal[True]
    path: str = Field(description="The archive, relative to the repository when inside it.")
    ok: Literal[False]
    error: str = Field(description="Why it was refused.")
    problems: list[Problem]


class ArchiveRead(ReportModel):
    """A VPS discovery archive, opened and parsed."""

    present: Literal[True]
    path: str = Field(description="The archive, relative to the repository when inside it.")
    kind: Literal["folder", "tar"] = Field(description="A folder used in place, or a tarball extracted safely.")
    ok: Literal[True]
    member_count: int = Field(description="Files in the archive.")
    members: list[str] = Field(description="Their paths, sorted (at most 500).")
    files: dict[str, bool] = Field(description="Each file the guide's archive holds, and whether it was found.")
    missing_files: list[str] = Field(description="The guide's files not found.")
    docker_ps: list[ArchiveContainer]
    systemd_services: list[SystemdUnit]
    compose_dump: ComposeDump
    env_keys: list[str] = Field(description="Keys of env_dump.txt (values never reported).")
    ports: list[ListeningPort] = Field(description="Listening ports, by port then process.")
    journal: Journal
    problems: list[Problem]


class Summary(ReportModel):
    """Counts for a glance (and the asset's metadata)."""

    services: int
    services_with_dockerfile: int
    services_without_dockerfile: int
    services_with_healthcheck: int
    services_with_tests: int
    services_refused: int = Field(default=0, description="Entries of refused[].")
    service_list_entries: int
    compose_files: int
    compose_services: int
    build_contexts_outside_services: int
    env_files: int
    env_keys: int = Field(description="Distinct keys over all .env* files.")
    containers: int
    containers_running: int
    archive_present: bool
    problems: int


class RefusedService(ReportModel):
    """A service the repository declares that is never built nor counted."""

    service: str = Field(description="The service (compose name when compose builds it, else its folder).")
    file: str = Field(description="What decided it, relative to the repository (the link, the Dockerfile, the "
                                  "compose file).")
    reason: str = Field(description="Why: a link out of the repository, a secret its image would keep, an "
                                    "unreadable Dockerfile; never a secret value.")
    compose_name: str | None = Field(description="Its compose service, when compose builds it.")
    folder: str | None = Field(description="Its folder (build context), relative to the repository.")


class DiscoveryReport(ReportModel):
    """reports/discovery_parsed.json: the inventory of the target repository (guide step B)."""

    generated_at: str = Field(description="When it was made: ISO 8601, UTC, whole seconds.")
    repo: str = Field(description="The repository inventoried (the working copy's path).")
    services: list[Service] = Field(description="Every valid services/<name>/ folder, sorted by name.")
    service_list: ServiceList
    compose: list[ComposeFile] = Field(description="Every compose file of the repository, by path.")
    stack: BuildStack = Field(description="The compose file the build uses, the others, and what is built.")
    build_contexts_outside_services: list[OutsideBuildContext] = Field(
        description="Compose build contexts outside services/, by context.")
    env_files: list[EnvFile] = Field(description="Every .env* file of the repository, by path.")
    git: GitState | None = Field(description="The target repository's git checkout; null when it is not in git.")
    engine: Engine
    containers: list[Container] = Field(description="Containers of the local engine, by name; empty when not queried.")
    archive: ArchiveAbsent | ArchiveUnusable | ArchiveRead = Field(description="The VPS discovery archive.")
    refused: list[RefusedService] = Field(default_factory=list, description="Every service refused, by name: "
                                          "never built, not evidence of a module, refused in the manifest.")
    summary: Summary
    problems: list[Problem] = Field(description="Every problem of the inventory, by file, line, service, message.")
