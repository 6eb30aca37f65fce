"""Both names of a service (compose name and folder) in discovery and parity, the compose file the
build uses with the others listed, and every synopsis module in the report with its line; on real
files, through discover() and compare() and through the assets in-process."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.core.report_models import checked_report
from nexus_assets.definitions import PREPARE_ASSETS
from nexus_assets.discovery.inventory import discover
from nexus_assets.discovery.report import DiscoveryReport
from nexus_assets.parity.compare import compare
from nexus_assets.parity.report import DiscrepancyReport
from nexus_assets.parity.synopsis import parse_synopsis
from nexus_assets.resources import DockerEngine, NexusConfig
from nexus_assets.target.repo_config import DEFAULTS
from tests.conftest import write

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONFIG = {"parity": dict(DEFAULTS["parity"])}

SYNOPSIS = """# Platform
## Required Modules (4 Total)
### Core (3)
- **auth** - sign-in
- **billing** - invoices
- **media-encoder** - transcodes
### Tools (1)
- **search** - finds things
"""

STACK = """services:
  auth:
    build: ./services/identity
  billing:
    build:
      context: ./services/billing-service
      args:
        PLAN_TOKEN: ${PLAN_TOKEN}
  media-encoder:
    build: ./services/media/encoder
  ops-tool:
    build: ./services/ops_tooling
  postgres:
    image: postgres:15-alpine
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for folder in ("identity", "billing-service", "media/encoder", "ops_tooling", "search"):
        write(root / "services" / folder / "Dockerfile", "FROM node:18-alpine\nCOPY . .\n")
    write(root / "docs" / "investor_synopsis.md", SYNOPSIS)
    write(root / "docker-compose.yml", STACK)
    write(root / "docker-compose.prod.yml", "services:\n  search:\n    build: ./services/search\n")
    write(root / "docker-compose.full.yml", STACK)
    write(root / ".env", "PLAN_TOKEN=plan-secret-value-77\n")
    return root


def reports(repo: Path, compose_file: str | None = None) -> tuple[dict, dict]:
    inventory = discover(repo, compose_file=compose_file)
    synopsis = parse_synopsis(repo / "docs" / "investor_synopsis.md", display_path="docs/investor_synopsis.md")
    report = compare(synopsis, inventory, CONFIG)
    checked_report(DiscoveryReport, inventory, "reports/discovery_parsed.json")
    checked_report(DiscrepancyReport, report, "reports/discrepancy_report.json")
    return inventory, report


def test_discovery_reports_both_names_and_the_stack_it_builds(repo):
    inventory, _ = reports(repo)
    folders = {s["path"]: (s["name"], s["compose_name"], s["compose_file"]) for s in inventory["services"]}
    assert folders == {
        "services/identity": ("identity", "auth", "docker-compose.yml"),
        "services/billing-service": ("billing-service", "billing", "docker-compose.yml"),
        "services/media/encoder": ("encoder", "media-encoder", "docker-compose.yml"),
        "services/ops_tooling": ("ops_tooling", "ops-tool", "docker-compose.yml"),
        "services/search": ("search", None, None),  # only the prod file builds it: a folder service here
    }
    stack = inventory["stack"]
    assert (stack["compose_file"], stack["chosen_by"]) == ("docker-compose.yml", "default name")
    assert stack["other_compose_files"] == ["docker-compose.full.yml", "docker-compose.prod.yml"]
    assert [(s["name"], s["compose_name"], s["folder"], s["compose_file"]) for s in stack["services"]] == [
        ("auth", "auth", "services/identity", "docker-compose.yml"),
        ("billing", "billing", "services/billing-service", "docker-compose.yml"),
        ("media-encoder", "media-encoder", "services/media/encoder", "docker-compose.yml"),
        ("ops-tool", "ops-tool", "services/ops_tooling", "docker-compose.yml"),
        ("search", None, "services/search", None),
    ]
    billing = next(s for s in stack["services"] if s["name"] == "billing")
    assert billing["build_arg_keys"] == ["PLAN_TOKEN"]
    assert "plan-secret-value-77" not in json.dumps(inventory)


