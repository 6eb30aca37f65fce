"""Step H, one service: resolve its base images, build its image on the real engine, tag it.

Plain functions on a docker SDK client; the Dagster asset in images/assets.py runs many of
these concurrently and records what they return."""

from __future__ import annotations

import errno
import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexus_assets.core.cancel import Cancellation
from nexus_assets.core.errors import BuildError, EngineError
from nexus_assets.core.fileio import naming
from nexus_assets.core.hashing import fingerprint
from nexus_assets.core.masking import mask_secrets
from nexus_assets.core.settings import BUILDER_ENV, builder_setting
from nexus_assets.resources import DockerEngine
from nexus_assets.target.baseimages import BaseImageMap, external_bases, resolve_base
from nexus_assets.target.compose_model import SECRET_ARG_ADVICE
from nexus_assets.target.dockerfile import instructions, read_dockerfile
from nexus_assets.target.secrets import secret_values
from nexus_assets.target.secrets_rule import secret_line_rules
from nexus_assets.target.services import Service

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient

from nexus_assets.images import buildkit
from nexus_assets.images.buildkit import Builder, BuildKitRefused, LayerCounts
from nexus_assets.images.stream_deadline import stream_deadline


@dataclass(frozen=True)
class BuildPlan:
    """Everything that decides a service's image, known before building it."""

    service: Service
    tree_hash: str
    fingerprint: str
    bases: list[dict[str, Any]]
    build_args: dict[str, str] = field(default_factory=dict)

    def tags(self, registry: str, version: str) -> list[str]:
        repo = f"{registry}/{self.service.image_repo}"
        return [f"{repo}:{version}", f"{repo}:latest"]


def plan_build(service: Service, client: DockerClient, base_map: BaseImageMap, build_args: dict[str, str] | None = None,
               secrets: Sequence[str] = ()) -> BuildPlan:
    """Hash what the build reads and resolve its bases; BuildError names the service when it
    cannot build. build_args default to the service's own (from compose). A service whose build
    would put a secret into the image (a build arg carrying one, a Dockerfile line holding a
    value of `secrets`) is refused, naming the arg or the line and the key and rule that made it
    a secret (target.secrets_rule), never the value."""
    if service.dockerfile is None:
        where = f"compose file {service.compose_file}" if service.compose_file else "the folder"
        raise BuildError(f"service {service.name}: no Dockerfile in {service.path} (named by {where}); "
                         "add one or remove the service")
    if service.secret_args:
        rules = dict(service.secret_arg_rules)
        named = [arg for arg in service.secret_args if arg in rules]  # why, in words: never a value
        why = "; ".join(rules[arg] if len(named) == 1 else f"{arg}: {rules[arg]}" for arg in named)
        raise BuildError(f"service {service.name}: build arg {', '.join(service.secret_args)} of "
                         f"{service.compose_file or 'compose'} carries a secret{f' ({why})' if why else ''}: "
                         f"{SECRET_ARG_ADVICE}")
    found = secret_line_rules(service.dockerfile.read_text(encoding="utf-8", errors="replace"), secrets)
    if found:
        lines = ", ".join(str(n) for n, _ in found)
        why = "; ".join(dict.fromkeys(rule for _, rule in found))
        raise BuildError(f"service {service.name}: {service.dockerfile.name} line {lines} holds a value of an .env "
                         f"file ({why}): the image would keep it; not built (pass it at run time, or name the key "
                         "in nexus-agent.toml [secrets] public if it is configuration)")
    args = dict(service.build_args if build_args is None else build_args)
    bases = [resolve_base(client, line, service.dockerfile, base_map) for line in external_bases(service.dockerfile, args)]
    tree = service.sources_hash()
    return BuildPlan(
        service=service,
        tree_hash=tree,
        fingerprint=fingerprint(tree, args, {b["requested"]: b["image_id"] for b in bases}),
        bases=bases,
        build_args=args,
    )


def dockerfile_argument(service: Service) -> str | None:
    """The SDK's `dockerfile=`: relative to the context when inside it, else the absolute path
    (the SDK then sends its content along with the context, as `docker build -f` does)."""
    if service.dockerfile is None:
        return None
    try:
        return service.dockerfile.relative_to(service.path).as_posix()
    except ValueError:
        return str(service.dockerfile)


def engine_gone(engine: DockerEngine) -> bool:
    """True when the engine no longer answers a ping on a new connection: a build that failed then
    failed because the engine went away (a stopping engine kills the running step), not by its
    own fault. A new connection, because a stopping engine still serves the ones already open."""
    return not engine.answers()


@functools.lru_cache(maxsize=4)
def _default_builder(docker_host: str, setting: str) -> Builder:
    return Builder(setting, docker_host)


def default_builder(docker_host: str = "") -> Builder:
    """The Builder of a build_image call given none: NEXUS_BUILDER, probed once per process."""
    return _default_builder(docker_host, builder_setting())


_STEP = re.compile(r"^Step (\d+)/\d+ : (\S+)")


