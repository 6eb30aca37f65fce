"""Notifications from the run itself, wherever it was started (nexus-agent, the UI's launchpad, the
sensor, the workflow): a Dagster logger of the `nexus_pipeline` job (its default run config names
it, so every run of the job has it, with or without a daemon) that watches the run's own events.

- the run starts (the run's first event): a Slack message;
- a gate fails (an ERROR check evaluation): a Slack message naming it and its reason;
- the run ends (success, failure or cancel): a Slack message with the release, and the Markdown
  summary appended to GITHUB_STEP_SUMMARY.

Each happens once per run: the run's start and end events exist only in the process that runs
the job (a multiprocess run's steps see their own events only), and a process never sends one
kind twice for a run id. Slack (SLACK_WEBHOOK_URL, or the guide's SLACK_WEBHOOK) is posted from a
daemon thread with a short timeout (NEXUS_NOTIFY_TIMEOUT, default 3 s); the run waits for pending
posts at its end at most that long, and a failed, refused or hung webhook is one warning line on
stderr, never the URL (a secret: it is the credential), never a failed run."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import requests

from nexus_assets.automation.summary import RunFacts, finish_text, markdown_summary
from nexus_assets.core.keys import PIPELINE_JOB
from nexus_assets.core.settings import Settings

SLACK_ENV = ("SLACK_WEBHOOK_URL", "SLACK_WEBHOOK")
_SENT: set[tuple[str, str]] = set()  # (run id, kind) already sent by this process
_SENT_LOCK = threading.Lock()
_STEP_END = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
_RUN_END = {dg.DagsterEventType.RUN_SUCCESS: "succeeded", dg.DagsterEventType.RUN_FAILURE: "failed",
            dg.DagsterEventType.RUN_CANCELED: "canceled"}


def notify_timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("NEXUS_NOTIFY_TIMEOUT") or 3.0))
    except ValueError:
        return 3.0


def _once(run_id: str, kind: str) -> bool:
    with _SENT_LOCK:
        if (run_id, kind) in _SENT:
            return False
        _SENT.add((run_id, kind))
        return True


@dataclass
class Webhook:
    """A Slack incoming webhook: each message posted from a thread of its own."""

    url: str = field(repr=False)  # the credential: never in a repr, message or log
    timeout: float = 3.0
    pending: list[threading.Thread] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls) -> Webhook | None:
        url = next((os.environ[name] for name in SLACK_ENV if os.environ.get(name)), "")
        return cls(url, notify_timeout()) if url else None

    def post(self, text: str) -> None:
        thread = threading.Thread(target=self._send, args=(text,), name="nexus-notify", daemon=True)
        thread.start()
        self.pending.append(thread)

    def _send(self, text: str) -> None:
        try:
            response = requests.post(self.url, json={"text": text}, timeout=(self.timeout, self.timeout))
            if response.status_code >= 300:
                self._problem(f"the webhook answered HTTP {response.status_code}")
        except requests.Timeout:
            self._problem(f"no answer within {self.timeout:g}s")
        except requests.RequestException as exc:  # its text names the URL: say the kind only
            self._problem(f"{type(exc).__name__} (could not reach the webhook)")

    def _problem(self, what: str) -> None:
        self.problems.append(what)
        print(f"[nexus] WARNING Slack notification not delivered: {what}; the run goes on", file=sys.stderr,
              flush=True)

    def wait(self) -> None:
        """Wait for the posts still going, at most the timeout in all (a hung one is left behind)."""
        deadline = time.monotonic() + self.timeout
        for thread in self.pending:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.pending = [t for t in self.pending if t.is_alive()]


class _RunWatcher(logging.Handler):
    """Reads the run's events as they are logged and notifies at start, failed gates and end."""

    def __init__(self, settings: Settings, run_id: str, job_name: str) -> None:
        super().__init__(logging.DEBUG)
        self.settings, self.run_id, self.job_name = settings, run_id, job_name
        self.facts = RunFacts(run_id=run_id, job_name=job_name, started=time.time())
        self.webhook = Webhook.from_env()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            meta = getattr(record, "dagster_meta", None) or {}
            event = meta.get("dagster_event")
            if event is not None and meta.get("run_id", self.run_id) == self.run_id:
                self._on(event)
        except Exception as exc:  # noqa: BLE001 - a notification never breaks the run
            print(f"[nexus] WARNING notification skipped: {type(exc).__name__}", file=sys.stderr, flush=True)

    def _on(self, event: dg.DagsterEvent) -> None:
        kind = event.event_type
        if kind == dg.DagsterEventType.RUN_START:
            if self.webhook and _once(self.run_id, "start"):
                self.facts.origin = _origin(self.run_id)
                self.webhook.post(start_text(self.facts, self.settings))
            return
        gate = self.facts.add(event)
        if gate is not None and self.webhook and _once(self.run_id, f"gate {gate[0]}"):
            self.webhook.post(gate_text(self.run_id, *gate))
        if kind in _STEP_END and self.webhook and self.webhook.pending:
            # a multiprocess run's step process ends with its step: its posts go first (bounded)
            self.webhook.wait()
        if kind in _RUN_END and _once(self.run_id, "end"):
            self.facts.origin = self.facts.origin or _origin(self.run_id)
            finish(self.facts, _RUN_END[kind], self.settings, self.webhook)


