"""What every test stage shares: its result record (StageResult) and its bookkeeping (Stage:
log file, clock and timeout, containers and networks to remove, result builder).

Split out of `service_tests` so that `service_tests` (lint, unit, integration) and `verify.e2e`
(the compose run) both build on it without importing each other.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nexus_assets.core.fileio import naming
from nexus_assets.core.masking import mask_secrets, mask_tree


@dataclass(frozen=True)
class StageResult:
    """What one stage of one service did. A skipped stage has passed=True and skipped=True; a
    stage that could not run here (its infrastructure's image is not available) has
    passed=False and skipped=True: "not run", neither a pass nor a failure. A stage with no tests
    to run is passed=False, skipped=True and no_tests=True: "no tests", never a pass (whether it
    blocks is the repository's [tests] no_tests, policy.acceptance)."""

    service: str
    stage: str  # "lint" | "unit" | "integration" | "e2e"
    passed: bool
    skipped: bool
    reason: str
    seconds: float
    log_path: str
    details: dict[str, Any] = field(default_factory=dict)
    containers: int = 0  # test containers this stage started
    no_tests: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain JSON-serializable dict."""
        return asdict(self)


class Stage:
    """Log file, clock and result builder shared by the stages."""

    def __init__(self, name: str, stage: str, log_dir: Path, timeout: float):
        """Open <log_dir>/test_results_<name>_<stage>.log and start the clock."""
        self.name, self.stage, self.timeout = name, stage, timeout
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"test_results_{name}_{stage}.log"
        # Open as long as the stage runs; result() closes it.
        self.log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.details: dict[str, Any] = {}
        self.containers = 0
        self.running: list[Any] = []  # containers to remove before the result is written
        self.networks: list[Any] = []  # test networks to remove after those containers
        # Values the stage's containers were given that are secrets (target.compose_runtime): masked
        # in its log, its reason and its details, whatever the service prints.
        self.secrets: list[str] = []
        self.write(f"# {stage} stage of {name} (timeout {timeout:g}s)")

    def write(self, text: str) -> None:
        """Append text to the log as one line, flushed at once."""
        if self.secrets:
            text = mask_secrets(text, self.secrets)
        with naming(self.log_path):  # a full disk names the log
            self.log.write(text if text.endswith("\n") else text + "\n")
            self.log.flush()

    def remaining(self) -> float:
        """Seconds left before the stage's timeout (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def timed_out(self) -> str:
        """The reason of a stage that ran out of time."""
        return f"timed out after {self.timeout:g}s"

    def cleanup(self) -> None:
        """Remove every container this stage started (force: a hung one is killed), then its
        networks (a network cannot go while a container is attached to it). Notes go to the
        log while it is open (a shared container may outlive the stage that started it)."""
        note = self.write if not self.log.closed else (lambda text: None)
        while self.running:
            container = self.running.pop()
            try:
                container.remove(force=True, v=True)
                note(f"# removed container {container.id[:12]}")
            except Exception as exc:  # already gone, or the engine is going away
                note(f"# could not remove container {container.id[:12]}: {exc}")
        while self.networks:
            network = self.networks.pop()
            try:
                network.remove()
                note(f"# removed network {network.name}")
            except Exception as exc:
                note(f"# could not remove network {network.name}: {exc}")

    def result(self, passed: bool, reason: str, skipped: bool = False) -> StageResult:
        """Log the outcome, close the log and return the StageResult."""
        seconds = round(time.monotonic() - self.started, 2)
        if self.secrets:
            reason, self.details = mask_secrets(reason, self.secrets), mask_tree(self.details, self.secrets)
        state = ("NOT RUN" if skipped and not passed else "SKIPPED" if skipped else "PASSED" if passed else "FAILED")
        self.write(f"# result: {state}: {reason} ({seconds}s)")
        with naming(self.log_path):
            self.log.close()
        return StageResult(self.name, self.stage, passed, skipped, reason, seconds, str(self.log_path),
                           self.details, self.containers)

    def no_tests(self, reason: str) -> StageResult:
        """The result of a stage with no tests to run: "no tests", neither passed nor failed."""
        self.write(f"# result: NO TESTS: {reason}")
        self.log.close()
        return StageResult(self.name, self.stage, False, True, f"no tests: {reason}", 0.0, str(self.log_path),
                           self.details, 0, no_tests=True)


def docker_errors() -> tuple[type[Exception], tuple[type[Exception], ...]]:
    """(refusal, lost engine): the docker SDK exception types for an engine that answered
    with an error, and for one that could not be reached (docker is imported only when called)."""
    import docker.errors
    import requests

    return docker.errors.APIError, (docker.errors.DockerException, requests.exceptions.RequestException)


@dataclass(frozen=True)
class ServiceTests:
    """The per-service test stages, handed to the image step by definitions.py, so that the
    images stage runs the verify stage's tests without importing it."""

    lint: Any  # (service, log_dir, *, timeout) -> StageResult
    unit: Any  # (client, service, image_id, log_dir, *, timeout) -> StageResult
    integration: Any  # (client, service, image_id, log_dir, *, timeout) -> StageResult
    # Both against one container: (client, service, image_id, log_dir, *, timeout) -> (unit, integration).
    # None: the image step calls unit and then integration.
    unit_and_integration: Any = None
    # Lint's result carried in the image (verify.lint_record): (service, lint StageResult) -> the
    # labels to build the image with; and for an image from the registry cache, (service,
    # log_dir, its labels, where it came from, *, timeout) -> the lint StageResult those labels
    # carry, or None to run lint. None: no label written, lint runs on a cache hit too.
    lint_labels: Any = None
    lint_from_label: Any = None


@dataclass(frozen=True)
class Publisher:
    """The publish stage, handed to the image step by definitions.py (as ServiceTests is): the
    specs of pushed/<service> and pushed_images, and the function that pushes. They live in
    the image step's multi-asset because Dagster skips a whole step when one upstream output
    it depends on was not yielded (dagster-io/dagster#9408): within one multi-asset, the
    dependency of pushed/<service> on image/<service> is lineage and staleness, never a
    reason to skip the other services."""

    specs: Any  # (service names, registry, version) -> list[dg.AssetSpec]
    # (context, docker_engine, settings, names) -> the step's pushes, a context manager (leaving
    # it on an error or interrupt stops the pushes in flight) with
    #   submit(name, {"image_id", "tests", "cache_key", "pmmg_policy"}): an image built and tested now, pushed
    #   at once (refused when its PMMG verdict failed);
    #   ready(): the events of pushes ended so far, without waiting;
    #   finish(built, failed: {service: reason}): the rest of the events, pushed_images last.
    start: Any

