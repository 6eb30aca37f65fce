"""Image builds through the engine's BuildKit, driven by the docker CLI.

The Python SDK speaks only the classic builder, which commits a container for every instruction;
BuildKit does not (20 small services: 4.0 s against 33.9 s). Debian's docker CLI 20.10
(/usr/bin/docker, installed by scripts/bootstrap.sh) drives the engine's built-in BuildKit with
DOCKER_BUILDKIT=1 and no buildx; a newer CLI refuses BuildKit without buildx. So a build is
`docker build --progress=plain --iidfile F`, a subprocess whose plain output is the build log,
and from which the failing step (hence the Dockerfile line) and the cache hits are read.

NEXUS_BUILDER chooses: `auto` (default) BuildKit where the CLI and the engine offer it, else the
classic builder (said once per run); `buildkit` or `classic` force one."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nexus_assets.core.cancel import Cancellation
from nexus_assets.core.errors import BuildError
from nexus_assets.core.settings import BUILDER_ENV, builder_setting
from nexus_assets.target.dockerfile import instructions, read_dockerfile

DOCKER_CLI = Path("/usr/bin/docker")  # Debian's 20.10 client: BuildKit without buildx
MIN_CLIENT = (20, 10)
STOP_GRACE_SECONDS = 5.0  # after SIGINT the CLI cancels its session; then it is killed
# Instructions that are a BuildKit step (a vertex in the plain output); the others only set
# the image's config and have no step.
STEP_KEYWORDS = {"FROM", "RUN", "COPY", "ADD", "WORKDIR"}
# What an engine or a client that cannot build with BuildKit says.
UNAVAILABLE = re.compile(r"buildkit not supported|buildx component is missing|BuildKit is enabled but|"
                         r"not supported by the (?:daemon|server)|unknown flag: --iidfile", re.IGNORECASE)


def cli_env(docker_host: str = "") -> dict[str, str]:
    """The CLI's environment: BuildKit on, the engine the DockerEngine resource names."""
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


def probe(docker_host: str = "") -> str | None:
    """None when BuildKit can build here, else why not (no 20.10+ CLI, an engine that is not
    Linux or too old for it)."""
    if not (DOCKER_CLI.is_file() and os.access(DOCKER_CLI, os.X_OK)):
        return f"no docker CLI at {DOCKER_CLI} (scripts/bootstrap.sh installs Debian's docker.io)"
    try:
        done = subprocess.run([str(DOCKER_CLI), "version", "--format", "{{.Client.Version}}|{{.Server.Os}}|"
                               "{{.Server.APIVersion}}"], capture_output=True, text=True, timeout=30,
                              env=cli_env(docker_host))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{DOCKER_CLI} version failed: {type(exc).__name__}"
    if done.returncode != 0:
        return f"{DOCKER_CLI} version failed: {(done.stderr or done.stdout).strip()[:200]}"
    client, _, rest = done.stdout.strip().partition("|")
    server_os, _, api = rest.partition("|")
    found = tuple(int(p) for p in re.findall(r"\d+", client)[:2])
    if found < MIN_CLIENT:
        return f"{DOCKER_CLI} is version {client or '?'}, BuildKit without buildx needs 20.10 or later"
    if server_os != "linux":
        return f"the engine runs on {server_os or 'an unknown OS'}; its BuildKit builds Linux engines only"
    api_version = tuple(int(p) for p in re.findall(r"\d+", api)[:2])
    if api_version < (1, 39):
        return f"the engine speaks API {api or '?'}, BuildKit needs 1.39 (Docker 18.09) or later"
    return None


