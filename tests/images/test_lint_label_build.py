"""A miss lints before it builds, on the real engine: lint's result is in the built image's
label io.nexus-assets.lint, and a lint that fails still lets the image build and be tested
(its check fails), as before the cache was asked first; such a label never stands for lint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexus_assets.definitions import SERVICE_TESTS
from nexus_assets.images.outcome import build_and_test
from nexus_assets.resources import DockerEngine
from nexus_assets.target.services import find_services
from nexus_assets.verify import lint_record

pytestmark = [pytest.mark.docker]
NODE = "backend-api"


def test_a_failed_lint_is_in_the_label_and_the_image_still_builds_and_is_tested(
        sample_copy, settings_for, tmp_path, docker_client, remove_test_images):
    service = {s.name: s for s in find_services(sample_copy)}[NODE]
    (service.path / "broken.js").write_text("function broken( {\n")  # not loaded by the service: lint alone fails
    settings = settings_for(sample_copy)
    outcome = build_and_test(DockerEngine.from_env(), settings, service, None, SERVICE_TESTS)
    stages = {s.stage: s for s in outcome["stages"]}
    assert outcome["error"] is None and outcome["built"] is not None
    assert not stages["lint"].passed and "syntax errors in broken.js" in stages["lint"].reason
    assert stages["unit"].passed and stages["integration"].passed, outcome["stages"]
    labels = docker_client.images.get(outcome["built"]["image_id"]).labels
    record = json.loads(labels[lint_record.LABEL])
    assert record["passed"] is False and record["reason"] == stages["lint"].reason
    assert record["js_files"] == stages["lint"].details["js_files"] and record["inputs"]
    assert lint_record.from_label(service, tmp_path / "r", labels, "x") is None, "a failed lint is never reused"
    assert Path(stages["lint"].log_path).read_text().count("$ ") >= 2  # hadolint and node --check ran
