"""What one run did, for a person: the facts gathered from the run's own events (and the
instance's record of them), the Markdown step summary and the last Slack line."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.core.fileio import read_json
from nexus_assets.core.keys import (
    ARTIFACTS_MANIFEST_FILE,
    DEPLOYMENT_REPORT_FILE,
    VERIFIED_RELEASE,
    VERIFIED_RELEASE_FILE,
    newest,
)
from nexus_assets.core.settings import Settings

_KINDS = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION,
          dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.STEP_FAILURE}
MAX_NAMES = 20  # services named per row; the rest counted
MAX_GATES = 60  # gate rows; the passed ones past it counted


@dataclass
class Gate:
    passed: bool
    blocking: bool
    detail: str


@dataclass
class RunFacts:
    run_id: str
    job_name: str
    started: float
    origin: str = ""  # cli, sensor or ui (the run's nexus/origin tag); "" while unknown
    outcome: str = ""
    built: set[str] = field(default_factory=set)
    pulled: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # service -> reason
    gates: dict[str, Gate] = field(default_factory=dict)  # asset:check -> verdict
    broken: dict[str, str] = field(default_factory=dict)  # step -> cause
    released_in_run: bool = False

    def add(self, event: dg.DagsterEvent) -> tuple[str, str] | None:
        """Records the event; returns (gate, reason) when it is a blocking gate that failed."""
        kind = event.event_type
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            key = materialization.asset_key
            if key == VERIFIED_RELEASE:
                self.released_in_run = True
            if key.path[0] == "image":
                status = materialization.metadata.get("status")
                pulled = status is not None and status.value == "pulled from cache"
                (self.pulled if pulled else self.built).add(key.path[-1])
        elif kind == dg.DagsterEventType.ASSET_OBSERVATION:
            observation = event.asset_observation_data.asset_observation
            status = observation.metadata.get("status")
            if observation.asset_key.path[0] == "image" and status is not None and status.value == "failed":
                reason = observation.metadata.get("reason")
                self.failed[observation.asset_key.path[-1]] = str(reason.value if reason else "failed")
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.asset_check_evaluation_data
            label = f"{check.asset_key.to_user_string()}:{check.check_name}"
            blocking = check.severity == dg.AssetCheckSeverity.ERROR
            gate = Gate(bool(check.passed), blocking, _one_line(check.description or ""))
            self.gates[label] = gate
            if not gate.passed and gate.blocking:
                return label, gate.detail or "no reason given"
        elif kind == dg.DagsterEventType.STEP_FAILURE and event.step_key:
            error = event.step_failure_data.error
            if error is None or error.cls_name != "DagsterAssetCheckFailedError":  # a gate: named above
                self.broken[event.step_key] = _one_line(error.message if error else "failed")
        return None

    def fill_from_instance(self, instance: dg.DagsterInstance | None = None) -> None:
        """What the steps of a multiprocess run saw in their own processes, from instance or the one
        under DAGSTER_HOME (nothing when there is none: the events this process saw are then all)."""
        if instance is None and not os.environ.get("DAGSTER_HOME"):
            return
        try:
            instance = instance or dg.DagsterInstance.get()
            records = instance.all_logs(self.run_id, of_type=_KINDS)
        except Exception:  # noqa: BLE001 - a summary from what this process saw is still a summary
            return
        for record in records:
            if record.dagster_event is not None:
                self.add(record.dagster_event)

    @property
    def seconds(self) -> float:
        return time.time() - self.started


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def current_images(facts: RunFacts, settings: Settings) -> list[str]:
    """Services the manifest holds current that this run did not build or pull."""
    manifest = _read(settings.workdir / ARTIFACTS_MANIFEST_FILE) or {}
    done = facts.built | facts.pulled | set(facts.failed)
    return sorted(str(e["service"]) for e in manifest.get("images", [])
                  if e.get("status") == "current" and e.get("service") not in done)


def release_line(facts: RunFacts, settings: Settings) -> str:
    if not facts.released_in_run:
        return "no release step in this run"
    record = _read(settings.workdir / VERIFIED_RELEASE_FILE) or {}
    github = (record.get("github") or {}).get("url")
    if record.get("made"):
        where = f", GitHub Release {github}" if github else ""
        again = " (already released: no new tag)" if record.get("already_released") else ""
        return f"{record.get('tag')} made{again}{where}"
    if record.get("deferred_for"):
        return f"release {record.get('version')} deferred (services scaffolded in this run)"
    failed = record.get("failed_gates") or []
    return f"release {record.get('version')} not made" + (f": gate(s) failed: {', '.join(failed)}" if failed else "")


def deploy_lines(settings: Settings) -> list[str]:
    """The deploy and audit the newest deployment report records, when it records any."""
    path = newest(settings.workdir, DEPLOYMENT_REPORT_FILE)
    report = _read(path) if path else None
    lines = []
    for key in ("staging", "deploy", "deployment", "audit"):
        value = (report or {}).get(key)
        if value:
            lines.append(f"- **{key}**: `{_one_line(json.dumps(value, sort_keys=True), 400)}`")
    return lines


def report_links(settings: Settings) -> list[str]:
    lines = [f"- `{path}`" for pattern in ("*.json", "*.pdf", "*.tar.gz")
             for path in sorted(settings.reports.glob(pattern))]
    manifest = settings.workdir / ARTIFACTS_MANIFEST_FILE
    if manifest.is_file():
        lines.append(f"- `{manifest}`")
    # The workflow's repository (GITHUB_WORKFLOW_REF: owner/name/.github/workflows/...), which differs
    # from GITHUB_REPOSITORY when the workflow releases another repository (scripts/ci/pipeline.sh).
    workflow = (os.environ.get("GITHUB_WORKFLOW_REF") or "").split("/.github/")[0]
    server, repo, run = (os.environ.get("GITHUB_SERVER_URL"), workflow or os.environ.get("GITHUB_REPOSITORY"),
                         os.environ.get("GITHUB_RUN_ID"))
    if server and repo and run:
        lines.insert(0, f"- [the workflow run's artifacts (reports/, artifacts/)]({server}/{repo}/actions/runs/{run}#artifacts)")
    return lines


def markdown_summary(facts: RunFacts, settings: Settings) -> str:
    current = current_images(facts, settings)
    out = [f"## Nexus pipeline: run `{facts.run_id[:8]}` {facts.outcome}", "",
           f"Job `{facts.job_name}`, started from {facts.origin or 'an unknown origin'}, {facts.seconds:.0f} s; repository "
           f"`{settings.repo}`, version {settings.version}, registry `{settings.registry}`.", "",
           "| images | count | services |", "| --- | ---: | --- |",
           f"| built | {len(facts.built)} | {_names(sorted(facts.built))} |",
           f"| pulled from the registry cache | {len(facts.pulled)} | {_names(sorted(facts.pulled))} |",
           f"| current (not rebuilt) | {len(current)} | {_names(current)} |",
           f"| failed | {len(facts.failed)} | {_cell(_names([f'{n} ({r[:80]})' for n, r in sorted(facts.failed.items())]))} |",
           "", "### Gates", ""]
    if facts.gates:
        rows = sorted(facts.gates.items(), key=lambda kv: (kv[1].passed, kv[0]))
        out += ["| gate | verdict | detail |", "| --- | --- | --- |"]
        for label, gate in rows[:MAX_GATES]:
            verdict = "passed" if gate.passed else ("**FAILED**" if gate.blocking else "warning")
            out.append(f"| `{label}` | {verdict} | {_cell(gate.detail)} |")
        if len(rows) > MAX_GATES:
            rest = rows[MAX_GATES:]
            failed = sum(1 for _, gate in rest if not gate.passed)
            out.append(f"| … | | {len(rest)} more: {len(rest) - failed} passed, {failed} not |")
    else:
        out.append("No gate was evaluated in this run.")
    if facts.broken:
        out += ["", "Steps that broke:", *(f"- `{step}`: {_cell(cause)}" for step, cause in sorted(facts.broken.items()))]
    out += ["", "### Release", "", release_line(facts, settings)]
    deploy = deploy_lines(settings)
    if deploy:
        out += ["", "### Deploy and audit", "", *deploy]
    out += ["", "### Reports", "", *(report_links(settings) or ["none written"]), "", ""]
    return "\n".join(out)


def finish_text(facts: RunFacts, settings: Settings) -> str:
    mark = ":white_check_mark:" if facts.outcome == "succeeded" else ":x:"
    failed = [label for label, gate in sorted(facts.gates.items()) if not gate.passed and gate.blocking]
    text = (f"{mark} Nexus pipeline run {facts.run_id[:8]} {facts.outcome} in {facts.seconds:.0f} s: "
            f"{len(facts.built)} built, {len(facts.pulled)} pulled, {len(current_images(facts, settings))} current, "
            f"{len(facts.failed)} failed; {release_line(facts, settings)}")
    if failed:
        text += f"; failed gates: {', '.join(failed[:10])}" + (" …" if len(failed) > 10 else "")
    if facts.broken:
        text += f"; broken steps: {', '.join(sorted(facts.broken))}"
    return text
