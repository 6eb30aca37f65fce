"""The UI reads like the guide: groups named as the stage folders, an owner and kinds on every
asset, the stage and each service's canonical category as tags, kinds that tell a service's
nodes apart (the graph labels a node by its key's last part, the service name)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from nexus_assets.core.catalog import CATEGORY_TAG, OWNER, STAGE_TAG, service_categories, tag_value
from nexus_assets.core.settings import SAMPLE_REPO, Settings
from nexus_assets.definitions import build_definitions

STAGES = {"prepare", "images", "tests", "publish", "attest", "compliance", "package", "release", "deploy"}


def _graph(workdir: Path):
    settings = Settings(repo=SAMPLE_REPO, workdir=workdir, registry="r", version="1.0.0", max_parallel=2)
    return build_definitions(settings).resolve_asset_graph()


def _report(workdir: Path) -> None:
    (workdir / "reports").mkdir(parents=True)
    (workdir / "reports" / "discrepancy_report.json").write_text(json.dumps({"modules": [
        {"name": "auth", "category": "Core Backend", "evidence": [
            {"name": "auth-service", "compose_name": "auth-service", "source": "folder"}]},
        {"name": "users", "category": "Core Backend", "evidence": [{"name": "users", "source": "folder"}]},
        {"name": "pmmg", "category": "PMMG (Browser-only)!", "evidence": [{"name": "pmmg-static", "source": "folder"}]},
    ]}), encoding="utf-8")


def test_groups_are_the_stage_folders_and_every_asset_has_owner_kinds_and_stage(tmp_path):
    graph = _graph(tmp_path / "w")
    by_group: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name in STAGES, (key, node.group_name)
        assert node.kinds, key
        assert node.owners == [OWNER], key
        assert node.tags[STAGE_TAG] == node.group_name, key
        by_group.setdefault(node.group_name, set()).add(key.to_user_string())
    assert by_group["publish"] >= {"pushed/users", "pushed_images"}
    assert by_group["compliance"] == {"compliance_report"} and by_group["package"] == {"deployment_package"}
    assert by_group["release"] == {"artifacts_manifest", "verified_release", "deployment_report"}
    assert by_group["attest"] >= {"sbom/users", "provenance/users", "attestations", "evidence_pack"}
    assert by_group["tests"] == {"e2e_tests"} and by_group["deploy"] == {"staging_deployment"}
    assert by_group["images"] >= {"image/users", "source/users", "tagged_images"}
    # one service's nodes share a label (the key's last part) and differ in kind and group
    kinds = {k: graph.get(dg.AssetKey([k, "users"])).kinds for k in ("source", "image", "pushed", "sbom", "provenance")}
    assert kinds["image"] >= {"docker", "image"} and kinds["pushed"] >= {"registry"}
    assert kinds["sbom"] >= {"sbom"} and kinds["provenance"] >= {"provenance"} and kinds["source"] >= {"source"}
    assert graph.get(dg.AssetKey(["sbom", "users"])).description.startswith("SBOM of users")
    assert graph.get(dg.AssetKey(["pushed", "users"])).description.startswith("Push of users")


def test_each_service_is_tagged_with_its_canonical_category(tmp_path):
    work = tmp_path / "w"
    _report(work)
    graph = _graph(work)
    for kind in ("source", "image", "pushed", "sbom", "provenance"):
        assert graph.get(dg.AssetKey([kind, "auth-service"])).tags[CATEGORY_TAG] == "core-backend", kind
    assert graph.get(dg.AssetKey(["image", "pmmg-static"])).tags[CATEGORY_TAG] == "pmmg-browser-only"
    assert graph.get(dg.AssetKey(["image", "analytics"])).tags[CATEGORY_TAG] == "uncategorized"
    assert CATEGORY_TAG not in graph.get(dg.AssetKey("artifacts_manifest")).tags


def test_categories_read_tolerantly(tmp_path):
    assert service_categories(tmp_path / "missing.json") == {}
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert service_categories(tmp_path / "bad.json") == {}
    assert tag_value("  ") == "uncategorized" and len(tag_value("x" * 100)) == 63
