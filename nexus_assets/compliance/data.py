"""The compliance report's content, assembled from the pipeline's outputs as plain data and
pandas tables (the layout only draws what is here). Every input is read defensively: a report
or a manifest field that is not there yet is "not available" in the document, never guessed.

Inputs: reports/discovery_parsed.json, reports/discrepancy_report.json,
reports/scaffold_report.json, artifacts/artifacts_manifest.json (with, when the push and
attestation steps recorded them, `digest`, `repo_digest`, `sbom` and `provenance` per image),
the repository (PMMG lock and jobs, KYC, `.env` for the secret scan, `[tests] no_tests`), each
PMMG image's browser-only verdict as the image step recorded it, and Dagster's lineage rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from nexus_assets.compliance.lineage import LineageRow
from nexus_assets.compliance.outputs import artifact_files
from nexus_assets.compliance.policy import KycFlag, kyc_flag
from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.keys import (
    ARTIFACTS_MANIFEST_FILE,
    DISCOVERY_PARSED_FILE,
    DISCREPANCY_REPORT_FILE,
    SCAFFOLD_REPORT_FILE,
    TEST_STAGES,
)
from nexus_assets.core.settings import Settings
from nexus_assets.policy.acceptance import NO_TESTS, blocking_states, e2e_state, no_tests_mode, report_contents
from nexus_assets.policy.pmmg import PolicyVerdict, Rule, pmmg_verdict
from nexus_assets.policy.secret_scan import SecretScan, env_secrets, scan_files
from nexus_assets.policy.waivers import by_line

NA = "not available"


@dataclass
class Gate:
    name: str
    passed: bool | None  # None: not evaluated here (said why in detail)
    detail: str
    word: str | None = None  # the verdict cell's word when not PASS/FAIL/n/a (WAIVED)


@dataclass
class ReportData:
    version: str
    commit: str
    report_date: str
    run_id: str
    registry: str
    repo: str
    gates: list[Gate]
    discovery: pd.DataFrame  # item, value
    parity_summary: dict[str, Any]
    modules: pd.DataFrame  # category, module, status, critical, scaffolded, evidence
    by_category: pd.DataFrame  # category x present/partial/missing/scaffolded
    scaffolded: pd.DataFrame  # module, language, port, created, reason
    tests: pd.DataFrame  # service, lint, unit, integration, status
    stage_counts: pd.DataFrame  # stage x passed/failed/not run
    e2e: str
    images: pd.DataFrame  # service, status, tag, image_id, digest, repo_digest, substitutions, obtained, sbom, provenance
    pmmg: PolicyVerdict
    kyc: KycFlag
    secrets: SecretScan
    lineage: list[LineageRow]
    artifacts: pd.DataFrame  # path, bytes, sha256
    notes: list[str] = field(default_factory=list)  # inputs that were missing or unreadable

    @property
    def verdict(self) -> str:
        failed = [g.name for g in self.gates if g.passed is False]
        return "PASS" if not failed else "FAIL: " + ", ".join(failed)


def _read(path: Path, notes: list[str]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(f"{path.name}: {NA} (not written yet)")
        return {}
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name}: unreadable ({type(exc).__name__}); its sections say {NA}")
        return {}
    return data if isinstance(data, dict) else {}


def _evidence(module: dict[str, Any]) -> str:
    items = module.get("evidence") or []
    if module.get("refused"):  # the repository's service for it is refused: never built nor counted
        return f"refused: {module['refused']}"
    if not items:
        return "none"
    return "\n".join(f"{e.get('source')}: {e.get('file')} ({e.get('rule')}{', weak' if not e.get('strong') else ''})"
                      for e in items)


def _modules(discrepancy: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [{"category": m.get("category") or "(none)", "module": m.get("name", "?"), "status": m.get("status", "?"),
             "critical": "yes" if m.get("critical") else "no", "scaffolded": "yes" if m.get("scaffolded") else "no",
             "evidence": _evidence(m)}
            for m in discrepancy.get("modules") or []]
    modules = pd.DataFrame(rows, columns=["category", "module", "status", "critical", "scaffolded", "evidence"])
    counts = pd.crosstab(modules["category"], modules["status"]) if len(modules) else pd.DataFrame()
    for status in ("present", "partial", "missing"):
        if status not in counts.columns:
            counts[status] = 0
    by_category = counts[["present", "partial", "missing"]].copy()
    by_category["scaffolded"] = (modules["scaffolded"] == "yes").groupby(modules["category"]).sum() if len(modules) else 0
    order = list(dict.fromkeys(modules["category"]))  # the synopsis' order
    return modules, by_category.reindex(order).fillna(0).astype(int)


def _state(value: object, no_tests: str) -> str:
    """A test state as the report says it: "no tests" with what it means, never "passed"."""
    if value == NO_TESTS:
        return f"no tests ({'blocks' if no_tests == 'block' else 'warn'})"
    return str(value or "not run").replace("not_run", "not run")


def _tests(manifest: dict[str, Any], no_tests: str = "warn") -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for image in manifest.get("images") or []:
        tests = image.get("tests") or {}
        rows.append({"service": image.get("service", "?"),
                     **{stage: _state(tests.get(stage), no_tests) for stage in TEST_STAGES},
                     "status": image.get("status", "?")})
    tests = pd.DataFrame(rows, columns=["service", *TEST_STAGES, "status"])
    long = tests.melt(id_vars=["service"], value_vars=list(TEST_STAGES), var_name="stage", value_name="result")
    counts = pd.crosstab(long["stage"], long["result"]) if len(long) else pd.DataFrame()
    for result in ("passed", "failed", "not run"):
        if result not in counts.columns:
            counts[result] = 0
    counts = counts.reindex(list(TEST_STAGES)).fillna(0).astype(int)
    return tests, counts[["passed", "failed", "not run", *[c for c in counts.columns
                                                           if c not in ("passed", "failed", "not run")]]]


def _attestation(image: dict[str, Any], name: str) -> str:
    item = image.get(name)
    if isinstance(item, dict) and item.get("path"):
        return f"{Path(str(item['path'])).name} sha256:{item.get('sha256') or NA}"
    return NA


def _images(manifest: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for image in manifest.get("images") or []:
        subs = [f"{b.get('requested')} -> {b.get('substitute')}" for b in image.get("base_images") or []
                if b.get("substituted")]
        registry_digest = image.get("digest") if image.get("repo_digest") else None
        rows.append({"service": image.get("service", "?"), "status": image.get("status", "?"),
                     "tag": image.get("image") or NA, "image_id": image.get("image_id") or NA,
                     "digest": registry_digest or NA, "repo_digest": image.get("repo_digest") or NA,
                     "substitutions": "; ".join(subs) or "none", "obtained": _obtained(image),
                     "sbom": _attestation(image, "sbom"), "provenance": _attestation(image, "provenance"),
                     "reason": image.get("reason") or ""})
    return pd.DataFrame(rows, columns=["service", "status", "tag", "image_id", "digest", "repo_digest",
                                       "substitutions", "obtained", "sbom", "provenance", "reason"])


def _obtained(image: dict[str, Any]) -> str:
    """Built by this pipeline here, or pulled from the registry cache (built and tested by an
    earlier run, whose commit the image's labels name)."""
    cache = image.get("cache") or {}
    if image.get("obtained") != "pulled from cache" or not cache:
        return "built" if image.get("image_id") else NA
    commit = str(cache.get("revision") or "")[:12] or "no commit recorded"
    return f"registry cache {cache.get('tag', '')} (built from {commit})"


def _discovery(discovery: dict[str, Any]) -> pd.DataFrame:
    summary = discovery.get("summary") or {}
    git = discovery.get("git")
    rows = [(key.replace("_", " "), str(value)) for key, value in summary.items()]
    rows.append(("git", f"{git.get('commit')} on {git.get('branch') or 'detached'}, "
                        f"{'dirty' if git.get('dirty') else 'clean'}" if isinstance(git, dict) else "not a git checkout"))
    archive = discovery.get("archive") or {}
    rows.append(("discovery archive", "present" if archive.get("present") else str(archive.get("message") or NA)))
    return pd.DataFrame(rows, columns=["item", "value"])


def _gates(settings: Settings, discovery: dict[str, Any], discrepancy: dict[str, Any], manifest: dict[str, Any],
           tests: pd.DataFrame,
           pmmg: PolicyVerdict, scan: SecretScan, no_tests: str = "warn") -> list[Gate]:
    gates = [Gate("discovery parsed", bool(discovery.get("summary")),
                  f"{DISCOVERY_PARSED_FILE} holds the inventory" if discovery.get("summary") else
                  f"{DISCOVERY_PARSED_FILE}: {NA}")]
    gate = discrepancy.get("gate") or {}
    gates.append(Gate("feature parity", bool(gate.get("passed")) if gate else False, gate.get("message") or NA))
    waived = {w.get("service"): w for w in manifest.get("waived") or []}
    blocking = {_state(b, no_tests) for b in blocking_states(no_tests)}
    failed = [f"{r.service} {stage}" for r in tests.itertuples() for stage in TEST_STAGES
              if getattr(r, stage) in blocking and r.service not in waived]
    warned = [f"{r.service} {stage} ({getattr(r, stage)})" for r in tests.itertuples() for stage in TEST_STAGES
              if getattr(r, stage) not in blocking and getattr(r, stage) != "passed" and r.service not in waived]
    e2e = e2e_state(manifest.get("e2e"))  # skipped (no e2e stack: "if applicable") never passes, never blocks
    counted = len(tests) - len(waived)
    stages = (f"{counted} services: lint, unit and integration passed" if not failed and not warned else
              (f"failed: {', '.join(failed[:12])}{' ...' if len(failed) > 12 else ''}; " if failed else "")
              + (f"not passed, not blocking: {', '.join(warned[:12])}{' ...' if len(warned) > 12 else ''}"
                 if warned else "").rstrip("; "))
    stages += f" ({len(waived)} waived: {', '.join(sorted(waived))})" if waived else ""
    gates.append(Gate("tests pass", bool(len(tests)) and not failed and e2e in ("passed", "skipped"),
                      f"{stages}; e2e {e2e}"))
    images = [i for i in manifest.get("images") or [] if i.get("service") not in waived]
    released = [i for i in images if i.get("status") == "current"]
    pinned = [i for i in released if i.get("repo_digest")]
    without = [i["service"] for i in images if not i.get("digest") and i.get("service") not in waived]
    ok = bool(images) and not without
    gates.append(Gate("artifacts manifest", ok if manifest else False,
                      (f"{len(images) - len(without)}/{len(images)} images with a digest; "
                       f"{len(pinned)}/{len(released)} released images with a registry digest (repo_digest)"
                       if manifest else f"{ARTIFACTS_MANIFEST_FILE}: {NA}")
                      + (f"; no digest: {', '.join(without[:12])}" if without else "")
                      + (f"; {len(waived)} waived, not released" if waived else "")))
    gates += [Gate(f"waived: {name}", None, f"not released ({w.get('why')}); waiver: {w.get('reason')}; {by_line(w)}; "
                   f"until {w.get('until')} (nexus-agent.toml line {w.get('line')}); not pinned, not deployed", "WAIVED")
              for name, w in sorted(waived.items())]
    gates.append(Gate("PMMG policy", pmmg.passed, "; ".join(
        f"{r.name}: ok" if r.passed else f"{r.name}: VIOLATED ({r.where or 'no file'})" for r in pmmg.rules)))
    gates.append(Gate("no secret in outputs", scan.found == 0,
                      f"{scan.values} .env secret value(s) searched in {scan.files_scanned} output file(s): "
                      f"{scan.found} found"))
    gates.append(Gate("deployment package", None, "made after this report from it; its own blocking check "
                                                  "reads it back and verifies every checksum"))
    return gates


def _contents_gate(data: ReportData, inputs: dict[str, dict[str, Any]]) -> Gate:
    """The Compliance Report gate, judged from what this document holds (policy.acceptance)."""
    def need(ok: bool, why: str) -> str:
        return "" if ok else why

    sections = {
        "discovery": need(bool(inputs["discovery"].get("summary")), f"{DISCOVERY_PARSED_FILE} {NA}"),
        "parity": need(bool(data.parity_summary.get("gate")), f"{DISCREPANCY_REPORT_FILE} {NA}"),
        "scaffolded modules": need("services" in inputs["scaffold"], f"{SCAFFOLD_REPORT_FILE} {NA}"),
        "tests": need(bool(len(data.tests)), "no service in the manifest"),
        "images": need(bool(len(data.images)), "no image in the manifest"),
        "PMMG policy": need(bool(data.pmmg.rules), "no rule judged"),
        "security": need(data.secrets.files_scanned > 0, "no output file scanned"),
        "lineage": need(bool(data.lineage), "no lineage read from the Dagster instance"),
        "artifacts": need(bool(len(data.artifacts)), "no file under reports/ or artifacts/"),
    }
    passed, detail = report_contents(sections, [(g.name, g.detail) for g in data.gates])
    return Gate("compliance report", passed, detail)


def assemble(settings: Settings, *, commit: str | None, lineage: list[LineageRow], run_id: str,
             today: date, pmmg_images: dict[str, dict[str, Any]] | None = None) -> ReportData:
    """Everything the compliance PDF shows, from the pipeline's outputs. pmmg_images: {service:
    its PMMG browser-only verdict} as the image step recorded it (images.pmmg)."""
    notes: list[str] = []
    discovery = _read(settings.workdir / DISCOVERY_PARSED_FILE, notes)
    discrepancy = _read(settings.workdir / DISCREPANCY_REPORT_FILE, notes)
    scaffold = _read(settings.workdir / SCAFFOLD_REPORT_FILE, notes)
    manifest = _read(settings.workdir / ARTIFACTS_MANIFEST_FILE, notes)
    modules, by_category = _modules(discrepancy)
    no_tests = no_tests_mode(settings.repo)
    tests, stage_counts = _tests(manifest, no_tests)
    files = artifact_files(settings)
    public = ({i.get("service", "") for i in manifest.get("images") or []}
              | {s.get("name", "") for c in discovery.get("compose") or [] for s in c.get("services") or []}
              | {s.get("name", "") for s in discovery.get("services") or []})
    env_files, values = env_secrets(settings.repo, public)
    scan = scan_files(files, values, root=settings.workdir, env_files=env_files)
    current = {i.get("service") for i in manifest.get("images") or [] if i.get("image_id")}
    pmmg = pmmg_verdict(settings.repo, discrepancy, scaffold,
                        {s: v for s, v in (pmmg_images or {}).items() if s in current})
    env_keys = sorted({k for f in discovery.get("env_files") or [] for k in f.get("keys") or []})
    e2e = manifest.get("e2e")
    scaffolded = pd.DataFrame([{"module": s.get("name"), "language": s.get("language"), "port": s.get("port"),
                                "created": "yes" if s.get("created") else "no", "reason": s.get("reason") or ""}
                               for s in scaffold.get("services") or []],
                              columns=["module", "language", "port", "created", "reason"])
    data = ReportData(
        version=str(manifest.get("version") or settings.version),
        commit=commit or ((discovery.get("git") or {}).get("commit") if isinstance(discovery.get("git"), dict)
                          else None) or f"{NA} (the target is not a git checkout)",
        report_date=today.isoformat(), run_id=run_id, registry=settings.registry, repo=str(settings.repo),
        gates=_gates(settings, discovery, discrepancy, manifest, tests, pmmg, scan, no_tests),
        discovery=_discovery(discovery),
        parity_summary={k: discrepancy.get(k) for k in ("parity_percent", "coverage_percent", "totals", "critical",
                                                         "critical_missing", "gate", "action")},
        modules=modules, by_category=by_category, scaffolded=scaffolded, tests=tests, stage_counts=stage_counts,
        e2e=(NA if not e2e else "skipped (the repository defines no e2e stack: not passed, not blocking)"
             if e2e_state(e2e) == "skipped" else
             f"{'passed' if e2e.get('passed') else 'FAILED'} in {e2e.get('seconds')} s"),
        images=_images(manifest), pmmg=pmmg, kyc=kyc_flag(settings.repo, env_keys), secrets=scan, lineage=lineage,
        artifacts=pd.DataFrame([{"path": p.relative_to(settings.workdir).as_posix(), "bytes": p.stat().st_size,
                                 "sha256": file_sha256(p)} for p in files], columns=["path", "bytes", "sha256"]),
        notes=notes)
    # before the package's row, so the cover lists it with the other gates it judges
    data.gates.insert(len(data.gates) - 1, _contents_gate(data, {"discovery": discovery, "scaffold": scaffold}))
    return data


__all__ = ["NA", "Gate", "ReportData", "Rule", "artifact_files", "assemble"]
