"""Step C of the guide: canonical modules (the synopsis) against what discovery found.

Evidence comes from four sources: service folders (`folder`), compose services in every
compose file (`compose`), containers of the local engine (`container`) and the VPS discovery
archive (`archive`: docker_ps.json entries and compose_dump.txt services). A candidate name
matches a module by one of these rules, strongest first:

1. ``exact``: the candidate is the module name, character for character.
2. ``normalized``: both names are lowercased, ``_``/``.``/spaces become ``-``, then affix tokens
   are stripped: suffixes ``service svc srv server api app worker ms microservice`` and a trailing
   replica number, and (candidates only) prefixes ``nexus cos nexuscos n3xus``. ``auth-service``,
   ``Auth_Svc`` and ``nexus-cos-auth-1`` all become ``auth``. A strip never leaves only generic
   words, and a module never strips to another canonical name (``analytics-worker`` does not
   become ``analytics``).
3. ``alias``: a name listed for the module under ``[parity] aliases`` in the repository's
   ``nexus-agent.toml``, compared the same normalized way.
4. ``family``: a wildcard module (``puabo-nuki-*``) matches names of that shape whose wildcard
   part holds at least one non-generic token.

Names are compared as whole ``-`` tokens, never as substrings, so ``ai`` is not found in
``email-worker`` nor ``auth`` in ``author-service``; a candidate made only of generic words
(``app``, ``api``, ``service``, ``worker``, ``server``, ``web``, ``backend``, ``frontend``, ...) is no
evidence unless it is literally a module's name or a multi-word alias the operator configured. Each candidate counts only for the module(s)
it matches by its strongest rule, so an exact match elsewhere always wins.

Status of a module:

- ``present``: strong evidence: a service folder with a Dockerfile, a compose service whose build
  context and Dockerfile exist, or a running container on the local engine;
- ``partial``: only weak evidence: a folder without Dockerfile, a compose entry with an image only
  or a missing/remote build context, a stopped local container, or only the VPS archive;
  a family with fewer strong members than its declared count;
- ``missing``: no evidence at all. A compose service whose build context or Dockerfile resolves
  outside the repository (``refused`` by discovery) is no evidence of anything.

A module is critical when `[parity] critical` of ``nexus-agent.toml`` names it (default: the
guide's set backend-api, auth, users, streaming-engine, puabo-blac-financing, ott-mini,
nexus-stream) or the synopsis marks it ``(mandatory)``.

``parity_percent`` = present / canonical × 100 (one decimal): partial modules do not count,
because an auditor's parity means "builds from this repository". ``coverage_percent`` counts
present + partial. A family counts as one module.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from typing import Any

from nexus_assets.parity.synopsis import CanonicalModule, Synopsis
from nexus_assets.policy.pmmg import is_pmmg
from nexus_assets.policy.scaffolding import modules_to_scaffold
from nexus_assets.target.repo_config import DEFAULTS
from nexus_assets.target.services import valid_service_name

GENERIC = frozenset({"app", "api", "service", "services", "svc", "srv", "worker", "server", "web",
                     "backend", "frontend", "ms", "microservice", "main", "core", "default", "base"})
SUFFIXES = frozenset({"service", "svc", "srv", "server", "api", "app", "worker", "ms", "microservice"})
PREFIXES = frozenset({"nexus", "cos", "nexuscos", "n3xus"})
SOURCES = ("folder", "compose", "container", "archive")


def normalize(name: str) -> str:
    """Lowercase, `_`/`.`/space to `-`, no repeated or edge dashes."""
    return re.sub(r"-+", "-", re.sub(r"[_.\s]+", "-", name.strip().lower())).strip("-")


def _generic_only(tokens: list[str]) -> bool:
    return all(t in GENERIC or t.isdigit() for t in tokens)


def name_variants(name: str, *, strip_prefixes: bool = True) -> set[str]:
    """The normalized name and every form left by stripping affix tokens, none generic-only."""
    start = normalize(name).split("-")
    seen, todo = {"-".join(start)}, [start]
    while todo:
        tokens = todo.pop()
        shorter = []
        if len(tokens) > 1 and (tokens[-1] in SUFFIXES or tokens[-1].isdigit()):
            shorter.append(tokens[:-1])
        if strip_prefixes and len(tokens) > 1 and tokens[0] in PREFIXES:
            shorter.append(tokens[1:])
        for cut in shorter:
            joined = "-".join(cut)
            if not _generic_only(cut) and joined not in seen:
                seen.add(joined)
                todo.append(cut)
    return seen


def _family_regex(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in normalize(pattern.replace("*", "\0")).split("\0")]
    return re.compile("^" + "([a-z0-9][a-z0-9-]*)".join(parts) + "$")


class _Matcher:
    """Every module's match keys, built once per report."""

    def __init__(self, modules: list[CanonicalModule], aliases: dict[str, list[str]]):
        canonical = {normalize(m.name) for m in modules}
        self.modules = modules
        self.keys: dict[str, set[str]] = {}
        self.families: dict[str, re.Pattern[str]] = {}
        for m in modules:
            if m.family:
                self.families[m.name] = _family_regex(m.name)
                continue
            own = normalize(m.name)
            self.keys[m.name] = {own} | {v for v in name_variants(m.name, strip_prefixes=False)
                                          if v not in canonical}
        self.aliases = {m: {normalize(a) for a in names} for m, names in aliases.items()}

    def match(self, candidate: str) -> tuple[str, list[str], str | None]:
        """(rule, module names, family member) by the candidate's strongest rule; rule "" if none."""
        norm = normalize(candidate)
        if not norm or not valid_service_name(norm):
            return "", [], None
        exact = [m.name for m in self.modules if not m.family and m.name == candidate]
        if exact:
            return "exact", exact, None
        variants = name_variants(candidate)
        # Only a module's own name or an alias the operator configured can make a name of
        # generic words (`web-frontend`) evidence; the looser rules never do.
        generic = _generic_only(norm.split("-"))
        for rule, table in (("normalized", {} if generic else self.keys), ("alias", self.aliases)):
            found = _most_specific(table, variants)
            if found:
                return rule, found, None
        if generic:
            return "", [], None
        hits: dict[str, str] = {}
        for module, regex in self.families.items():
            for v in sorted(variants, key=lambda s: (s.count("-"), s)):
                m = regex.match(v)
                if m and not any(_generic_only(g.split("-")) for g in m.groups()):
                    hits[module] = v  # the shortest matching form identifies the member
                    break
        if hits:
            names = sorted(hits)
            return "family", names, hits[names[0]]
        return "", [], None


