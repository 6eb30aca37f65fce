"""Lint's result carried in the image's label io.nexus-assets.lint and read back for an image
from the registry cache, without an engine: the label is small and carries the evidence, it
stands for a lint run only while what lint reads is the same, and an image without it is linted."""

from __future__ import annotations

import json
from pathlib import Path

from nexus_assets.target.services import find_services
from nexus_assets.verify import lint_record
from nexus_assets.verify.service_tests import run_lint

NODE, PYTHON = "backend-api", "analytics"
SOURCE = "127.0.0.1:5000/x/nexus/backend-api:cache-abc (127.0.0.1:5000/x/nexus/backend-api@sha256:1), built from commit 0123"


def _service(repo: Path, name: str):
    return {s.name: s for s in find_services(repo)}[name]


def _warned(service) -> None:
    """Two warning-level hadolint findings (DL3003, DL3025): reported, lint still passes."""
    text = service.dockerfile.read_text().replace('CMD ["node", "server.js"]', "RUN cd /tmp && true\nCMD node server.js")
    service.dockerfile.write_text(text)


def test_the_label_is_small_carries_the_evidence_and_no_clock(sample_copy, tmp_path):
    service = _service(sample_copy, NODE)
    _warned(service)
    result = run_lint(service, tmp_path / "reports")
    assert result.passed, result.reason
    value = lint_record.label_value(service, result)
    assert value is not None and len(value) < 1000, value
    record = json.loads(value)
    assert record["passed"] is True and record["reason"] == result.reason
    assert record["levels"] == {"warning": 2}
    assert sorted(f[0] for f in record["findings"]) == ["DL3003", "DL3025"] and record["more_findings"] == 0
    assert record["js_files"] == result.details["js_files"] >= 2
    assert record["tools"]["hadolint"].startswith("Haskell Dockerfile Linter") and record["tools"]["node"]
    # Lint run again on the same files gives the same label: nothing of the clock in it.
    assert lint_record.label_value(service, run_lint(service, tmp_path / "again")) == value
    assert lint_record.labels(service, result) == {lint_record.LABEL: value}


def test_many_findings_are_counted_not_listed(sample_copy, tmp_path):
    service = _service(sample_copy, NODE)
    service.dockerfile.write_text(service.dockerfile.read_text() + "RUN cd /tmp && true\n" * 15)
    result = run_lint(service, tmp_path / "reports")
    record = json.loads(lint_record.label_value(service, result) or "{}")
    assert len(record["findings"]) == lint_record.MAX_FINDINGS
    assert record["more_findings"] == len(result.details["hadolint"]["findings"]) - lint_record.MAX_FINDINGS > 0


def test_a_cached_label_stands_for_lint_and_writes_its_log(sample_copy, tmp_path):
    service = _service(sample_copy, NODE)
    _warned(service)
    ran = run_lint(service, tmp_path / "built")
    labels = {"io.nexus-assets.service": NODE, **lint_record.labels(service, ran)}
    result = lint_record.from_label(service, tmp_path / "reports", labels, SOURCE)
    assert result is not None and result.passed and not result.skipped and result.containers == 0
    assert result.reason == f"passed when built: {ran.reason} (from the registry cache {SOURCE})"
    assert result.details["from_cache"] == SOURCE
    assert result.details["hadolint"]["levels"] == {"warning": 2}
    assert {f["code"] for f in result.details["hadolint"]["findings"]} == {"DL3003", "DL3025"}
    assert result.details["js_files"] == ran.details["js_files"]
    log = Path(result.log_path)
    assert log == tmp_path / "reports" / f"test_results_{NODE}_lint.log"
    text = log.read_text()
    assert "not run again: the image comes from the registry cache" in text and SOURCE in text
    assert "line" in text and "DL3025 warning" in text and "PASSED: passed when built" in text
    assert "$ " not in text, "no command ran"


def test_a_label_that_cannot_stand_for_lint_here_leaves_lint_to_run(sample_copy, tmp_path):
    service = _service(sample_copy, PYTHON)
    ran = run_lint(service, tmp_path / "built")
    labels = lint_record.labels(service, ran)
    assert lint_record.from_label(service, tmp_path / "r0", labels, SOURCE) is not None
    # An image of an earlier recipe: no label; or one unreadable, or of another format.
    assert lint_record.from_label(service, tmp_path / "r1", {}, SOURCE) is None
    assert lint_record.from_label(service, tmp_path / "r2", {lint_record.LABEL: "{not json"}, SOURCE) is None
    other = json.loads(labels[lint_record.LABEL]) | {"format": lint_record.FORMAT + 1}
    assert lint_record.from_label(service, tmp_path / "r3", {lint_record.LABEL: json.dumps(other)}, SOURCE) is None
    # A lint that failed when built is never recorded as passed.
    failed = json.loads(labels[lint_record.LABEL]) | {"passed": False}
    assert lint_record.from_label(service, tmp_path / "r4", {lint_record.LABEL: json.dumps(failed)}, SOURCE) is None
    # A file lint reads but the cache key does not cover (kept out of the context by .dockerignore)
    # changed since the build: lint runs.
    (service.path / ".dockerignore").write_text("scratch.py\n")
    labels = lint_record.labels(service, run_lint(service, tmp_path / "built2"))
    (service.path / "scratch.py").write_text("def broken(:\n")
    assert lint_record.from_label(service, tmp_path / "r5", labels, SOURCE) is None
    # hadolint's configuration beside the Dockerfile counts too.
    (service.path / "scratch.py").unlink()
    assert lint_record.from_label(service, tmp_path / "r6", labels, SOURCE) is not None
    (service.path / ".hadolint.yaml").write_text("ignored: [DL3008]\n")
    assert lint_record.from_label(service, tmp_path / "r7", labels, SOURCE) is None


def test_another_hadolint_version_leaves_lint_to_run(sample_copy, tmp_path, monkeypatch):
    service = _service(sample_copy, PYTHON)
    labels = lint_record.labels(service, run_lint(service, tmp_path / "built"))
    real = lint_record.tool_version
    monkeypatch.setattr(lint_record, "tool_version", lambda binary: real(binary) + " (newer)")
    assert lint_record.from_label(service, tmp_path / "r", labels, SOURCE) is None
