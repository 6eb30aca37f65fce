"""The live view of a run at a terminal (rich): the stage running, per kind of per-service work
(images, pushes, SBOMs, provenance, then the release's documents) done/total with what is
failing, the elapsed time and an estimate; the lines a person needs (stages, warnings, failures)
print above it. Fed with the run's own Dagster events by the console logger (core/console.py); the
totals are the assets the run selected."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import IO

import dagster as dg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Per-service asset kinds (the first part of the key), in the order a run does them.
KINDS = {"image": "images built and tested", "pushed": "images pushed", "sbom": "SBOMs",
         "provenance": "provenance signed"}
OTHER = "reports and release"
_END = {dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED}


class LiveProgress:
    def __init__(self, stream: IO[str], selected: Iterable[dg.AssetKey] = ()) -> None:
        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(TextColumn("{task.description:<26}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                                 TextColumn("{task.fields[failing]}", style="red"), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=self.console, redirect_stdout=False,
                                 redirect_stderr=False, refresh_per_second=4)
        self.started = time.monotonic()
        self.stage = self.progress.add_task("stage: starting", total=None, failing="")
        self.tasks: dict[str, TaskID] = {}
        self.failing: dict[str, set[str]] = {}
        self.running = True
        for key in sorted(selected, key=lambda k: list(KINDS).index(self._kind(k)) if self._kind(k) in KINDS else 9):
            self._plan(key)
        self.progress.start()

    def line(self, text: str) -> None:
        """A line above the live view."""
        self.progress.console.print(text, markup=False, soft_wrap=True)

    def event(self, event: dg.DagsterEvent) -> None:
        if not self.running:
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START and event.step_key:
            self.progress.update(self.stage, description=f"stage: {event.step_key}"[:26], refresh=True)
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            self._advance(event.step_materialization_data.materialization.asset_key)
        elif kind == dg.DagsterEventType.ASSET_OBSERVATION:
            observation = event.asset_observation_data.asset_observation
            status = observation.metadata.get("status")
            if status is not None and status.value in ("failed", "not_pushed"):
                self._advance(observation.asset_key, failed=status.value == "failed")
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.asset_check_evaluation_data
            if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
                self._fail(check.asset_key)
        elif kind in _END:
            self.stop()

    def _kind(self, key: dg.AssetKey) -> str:
        return key.path[0] if len(key.path) > 1 and key.path[0] in KINDS else OTHER

    def _task(self, kind: str) -> TaskID:
        if kind not in self.tasks:
            self.tasks[kind] = self.progress.add_task(KINDS.get(kind, OTHER), total=0, failing="")
        return self.tasks[kind]

    def _plan(self, key: dg.AssetKey) -> None:
        task = self._task(self._kind(key))
        self.progress.update(task, total=(self.progress.tasks[task].total or 0) + 1)

    def _advance(self, key: dg.AssetKey, failed: bool = False) -> None:
        kind = self._kind(key)
        if kind in self.tasks:
            self.progress.advance(self.tasks[kind])
        if failed:
            self._fail(key)

    def _fail(self, key: dg.AssetKey) -> None:
        kind = self._kind(key)
        names = self.failing.setdefault(kind, set())
        names.add(key.path[-1])
        shown = ", ".join(sorted(names)[:3]) + (" …" if len(names) > 3 else "")
        self.progress.update(self._task(kind), failing=f"{len(names)} failing: {shown}", refresh=True)

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.progress.update(self.stage, description="stage: done", total=1, completed=1)
            self.progress.stop()
