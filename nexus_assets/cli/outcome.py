"""What one `nexus-agent run` did, and what the last run left: read without Dagster, so that a
run that knows nothing changed (cli/unchanged.py) says the same as one that asked Dagster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nexus_assets.core.fileio import read_json
from nexus_assets.core.release_version import release_tag
from nexus_assets.core.report_paths import ARTIFACTS_MANIFEST_FILE, DISCREPANCY_REPORT_FILE, VERIFIED_RELEASE_FILE
from nexus_assets.core.settings import Settings
from nexus_assets.registry.released import moved_tags, released_manifest

if TYPE_CHECKING:  # the registry client (requests) loads only when a released version is asked about
    from nexus_assets.registry.client import Credentials


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


class _CredentialsFromEnv:
    """Who we are to the registry, from the environment as the CLI's entry point reads it (the
    Registry resource would load Dagster, which the nothing-changed path never needs)."""

    def credentials(self) -> Credentials | None:
        from nexus_assets.registry.client import credentials_from_env

        return credentials_from_env()


def say_release(settings: Settings) -> bool:
    """With no run launched, what the last release attempt of this version left (its record),
    and whether a released version's tags still name its images in the registry (they can move
    while nothing here changes): False, naming each tag and the repair command, when one moved."""
    try:
        record = read_json(settings.workdir / VERIFIED_RELEASE_FILE)
    except (OSError, ValueError):
        record = {}
    if record.get("version") == settings.version and record.get("made"):
        print(f"[nexus] {record['tag']} already released (commit {(record.get('release_commit') or '-')[:12]}): "
              "no new tag", flush=True)
    elif record.get("version") == settings.version and record.get("failed_gates"):
        print(f"[nexus] release {settings.version} not made: gate(s) failed: {', '.join(record['failed_gates'])}",
              flush=True)
    elif record.get("version") == settings.version and record.get("problems"):  # refused: version, registry
        print(f"[nexus] {(record.get('messages') or ['release not made'])[0]}", flush=True)
    released = released_manifest(settings.repo, settings.version)
    if released is None:
        return True
    moved = moved_tags(released, settings.version, _CredentialsFromEnv())
    for line in moved:
        print(f"[nexus] {release_tag(settings.version)} in the registry: {line}", flush=True)
    if moved:
        print(f"[nexus] put them back with: nexus-agent repair-tags --version {settings.version} "
              f"--repo {settings.repo}", flush=True)
    return not moved


def waived_services(settings: Settings) -> set[str]:
    """The services the last manifest says the release goes without, under a waiver that holds."""
    try:
        return {str(w["service"]) for w in read_json(settings.workdir / ARTIFACTS_MANIFEST_FILE).get("waived") or []}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def drop_waived(summary: RunSummary, settings: Settings) -> None:
    """A waived service's failures (its build, its checks) do not fail the run: the release went
    without it on the record, and the run said each failure and the waiver."""
    waived = waived_services(settings)
    if not waived:
        return
    summary.failed = [name for name in summary.failed if name not in waived]
    summary.failed_gates = [gate for gate in summary.failed_gates
                            if gate.split(":", 1)[0].split("/")[-1] not in waived or "/" not in gate.split(":", 1)[0]]
    print(f"[nexus] waived (nexus-agent.toml [release] waive), not released: {', '.join(sorted(waived))}", flush=True)


def last_verdict(settings: Settings) -> bool:
    """The gates as the last run left them, read from its reports."""
    try:
        manifest = read_json(settings.workdir / ARTIFACTS_MANIFEST_FILE)
        report = read_json(settings.workdir / DISCREPANCY_REPORT_FILE)
    except (OSError, ValueError):
        return False
    totals = manifest["totals"]
    waived = {w.get("service") for w in manifest.get("waived") or []}
    tests_failed = [i for i in manifest["images"] if i["status"] == "tests_failed" and i["service"] not in waived]
    release = settings.workdir / VERIFIED_RELEASE_FILE
    released = (not release.is_file()) or bool(read_json(release).get("made"))
    return not totals["problems"] and not tests_failed and bool(report["gate"]["passed"]) and released
