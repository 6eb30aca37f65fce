"""How the asset catalog reads like the guide: every asset's owner, its stage as a tag, and each
service's canonical category (the synopsis' heading its module sits under, as the parity report
matched it) as a tag on the service's assets, so the UI can filter by stage, owner and category.

Applied once over the wired assets (definitions.py): the stages keep their group names and kinds
where they define their assets; this adds what is the same for all of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg

OWNER = "team:nexus-platform"  # who answers for the pipeline's assets (Dagster owner: team:<name> or an email)
STAGE_TAG = "nexus/stage"
CATEGORY_TAG = "nexus/category"
# The first key part of the assets that belong to one service (core/keys.py).
PER_SERVICE = ("source", "image", "pushed", "sbom", "provenance")
_TAG_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")  # what Dagster allows in a tag value (63 characters at most)


def tag_value(text: str) -> str:
    """A category as a Dagster tag value: `Core Backend` -> `core-backend`."""
    return _TAG_VALUE.sub("-", text.strip().lower()).strip("-._")[:63] or "uncategorized"


def service_categories(report: Path) -> dict[str, str]:
    """{service name: its module's category} from a parity report (discrepancy_report.json), by
    the evidence each module was matched on (folder and compose names); {} before the first run,
    or when the report cannot be read: the tags then wait for the next load."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for module in data.get("modules") or [] if isinstance(data, dict) else []:
        category = str(module.get("category") or "")
        if not category:
            continue
        for item in module.get("evidence") or []:
            for name in (item.get("name"), item.get("compose_name")):
                if name and item.get("source") in ("folder", "compose", None):
                    found.setdefault(str(name), category)
    return found


def catalogued(assets: Iterable[Any], categories: dict[str, str]) -> list[Any]:
    """assets with an owner, the stage tag (its group) and, per service, the category tag."""

    def label(spec: dg.AssetSpec) -> dg.AssetSpec:
        tags = {STAGE_TAG: spec.group_name or "default"}
        path = spec.key.path
        if len(path) == 2 and path[0] in PER_SERVICE:
            tags[CATEGORY_TAG] = tag_value(categories.get(path[1], "uncategorized"))
        return spec.merge_attributes(owners=[OWNER] if OWNER not in spec.owners else [], tags=tags)

    return [a.map_asset_specs(label) if isinstance(a, dg.AssetsDefinition) else a for a in assets]