def _most_specific(table: dict[str, set[str]], variants: set[str]) -> list[str]:
    # `analytics-worker-service` strips to both `analytics-worker` and `analytics`: the module
    # matched by the longer form (fewer tokens stripped) is the one meant.
    scores = {m: max(k.count("-") for k in keys & variants) for m, keys in table.items() if keys & variants}
    best = max(scores.values(), default=-1)
    return sorted(m for m, s in scores.items() if s == best)


def _candidates(discovery: dict[str, Any]) -> list[dict[str, Any]]:
    """Every name discovery saw, with where it comes from and whether it is strong evidence. A
    service compose names otherwise than its folder carries both names (`compose_name`,
    `folder`): it matches a module by either, and the report shows both."""
    out = []
    for s in discovery.get("services") or []:
        compose_name = s.get("compose_name")
        out.append({"source": "folder", "name": s["name"], "file": s.get("path"), "strong": bool(s.get("dockerfile")),
                    "note": None if s.get("dockerfile") else "folder without Dockerfile",
                    "compose_name": compose_name, "folder": s.get("path"),
                    "aka": [compose_name] if compose_name and compose_name != s["name"] else []})
    for c in discovery.get("compose") or []:
        for s in c.get("services") or []:
            b = s.get("build") or {}
            if b.get("refused"):  # context or Dockerfile outside the repository: discovery reports it
                continue
            strong = bool(b) and bool(b.get("exists")) and bool(b.get("dockerfile_exists"))
            note = None if strong else ("image only, no build context" if not b else "build context or Dockerfile missing")
            local = bool(b) and not b.get("remote") and not b.get("unresolved")
            folder = b["context"] if local else None
            base = folder.rstrip("/").rsplit("/", 1)[-1] if folder and folder not in (".", "") else None
            out.append({"source": "compose", "name": s["name"], "file": c["file"], "strong": strong, "note": note,
                        "compose_name": s["name"], "folder": folder,
                        "aka": [base] if base and base != s["name"] else []})
    for c in discovery.get("containers") or []:
        running = c.get("status") == "running"
        out.append({"source": "container", "name": c.get("compose_service") or c["name"], "file": "docker engine",
                    "strong": running, "note": None if running else f"container {c.get('status')}",
                    "compose_name": c.get("compose_service"), "folder": None, "aka": []})
    archive = discovery.get("archive") or {}
    for c in archive.get("docker_ps") or []:
        out.append({"source": "archive", "name": c.get("compose_service") or c["name"],
                    "file": f"{archive.get('path')}/docker_ps.json", "strong": False, "note": "only in the VPS archive",
                    "compose_name": c.get("compose_service"), "folder": None, "aka": []})
    for name in (archive.get("compose_dump") or {}).get("services") or []:
        out.append({"source": "archive", "name": name, "file": f"{archive.get('path')}/compose_dump.txt",
                    "strong": False, "note": "only in the VPS archive", "compose_name": name, "folder": None, "aka": []})
    return out


