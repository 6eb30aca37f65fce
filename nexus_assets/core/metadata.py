"""Dagster metadata shared by every asset that writes a report file, and the links that open
each file through the evidence server (automation/evidence_server.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg

from nexus_assets.core.evidence import DEFAULT_EVIDENCE_URL, EVIDENCE_FOLDERS
from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.keys import ARTIFACTS_MANIFEST_FILE

# Entries made again at each materialization, never copied from the last one (a kept report's
# metadata comes back as plain values, the table and URL included).
LINKED = ("url", "services", "evidence")
LOG_TAIL_LINES = 30  # a failing check shows this much of its log inline


@dataclass(frozen=True)
class EvidenceLinks:
    """URLs of a working copy's files under the evidence server's base URL (NEXUS_EVIDENCE_URL)."""

    workdir: Path
    base: str = DEFAULT_EVIDENCE_URL

    @classmethod
    def of(cls, settings: Any) -> EvidenceLinks:
        return cls(Path(settings.workdir), (getattr(settings, "evidence_url", "") or DEFAULT_EVIDENCE_URL).rstrip("/"))

    def url(self, path: Path | str | None) -> str | None:
        """The file's URL, or None when it lies outside the served folders."""
        if not path:
            return None
        path = Path(path)
        if not path.is_absolute():
            path = self.workdir / path
        try:
            rel = path.relative_to(self.workdir)
        except ValueError:
            return None
        if not rel.parts or rel.parts[0] not in EVIDENCE_FOLDERS or ".." in rel.parts:
            return None
        return f"{self.base.rstrip('/')}/{quote(rel.as_posix())}"

    def entry(self, name: str, path: Path | str | None) -> dict[str, Any]:
        """{name_url (name "": url): the file's URL} to add beside a path entry, or {} when it has none."""
        url = self.url(path)
        return {f"{name}_url" if name else "url": dg.MetadataValue.url(url)} if url else {}


def report_metadata(path: Path, links: EvidenceLinks | None = None) -> dict[str, Any]:
    """Path, sha256 and size of a written report: what an auditor checks a file against; with
    links, its URL too."""
    return {"path": dg.MetadataValue.path(str(path)), "sha256": file_sha256(path), "bytes": path.stat().st_size,
            **(links.entry("", path) if links is not None else {})}


def log_tail(path: Path | str, lines: int = LOG_TAIL_LINES) -> dg.MetadataValue:
    """The last lines of a log as Markdown (a code block), shown inline in the UI."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return dg.MetadataValue.md(f"*log not readable: {exc.strerror or exc}*")
    tail = text.rstrip("\n").splitlines()[-lines:]
    fence = "````" if "```" in text else "```"
    return dg.MetadataValue.md(f"Last {len(tail)} line(s) of `{Path(path).name}`:\n\n{fence}text\n"
                               + "\n".join(tail) + f"\n{fence}")


def recorded_manifest(workdir: Path) -> dict[str, Any]:
    """artifacts/artifacts_manifest.json as written, {} when it is missing or unreadable."""
    try:
        data = json.loads((workdir / ARTIFACTS_MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


SERVICE_COLUMNS = ("service", "status", "image", "digest", "tests", "sbom", "provenance", "build_log", "released")


def _tests_text(tests: dict[str, Any] | None) -> str:
    return ", ".join(f"{stage} {state}" for stage, state in (tests or {}).items()) or "none"


def service_rows(manifest: dict[str, Any], links: EvidenceLinks | None, packaged: set[str] | None = None) -> list[dict[str, Any]]:
    """One row per service of the manifest: its image, registry digest, tests, SBOM, provenance
    and build log (URLs where the evidence server has them), and whether it ships: in the package
    (packaged: the services the package pins; None before there is one), waived or not released."""
    waived = {w["service"]: w for w in manifest.get("waived") or []}
    artifacts = links.workdir / "artifacts" if links is not None else None
    rows: list[dict[str, Any]] = []
    for entry in manifest.get("images") or []:
        name = str(entry.get("service"))

        def link(record: dict[str, Any] | None, under: Path | None) -> str:
            if not record or not record.get("path"):
                return "none"
            path = (under / str(record["path"])) if under is not None else Path(str(record["path"]))
            return (links.url(path) if links is not None else None) or str(record["path"])

        if name in waived:
            released = f"waived: {waived[name].get('reason') or ''}".strip()
        elif packaged is not None:
            released = "in the package" if name in packaged else f"not in the package: {entry.get('reason') or entry.get('status')}"
        else:
            released = "released" if entry.get("digest") and entry.get("status") == "current" else \
                f"not released: {entry.get('reason') or entry.get('status')}"
        rows.append({"service": name, "status": str(entry.get("status") or ""), "image": str(entry.get("image") or "none"),
                     "digest": str(entry.get("digest") or "none"), "tests": _tests_text(entry.get("tests")),
                     "sbom": link(entry.get("sbom"), artifacts), "provenance": link(entry.get("provenance"), artifacts),
                     "build_log": link({"path": entry["build_log"]} if entry.get("build_log") else None, None),
                     "released": released})
    return rows


def service_table_metadata(manifest: dict[str, Any], links: EvidenceLinks | None, packaged: set[str] | None = None) -> dict[str, Any]:
    """`services`: the per-service rows as a Dagster table; `evidence`: the same rows' links as
    Markdown (a table cell is text in the UI, a Markdown link opens)."""
    rows = service_rows(manifest, links, packaged)
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in SERVICE_COLUMNS])
    table = dg.MetadataValue.table([dg.TableRecord(row) for row in rows], schema=schema)

    def cell(value: str, text: str) -> str:
        return f"[{text}]({value})" if value.startswith(("http://", "https://")) else value.replace("|", "\\|")

    lines = ["| service | digest | tests | SBOM | provenance | build log | released |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['service']} | `{r['digest'][:19]}` | {r['tests']} | {cell(r['sbom'], 'SBOM')} | "
              f"{cell(r['provenance'], 'provenance')} | {cell(r['build_log'], 'log')} | {cell(r['released'], '')} |"
              for r in rows]
    return {"services": table, "evidence": dg.MetadataValue.md("\n".join(lines))}
