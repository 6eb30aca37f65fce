"""The terminal's view of a run: the same lines the UI's run log shows, one per event, without
Dagster's run and step prefixes. Installed as the `console` logger of every job.

Without a terminal (CI, a pipe, the UI's run worker) every line is printed as it comes. At a
terminal, a live progress view (core/progress.py) stands below the lines and takes the place of
the per-service lines of work that went well (built and tested, pushed, SBOM, provenance:
hundreds at 100 services); warnings, failures and the stages' own lines still print, and
`nexus-agent run --verbose` prints the per-service lines too."""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from nexus_assets.core.progress import LiveProgress

# Dagster prefixes a step's message with "<job> - <run id> - <step> - "; the terminal drops it.
_PREFIX = re.compile(r"^\S+ - [0-9a-f]{8}-[0-9a-f-]{27} - (?:\S+ - )?")
# One line per service of work that went well: the live view counts them instead.
_PER_SERVICE = re.compile(r"^(?:(?:sbom|provenance)/\S+: |(?:built|pulled) \S+ .*passed$|pushed \S+@sha256:"
                          r"|already in the registry, not pushed again: )")
_VERBOSE = {"on": False}
_LIVE: dict[str, LiveProgress] = {}  # the live view of the run this process runs, by run id


def set_verbose(on: bool) -> None:
    """Per-service lines at a terminal too (nexus-agent run --verbose)."""
    _VERBOSE["on"] = on


def live_view_wanted() -> bool:
    """A person's terminal on stdout (NEXUS_PLAIN=1 or TERM=dumb ask for plain lines)."""
    return (sys.stdout.isatty() and os.environ.get("NEXUS_PLAIN") != "1"
            and os.environ.get("TERM", "") not in ("dumb", ""))


class _NexusFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        message = _message(record)
        step = meta.get("step_key")
        level = "" if record.levelno < logging.WARNING else record.levelname + " "
        # Dagster's own step failure message already names the step; ours say what failed.
        prefix = f"{step}: " if step and record.levelno >= logging.ERROR and step not in message else ""
        return f"[nexus] {level}{prefix}{message}"


def _message(record: logging.LogRecord) -> str:
    meta = getattr(record, "dagster_meta", None) or {}
    return _PREFIX.sub("", meta.get("orig_message") or record.getMessage())


class _ConsoleHandler(logging.Handler):
    """Plain lines on stdout, or lines above a live view fed with the run's events."""

    def __init__(self, live: LiveProgress | None) -> None:
        super().__init__()
        self.setFormatter(_NexusFormatter())
        self.live = live

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is not None:
            if self.live is not None:
                self.live.event(event)
            return
        if not _ours(record):
            return
        text = self.format(record)
        if self.live is not None and self.live.running:
            if record.levelno < logging.WARNING and not _VERBOSE["on"] and _PER_SERVICE.match(_message(record)):
                return
            self.live.line(text)
            return
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


@dg.logger(config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
           description="One [nexus] line per message of the pipeline's own steps, on stdout (with a live "
                       "progress view at a terminal).")
def nexus_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    log = logging.getLogger("nexus_assets.console")
    log.setLevel(logging.DEBUG)  # Dagster's events (DEBUG) feed the live view; our lines filter by level below
    log.propagate = False
    # Dagster makes a run's loggers more than once in its process: one view per run.
    live = _LIVE.get(init_context.run_id or "")
    for old in log.handlers:  # the previous run's view, if it never saw its end
        if isinstance(old, _ConsoleHandler) and old.live is not None and old.live is not live:
            old.live.stop()
    if live is None and live_view_wanted():
        from nexus_assets.core.progress import LiveProgress  # rich: only at a terminal

        job = init_context.job_def
        live = LiveProgress(sys.stdout, job.asset_layer.selected_asset_keys if job is not None else ())
        _LIVE.clear()
        _LIVE[init_context.run_id or ""] = live
    handler = _ConsoleHandler(live)
    handler.addFilter(_LevelAtLeast(logging.getLevelName(init_context.logger_config["log_level"])))
    log.handlers = [handler]
    return log


class _LevelAtLeast(logging.Filter):
    """The configured level for our lines; Dagster's events pass whatever their level."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        return meta.get("dagster_event") is not None or record.levelno >= self.level


def _ours(record: logging.LogRecord) -> bool:
    """Only the messages the steps wrote: not Dagster's per-step engine events."""
    meta = getattr(record, "dagster_meta", None) or {}
    event = meta.get("dagster_event")
    # Dagster's own events (step started, failed with a stack trace, ...) stay in the run log;
    # nexus-agent prints one line per failure with its cause, so Dagster's "Dependencies for
    # step X failed ... Not executing" for every step after it is left there too.
    if event is not None:
        return False
    return not (record.getMessage().find("Dependencies for step ") >= 0 and "Not executing" in record.getMessage())
