"""Step D of the operator guide: each missing canonical module becomes services/<name>/.

A scaffolded service is a working starting point, not the module: a Node.js or Python
server (standard library only, so it builds offline) with /health, / and /openapi.json,
a Dockerfile that runs as a numeric non-root user with a HEALTHCHECK, an OpenAPI 3 spec,
unit tests that run with nothing but the base image, and a README.

Templates live in ``templates/<language>/`` next to this module. Their files carry the
placeholders ``{{SERVICE_NAME}}``, ``{{PORT}}`` and ``{{DESCRIPTION}}``, replaced with
plain ``str.replace``: the templates stay valid JS, Python and JSON before and after.

Rules:

- an existing ``services/<name>`` (folder, file or symlink) is never touched;
- a name that is not a valid service name (path traversal, spaces, shell metacharacters,
  upper case) is refused, and nothing is ever written outside ``<workdir>/services/``;
- a module whose name contains ``pmmg`` is never scaffolded: PMMG is browser-only;
- each service is written into a hidden temporary folder next to its target and renamed
  into place, so a crash leaves no half-written service behind; scaffold_missing is all or
  nothing: bounded by ``[scaffold] max_per_run`` and planned before anything is written, and a
  failure removes every folder it made.

Plain functions, no Dagster: the scaffold asset calls them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import InputError, NexusError, TargetRepoError
from nexus_assets.core.fileio import naming
from nexus_assets.policy.pmmg import REASON_BROWSER_ONLY, is_pmmg
from nexus_assets.target.services import SCAFFOLD_MARKER, valid_service_name

TEMPLATES_DIR = Path(__file__).parent / "templates"
LANGUAGES = ("node", "python")
# Scaffolded services get ports apart from the hand-written ones (3000-3099, 8000-8099).
PORT_RANGES = {"node": (3100, 3999), "python": (8100, 8999)}

# Left in every scaffolded folder so later runs (and auditors) can tell a scaffold from a
# service the repository really has: parity reports it as scaffolded, not as present.

REASON_CREATED = "created"
REASON_EXISTS = "exists: left untouched"
REASON_PMMG = REASON_BROWSER_ONLY
REASON_INVALID = "invalid service name"

# Left out of every scaffold even if someone ran the template's tests in place.
_SKIP_PARTS = {"__pycache__", "node_modules", ".pytest_cache"}
# Characters that would need escaping in a Dockerfile LABEL, a docstring or JSON, or could
# smuggle in a placeholder; a description is prose, it does not need them.
_DESCRIPTION_DROP = re.compile(r"[\\$`{}]")
_DESCRIPTION_MAX = 200


@dataclass(frozen=True)
class ScaffoldResult:
    """What scaffolding one module did, and why. port is 0 when nothing was created."""

    name: str
    language: str
    path: Path
    port: int
    created: bool
    reason: str


def _check_config(scaffold_config: dict[str, Any]) -> tuple[list[str], str]:
    """The python patterns and default language, or an InputError naming the setting."""
    patterns = scaffold_config.get("python", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise InputError("nexus-agent.toml [scaffold] python must be a list of glob patterns (strings)")
    default = scaffold_config.get("default_language", "node")
    if default not in LANGUAGES:
        raise InputError(
            f"nexus-agent.toml [scaffold] default_language must be one of {', '.join(LANGUAGES)}, not {default!r}"
        )
    return patterns, default


def language_for(module: str, scaffold_config: dict[str, Any]) -> str:
    """Return "python" when the module name matches one of the config's python glob
    patterns (the guide's rule: analytics, recommendation, AI/ML, transcoding), else the
    config's default language."""
    patterns, default = _check_config(scaffold_config)
    name = module.lower()
    if any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in patterns):
        return "python"
    return default


def port_for(module: str, language: str) -> int:
    """A port derived from the name alone (CRC-32), so it is the same on every run and
    every machine: 3100-3999 for Node.js, 8100-8999 for Python."""
    if language not in PORT_RANGES:
        raise InputError(f"no port range for language {language!r}: use one of {', '.join(PORT_RANGES)}")
    low, high = PORT_RANGES[language]
    return low + zlib.crc32(module.encode("utf-8", "surrogatepass")) % (high - low + 1)


