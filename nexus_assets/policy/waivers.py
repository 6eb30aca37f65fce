"""Waivers on the record: `[release] waive` of the target's nexus-agent.toml lets a release go out
without a service that fails, naming why, who committed the waiver and until when.

    [release]
    waive = [{ service = "legacy-reports", reason = "health check probes a closed port, ticket OPS-12",
               until = "2027-01-31" }]

A waived service is left out of the release (not pinned, not deployed) and listed as waived in the
manifest, the compliance PDF, the deployment package and the release notes. A waiver is good
through its `until` day; after it, the service blocks the release again, naming the waiver. A
critical module cannot be waived. Who committed it is the author of the commit that added the
entry's line (`git blame`), or "uncommitted"."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import InputError
from nexus_assets.core.git import git_answer
from nexus_assets.target.repo_config import CONFIG_NAME, load_repo_config
from nexus_assets.target.services import refused_services, scan_services

UNCOMMITTED = "uncommitted"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The suffix words a service name carries beside its module's name (auth-service is auth).
_SUFFIXES = ("service", "svc", "srv", "server", "api", "app", "worker", "ms", "microservice")


@dataclass(frozen=True)
class Waiver:
    """One `[release] waive` entry, with who committed it."""

    service: str
    reason: str
    until: str  # YYYY-MM-DD, the last day it holds
    line: int | None  # of nexus-agent.toml
    committed_by: str  # the author of the commit that added the line, or "uncommitted"
    commit: str | None

    def expired(self, today: date) -> bool:
        return today > date.fromisoformat(self.until)

    def where(self) -> str:
        return f"{CONFIG_NAME}{f' line {self.line}' if self.line else ''}"

    def record(self, today: date) -> dict[str, Any]:
        """The manifest's entry (schema: release.report.Waived)."""
        return {**asdict(self), "expired": self.expired(today)}


def by_line(waiver: dict[str, Any]) -> str:
    """Who committed a waiver record, for a sentence: "committed by NAME in SHA12" or "uncommitted"."""
    if not waiver.get("commit"):
        return UNCOMMITTED
    return f"committed by {waiver.get('committed_by')} in {str(waiver['commit'])[:12]}"


def _bad(where: str, what: str) -> InputError:
    return InputError(f"{where}: [release] waive {what}")


def _entry_line(text: str, service: str) -> int | None:
    """The line of nexus-agent.toml naming this waiver's service (`service = "x"`)."""
    pattern = re.compile(r"""\bservice\s*=\s*(["'])""" + re.escape(service) + r"\1")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


def committed_by(repo: Path, line: int | None) -> tuple[str, str | None]:
    """(author, commit) of the commit that added nexus-agent.toml's line, or ("uncommitted", None)
    when the line is not committed (or the repository is not a git checkout)."""
    if line is None:
        return UNCOMMITTED, None
    blamed = git_answer(repo, "blame", "--porcelain", "-L", f"{line},{line}", "--", CONFIG_NAME, timeout=20)
    lines = blamed.splitlines() if blamed else []
    commit = lines[0].split(" ", 1)[0] if lines else ""
    if not commit or set(commit) == {"0"}:  # git blame's mark for a line not committed yet
        return UNCOMMITTED, None
    author = next((entry[len("author "):] for entry in lines if entry.startswith("author ")), "")
    return author or "unknown author", commit


