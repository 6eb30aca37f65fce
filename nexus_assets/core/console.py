"""The terminal's view of a run: the same lines the UI's run log shows, one per event, without
Dagster's run and step prefixes. Installed as the `console` logger of every job."""

from __future__ import annotations

import logging
import re
import sys

import dagster as dg

# Dagster prefixes a step's message with "<job> - <run id> - <step> - "; the terminal drops it.
_PREFIX = re.compile(r"^\S+ - [0-9a-f]{8}-[0-9a-f-]{27} - (?:\S+ - )?")


class _NexusFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        message = _PREFIX.sub("", meta.get("orig_message") or record.getMessage())
        step = meta.get("step_key")
        level = "" if record.levelno < logging.WARNING else record.levelname + " "
        # Dagster's own step failure message already names the step; ours say what failed.
        prefix = f"{step}: " if step and record.levelno >= logging.ERROR and step not in message else ""
        return f"[nexus] {level}{prefix}{message}"


@dg.logger(config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
           description="One [nexus] line per message of the pipeline's own steps, on stdout.")
def nexus_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    log = logging.getLogger("nexus_assets.console")
    log.setLevel(init_context.logger_config["log_level"])
    log.propagate = False
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_NexusFormatter())
        handler.addFilter(_ours)
        log.addHandler(handler)
    return log


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