def start_text(facts: RunFacts, settings: Settings) -> str:
    return (f":arrow_forward: Nexus pipeline run {facts.run_id[:8]} started ({facts.origin or 'origin unknown'}; "
            f"{settings.repo.name}, version {settings.version})")


def gate_text(run_id: str, gate: str, reason: str) -> str:
    return f":x: Nexus run {run_id[:8]}: gate {gate} failed: {reason}"


def finish(facts: RunFacts, outcome: str, settings: Settings, webhook: Webhook | None,
           instance: dg.DagsterInstance | None = None) -> None:
    """The end of a run: the step summary (GITHUB_STEP_SUMMARY) and the last Slack message."""
    facts.outcome = outcome
    facts.fill_from_instance(instance)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(markdown_summary(facts, settings))
        except OSError as exc:
            print(f"[nexus] WARNING step summary not written to {summary}: {exc.strerror}", file=sys.stderr)
    if webhook:
        webhook.post(finish_text(facts, settings))
        webhook.wait()


def _origin(run_id: str) -> str:
    """cli, sensor or ui, from the run's tag, when the run is in the instance under DAGSTER_HOME;
    "" when the run cannot be read."""
    run = _stored_run(run_id)
    if run is None:
        return ""
    return run.tags.get("nexus/origin") or "ui"


def _stored_run(run_id: str) -> Any:
    if not os.environ.get("DAGSTER_HOME"):
        return None
    try:
        return dg.DagsterInstance.get().get_run_by_id(run_id)
    except Exception:  # noqa: BLE001 - no instance here (or busy): the tag is unknown, nothing more
        return None


def notify_logger(settings: Settings) -> dg.LoggerDefinition:
    """The job's `notify` logger for settings' working copy (where the summary's reports are)."""

    @dg.logger(config_schema={}, description="Slack messages (SLACK_WEBHOOK_URL) and the GitHub step summary (GITHUB_STEP_SUMMARY) "
                           "for this run: start, each failed gate, the end with the release.")
    def nexus_notify(init_context: dg.InitLoggerContext) -> logging.Logger:
        run_id = init_context.run_id or "unknown"
        log = logging.getLogger(f"nexus_assets.notify.{run_id}")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        job = init_context.job_def.name if init_context.job_def else PIPELINE_JOB
        if not (os.environ.get("GITHUB_STEP_SUMMARY") or Webhook.from_env()):
            log.handlers = [logging.NullHandler()]  # nothing to notify (and no "last resort" stderr lines)
            return log
        log.handlers = [_RunWatcher(settings, run_id, job)]
        return log

    return nexus_notify


__all__ = ["SLACK_ENV", "Webhook", "finish", "gate_text", "notify_logger", "notify_timeout", "start_text"]
