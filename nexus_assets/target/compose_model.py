"""Compose as the source of truth for builds: which compose file is the stack, and what each of
its services builds (context, Dockerfile, build args with `${VAR}` interpolation from `.env`).

The YAML reading and the resolution of a `build:` against the repository are shared with
discovery (discovery/compose.py imports them from here), so both refuse the same contexts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nexus_assets.core.textfiles import inside, problem, read_text, rel_path
from nexus_assets.target.secrets import judge_secrets
from nexus_assets.target.secrets_rule import SecretRule, secret_build_arg_rules

COMPOSE_NAME_RE = re.compile(r"^(docker-)?compose([.-][\w.-]*)?\.ya?ml$")
STACK_DEFAULTS = ("docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml")
# Compose's interpolation: $$ (a literal $), $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e},
# ${VAR:+a}, ${VAR+a}. Nested defaults are not supported (compose v1 did not either).
_VAR_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


# libyaml's parser where PyYAML was built with it: a 100-service compose file parses ~10x faster.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ComposeLoader(_SafeBase):  # type: ignore[misc]  # PyYAML has no stubs here: its loader is Any
    """PyYAML's SafeLoader (on libyaml's parser where available), except that a value it cannot build (`2001-13-45`, `!!int x`)
    raises a YAMLError with the value's line instead of a bare ValueError; the message names
    only the kind of failure, never the value."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"this {node.tag.rsplit(':', 1)[-1]} value cannot be read ({type(exc).__name__})",
                node.start_mark) from exc


def load_compose_yaml(text: str, shown: str) -> tuple[Any, list[dict[str, Any]]]:
    """The parsed YAML of a compose file, or None and a problem with the line of the error. The
    problem quotes only the parser's words, never the file (which may hold a secret)."""
    try:
        return yaml.load(text, Loader=ComposeLoader), []  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        what = getattr(exc, "problem", None) or "syntax error"
        return None, [problem(shown, mark.line + 1 if mark else None, f"invalid YAML: {what}; file skipped")]
    except RecursionError:
        return None, [problem(shown, None, "invalid YAML: nested too deeply; file skipped")]


def resolve_build(repo: Path, compose: Path, build: Any, *, resolved_repo: Path | None = None) -> dict[str, Any] | None:
    """A compose `build:` resolved against the compose file's folder. A context or Dockerfile
    that resolves outside the repository (links followed) is `refused`: nothing there is looked
    at, built or counted as evidence of a module. resolved_repo: repo.resolve(), from a caller
    resolving many builds."""
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
    outside_repo = not inside(repo, resolved, resolved_root=resolved_repo)
    unresolved = "$" in dockerfile  # `${DOCKERFILE}`: the file cannot be checked, the context can
    refused = outside_repo or (not unresolved and not inside(repo, resolved / dockerfile, resolved_root=resolved_repo))
    return {"context": rel, "remote": False, "unresolved": unresolved,
            "exists": None if refused else resolved.is_dir(), "dockerfile": dockerfile,
            "dockerfile_exists": None if refused or unresolved else (resolved / dockerfile).is_file(),
            "outside_services": outside_repo or not rel.startswith("services/"), "outside_repo": outside_repo,
            "refused": refused}


# --- interpolation --------------------------------------------------------------------------