def _refused(discovery: dict[str, Any]) -> dict[str, str]:
    """{service name, compose name or folder: why} of every service discovery found refused."""
    found: dict[str, str] = {}
    for r in discovery.get("refused") or []:
        why = f"{r.get('service')}: {r.get('reason')}"
        found.update({str(n): why for n in (r.get("service"), r.get("compose_name"), r.get("folder")) if n})
    return found


def _config(repo_config: dict[str, Any], modules: list[CanonicalModule]) -> tuple[set[str], int, dict[str, list[str]],
            list[dict[str, Any]]]:
    """The [parity] settings as load_repo_config gives them: their types and ranges were checked
    when the file was read (target.repo_config_checks), so only their meaning is judged here."""
    parity = {**DEFAULTS["parity"], **(repo_config.get("parity") or {})}
    problems: list[dict[str, Any]] = []
    where = "nexus-agent.toml [parity]"
    names = {m.name for m in modules}
    # The synopsis' own `(mandatory)` marks add to the configured set: the synopsis says so.
    listed = parity.get("critical") or []
    listed = [listed] if isinstance(listed, str) else listed
    critical = {normalize(str(c)) for c in listed} | {m.name for m in modules if m.mandatory}
    limit: int = parity["max_critical_missing"]
    aliases: dict[str, list[str]] = {}
    for module, values in sorted((parity.get("aliases") or {}).items()):
        values = [values] if isinstance(values, str) else values
        if module not in names:
            problems.append({"file": where, "line": None, "service": module,
                             "message": f"alias set for {module!r}, which is not a canonical module; ignored"})
            continue
        for alias in values:
            tokens = normalize(str(alias)).split("-")
            if len(tokens) == 1 and _generic_only(tokens):  # `api` alone is nobody's name
                problems.append({"file": where, "line": None, "service": module,
                                 "message": f"alias {alias!r} is a generic word, no evidence of {module!r}; ignored"})
            else:
                aliases.setdefault(module, []).append(str(alias))
    if modules:
        for c in sorted(critical - names):
            problems.append({"file": where, "line": None, "service": c,
                             "message": f"critical module {c!r} is not in the synopsis; not checked"})
    return critical, limit, aliases, problems