def _next_free_port(port: int, language: str, used: set[int], source: str = "the synopsis") -> int:
    """port, or the next one up in the language's range (wrapping) that is not in used."""
    low, high = PORT_RANGES[language]
    span = high - low + 1
    for step in range(span):
        candidate = low + (port - low + step) % span
        if candidate not in used:
            return candidate
    raise InputError(f"{source} lists more than {span} {language} modules to scaffold, and the {language} "
                     f"scaffold ports ({low}-{high}) hold {span}; nothing scaffolded: check the synopsis's "
                     "Required Modules section")


def clean_description(description: str, module: str) -> str:
    """One printable line, safe inside a Dockerfile LABEL, a docstring and JSON."""
    text = " ".join(str(description or "").split())
    text = "".join(ch for ch in text if ch.isprintable())
    text = _DESCRIPTION_DROP.sub("", text.replace('"', "'"))
    text = text[:_DESCRIPTION_MAX].strip()
    return text or f"{module}: a module of the Nexus COS platform"


def render(text: str, name: str, port: int, description: str, json_file: bool) -> str:
    """Fill one template file's placeholders. DESCRIPTION goes last, so nothing inside
    it is ever read as a placeholder."""
    value = json.dumps(description, ensure_ascii=False)[1:-1] if json_file else description
    return (
        text.replace("{{SERVICE_NAME}}", name)
        .replace("{{PORT}}", str(port))
        .replace("{{DESCRIPTION}}", value)
    )


def template_files(language: str) -> list[Path]:
    """Every file of the language's template, relative to its folder, sorted."""
    root = TEMPLATES_DIR / language
    if not root.is_dir():
        raise NexusError(f"scaffold template folder {root} is missing: reinstall nexus-assets")
    files = [
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and not _SKIP_PARTS.intersection(path.relative_to(root).parts)
        and path.suffix != ".pyc"
    ]
    return sorted(files)


def _write_tree(language: str, dest: Path, name: str, port: int, description: str) -> None:
    root = TEMPLATES_DIR / language
    for relative in template_files(language):
        text = (root / relative).read_text(encoding="utf-8")
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        # Explicit modes: the image runs as user 10001 and must read what COPY put there,
        # whatever the umask of the process that scaffolded it.
        os.chmod(target.parent, 0o755)
        target.write_text(render(text, name, port, description, relative.suffix == ".json"), encoding="utf-8")
        os.chmod(target, 0o644)