def read_dotenv(repo: Path, folder: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The `.env` next to the compose file (compose's project folder), read with python-dotenv.
    A `.env` that links outside the repository is not read. Values are secrets: never shown."""
    from dotenv import dotenv_values

    path = folder / ".env"
    shown = rel_path(path, repo)
    if not (path.is_file() or path.is_symlink()):
        return {}, []
    if not inside(repo, path):
        return {}, [problem(shown, None, "link pointing outside the repository; not read, build args "
                                         "from it are blank")]
    if not path.is_file():  # a named pipe would block the read for ever
        return {}, [problem(shown, None, "not a regular file; not read, build args from it are blank")]
    values = dotenv_values(path)
    return {k: v for k, v in values.items() if v is not None}, []


def interpolate(value: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """value with compose's `${VAR}` forms substituted from env; and the names of the variables
    that were needed but unset (`${VAR}` becomes blank, as compose does with a warning;
    `${VAR:?message}` is an error for the caller)."""
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        have = name in env
        set_and_nonempty = have and env[name] != ""
        if op in (":-", "-"):
            return env[name] if (set_and_nonempty if op == ":-" else have) else interpolate(arg, env)[0]
        if op in (":+", "+"):
            return interpolate(arg, env)[0] if (set_and_nonempty if op == ":+" else have) else ""
        if op in (":?", "?"):
            if set_and_nonempty if op == ":?" else have:
                return env[name]
            missing.append(name)
            return ""
        if not have:
            missing.append(name)
        return env.get(name, "")

    return _VAR_RE.sub(sub, value), missing


def _scalar(value: Any) -> str:
    """A YAML scalar as compose passes it on: booleans lower case, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_args(raw: Any, env: dict[str, str], shown: str, service: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Compose `build.args`, a mapping or a list of `K=V` / `K`, interpolated from env. An arg
    with no value takes the variable of that name from env, and is left out when unset (as
    compose does). Problems name the arg, never its value."""
    problems: list[dict[str, Any]] = []
    if raw is None:
        return {}, problems
    items: list[tuple[str, str | None]]
    if isinstance(raw, dict):
        items = [(str(k), None if v is None else _scalar(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = []
        for entry in raw:
            name, eq, given = str(entry).partition("=")
            items.append((name.strip(), given if eq else None))
    else:
        return {}, [problem(shown, None, "`build.args` is neither a mapping nor a list; ignored", service)]
    args: dict[str, str] = {}
    for key, value in items:
        if not key:
            continue
        if value is None:
            if key in env:
                args[key] = env[key]
            continue
        text, missing = interpolate(value, env)
        for name in missing:
            problems.append(problem(shown, None, f"warning: build arg {key} uses ${{{name}}}, which is not set "
                                                 "in .env; it is blank", service))
        args[key] = text
    return args, problems


# --- the stack ------------------------------------------------------------------------------

SECRET_ARG_ADVICE = ("`docker history` would keep its value in the image, so the service is not built; pass it "
                     "at run time (`environment:`) instead of as a build arg")


@dataclass(frozen=True)
class ComposeBuild:
    """One compose service that builds an image from a context inside the repository."""

    name: str
    context: Path  # normalised, links not resolved (a linked folder stays the folder it is)
    dockerfile: Path
    build_args: dict[str, str] = field(default_factory=dict, hash=False)
    compose_file: str = ""
    # Build args that carry a secret: left out of build_args (never sent, hashed or stored); the
    # service is refused at build time, naming them.
    secret_args: tuple[str, ...] = ()
    # (arg, the rule that made it secret), for the refusal to name; never a value.
    secret_arg_rules: tuple[tuple[str, str], ...] = field(default=(), hash=False, compare=False)
    # The build args whose value comes from .env: secrets, masked wherever the build is shown.
    env_args: tuple[str, ...] = ()

    # The image-only services it depends_on (postgres, redis): name, image, environment.
    infrastructure: tuple[dict[str, Any], ...] = field(default=(), hash=False)
    # How compose runs it (environment, env_file, command, ports, healthcheck), as written:
    # target.compose_runtime resolves it when a test starts.
    runtime: Any = field(default=None, hash=False, compare=False)


def env_derived(raw: Any, env: dict[str, str]) -> tuple[str, ...]:
    """The names of compose `build.args` whose value is read from env: a bare `KEY` taken from it,
    or a value that interpolates a variable env sets."""
    if isinstance(raw, dict):
        items = [(str(k), None if v is None else _scalar(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        items = [(k.strip(), v if eq else None) for k, eq, v in (str(e).partition("=") for e in raw)]
    else:
        return ()
    found = []
    for key, value in items:
        names = [key] if value is None else [m.group(2) or m.group(5) for m in _VAR_RE.finditer(value)]
        if any(n in env for n in names if n):
            found.append(key)
    return tuple(sorted(set(found)))


def infrastructure_needs(spec: dict[str, Any], services: dict[str, Any], env: dict[str, str]) -> tuple[dict[str, Any],
                         ...]:
    """The services of `spec`'s depends_on (list or mapping form) that compose runs from an
    `image:` only, each with its image and `environment` (mapping or KEY=VALUE list; values
    interpolated from .env: they may be secrets, so they are never logged)."""
    deps = spec.get("depends_on")
    needs = []
    for dep in (list(deps) if isinstance(deps, (list, dict)) else []):
        other = services.get(dep)
        if not isinstance(other, dict) or other.get("build") is not None or not other.get("image"):
            continue
        raw = other.get("environment") or {}
        pairs = raw.items() if isinstance(raw, dict) else (str(e).partition("=")[::2] for e in raw
                                                          if isinstance(raw, list) and "=" in str(e))
        environment = {str(k): interpolate("" if v is None else str(v), env)[0] for k, v in pairs}
        needs.append({"name": str(dep), "image": interpolate(str(other["image"]), env)[0], "environment": environment})
    return tuple(needs)


def compose_files(repo: Path) -> list[Path]:
    """The compose files at the top of repo, sorted by name."""
    if not repo.is_dir():
        return []
    return sorted((p for p in repo.iterdir() if COMPOSE_NAME_RE.match(p.name) and (p.is_file() or p.is_symlink())),
                  key=lambda p: p.name)


def stack_file(repo: Path, chosen: str | None = None) -> tuple[Path | None, list[dict[str, Any]]]:
    """The compose file that is "the stack to build": `chosen` (NEXUS_COMPOSE_FILE, relative to
    repo), else docker-compose.yml, else the first compose file by name. The others are reported
    as not built from, so a reader knows why a service of `.prod.yml` has no image."""
    found = compose_files(repo)
    notes: list[dict[str, Any]] = []
    path: Path | None
    if chosen:
        path = Path(os.path.normpath(repo / chosen))
        if not inside(repo, path) or not path.is_file():
            return None, [problem(chosen, None, "NEXUS_COMPOSE_FILE names no compose file inside the repository; "
                                                "services are taken from folders only")]
    else:
        names = {p.name: p for p in found}
        path = next((names[n] for n in STACK_DEFAULTS if n in names), found[0] if found else None)
    others = [p.name for p in found if path is None or p.resolve() != path.resolve()]
    if path is not None and others:
        notes.append(problem(rel_path(path, repo), None, f"info: the stack built is {rel_path(path, repo)}; not "
                             f"built from: {', '.join(others)} (set NEXUS_COMPOSE_FILE to pick another)"))
    return path, notes


def compose_builds(repo: Path, chosen: str | None = None, secrets_file: str | None = None,
                   ) -> tuple[list[ComposeBuild], Path | None, list[dict[str, Any]]]:
    """Every service of the stack compose file that builds from inside the repository; the stack
    file; and a problem for every service refused (context or Dockerfile outside the repository,
    remote or unresolvable, missing folder) and every build arg variable not set. secrets_file:
    the operator's (NEXUS_SECRETS_FILE), kept in each service's run settings, read when a test runs."""
    from nexus_assets.target.compose_runtime import runtime_of  # it builds on this module

    path, problems = stack_file(repo, chosen)
    if path is None:
        return [], None, problems
    shown = rel_path(path, repo)
    if not inside(repo, path):
        return [], path, [*problems, problem(shown, None, "link pointing outside the repository; not read")]
    text, probs = read_text(path, shown)
    problems += probs
    data, probs = load_compose_yaml(text or "", shown)
    problems += probs
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        if not probs:
            problems.append(problem(shown, None, "no `services:` mapping; no service is built from it"))
        return [], path, problems
    env, probs = read_dotenv(repo, path.parent)
    problems += probs
    rule = SecretRule.for_repo(repo)  # what is secret here: target.secrets_rule
    secrets = judge_secrets(env.items(), rule=rule)
    found = []
    resolved_repo = repo.resolve()  # once, not twice per service
    for name in sorted(services, key=str):
        spec = services[name] if isinstance(services[name], dict) else {}
        raw = spec.get("build")
        if raw is None:
            continue  # image: only (postgres, redis, a prebuilt service): nothing to build
        name = str(name)
        if isinstance(raw, str):
            raw = interpolate(raw, env)[0]
        elif isinstance(raw, dict):
            raw = {**raw, **{k: interpolate(str(raw[k]), env)[0] for k in ("context", "dockerfile") if raw.get(k)}}
        else:
            problems.append(problem(shown, None, "`build:` is neither a path nor a mapping; not built", name))
            continue
        build = resolve_build(repo, path, raw, resolved_repo=resolved_repo)
        assert build is not None
        if build["refused"] or build["remote"] or build["unresolved"]:
            why = ("resolves outside the repository; refused: nothing is built from outside the repository"
                   if build["refused"] or build["outside_repo"] else "cannot be resolved to a folder of the "
                   "repository; not built")
            what = "dockerfile" if build["refused"] and not build["outside_repo"] else "build context"
            problems.append(problem(shown, None, f"{what} of compose service {name[:60]!r} {why}", name))
            continue
        context = repo / build["context"]
        if not build["exists"]:
            problems.append(problem(shown, None, f"build context {build['context']} of compose service "
                                                 f"{name[:60]!r} is not a folder; not built", name))
            continue
        raw_args = raw.get("args") if isinstance(raw, dict) else None
        args, probs = build_args(raw_args, env, shown, name)
        problems += probs
        secret = secret_build_arg_rules(args, secrets, rule)
        for key, why in secret.items():
            problems.append(problem(shown, None, f"build arg {key} of compose service {name[:60]!r} carries a "
                                    f"secret ({why}): {SECRET_ARG_ADVICE}", name))
        runtime, probs = runtime_of(repo, path, shown, name, spec, secrets_file)
        problems += probs
        found.append(ComposeBuild(name=name, context=context, runtime=runtime,
                                  dockerfile=Path(os.path.normpath(context / build["dockerfile"])),
                                  build_args={k: v for k, v in args.items() if k not in secret}, compose_file=shown,
                                  secret_args=tuple(secret), secret_arg_rules=tuple(secret.items()), env_args=env_derived(raw_args, env),
                                  infrastructure=infrastructure_needs(spec, services, env)))
    return found, path, problems