def compare(synopsis: Synopsis, discovery: dict[str, Any], repo_config: dict[str, Any], *,
            scaffolded: Iterable[str] = ()) -> dict[str, Any]:
    """The discrepancy report: per canonical module its status and evidence, totals, parity,
    critical modules missing, the parity gate, the guide's action, and the repository's
    services that match no module. Deterministic apart from generated_at."""
    modules = list(synopsis.modules)
    critical, limit, aliases, problems = _config(repo_config, modules)
    scaffolded_set = {normalize(s) for s in scaffolded}
    matcher = _Matcher(modules, aliases)
    evidence: dict[str, list[dict[str, Any]]] = {m.name: [] for m in modules}
    members: dict[str, dict[str, bool]] = {m.name: {} for m in modules if m.family}
    unmatched: dict[str, dict[str, set[str]]] = {}
    refused, refusals = _refused(discovery), {}
    for cand in _candidates(discovery):
        rule, matched, member = matcher.match(cand["name"])
        for other in cand["aka"] if not matched else []:  # the service's other name: compose or folder
            rule, matched, member = matcher.match(other)
            if matched:
                break
        why = next((refused[n] for n in (cand["name"], cand["compose_name"], cand["folder"]) if n in refused), None)
        if why is not None:  # a refused service is no evidence of anything
            refusals.update(dict.fromkeys(matched, why))
            continue
        if not matched and cand["source"] in ("folder", "compose"):
            entry = unmatched.setdefault(cand["name"], {"sources": set(), "other_names": set()})
            entry["sources"].add(cand["source"] if cand["source"] == "folder" else f"compose:{cand['file']}")
            entry["other_names"].update(cand["aka"])
        for name in matched:
            evidence[name].append({"source": cand["source"], "name": cand["name"], "rule": rule, "file": cand["file"],
                                   "strong": cand["strong"], "note": cand["note"],
                                   "compose_name": cand["compose_name"], "folder": cand["folder"]})
            if name in members:  # a family: an alias names its member by the candidate's own name
                key = member or normalize(cand["name"])
                members[name][key] = members[name].get(key, False) or cand["strong"]
    order = {c: i for i, c in enumerate(synopsis.categories)}
    rows = []
    for m in sorted(modules, key=lambda m: (order.get(m.category, len(order)), m.name)):
        ev = sorted(evidence[m.name], key=lambda e: (SOURCES.index(e["source"]), e["name"], str(e["file"]), e["rule"]))
        row: dict[str, Any] = {"name": m.name, "category": m.category, "description": m.description,
                               "mandatory": m.mandatory, "family": m.family, "line": m.line,
                               "critical": normalize(m.name) in critical, "scaffolded": normalize(m.name) in scaffolded_set,
                               "pmmg": is_pmmg(m.name, m.description)}
        if m.family:
            found = members[m.name]
            strong = sum(found.values())
            need = m.family_count if m.family_count is not None else 1
            row["status"] = "missing" if not found else "present" if strong >= need else "partial"
            row.update(family_count=m.family_count, family_found=len(found), family_members=sorted(found))
        else:
            row["status"] = "missing" if not ev else "present" if any(e["strong"] for e in ev) else "partial"
        row["evidence"] = ev
        if m.name in refusals:
            row["refused"] = refusals[m.name]
        rows.append(row)
    totals = {"canonical": len(rows), **{s: sum(1 for r in rows if r["status"] == s) for s in ("present", "partial", "missing")}}
    def pct(n: int) -> float:
        return round(n * 100.0 / len(rows), 1) if rows else 0.0

    report: dict[str, Any] = {
        "generated_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "stack": _stack(discovery),
        "synopsis": {"path": synopsis.path, "categories": list(synopsis.categories), "module_count": len(modules),
                     "problems": [dict(p) for p in synopsis.problems], "pmmg": dict(synopsis.pmmg)},
        "totals": totals,
        "parity_percent": pct(totals["present"]),
        "coverage_percent": pct(totals["present"] + totals["partial"]),
        "critical": sorted(r["name"] for r in rows if r["critical"]),
        "critical_missing": [r["name"] for r in rows if r["critical"] and r["status"] == "missing"],
        "gate": {"max_critical_missing": limit},
        "modules": rows,
        "non_canonical_services": [{"name": n, "sources": sorted(e["sources"]), "other_names": sorted(e["other_names"])}
                                   for n, e in sorted(unmatched.items())],
        "scaffolded": sorted(scaffolded_set),
        "problems": sorted(problems, key=lambda p: (str(p["service"]), p["message"])),
    }
    passed, message = critical_gate(report)
    missing_unscaffolded = [n for n in report["critical_missing"] if normalize(n) not in scaffolded_set]
    report["gate"].update(passed=passed, message=message, critical_missing_unscaffolded=missing_unscaffolded)
    report["action"] = _action(report)
    return report