def read_waivers(repo: Path, known: Iterable[str] | None = None) -> list[Waiver]:
    """The waivers of repo's nexus-agent.toml, checked: each names a known service (when known is
    given), gives a reason and an `until` date (YYYY-MM-DD), once per service. Raises InputError,
    one line naming nexus-agent.toml and the entry, on the first that does not."""
    release = load_repo_config(repo).get("release") or {}
    where = f"{repo / CONFIG_NAME}"
    if not isinstance(release, dict):
        raise InputError(f"{where}: release must be a table ([release]), got {release!r}")
    unknown = sorted(set(release) - {"waive"})
    if unknown:
        raise InputError(f"{where}: [release] has no setting {unknown[0]!r}: the settings are waive; fix the name "
                         "or remove the line")
    raw = release.get("waive", [])
    if not isinstance(raw, list):
        raise _bad(where, "must be a list of { service = \"...\", reason = \"...\", until = \"YYYY-MM-DD\" }")
    text = (repo / CONFIG_NAME).read_text(encoding="utf-8") if raw else ""
    names = set(known) if known is not None else None
    found: list[Waiver] = []
    for number, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise _bad(where, f"entry {number} is not a table {{ service = ..., reason = ..., until = ... }}")
        service = entry.get("service")
        if not isinstance(service, str) or not service.strip():
            raise _bad(where, f"entry {number}: no service; name the service to waive")
        line = _entry_line(text, service)
        at = f"{where}{f' line {line}' if line else ''}"
        unknown = sorted(set(entry) - {"service", "reason", "until"})
        if unknown:
            raise _bad(at, f"entry for {service!r}: unknown key {', '.join(unknown)} (service, reason, until)")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise _bad(at, f"entry for {service!r}: missing reason; say why the release may go without it")
        until = entry.get("until")
        until = until.isoformat() if isinstance(until, date) else until  # TOML's bare date 2027-01-31
        if not isinstance(until, str) or not _DATE_RE.match(until) or not _is_date(until):
            raise _bad(at, f"entry for {service!r}: until must be a date YYYY-MM-DD (the last day the waiver holds)")
        if names is not None and service not in names:
            raise _bad(at, f"entry for {service!r}: no such service in the repository (services: "
                           f"{', '.join(sorted(names)[:8])}{' ...' if len(names) > 8 else ''})")
        if any(w.service == service for w in found):
            raise _bad(at, f"entry for {service!r}: the service is waived twice; keep one entry")
        by, commit = committed_by(repo, line)
        found.append(Waiver(service=service, reason=reason.strip(), until=until, line=line, committed_by=by,
                            commit=commit))
    return found


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _forms(name: str) -> set[str]:
    """The name normalized, and without one suffix word (auth-service -> auth)."""
    norm = re.sub(r"-+", "-", re.sub(r"[_.\s]+", "-", name.strip().lower())).strip("-")
    tokens = norm.split("-")
    return {norm} | ({"-".join(tokens[:-1])} if len(tokens) > 1 and tokens[-1] in _SUFFIXES else set())


def configured_critical(repo: Path) -> dict[str, str]:
    """{name form: critical module} for `[parity] critical` and the aliases set for those modules."""
    parity = load_repo_config(repo).get("parity") or {}
    listed = parity.get("critical") or []
    listed = [listed] if isinstance(listed, str) else listed if isinstance(listed, list) else []
    aliases = parity.get("aliases") or {}
    aliases = aliases if isinstance(aliases, dict) else {}
    forms: dict[str, str] = {}
    for module in (str(m) for m in listed):
        for form in _forms(module):
            forms.setdefault(form, module)
        extra = aliases.get(module) or []
        for alias in [extra] if isinstance(extra, str) else extra if isinstance(extra, list) else []:
            for form in _forms(str(alias)):
                forms.setdefault(form, module)
    return forms


def critical_waiver(waiver: Waiver, other_names: Iterable[str], critical: dict[str, str]) -> str | None:
    """The critical module the waived service is, by any of its names, or None."""
    for name in (waiver.service, *other_names):
        for form in _forms(name):
            if form in critical:
                return critical[form]
    return None


def refuse_critical(waivers: list[Waiver], names: Mapping[str, Iterable[str]], critical: dict[str, str],
                    repo: Path) -> None:
    """InputError naming the first waiver of a critical module (names: service -> its other names)."""
    for waiver in waivers:
        module = critical_waiver(waiver, names.get(waiver.service, ()), critical)
        if module is not None:
            raise InputError(f"{repo / waiver.where()}: [release] waive {waiver.service!r}: it is the critical module "
                             f"{module!r}, which cannot be waived; fix it, or take it out of [parity] critical")


def check_waivers(repo: Path, compose_file: str | None = None) -> list[Waiver]:
    """The repository's waivers, each checked against its services (those refused included) and
    the configured critical modules; InputError, one line naming nexus-agent.toml, otherwise.
    Nothing is scanned when the repository waives nothing."""
    release = load_repo_config(repo).get("release") or {}
    if not (isinstance(release, dict) and release.get("waive")):
        return read_waivers(repo, known=())  # no entries: checks only the section's shape
    refused = refused_services(repo, compose_file)
    services = scan_services(repo, compose_file)[0]
    names: dict[str, list[str]] = {s.name: [n for n in (s.compose_name, Path(s.folder or s.name).name) if n]
                                   for s in services}
    for refusal in refused:
        names.setdefault(refusal.service, [Path(refusal.folder or refusal.service).name])
    waivers = read_waivers(repo, known=names)
    refuse_critical(waivers, names, configured_critical(repo), repo)
    return waivers
