"""What one `nexus-agent run` did, and what the last run left: read without Dagster, so that a
run that knows nothing changed (cli/unchanged.py) says the same as one that asked Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field

from nexus_assets.core.fileio import read_json
from nexus_assets.core.settings import Settings


@dataclass
class RunSummary:
    """What one `nexus-agent run` did: the benchmark and the tests read it."""

    ok: bool = True
    built: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)  # images taken from the registry cache instead of built
    pushed: list[str] = field(default_factory=list)  # images this invocation put in the registry
    not_pushed: list[str] = field(default_factory=list)  # selected pushes that did not happen (reason logged)
    failed: list[str] = field(default_factory=list)
    failed_gates: list[str] = field(default_factory=list)
    test_containers: int = 0
    broken_steps: list[str] = field(default_factory=list)  # steps that raised: not gates
    run_ids: list[str] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)  # service -> Dagster's reason


def say_release(settings: Settings) -> None:
    """With no run launched, what the last release attempt of this version left (its record)."""
    try:
        record = read_json(settings.artifacts / "verified_release.json")
    except (OSError, ValueError):
        return
    if record.get("version") != settings.version:
        return
    if record.get("made"):
        print(f"[nexus] {record['tag']} already released (commit {(record.get('release_commit') or '-')[:12]}): "
              "no new tag", flush=True)
    elif record.get("failed_gates"):
        print(f"[nexus] release {settings.version} not made: gate(s) failed: {', '.join(record['failed_gates'])}",
              flush=True)


def last_verdict(settings: Settings) -> bool:
    """The gates as the last run left them, read from its reports."""
    try:
        manifest = read_json(settings.artifacts / "artifacts_manifest.json")
        report = read_json(settings.reports / "discrepancy_report.json")
    except (OSError, ValueError):
        return False
    totals = manifest["totals"]
    release = settings.artifacts / "verified_release.json"
    released = (not release.is_file()) or bool(read_json(release).get("made"))
    return not totals["problems"] and not totals["tests_failed"] and bool(report["gate"]["passed"]) and released
