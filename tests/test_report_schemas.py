"""The JSON reports have typed models and JSON Schemas in schemas/: the schema files are what the
models export, real reports validate against them (with jsonschema, as an auditor would), the
files the assets write are unchanged byte for byte, and a report of the wrong shape is refused
naming the field."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import dagster as dg
import pytest
from jsonschema import Draft202012Validator

from nexus_assets.core.errors import ReportError
from nexus_assets.core.fileio import write_json
from nexus_assets.core.report_models import checked_report
from nexus_assets.definitions import PREPARE_ASSETS
from nexus_assets.discovery.inventory import discover
from nexus_assets.discovery.report import DiscoveryReport
from nexus_assets.parity.compare import compare
from nexus_assets.parity.report import DiscrepancyReport
from nexus_assets.parity.synopsis import parse_synopsis
from nexus_assets.resources import DockerEngine, NexusConfig
from nexus_assets.scaffold.report import ScaffoldReport
from nexus_assets.target.repo_config import load_repo_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SCRIPT = ROOT / "scripts" / "export_schemas.py"


def _load_exporter():
    spec = importlib.util.spec_from_file_location("export_schemas", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


exporter = _load_exporter()


def schema_errors(report: str, payload: object) -> list[str]:
    """Every way payload (as it would be read back from disk) breaks schemas/<report>.schema.json."""
    schema = json.loads(exporter.schema_path(report).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    data = json.loads(json.dumps(payload, default=str))
    return [f"{e.json_path}: {e.message}" for e in Draft202012Validator(schema).iter_errors(data)]


def written(tmp_path: Path, payload: object) -> bytes:
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    write_json(path, payload)
    return path.read_bytes()


def reports_of(repo: Path, **discover_kwargs) -> tuple[dict, dict]:
    inventory = discover(repo, **discover_kwargs)
    synopsis = parse_synopsis(repo / "docs" / "investor_synopsis.md", display_path="docs/investor_synopsis.md")
    return inventory, compare(synopsis, inventory, load_repo_config(repo), scaffolded=["ott-mini"])


def check_real(tmp_path: Path, inventory: dict, report: dict) -> None:
    """Both reports validate against the schema files, and going through the model (as the
    assets do before writing) leaves the written bytes unchanged."""
    for name, model, payload in (("discovery_parsed", DiscoveryReport, inventory),
                                 ("discrepancy_report", DiscrepancyReport, report)):
        assert schema_errors(name, payload) == []
        assert written(tmp_path, checked_report(model, payload, name)) == written(tmp_path, payload)


# --- (a) the schema files are what the models export ---------------------------------------

@pytest.mark.parametrize("report", sorted(exporter.SCHEMAS))
def test_schema_file_is_what_the_model_exports(report):
    path = exporter.schema_path(report)
    assert path.is_file(), f"{path} missing: run scripts/export_schemas.py"
    assert path.read_text(encoding="utf-8") == exporter.render(exporter.SCHEMAS[report]), \
        f"{path.name} differs from its model: run scripts/export_schemas.py and commit the result"
    Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_export_script_check_passes_on_the_committed_schemas(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_schemas_describe_every_field_for_auditors():
    """Every property of every report model carries a description or is a described model."""
    for report, model in exporter.SCHEMAS.items():
        schema = json.loads(exporter.schema_path(report).read_text(encoding="utf-8"))
        for name, definition in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
            assert definition.get("description"), f"{report}: {name} has no description"


# --- (b) real reports validate against the schema files ---------------------------------------

def test_sample_repo_reports_validate(sample_copy, tmp_path):
    inventory, report = reports_of(sample_copy)
    assert inventory["archive"]["ok"] is True and inventory["archive"]["kind"] == "folder"
    assert inventory["services"] and report["modules"]
    check_real(tmp_path, inventory, report)


@pytest.mark.parametrize("archive", ["none", "missing", "broken", "tarball"])
def test_nexus_mini_reports_validate_with_every_kind_of_archive(tmp_path, archive):
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", repo)
    kwargs: dict = {}
    if archive == "missing":
        kwargs["archive"] = tmp_path / "nexus-full-discovery.tar.gz"
    elif archive == "broken":
        with tarfile.open(repo / "nexus-discovery.tar.gz", "w:gz") as tf:
            info = tarfile.TarInfo("docker_ps.json")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
            tf.addfile(info)
    elif archive == "tarball":
        kwargs["archive"] = tmp_path / "nexus-full-discovery.tar.gz"
        with tarfile.open(kwargs["archive"], "w:gz") as tf:
            tf.add(FIXTURES / "discovery_archive", arcname="nexus-full-discovery")
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "fixture"], check=True)
    inventory, report = reports_of(repo, **kwargs)
    shape = inventory["archive"]
    assert (shape["present"], shape.get("ok"), "path" in shape) == {
        "none": (False, None, False), "missing": (False, None, True),
        "broken": (True, False, True), "tarball": (True, True, True)}[archive]
    assert (inventory["git"] is not None) == (archive == "tarball")
    families = [m for m in report["modules"] if m["family"]]
    assert families and all("family_members" in m for m in families)
    assert all("family_count" not in m for m in report["modules"] if not m["family"])
    check_real(tmp_path, inventory, report)


def test_reports_the_assets_write_validate_and_keep_their_bytes(sample_copy, tmp_path):
    """The real step B-D assets in-process (no engine: the containers list stays empty)."""
    work = tmp_path / "work"
    result = dg.materialize(PREPARE_ASSETS, resources={
        "nexus": NexusConfig(repo=str(sample_copy), workdir=str(work), registry="schemas.local", version="1.0.0"),
        "docker_engine": DockerEngine(base_url=f"unix://{tmp_path}/no-engine.sock", timeout_seconds=5),
    })
    assert result.success
    for name in ("discovery_parsed", "discrepancy_report", "scaffold_report"):  # the manifest: tests/publish
        path = work / "reports" / f"{name}.json"
        payload = json.loads(path.read_text(encoding="utf-8"))
        assert schema_errors(name, payload) == [], name
        rewritten = tmp_path / f"{name}.again.json"
        write_json(rewritten, payload)  # what the writer made of the same data before the models
        assert rewritten.read_bytes() == path.read_bytes(), name
    scaffold = json.loads((work / "reports" / "scaffold_report.json").read_text(encoding="utf-8"))
    assert any(row["created"] and row["port"] > 0 for row in scaffold["services"])


@pytest.mark.docker
def test_containers_of_the_real_engine_validate(sample_copy, tmp_path, docker_client, auth_service_container):
    name, _ = auth_service_container
    inventory, report = reports_of(sample_copy, docker_client=docker_client)
    assert any(c["name"] == name and c["status"] == "running" for c in inventory["containers"])
    assert any(e["source"] == "container" for m in report["modules"] for e in m["evidence"])
    check_real(tmp_path, inventory, report)


# --- (c) a report of the wrong shape is refused, naming the field -----------------------------

@pytest.fixture(scope="module")
def mini_reports(tmp_path_factory) -> tuple[dict, dict]:
    repo = tmp_path_factory.mktemp("mini") / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", repo)
    return reports_of(repo)


def test_wrong_type_is_refused_by_model_and_schema_naming_the_field(mini_reports):
    inventory = copy.deepcopy(mini_reports[0])
    inventory["services"][1]["exposed_ports"] = ["hunter2-not-a-port"]
    with pytest.raises(ReportError) as err:
        checked_report(DiscoveryReport, inventory, "reports/discovery_parsed.json")
    message = str(err.value)
    assert message.startswith("reports/discovery_parsed.json:")
    assert "services.1.exposed_ports.0" in message and "integer" in message
    assert "hunter2" not in message  # the value itself is never quoted
    assert schema_errors("discovery_parsed", inventory) == [
        "$.services[1].exposed_ports[0]: 'hunter2-not-a-port' is not of type 'integer'"]


def test_numbers_are_not_converted_from_strings(mini_reports):
    report = copy.deepcopy(mini_reports[1])
    report["parity_percent"] = "50.0"
    report["gate"]["passed"] = "yes"
    with pytest.raises(ReportError) as err:
        checked_report(DiscrepancyReport, report, "reports/discrepancy_report.json")
    assert "parity_percent" in str(err.value) and "gate.passed" in str(err.value)
    errors = schema_errors("discrepancy_report", report)
    assert any(e.startswith("$.parity_percent:") for e in errors)
    assert any(e.startswith("$.gate.passed:") for e in errors)


def test_unknown_key_and_family_fields_on_a_plain_module_are_refused(mini_reports):
    report = copy.deepcopy(mini_reports[1])
    plain = next(i for i, m in enumerate(report["modules"]) if not m["family"])
    report["modules"][plain]["family_members"] = []
    report["surprise"] = 1
    with pytest.raises(ReportError) as err:
        checked_report(DiscrepancyReport, report, "reports/discrepancy_report.json")
    assert "surprise" in str(err.value) and f"modules.{plain}" in str(err.value)
    errors = schema_errors("discrepancy_report", report)
    assert any("surprise" in e for e in errors)
    assert any(e.startswith(f"$.modules[{plain}]") for e in errors)


def test_scaffold_report_with_a_wrong_type_is_refused():
    rows = {"services": [{"name": "ott-mini", "language": "node", "port": "3001", "created": True,
                          "reason": "created"}]}
    with pytest.raises(ReportError, match=r"services\.0\.port"):
        checked_report(ScaffoldReport, rows, "reports/scaffold_report.json")
    assert schema_errors("scaffold_report", rows) == ["$.services[0].port: '3001' is not of type 'integer'"]
    rows["services"][0]["port"] = 3001
    assert checked_report(ScaffoldReport, rows, "reports/scaffold_report.json") == rows
    assert schema_errors("scaffold_report", rows) == []