def test_another_stack_file_is_reported_with_the_others(repo):
    inventory, report = reports(repo, "docker-compose.prod.yml")
    assert inventory["stack"]["compose_file"] == "docker-compose.prod.yml"
    assert inventory["stack"]["chosen_by"] == "NEXUS_COMPOSE_FILE"
    assert inventory["stack"]["other_compose_files"] == ["docker-compose.full.yml", "docker-compose.yml"]
    assert report["stack"] == {"compose_file": "docker-compose.prod.yml", "chosen_by": "NEXUS_COMPOSE_FILE",
                               "other_compose_files": ["docker-compose.full.yml", "docker-compose.yml"]}
    assert {s["name"]: s["compose_name"] for s in inventory["stack"]["services"]}["search"] == "search"
    _, missing = reports(repo, "docker-compose.nope.yml")
    assert missing["stack"]["compose_file"] is None
    assert missing["stack"]["chosen_by"] == "NEXUS_COMPOSE_FILE names no compose file"


def test_parity_evidence_carries_both_names_and_a_folder_matches_by_its_compose_name(repo):
    _, report = reports(repo)
    rows = {m["name"]: m for m in report["modules"]}
    assert all(rows[n]["status"] == "present" for n in ("auth", "media-encoder", "search"))
    # billing's build arg carries a secret: the service is refused, so no evidence of its module.
    assert rows["billing"]["status"] == "missing" and rows["billing"]["evidence"] == []
    assert rows["billing"]["refused"] == "billing: build arg PLAN_TOKEN carries a secret (its name names a secret)"
    assert "fix the refused service(s)" in report["action"] and "auto-scaffold" not in report["action"]
    auth = [(e["source"], e["name"], e["compose_name"], e["folder"]) for e in rows["auth"]["evidence"]]
    # The folder `identity` is the auth module: compose names it so.
    assert ("folder", "identity", "auth", "services/identity") in auth
    assert ("compose", "auth", "auth", "services/identity") in auth
    encoder = [(e["source"], e["name"], e["compose_name"], e["folder"]) for e in rows["media-encoder"]["evidence"]]
    assert ("folder", "encoder", "media-encoder", "services/media/encoder") in encoder
    assert report["non_canonical_services"] == [{"name": "ops-tool", "sources": ["compose:docker-compose.full.yml",
                                                                                 "compose:docker-compose.yml"],
                                                 "other_names": ["ops_tooling"]},
                                                {"name": "ops_tooling", "sources": ["folder"],
                                                 "other_names": ["ops-tool"]},
                                                {"name": "postgres", "sources": ["compose:docker-compose.full.yml",
                                                                                 "compose:docker-compose.yml"],
                                                 "other_names": []}]
    assert report["stack"]["compose_file"] == "docker-compose.yml"


@pytest.mark.parametrize("synopsis", sorted(p.name for p in (FIXTURES / "synopses").glob("*.md")))
def test_every_module_of_the_synopsis_is_in_the_report_with_its_line(synopsis, tmp_path):
    parsed = parse_synopsis(FIXTURES / "synopses" / synopsis, display_path=f"docs/{synopsis}")
    report = compare(parsed, {"services": [], "compose": []}, CONFIG)
    checked_report(DiscrepancyReport, report, "reports/discrepancy_report.json")
    assert sorted((m["name"], m["line"]) for m in report["modules"]) == sorted((m.name, m.line) for m in parsed.modules)
    text = (FIXTURES / "synopses" / synopsis).read_text(encoding="utf-8").split("\n")
    for row in report["modules"]:
        written = text[row["line"] - 1].lower().replace("\\*", "*")
        stem = row["name"].split("*")[0]
        assert stem in written, (row["name"], row["line"], written)


def test_the_assets_report_the_chosen_stack_and_both_names(repo, tmp_path):
    work = tmp_path / "work"
    resources = {"nexus": NexusConfig(repo=str(repo), workdir=str(work), registry="names.local", version="1.0.0",
                                      compose_file="docker-compose.prod.yml"),
                 "docker_engine": DockerEngine(base_url=f"unix://{tmp_path}/no-engine.sock", timeout_seconds=5)}
    assert dg.materialize(PREPARE_ASSETS[:3], resources=resources).success
    inventory = json.loads((work / "reports" / "discovery_parsed.json").read_text())
    report = json.loads((work / "reports" / "discrepancy_report.json").read_text())
    assert inventory["stack"]["compose_file"] == report["stack"]["compose_file"] == "docker-compose.prod.yml"
    assert report["stack"]["other_compose_files"] == ["docker-compose.full.yml", "docker-compose.yml"]
    search = next(m for m in report["modules"] if m["name"] == "search")
    assert [(e["source"], e["compose_name"], e["folder"]) for e in search["evidence"] if e["source"] == "folder"] == [
        ("folder", "search", "services/search")]