def failed_step_line(dockerfile: Path | None, step: str | None) -> int | None:
    """The Dockerfile line of the classic builder's `Step N/M : KEYWORD ...` (N counts the
    instructions from the first FROM; ARGs before it are not steps), or None."""
    match = _STEP.match(step or "")
    if dockerfile is None or match is None:
        return None
    text, _ = read_dockerfile(dockerfile, str(dockerfile))
    found = instructions(text or "")
    first_from = next((i for i, (_, keyword, _) in enumerate(found) if keyword == "FROM"), 0)
    index = first_from + int(match.group(1)) - 1
    if 0 <= index < len(found) and found[index][1] == match.group(2).upper():
        return found[index][0]
    return None


def _network(client: DockerClient, name: str | None) -> str | None:
    """name when the engine has that network (scripts/bootstrap.sh creates it), else None."""
    import docker.errors

    if not name:
        return None
    try:
        client.networks.get(name)
    except docker.errors.NotFound:
        return None
    return name


def build_image(client: DockerClient, plan: BuildPlan, *, registry: str, version: str, revision: str | None,
                source: str | None, log_path: Path, timeout: float | None = None,
                cancel: Cancellation | None = None, created: str | None = None, secrets: Sequence[str] = (),
                network: str | None = None, builder: Builder | None = None,
                engine: DockerEngine | None = None, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build and tag the image; write the builder's output to log_path. Returns what an auditor
    needs: tags, image id, size, seconds, and the OCI labels set. A build still running after
    timeout seconds, or when cancel is thrown, is stopped in the engine and fails (BuildError).
    network: the network RUN steps use (the build network, where the package caches listen),
    when the engine has it; else the engine's default (classic builder only: BuildKit's RUN
    steps use the default bridge, from where the caches are reached as well).
    builder: the run's Builder (images.buildkit; default: NEXUS_BUILDER, probed once per
    process). engine: the DockerEngine resource client talks to (default: DOCKER_HOST's), where
    BuildKit builds through the docker CLI and which a failed build asks whether it went away.
    extra_labels: more labels the image carries (lint's result, io.nexus-assets.lint).

    The OCI labels say where the image comes from, and only what is known: `source` is the
    target repository's remote URL, `revision` its commit and `created` that commit's time
    (never the clock, so two builds of one commit carry the same labels); each is left out
    when the target is not a git checkout (or has no remote)."""
    service = plan.service
    tags = plan.tags(registry, version)
    labels = {
        "org.opencontainers.image.title": service.name,
        "org.opencontainers.image.version": version,
        "io.nexus-assets.source-hash": plan.fingerprint,
        "io.nexus-assets.service": service.name,
        **(extra_labels or {}),
    }
    for name, value in (("source", source), ("revision", revision), ("created", created)):
        if value:
            labels[f"org.opencontainers.image.{name}"] = value
    # The repository's .env values, and build args read from .env: a RUN step that prints one, or
    # an engine error that quotes one, is masked in the log and in the error, as discovery masks them.
    secrets = [*secrets, *secret_values([(k, v) for k, v in plan.build_args.items() if k in service.env_args])]

    def masked(text: str) -> str:
        return mask_secrets(text, secrets) if secrets else text

    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    engine = engine or DockerEngine.from_env()
    chosen = builder or default_builder(engine.base_url)
    counts: LayerCounts | None = None
    image_id: str | None = None
    if chosen.kind == "buildkit":
        why = chosen.unavailable()
        if why:
            raise BuildError(f"service {service.name}: {BUILDER_ENV}=buildkit, but BuildKit cannot build here: {why}")
        try:
            image_id, counts = _buildkit_image(service, tags[0], labels, plan.build_args, log_path, masked,
                                               timeout=timeout, cancel=cancel, engine=engine)
        except BuildKitRefused as exc:
            if not chosen.refused(str(exc)):
                raise BuildError(f"service {service.name}: {exc} (log: {log_path})") from None
    if counts is None:
        image_id, counts = _classic_image(client, service, tags[0], labels, plan.build_args, log_path, masked,
                                          timeout=timeout, cancel=cancel, network=network, engine=engine)
    return _tagged(client, engine, service, tags, image_id, log_path, started, labels, counts)


def _classic_image(client: DockerClient, service: Service, tag: str, labels: dict[str, str], build_args: dict[str, str],
                   log_path: Path, masked: Callable[[str], str], *, timeout: float | None, cancel: Cancellation | None,
                   network: str | None, engine: DockerEngine) -> tuple[str | None, LayerCounts]:
    """The classic builder through the SDK: (image id, steps and cache hits)."""
    import docker.errors

    image_id = None
    counts = LayerCounts("classic")
    with naming(log_path), open(log_path, "w", encoding="utf-8", buffering=1) as log, \
            stream_deadline(client.api, timeout, cancel) as stopper:  # a full disk names the log
        try:
            stream = client.api.build(
                path=str(service.path), dockerfile=dockerfile_argument(service), tag=tag, labels=labels,
                buildargs=build_args or None, network_mode=_network(client, network),
                rm=True, forcerm=True, pull=False, decode=True,
            )
            step = None
            for chunk in stream:
                if "stream" in chunk:
                    log.write(masked(chunk["stream"]))
                    if chunk["stream"].startswith("Step "):
                        step = chunk["stream"].strip()
                        counts.steps += " : FROM " not in step
                    counts.cached += "---> Using cache" in chunk["stream"]
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    error = masked(str(chunk["error"]))
                    log.write(f"ERROR: {error}\n")
                    if stopper.reason is None and engine_gone(engine):  # a stopping engine kills the step
                        log.write("ERROR: the Docker engine stopped answering during the build\n")
                        raise EngineError(f"service {service.name}: lost the Docker engine during the build "
                                          f"(log: {log_path})")
                    line = failed_step_line(service.dockerfile, step)
                    where = f" at {service.dockerfile} line {line}" if line else ""
                    raise BuildError(f"service {service.name}: docker build failed{where}: {error.strip()} "
                                     f"(log: {log_path})")
        except docker.errors.APIError as exc:
            why = masked(str(exc.explanation or exc))
            log.write(f"ERROR: {why}\n")
            raise BuildError(f"service {service.name}: the engine refused the build: {why} (log: {log_path})") from exc
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise  # the log's disk is full, not the engine gone: named by naming(log_path)
            if stopper.reason is None and not isinstance(exc, (docker.errors.DockerException, ConnectionError, OSError)):
                raise
            if stopper.reason is None:
                log.write(f"ERROR: {masked(str(exc))}\n")
                raise EngineError(f"service {service.name}: lost the Docker engine during the build: "
                                  f"{masked(str(exc))}") from exc
        if stopper.reason is not None:  # the stream ended because we shut it: not a finished build
            log.write(f"ERROR: build {stopper.reason}\n")
            raise BuildError(f"service {service.name}: build {stopper.reason} (log: {log_path})")
    return image_id, counts


def _buildkit_image(service: Service, tag: str, labels: dict[str, str], build_args: dict[str, str], log_path: Path,
                    masked: Callable[[str], str], *, timeout: float | None, cancel: Cancellation | None,
                    engine: DockerEngine) -> tuple[str | None, LayerCounts]:
    """BuildKit through the docker CLI: (image id from the iidfile, steps and cache hits).
    BuildKitRefused when the engine or the CLI cannot build with BuildKit."""
    iidfile = buildkit.iid_path(log_path)
    argv = buildkit.command(service.path, dockerfile_argument(service), tag, labels, build_args, iidfile)
    try:
        with naming(log_path), open(log_path, "w", encoding="utf-8", buffering=1) as log:
            done = buildkit.run_build(argv, log, masked, docker_host=engine.base_url, timeout=timeout, cancel=cancel)
            if done.stopped is not None:  # the CLI was stopped: the engine cancelled the build
                log.write(f"ERROR: build {done.stopped}\n")
                raise BuildError(f"service {service.name}: build {done.stopped} (log: {log_path})")
            if done.returncode != 0 or done.image_id is None:
                if buildkit.UNAVAILABLE.search(done.text):
                    raise buildkit.BuildKitRefused(f"BuildKit refused: {buildkit.failure(done.text)[2]}")
                if engine_gone(engine):  # a stopping engine kills the running step
                    log.write("ERROR: the Docker engine stopped answering during the build\n")
                    raise EngineError(f"service {service.name}: lost the Docker engine during the build "
                                      f"(log: {log_path})")
                step, named, error = buildkit.failure(done.text)
                line = named or buildkit.step_line(service.dockerfile, step)
                where = f" at {service.dockerfile} line {line}" if line else ""
                raise BuildError(f"service {service.name}: docker build failed{where}: {error} (log: {log_path})")
            return done.image_id, buildkit.count_steps(done.text)
    except OSError as exc:
        if exc.errno == errno.ENOSPC or not isinstance(exc, FileNotFoundError):
            raise
        raise buildkit.BuildKitRefused(f"cannot run {buildkit.DOCKER_CLI}: {exc}") from None
    finally:
        iidfile.unlink(missing_ok=True)


def _tagged(client: DockerClient, engine: DockerEngine, service: Service, tags: list[str], image_id: str | None,
            log_path: Path, started: float, labels: dict[str, str], counts: LayerCounts) -> dict[str, Any]:
    """Give the built image its other tags; what the image's metadata keeps of the build."""
    import docker.errors

    try:
        image = client.images.get(image_id or tags[0])
        for tag in tags[1:]:
            repo, _, tag_name = tag.rpartition(":")
            image.tag(repo, tag_name)
    except (docker.errors.NotFound, docker.errors.DockerException, ConnectionError, OSError) as exc:
        if isinstance(exc, docker.errors.NotFound) and not engine_gone(engine):
            raise BuildError(f"service {service.name}: the build ended without an image (log: {log_path})") from exc
        raise EngineError(f"service {service.name}: lost the Docker engine after the build (log: {log_path})") from exc
    return {
        "service": service.name,
        "tags": tags,
        "image_id": image.id,
        "size_bytes": image.attrs.get("Size"),
        "seconds": round(time.monotonic() - started, 2),
        "labels": labels,
        "build_log": str(log_path),
        "builder": counts.builder,
        "layer_cache": {"steps": counts.steps, "cached": counts.cached},
    }
