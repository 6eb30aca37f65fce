"""How compose runs a service: its `environment`, `env_file`, `command`, `entrypoint`, the ports it
publishes or exposes, and its `healthcheck`, so that the unit and integration tests run the
image as compose would.

Two halves, on purpose. `runtime_of` reads the compose file's text when the services are
scanned and keeps it as written (`${VAR}` templates, never a value of `.env`), so the Service
model holds no secret. `resolve` runs when a test starts: it reads the repository's `.env` (the
compose file's folder) and the operator's secrets file (NEXUS_SECRETS_FILE), interpolates, and
returns the values for the test container only; what it records for reports and metadata
(`RunSettings.record`) names files, services and keys, never a value."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import NexusError
from nexus_assets.core.textfiles import inside, problem, rel_path
from nexus_assets.target.compose_model import interpolate, read_dotenv
from nexus_assets.target.repo_config import load_repo_config
from nexus_assets.target.secrets import secret_values
from nexus_assets.target.secrets_rule import SecretRule

SECRETS_FILE_ENV = "NEXUS_SECRETS_FILE"
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNIT_NS = {"h": 3600e9, "m": 60e9, "s": 1e9, "ms": 1e6, "us": 1e3, "µs": 1e3, "ns": 1.0}
_REF_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_PORT_RE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


@dataclass(frozen=True)
class ComposeRuntime:
    """A compose service's run-time settings as written in its compose file (templates)."""

    compose_file: str  # relative to the repository
    service: str
    repo: Path
    project_dir: Path  # the compose file's folder: its `.env` fills `${VAR}`
    environment: tuple[tuple[str, str | None], ...] = ()  # None: the variable of that name, if set
    env_files: tuple[tuple[str, bool], ...] = ()  # (path as written, required)
    command: Any = None  # a string (split as compose splits it) or a list, None: the image's
    entrypoint: Any = None
    ports: tuple[str, ...] = ()  # `ports:` and `expose:` entries, as written
    healthcheck: dict[str, Any] | None = field(default=None, hash=False)
    secrets_file: str | None = None  # the operator's secrets file (NEXUS_SECRETS_FILE), read at run time

    def fingerprint(self) -> str:
        """A hash of what is written (no value of `.env` or of the secrets file): a change to
        the compose service's run settings makes its image's tests run again."""
        payload = json.dumps([self.compose_file, self.service, self.environment, self.env_files, self.command,
                              self.entrypoint, self.ports, self.healthcheck], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class RunSettings:
    """What a test container gets. `environment` values go to the engine only; `secrets` are
    masked in everything the stage writes; `record` is what reports and metadata say."""

    environment: dict[str, str] = field(default_factory=dict)
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    healthcheck: dict[str, Any] | None = None  # the engine's form: {"test": [...], "interval": ns, ...}; {"test": ["NONE"]}
    ports: list[int] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # an unusable setting (a healthcheck that cannot be read, the secrets file gone)

    def container_args(self) -> dict[str, Any]:
        """Keyword arguments for containers.create."""
        args: dict[str, Any] = {"environment": dict(self.environment)}
        if self.command is not None:
            args["command"] = self.command
        if self.entrypoint is not None:
            args["entrypoint"] = self.entrypoint
        if self.healthcheck is not None:
            args["healthcheck"] = self.healthcheck
        return args


def _pairs(raw: Any) -> list[tuple[str, str | None]] | None:
    """compose `environment:` as (key, template or None), mapping or `K=V` / `K` list."""
    if isinstance(raw, dict):
        return [(str(k), None if v is None else _scalar(v)) for k, v in raw.items()]
    if isinstance(raw, list):
        out: list[tuple[str, str | None]] = []
        for entry in raw:
            key, eq, value = str(entry).partition("=")
            out.append((key.strip(), value if eq else None))
        return out
    return None


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def runtime_of(repo: Path, compose: Path, shown: str, name: str, spec: dict[str, Any],
               secrets_file: str | None = None) -> tuple[ComposeRuntime, list[dict[str, Any]]]:
    """The run settings of compose service `name` (spec: its mapping), and a problem per
    setting that cannot be read (named by file, service and key; never a value)."""
    problems: list[dict[str, Any]] = []
    environment = _pairs(spec.get("environment") or {})
    if environment is None:
        problems.append(problem(shown, None, "`environment` is neither a mapping nor a list; not passed", name))
        environment = []
    files: list[tuple[str, bool]] = []
    raw_files = spec.get("env_file")
    for entry in (raw_files if isinstance(raw_files, list) else [raw_files] if raw_files else []):
        if isinstance(entry, dict) and entry.get("path"):
            files.append((str(entry["path"]), entry.get("required", True) is not False))
        elif isinstance(entry, str):
            files.append((entry, True))
        else:
            problems.append(problem(shown, None, "an `env_file` entry is neither a path nor {path, required}; "
                                                 "ignored", name))
    ports: list[str] = []
    for key in ("ports", "expose"):
        entries = spec.get(key)
        for p in entries if isinstance(entries, list) else []:  # long syntax: {target, published, protocol}
            if isinstance(p, dict):
                ports += [f"{p['target']}/{p.get('protocol') or 'tcp'}"] if p.get("target") is not None else []
            else:
                ports.append(str(p))
    health = spec.get("healthcheck")
    if health is not None and not isinstance(health, dict):
        problems.append(problem(shown, None, "`healthcheck` is not a mapping; the image's is used", name))
        health = None
    for key in ("command", "entrypoint"):
        if spec.get(key) is not None and not isinstance(spec.get(key), (str, list)):
            problems.append(problem(shown, None, f"`{key}` is neither a string nor a list; the image's is used",
                                    name))
    return ComposeRuntime(
        compose_file=shown, service=name, repo=repo, project_dir=compose.parent,
        environment=tuple((k, v) for k, v in environment if k), env_files=tuple(files),
        command=_argv_spec(spec.get("command")), entrypoint=_argv_spec(spec.get("entrypoint")),
        ports=tuple(ports), healthcheck=health, secrets_file=secrets_file), problems


def _argv_spec(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_scalar(v) for v in value)
    return value if isinstance(value, str) else None


def _argv(value: Any, env: dict[str, str]) -> list[str] | None:
    """A command or entrypoint: a list interpolated item by item, a string interpolated and then
    split as compose splits it (shell words, no shell)."""
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(interpolate(value, env)[0])
    return [interpolate(v, env)[0] for v in value]


def duration_ns(value: Any) -> int | None:
    """A compose duration (`1m30s`, `500ms`, `10s`; a bare number is seconds) in nanoseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    text = str(value).strip()
    if not text or _DURATION_RE.sub("", text):
        raise ValueError(f"{text[:20]!r} is not a duration such as 30s or 1m30s")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in _DURATION_RE.findall(text)))


def engine_healthcheck(raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """compose's `healthcheck` in the engine's form. `disable: true` (or test NONE) turns the
    image's off, as compose does."""
    if raw.get("disable") is True:
        return {"test": ["NONE"]}
    test = raw.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", interpolate(test, env)[0]]
    elif isinstance(test, list) and test:
        test = [interpolate(_scalar(t), env)[0] for t in test]
    else:
        raise ValueError("`healthcheck.test` is neither a string nor a list")
    out: dict[str, Any] = {"test": test}
    for key in ("interval", "timeout", "start_period"):  # start_interval: not in this engine's API (20.10)
        if raw.get(key) is not None:
            out[key] = duration_ns(interpolate(_scalar(raw[key]), env)[0])
    if raw.get("retries") is not None:
        out["retries"] = int(interpolate(_scalar(raw["retries"]), env)[0])
    return out


def container_ports(entries: tuple[str, ...], env: dict[str, str]) -> list[int]:
    """The TCP container ports of `ports:` (`[ip:][host:]container[/proto]`, long syntax's
    target) and `expose:` entries, ranges expanded (at most 100 per entry)."""
    found: list[int] = []
    for entry in entries:
        text = interpolate(entry, env)[0].strip().strip("\"'")
        m = _PORT_RE.match(text.rsplit(":", 1)[-1])  # `[ip:][host:]container[/proto]`
        if not m or (m.group(3) or "tcp").lower() != "tcp":
            continue
        low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        found += [p for p in range(low, min(high, low + 100) + 1) if 0 < p <= 65535 and p not in found]
    return found


def _read_env_file(runtime: ComposeRuntime, path: Path, shown: str) -> tuple[dict[str, str] | None, str | None]:
    from dotenv import dotenv_values

    if not inside(runtime.repo, path):
        return None, f"env_file {shown} of compose service {runtime.service} ({runtime.compose_file}) resolves " \
                     "outside the repository; not read"
    if not path.is_file():
        return None, None
    # interpolate=False: python-dotenv would fill ${VAR} from this process's environment (the
    # registry password, ...); compose_model.interpolate fills it from .env alone below.
    return {k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None}, None


def _operator_secrets(runtime: ComposeRuntime) -> tuple[dict[str, str], str | None]:
    """The operator's secrets file (dotenv format): every value is a secret."""
    from dotenv import dotenv_values

    if not runtime.secrets_file:
        return {}, None
    path = Path(runtime.secrets_file).expanduser()
    if not path.is_file():
        return {}, f"{SECRETS_FILE_ENV} names {path}, which is not a readable file"
    try:
        values = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        return {}, f"{SECRETS_FILE_ENV} file {path} cannot be read ({type(exc).__name__})"
    return {k: v for k, v in values.items() if v is not None}, None


def _masking_rule(repo: Path) -> SecretRule | None:
    """What to mask in a test's output errs on masking: every value the key-and-shape rule
    counts as a secret, plus those of the keys nexus-agent.toml's `[secrets] secret` names (its
    `public` names and committed configuration do not unmask anything here)."""
    try:
        names = load_repo_config(repo)["secrets"]
    except NexusError:  # reported by discovery; the key-and-shape rule still masks
        return None
    return SecretRule(secret_keys=list(names.get("secret") or []))


def resolve(runtime: ComposeRuntime | None, infrastructure: tuple[dict[str, Any], ...] = ()) -> RunSettings:
    """The settings a test container gets, read now: `${VAR}` from the compose file's `.env`,
    then the operator's secrets file (which wins); `env_file` entries in order, then
    `environment` (which wins), as compose merges them. Never raises for bad input: an unusable
    setting is an `error` naming the file, service and key."""
    infra_pairs = [(k, v) for need in infrastructure for k, v in (need.get("environment") or {}).items()]
    if runtime is None:
        return RunSettings(secrets=secret_values(infra_pairs))
    dotenv, problems = read_dotenv(runtime.repo, runtime.project_dir)
    operator, error = _operator_secrets(runtime)
    env = {**dotenv, **operator}
    container: dict[str, str] = {}
    used_files: list[str] = []
    notes = [p["message"] for p in problems]
    for written, required in runtime.env_files:
        path = Path(os.path.normpath(runtime.project_dir / interpolate(written, env)[0]))
        shown = rel_path(path, runtime.repo)
        values, refused = _read_env_file(runtime, path, shown)
        if values is None:  # the service may still start (its secrets file may set what it needs)
            notes.append(refused or f"env_file {shown} of compose service {runtime.service} "
                                    f"({runtime.compose_file}) does not exist here: not passed"
                                    + (" (compose would refuse to start it)" if required else ""))
            continue
        used_files.append(shown)
        for key, value in values.items():
            container[key] = interpolate(value, {**env, **values})[0]
    for key, template in runtime.environment:
        if template is None:
            if key in env:
                container[key] = env[key]
            continue
        container[key] = interpolate(template, env)[0]
    run = RunSettings(environment=container, command=_argv(runtime.command, env),
                      entrypoint=_argv(runtime.entrypoint, env), ports=container_ports(runtime.ports, env))
    if runtime.healthcheck is not None:
        try:
            run.healthcheck = engine_healthcheck(runtime.healthcheck, env)
        except (ValueError, TypeError) as exc:
            error = error or (f"healthcheck of compose service {runtime.service} ({runtime.compose_file}) "
                              f"cannot be used: {exc}")
    run.secrets = secret_values([*container.items(), *infra_pairs], extra=operator.values(),
                                rule=_masking_rule(runtime.repo))
    run.error = error
    referenced = {k for k, t in runtime.environment if t is None} | {
        name for _, t in runtime.environment if t for name in _REF_RE.findall(t)}
    run.record = {
        "compose_file": runtime.compose_file, "compose_service": runtime.service,
        "environment_keys": sorted(container), "env_files": used_files,
        # the variables the service's environment takes from the operator's secrets file (names only)
        "from_secrets_file": sorted(referenced & set(operator)),
        "command": run.command is not None, "entrypoint": run.entrypoint is not None,
        "ports": run.ports, "healthcheck": "compose" if run.healthcheck is not None else "image",
        **({"notes": notes} if notes else {}),
    }
    return run
