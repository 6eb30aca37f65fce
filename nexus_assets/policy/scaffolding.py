"""Readings of the pipeline's own reports that more than one stage needs."""

from __future__ import annotations

from typing import Any


def modules_to_scaffold(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, description) of every missing module scaffolding can create, in report order,
    whether or not the report already marks it scaffolded (scaffolding is idempotent, so a
    report made with scaffolded=... still says what to create). Wildcard families (no concrete
    name to create), PMMG modules (browser-only: never containerized) and modules whose service is
    refused (the repository has it: a template in its place would hide the refusal) are left out;
    the report's action names them for review."""
    return [(m["name"], m.get("description", "")) for m in report.get("modules", [])
            if m.get("status") == "missing" and not m.get("family") and not m.get("pmmg") and not m.get("refused")]