def _write_service(dest: Path, module: str, language: str, port: int, description: str) -> None:
    """The template of language filled in for module in dest (a new folder), with its marker."""
    with naming(dest):  # a full disk names the folder
        dest.mkdir(exist_ok=True)
        os.chmod(dest, 0o755)
        _write_tree(language, dest, module, port, clean_description(description, module))
        marker = {"module": module, "language": language, "template": f"nexus_assets/templates/{language}"}
        (dest / SCAFFOLD_MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(dest / SCAFFOLD_MARKER, 0o644)


def _services_dir(workdir: Path) -> Path:
    if not workdir.is_dir():
        raise TargetRepoError(f"working copy {workdir} does not exist: prepare the workspace (step A) first")
    services = workdir / "services"
    services.mkdir(exist_ok=True)
    return services


def _not_created(services: Path, module: str, language: str) -> ScaffoldResult | None:
    """Why module is not to be created (PMMG, not a valid service name, already there), or None."""
    if is_pmmg(module):
        return ScaffoldResult(module, language, services, 0, False, REASON_PMMG)
    if not valid_service_name(module):
        return ScaffoldResult(module, language, services, 0, False, f"{REASON_INVALID}: {module!r}")
    target = services / module
    # valid_service_name already excludes separators and "..": this guards the invariant.
    if target.parent.resolve() != services.resolve() or target.name != module:
        return ScaffoldResult(module, language, services, 0, False, f"{REASON_INVALID}: {module!r}")
    if target.exists() or target.is_symlink():
        return ScaffoldResult(module, language, target, 0, False, REASON_EXISTS)
    return None


def scaffold_service(
    workdir: Path,
    module: str,
    description: str,
    scaffold_config: dict[str, Any],
    port: int | None = None,
) -> ScaffoldResult:
    """Create ``<workdir>/services/<module>/`` from the template of its language.

    Returns created=False with the reason when the module is PMMG, its name is not a valid
    service name, or the folder already exists (which is then left exactly as it was).
    ``port`` overrides the name-derived port (scaffold_missing uses it to avoid clashes).
    """
    workdir = Path(workdir)
    language = language_for(module, scaffold_config)
    services = _services_dir(workdir)
    refused = _not_created(services, module, language)
    if refused is not None:
        return refused
    target = services / module
    chosen = port if port is not None else port_for(module, language)
    if not 1 <= chosen <= 65535:
        raise InputError(f"scaffold port for {module} must be 1-65535, not {chosen}")

    # Hidden (leading dot) so service discovery never mistakes it for a service.
    tmp = Path(tempfile.mkdtemp(prefix=f".scaffold-{module}-", dir=services))
    try:
        _write_service(tmp, module, language, chosen, description)
        if target.exists() or target.is_symlink():  # appeared while we were writing
            shutil.rmtree(tmp)
            return ScaffoldResult(module, language, target, 0, False, REASON_EXISTS)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ScaffoldResult(module, language, target, chosen, True, REASON_CREATED)


def scaffold_missing(
    workdir: Path,
    modules: list[tuple[str, str]],
    scaffold_config: dict[str, Any],
    source: str = "the synopsis",
) -> list[ScaffoldResult]:
    """Scaffold each (name, description) pair, in order, one result per pair.

    Ports start from port_for(); when two new services of one run would share a port,
    the later one takes the next free port in its range, so a compose file can publish
    them all. Same input, same ports.

    All or nothing: every new folder is planned (language, port) and counted against the
    config's max_per_run (nexus-agent.toml [scaffold]; absent: no limit) before anything is
    written; they are written into one hidden staging folder and moved into place at the end,
    and a failure anywhere removes what this call moved, so the working copy is as it was.
    source names where the modules come from (the synopsis) in the errors.
    """
    _check_config(scaffold_config)
    services = _services_dir(workdir)
    results: list[ScaffoldResult | None] = []
    new: list[tuple[int, str, str, str]] = []  # (index, name, description, language)
    names: set[str] = set()
    for name, description in modules:
        language = language_for(name, scaffold_config)
        refused = _not_created(services, name, language)
        if refused is None and name in names:  # named twice: made once
            refused = ScaffoldResult(name, language, services / name, 0, False, REASON_EXISTS)
        if refused is None:
            new.append((len(results), name, description, language))
            names.add(name)
        results.append(refused)
    limit = scaffold_config.get("max_per_run")
    if limit is not None and len(new) > limit:
        raise InputError(f"{source} lists {len(new)} modules the repository does not have, more than "
                         f"nexus-agent.toml [scaffold] max_per_run = {limit} scaffolded in one run; nothing "
                         "scaffolded: check the synopsis's Required Modules section, or raise max_per_run")
    used: set[int] = set()
    planned = []  # (index, name, description, language, port)
    for index, name, description, language in new:
        port = _next_free_port(port_for(name, language), language, used, source)
        used.add(port)
        planned.append((index, name, description, language, port))
    moved: list[Path] = []
    staging = Path(tempfile.mkdtemp(prefix=".scaffold-run-", dir=services)) if planned else None
    try:
        for _, name, description, language, port in planned:
            # staging is made whenever planned is not empty
            _write_service(staging / name, name, language, port, description)  # type: ignore[operator]
        for index, name, _, language, port in planned:
            target = services / name
            if target.exists() or target.is_symlink():  # appeared while we were writing: never touched
                results[index] = ScaffoldResult(name, language, target, 0, False, REASON_EXISTS)
                continue
            os.rename(staging / name, target)  # type: ignore[operator]  # staging: as above
            moved.append(target)
            results[index] = ScaffoldResult(name, language, target, port, True, REASON_CREATED)
    except BaseException:
        for target in moved:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return [r for r in results if r is not None]
