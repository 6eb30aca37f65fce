"""Release notes in Markdown: modules, images with digests, gates, and what changed per service
since the previous release (registry digest and SBOM components), from the two releases'
manifests and component lists. Pure: files in, text out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus_assets.core.keys import DISCREPANCY_REPORT_FILE

MAX_LISTED = 25  # component changes listed per service; the rest are counted


@dataclass(frozen=True)
class Gate:
    """One release gate's last verdict: an asset check (asset:check) or a report's gate."""

    name: str
    passed: bool
    detail: str = ""
    severity: str = "ERROR"  # a failed WARN gate is shown, never blocks; nor does a WAIVED one (policy.waivers)
    run_id: str | None = None

    @property
    def blocks(self) -> bool:
        return not self.passed and self.severity not in ("WARN", "WAIVED")


@dataclass
class ServiceChange:
    service: str
    kind: str  # added | removed | changed | unchanged
    old_digest: str | None = None
    new_digest: str | None = None
    components_added: list[str] = field(default_factory=list)
    components_removed: list[str] = field(default_factory=list)
    components_changed: list[str] = field(default_factory=list)  # "name old -> new"

    @property
    def sbom_changed(self) -> bool:
        return bool(self.components_added or self.components_removed or self.components_changed)


def image_digest(entry: dict[str, Any]) -> str | None:
    """The registry digest of a manifest entry (repo_digest once pushed; else digest)."""
    return entry.get("repo_digest") or entry.get("digest")


def sbom_components(path: Path) -> dict[str, str]:
    """{component: version} of a CycloneDX JSON SBOM, nested components included; {} when the
    file is missing or unreadable (the SBOM gate, not the notes, judges it)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}

    def walk(components: Any) -> None:
        for component in components if isinstance(components, list) else []:
            if not isinstance(component, dict) or not component.get("name"):
                continue
            group = component.get("group")
            name = f"{group}/{component['name']}" if group else str(component["name"])
            kind = component.get("type")
            found[f"{kind}:{name}" if kind and kind != "library" else name] = str(component.get("version") or "")
            walk(component.get("components"))

    walk(document.get("components"))
    return found


def service_changes(manifest: dict[str, Any], components: dict[str, dict[str, str]], previous: dict[str, Any] | None,
                    previous_components: dict[str, dict[str, str]]) -> list[ServiceChange]:
    """Per service, what differs from the previous release's manifest and component lists."""
    now = {i["service"]: i for i in manifest.get("images", [])}
    before = {i["service"]: i for i in (previous or {}).get("images", [])}
    changes = []
    for name in sorted(set(now) | set(before)):
        old, new = before.get(name), now.get(name)
        change = ServiceChange(name, "unchanged", image_digest(old) if old else None,
                               image_digest(new) if new else None)
        if old is None:
            change.kind = "added"
        elif new is None:
            change.kind = "removed"
        if change.kind != "removed" and name in components and (old is None or name in previous_components):
            was, has = previous_components.get(name, {}), components[name]
            change.components_added = sorted(f"{c} {has[c]}".strip() for c in set(has) - set(was))
            change.components_removed = sorted(f"{c} {was[c]}".strip() for c in set(was) - set(has))
            change.components_changed = sorted(f"{c} {was[c]} -> {has[c]}" for c in set(has) & set(was)
                                               if was[c] != has[c])
        if change.kind == "unchanged" and (change.old_digest != change.new_digest or change.sbom_changed):
            change.kind = "changed"
        changes.append(change)
    return changes


def _cell(text: object) -> str:
    return str(text if text not in (None, "") else "-").replace("|", "\\|").replace("\n", " ")


