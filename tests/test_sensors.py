"""The repository change sensor asks for the stale assets only, once per repository state."""

from __future__ import annotations

import dagster as dg
import pytest

from nexus_assets.cli.pipeline import open_instance, run_pipeline
from nexus_assets.definitions import build_definitions
from nexus_assets.scaffold.generate import scaffold_service
from nexus_assets.synthetic import SCAFFOLD_CONFIG, generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _evaluate(settings, instance, cursor=None):
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("repo_change_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                      definitions=defs)
    return sensor(context), context


def test_sensor_requests_only_what_changed(tmp_path, settings_for, monkeypatch, remove_test_images):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    repo = tmp_path / "repo"
    generate_monorepo(repo, 2)
    settings = settings_for(repo)
    assert run_pipeline(settings).ok
    instance = open_instance(settings)

    quiet, _ = _evaluate(settings, instance)
    assert isinstance(quiet, dg.SkipReason) and "nothing stale" in quiet.skip_message

    (repo / "services" / "node-svc-002" / "server.js").open("a").write("\n// changed\n")
    request, context = _evaluate(settings, instance)
    assert isinstance(request, dg.RunRequest)
    keys = {k.to_user_string() for k in request.asset_selection}
    assert keys == {"workspace", "discovery_parsed", "discrepancy_report", "scaffolded_services",
                    "image/node-svc-002", "artifacts_manifest"}
    repeat, _ = _evaluate(settings, instance, cursor=context.cursor)
    assert isinstance(repeat, dg.SkipReason), "one request per repository state"

    assert scaffold_service(repo, "node-svc-new", "new", SCAFFOLD_CONFIG).created
    request, _ = _evaluate(settings, instance, cursor=context.cursor)
    # The definitions are rebuilt here, as a code location reload would: the new service is an asset.
    assert "image/node-svc-new" in {k.to_user_string() for k in request.asset_selection}
