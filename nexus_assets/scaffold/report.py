"""The shape of `reports/scaffold_report.json` (step D). Schema: `schemas/scaffold_report.schema.json`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nexus_assets.core.report_models import ReportModel


class ScaffoldedService(ReportModel):
    """What scaffolding did for one missing canonical module."""

    name: str = Field(description="The module, which is the services/<name>/ folder.")
    language: Literal["node", "python"] = Field(description="The template used or that would be used "
                                                            "(nexus-agent.toml [scaffold]).")
    port: int = Field(description="The port the new service listens on; 0 when nothing was created.")
    created: bool = Field(description="A folder was created by this run.")
    reason: str = Field(description="Why it was or was not created (already there, PMMG, invalid name).")


class ScaffoldReport(ReportModel):
    """reports/scaffold_report.json: the services scaffolded for missing modules (guide step D)."""

    services: list[ScaffoldedService] = Field(description="One row per missing module, in report order.")