class Builder:
    """Which builder one run's builds use, decided once (one probe, one line said), and turned to
    the classic builder for the rest of the run when the engine refuses BuildKit (auto only)."""

    def __init__(self, setting: str, docker_host: str = "", say: Callable[[str], None] | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.setting, self.docker_host, self._say, self._warn = setting, docker_host, say, warn or say
        self._lock = threading.Lock()
        self.reason = None if setting == "classic" else probe(docker_host)
        if setting == "classic":
            self.kind = "classic"
            self._note(f"builder: classic ({BUILDER_ENV}=classic)")
        elif self.reason is None:
            self.kind = "buildkit"
            self._note(f"builder: BuildKit (DOCKER_BUILDKIT=1 {DOCKER_CLI} build)")
        elif setting == "buildkit":
            self.kind = "buildkit"  # every build fails naming why: the operator asked for BuildKit
        else:
            self.kind = "classic"
            self._note(f"builder: classic, BuildKit is not available here: {self.reason}", warn=True)

    @classmethod
    def from_env(cls, docker_host: str = "", say: Callable[[str], None] | None = None,
                 warn: Callable[[str], None] | None = None) -> Builder:
        return cls(builder_setting(), docker_host, say, warn)

    def _note(self, text: str, warn: bool = False) -> None:
        tell = self._warn if warn else self._say
        if tell is not None:
            tell(text)

    def unavailable(self) -> str | None:
        """Why a forced BuildKit cannot build here (None: it can, or it is not forced)."""
        return self.reason if self.kind == "buildkit" else None

    def refused(self, why: str) -> bool:
        """The engine refused a BuildKit build: True when the run goes on with the classic builder
        (said once); False when BuildKit was forced."""
        with self._lock:
            if self.setting == "buildkit":
                return False
            if self.kind == "buildkit":
                self.kind, self.reason = "classic", why
                self._note(f"builder: classic from now on, the engine refused BuildKit: {why}", warn=True)
            return True


class BuildKitRefused(BuildError):
    """The engine or the CLI cannot build with BuildKit: the classic builder may."""


@dataclass
class LayerCounts:
    """Which builder built an image, its steps after FROM and how many came from the layer cache."""

    builder: str
    steps: int = 0
    cached: int = 0


_VERTEX = re.compile(r"^#(\d+) \[(?:(\S+) )?(\d+)/(\d+)\] (.*)$")
_CACHED = re.compile(r"^#(\d+) CACHED\s*$", re.MULTILINE)
_ERROR_VERTEX = re.compile(r"^#(\d+) ERROR:", re.MULTILINE)
_FAILED_STEP = re.compile(r"^(?:ERROR| >) \[(?:(\S+) )?(\d+)/(\d+)\] (.*?):?\s*$", re.MULTILINE)
_DOCKERFILE_LINE = re.compile(r"^Dockerfile:(\d+)\s*$", re.MULTILINE)


def steps(text: str) -> dict[str, tuple[str | None, int, str]]:
    """Vertex id -> (stage, step number, instruction) for every Dockerfile step of the plain
    output ([internal] vertices are not steps)."""
    found: dict[str, tuple[str | None, int, str]] = {}
    for line in text.splitlines():
        match = _VERTEX.match(line)
        if match:
            found.setdefault(match.group(1), (match.group(2), int(match.group(3)), match.group(5)))
    return found


def count_steps(text: str) -> LayerCounts:
    """The steps after FROM (a FROM is never from the cache) and how many BuildKit took from its
    cache (`#N CACHED`)."""
    real = {vid for vid, (_, _, instruction) in steps(text).items() if not instruction.startswith("FROM ")}
    return LayerCounts("buildkit", len(real), len(real & set(_CACHED.findall(text))))


def failure(text: str) -> tuple[tuple[str | None, int, str] | None, int | None, str]:
    """(failed step, Dockerfile line BuildKit named, the error) from the plain output of a failed
    build. Newer BuildKit names the line (`Dockerfile:12`); the engine's 20.10 names the step
    (`#9 ERROR: ...`, ` > [stage-0 5/5] RUN ...:`)."""
    step = None
    by_id = steps(text)
    for vid in _ERROR_VERTEX.findall(text):
        if vid in by_id:
            step = by_id[vid]
            break
    if step is None:
        match = _FAILED_STEP.search(text)
        if match:
            step = (match.group(1), int(match.group(2)), match.group(4))
    named = _DOCKERFILE_LINE.search(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    error = lines[-1] if lines else "no output"
    error = re.sub(r"^(?:ERROR: )?(?:failed to solve: )?", "", error)
    return step, int(named.group(1)) if named else None, same_words(error)


def same_words(error: str) -> str:
    """A failed RUN said as the classic builder says it, so a failure reads the same whichever
    builder ran: `The command '/bin/sh -c X' returned a non-zero code: N`."""
    match = (re.match(r"executor failed running \[(.*)\]: exit code: (\d+)$", error)
             or re.match(r'process "(.*)" did not complete successfully: exit code: (\d+)$', error))
    return f"The command '{match.group(1)}' returned a non-zero code: {match.group(2)}" if match else error


def step_line(dockerfile: Path | None, step: tuple[str | None, int, str] | None) -> int | None:
    """The Dockerfile line of BuildKit's step `[stage N/M] KEYWORD ...`: N counts the stage's
    FROM and its RUN, COPY, ADD and WORKDIR (the instructions that are steps); the stage is
    named by its `AS` name or `stage-K`, or left out when there is one stage."""
    if dockerfile is None or step is None:
        return None
    stage, number, instruction = step
    text, _ = read_dockerfile(dockerfile, str(dockerfile))
    stages: list[tuple[str | None, list[tuple[int, str]]]] = []
    for line, keyword, rest in instructions(text or ""):
        if keyword == "FROM":
            alias = re.search(r"\s+AS\s+(\S+)\s*$", rest, re.IGNORECASE)
            stages.append((alias.group(1).lower() if alias else None, []))
        if stages and keyword in STEP_KEYWORDS:
            stages[-1][1].append((line, keyword))
    if stage is None:
        chosen = stages[-1:] if len(stages) == 1 else []
    else:
        chosen = [s for i, s in enumerate(stages) if stage.lower() in (s[0], f"stage-{i}")]
    if not chosen or not 0 < number <= len(chosen[0][1]):
        return None
    line, keyword = chosen[0][1][number - 1]
    return line if instruction.split(" ", 1)[0].upper() == keyword else None


def command(context: Path, dockerfile: str | None, tag: str, labels: dict[str, str], build_args: dict[str, str],
            iidfile: Path) -> list[str]:
    """The docker build command line (no --network: BuildKit's RUN steps use the default bridge,
    docker0, from where the package caches at the build network's gateway are reached)."""
    # setpriv: the CLI is killed with the process that started it (its own session, below, keeps a
    # terminal's Ctrl-C for the step's cancel), so a `kill -9` of nexus-agent cancels the build too.
    setpriv = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] if Path("/usr/bin/setpriv").is_file() else []
    args = [*setpriv, str(DOCKER_CLI), "build", "--progress=plain", "--iidfile", str(iidfile), "-t", tag]
    if dockerfile:
        args += ["-f", dockerfile if Path(dockerfile).is_absolute() else str(context / dockerfile)]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    return [*args, str(context)]


@dataclass
class Outcome:
    image_id: str | None
    returncode: int
    stopped: str | None  # why the build was stopped (deadline, cancel), else None
    text: str  # the plain output, masked


def run_build(argv: list[str], log: IO[str], masked: Callable[[str], str], *, docker_host: str = "",
              timeout: float | None = None, cancel: Cancellation | None = None) -> Outcome:
    """Run argv (a `command()`), writing its plain output masked to log as it comes. A build still
    running after timeout seconds, or when cancel is thrown, is stopped: SIGINT (the CLI cancels
    its BuildKit session, and the engine the build), SIGKILL after a grace (closing its connection
    cancels it just the same)."""
    iidfile = Path(argv[argv.index("--iidfile") + 1])
    reason: list[str] = []
    lines: list[str] = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=cli_env(docker_host), text=True, errors="replace", start_new_session=True)

    def kill() -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    def stop(why: str) -> None:  # never blocks: a cancel stops every build at once
        if reason or proc.poll() is not None:
            return
        reason.append(why)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        killer = threading.Timer(STOP_GRACE_SECONDS, kill)
        killer.daemon = True
        killer.start()

    timer = threading.Timer(timeout, stop, args=(f"timed out after {timeout:g}s",)) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        with cancel.hook(lambda: stop(f"stopped: the run was {cancel.reason}")) if cancel else contextlib.nullcontext():
            assert proc.stdout is not None
            for line in proc.stdout:
                line = masked(line)
                lines.append(line)
                log.write(line)
            proc.wait()
    except BaseException:
        stop("stopped: the step ended")
        kill()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    image_id = None
    with contextlib.suppress(OSError):
        image_id = iidfile.read_text().strip() or None
    return Outcome(image_id if proc.returncode == 0 else None, proc.returncode, reason[0] if reason else None,
                   "".join(lines))


def iid_path(log_path: Path) -> Path:
    """A fresh iidfile beside the log (the CLI writes the image id there)."""
    handle, name = tempfile.mkstemp(prefix=".iid-", dir=log_path.parent)
    os.close(handle)
    os.unlink(name)
    return Path(name)