def _listed(items: list[str]) -> str:
    shown = ", ".join(f"`{i}`" for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _modules(report: dict[str, Any] | None) -> list[str]:
    if not report:
        return [f"{DISCREPANCY_REPORT_FILE} was not found: no module summary."]
    totals = report.get("totals") or {}
    gate = report.get("gate") or {}
    lines = [f"Parity {report.get('parity_percent', '-')} %: {totals.get('present', 0)} present, "
             f"{totals.get('partial', 0)} partial, {totals.get('missing', 0)} missing of "
             f"{totals.get('canonical', 0)} canonical modules. Gate: {gate.get('message', '-')}", ""]
    critical = [m for m in report.get("modules", []) if m.get("critical")]
    if critical:
        lines += ["| critical module | status | scaffolded |", "| --- | --- | --- |"]
        lines += [f"| {_cell(m['name'])} | {_cell(m.get('status'))} | {'yes' if m.get('scaffolded') else 'no'} |"
                  for m in critical]
    if report.get("scaffolded"):
        lines += ["", f"Scaffolded by this pipeline: {', '.join(report['scaffolded'])}."]
    return lines


def _images(manifest: dict[str, Any]) -> list[str]:
    lines = ["| service | status | image | registry digest | image id |", "| --- | --- | --- | --- | --- |"]
    for entry in manifest.get("images", []):
        registry = entry.get("repo_digest") or (entry.get("digest") if entry.get("digest") != entry.get("image_id")
                                                else None)
        lines.append(f"| {_cell(entry['service'])} | {_cell(entry.get('status'))} | {_cell(entry.get('image'))} | "
                     f"{_cell(registry)} | {_cell(entry.get('image_id'))} |")
    return lines


def _waived(manifest: dict[str, Any]) -> list[str]:
    """The services the release goes without, under the waivers of nexus-agent.toml."""
    waived = manifest.get("waived") or []
    if not waived:
        return []
    lines = ["", "## Waived services", "",
             "Released without these services (not pinned, not deployed), under `[release] waive` of "
             "nexus-agent.toml:", "", "| service | why not released | waiver reason | committed by | until |",
             "| --- | --- | --- | --- | --- |"]
    for w in sorted(waived, key=lambda w: str(w.get("service"))):
        by = f"{w.get('committed_by')} ({str(w['commit'])[:12]})" if w.get("commit") else "uncommitted"
        lines.append(f"| {_cell(w['service'])} | {_cell(w.get('why'))} | {_cell(w.get('reason'))} | {_cell(by)} | "
                     f"{_cell(w.get('until'))} |")
    return lines


def _changes(changes: list[ServiceChange], previous_version: str | None) -> list[str]:
    if previous_version is None:
        return ["First release: nothing to compare with."]
    moved = [c for c in changes if c.kind != "unchanged"]
    lines = [f"{len(moved)} of {len(changes)} service(s) changed since v{previous_version}."]
    for change in moved:
        lines.append("")
        if change.kind == "added":
            lines.append(f"- **{change.service}**: new service, digest `{change.new_digest}`")
        elif change.kind == "removed":
            lines.append(f"- **{change.service}**: removed (was `{change.old_digest}`)")
        else:
            same = change.old_digest == change.new_digest
            lines.append(f"- **{change.service}**: " + (f"digest unchanged `{change.new_digest}`" if same else
                                                        f"digest `{change.old_digest}` -> `{change.new_digest}`"))
        if change.components_added:
            lines.append(f"  - components added ({len(change.components_added)}): {_listed(change.components_added)}")
        if change.components_removed:
            lines.append(f"  - components removed ({len(change.components_removed)}): "
                         f"{_listed(change.components_removed)}")
        if change.components_changed:
            lines.append(f"  - components updated ({len(change.components_changed)}): "
                         f"{_listed(change.components_changed)}")
    return lines


def render_notes(*, version: str, tag: str, source_commit: str | None, dirty: bool, run_id: str | None,
                 created: str, manifest: dict[str, Any], discrepancy: dict[str, Any] | None, gates: list[Gate],
                 changes: list[ServiceChange], previous_version: str | None, attachments: list[str],
                 missing: list[str]) -> str:
    """The release notes, Markdown."""
    lines = [f"# Verified release {version}", "",
             f"- tag: `{tag}`, branch `verified_release`",
             f"- source commit: `{source_commit or 'not a git checkout'}`"
             + (" (the working tree had uncommitted changes)" if dirty else ""),
             f"- made: {created}" + (f", Dagster run `{run_id}`" if run_id else ""),
             f"- registry: `{manifest.get('registry', '-')}`; images: {len(manifest.get('images', []))}",
             "", "## Gates", "", "| gate | verdict | detail |", "| --- | --- | --- |"]
    for gate in gates:
        # "skipped" and "no tests" are said as such, never "passed" nor a bare warning
        said = next((w for w in ("skipped", "no tests") if gate.detail.startswith(w)), None)
        verdict = "passed" if gate.passed else ("FAILED" if gate.blocks else
                                                "waived" if gate.severity == "WAIVED" else said or "warning")
        lines.append(f"| {_cell(gate.name)} | {verdict} | {_cell(gate.detail)} |")
    lines += _waived(manifest)
    lines += ["", "## Modules", "", *_modules(discrepancy), "", "## Images", "", *_images(manifest), "",
              f"## Changes since {'v' + previous_version if previous_version else 'the previous release'}", "",
              *_changes(changes, previous_version), "", "## Attachments", ""]
    lines += [f"- {name}" for name in attachments] or ["- none"]
    if missing:
        lines += ["", "Not produced by this run: " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"