def _stack(discovery: dict[str, Any]) -> dict[str, Any]:
    """The compose file the build uses and the others, as discovery found them."""
    stack = discovery.get("stack") or {}
    return {"compose_file": stack.get("compose_file"), "chosen_by": stack.get("chosen_by", "not reported"),
            "other_compose_files": list(stack.get("other_compose_files") or [])}


def critical_gate(report: dict[str, Any], *, scaffolded: Iterable[str] = ()) -> tuple[bool, str]:
    """The guide's gate "≤6 critical modules missing OR auto-scaffolded": passed when the
    critical modules that are missing and not scaffolded number at most max_critical_missing
    (nexus-agent.toml [parity], default 6). scaffolded adds names scaffolded since the report.
    An empty or missing synopsis fails: there is nothing to check parity against."""
    synopsis = report.get("synopsis") or {}
    if not synopsis.get("module_count"):
        why = "; ".join(p["message"] for p in synopsis.get("problems") or []) or "no canonical modules"
        return False, f"parity gate failed: {synopsis.get('path', 'the synopsis')}: {why}"
    limit = (report.get("gate") or {}).get("max_critical_missing", DEFAULTS["parity"]["max_critical_missing"])
    done = {normalize(s) for s in [*report.get("scaffolded", []), *scaffolded]}
    missing = [m["name"] + (" (refused)" if m.get("refused") else "") for m in report.get("modules", [])
               if m.get("critical") and m.get("status") == "missing" and normalize(m["name"]) not in done]
    listed = ", ".join(missing) if missing else "none"
    verdict = "passed" if len(missing) <= limit else "failed"
    return len(missing) <= limit, (f"parity gate {verdict}: {len(missing)} critical module(s) missing and not "
                                   f"scaffolded ({listed}); at most {limit} allowed")


def _action(report: dict[str, Any]) -> str:
    if not report["synopsis"]["module_count"]:
        return f"fix the canonical synopsis ({report['gate']['message']}); parity cannot be checked"
    todo = [n for n, _ in modules_to_scaffold(report)]
    parts = [f"auto-scaffold {len(todo)} missing module(s): {', '.join(todo)}"] if todo else []
    families = [m["name"] for m in report["modules"] if m["family"] and m["status"] != "present"]
    if families:
        parts.append(f"review incomplete wildcard families (not scaffolded): {', '.join(families)}")
    pmmg = [m["name"] for m in report["modules"] if m["pmmg"] and m["status"] == "missing"]
    if pmmg:
        parts.append(f"PMMG modules are browser-only and never scaffolded as containers: {', '.join(pmmg)}")
    refused = [m["refused"] for m in report["modules"] if m.get("refused")]
    if refused:
        parts.append(f"fix the refused service(s), never built nor counted: {'; '.join(refused)}")
    return "; ".join(parts) if parts else "none"
