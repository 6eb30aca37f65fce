"""The shape of `reports/discrepancy_report.json` (step C), as `compare.compare()` builds it.

Schema: `schemas/discrepancy_report.schema.json`. How statuses, evidence rules and the gate are
decided is told in `compare`'s module docstring.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from nexus_assets.core.report_models import Problem, ReportModel, sometimes

Status = Literal["present", "partial", "missing"]


class PmmgNote(ReportModel):
    """What the synopsis says about PMMG (N3XUS-SYSTEM-PMMG)."""

    mentioned: bool = Field(description="A section of the synopsis mentions PMMG.")
    browser_only: bool = Field(description="Such a section says PMMG is browser-only (never containerized).")
    lines: list[int] = Field(description="Lines that mention PMMG, sorted.")


class SynopsisSummary(ReportModel):
    """The canonical synopsis the report compares against (docs/investor_synopsis.md)."""

    path: str = Field(description="The synopsis, relative to the repository.")
    categories: list[str] = Field(description="Categories in document order.")
    module_count: int = Field(description="Canonical modules read; 0 fails the gate.")
    problems: list[Problem] = Field(description="Something wrong in the synopsis, with its line; the module "
                                                "concerned is left out.")
    pmmg: PmmgNote


class Totals(ReportModel):
    """Canonical modules by status (a wildcard family counts as one)."""

    canonical: int
    present: int
    partial: int
    missing: int


class Gate(ReportModel):
    """The guide's gate: at most max_critical_missing critical modules missing and not scaffolded."""

    max_critical_missing: int = Field(description="The limit (nexus-agent.toml [parity], default 6).")
    passed: bool
    message: str = Field(description="The verdict in words, naming the modules counted.")
    critical_missing_unscaffolded: list[str] = Field(description="Critical modules missing and not scaffolded.")


class Evidence(ReportModel):
    """One name discovery saw that matches the module."""

    source: Literal["folder", "compose", "container", "archive"] = Field(
        description="Service folder, compose service, local container or VPS archive.")
    name: str = Field(description="The name as found.")
    rule: Literal["exact", "normalized", "alias", "family"] = Field(description="The rule it matched by.")
    file: str | None = Field(description="Where it was found (folder, compose file, `docker engine`, archive file).")
    strong: bool = Field(description="Strong evidence: the module builds or runs from it.")
    note: str | None = Field(description="Why the evidence is weak; null when strong.")
    compose_name: str | None = Field(description="The compose service name of this service (for a folder: the "
                                                 "stack's compose service that builds it); null when none.")
    folder: str | None = Field(description="Its folder, relative to the repository (for a compose service: its "
                                           "build context); null when it has none.")


_FAMILY_FIELDS = ("family_count", "family_found", "family_members")


class ModuleRow(ReportModel):
    """One canonical module and what the repository has of it. A wildcard family (family true)
    has family_count, family_found and family_members; any other module has none of them."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"family": {"const": True}}},
        "then": {"required": list(_FAMILY_FIELDS)},
        "else": {"not": {"anyOf": [{"required": [f]} for f in _FAMILY_FIELDS]}},
    })

    name: str = Field(description="The module name; a wildcard family contains `*`.")
    category: str
    description: str
    mandatory: bool = Field(description="The synopsis marks it `(mandatory)`.")
    family: bool = Field(description="A wildcard family (`puabo-nuki-*`) rather than one service.")
    line: int = Field(description="Its line in the synopsis.")
    critical: bool = Field(description="Counted by the gate.")
    scaffolded: bool = Field(description="Scaffolded by this run or an earlier one.")
    pmmg: bool = Field(description="A PMMG module: browser-only, never scaffolded as a container.")
    status: Status
    family_count: int | None = sometimes("Families only: members the synopsis declares (null when it "
                                         "declares none: one strong member makes it present).")
    family_found: int | SkipJsonSchema[None] = sometimes("Families only: distinct members found.")
    family_members: list[str] | SkipJsonSchema[None] = sometimes("Families only: the members found, sorted.")
    evidence: list[Evidence] = Field(description="By source, name, file, rule.")
    refused: str | SkipJsonSchema[None] = sometimes(
        "Why the repository's service for this module is refused (discovery's refused[]): never built nor "
        "counted, so it is no evidence and the module is missing unless something else shows it; never "
        "scaffolded over.")

    @model_validator(mode="after")
    def _family_fields_with_families_only(self) -> ModuleRow:
        given = [f for f in _FAMILY_FIELDS if f in self.model_fields_set]
        if self.family and len(given) != len(_FAMILY_FIELDS):
            raise ValueError(f"a wildcard family needs {', '.join(_FAMILY_FIELDS)}")
        if not self.family and given:
            raise ValueError(f"{', '.join(given)}: for wildcard families only")
        return self


class NonCanonicalService(ReportModel):
    """A service folder or compose service that matches no canonical module."""

    name: str
    sources: list[str] = Field(description="`folder` and/or `compose:<file>`, sorted.")
    other_names: list[str] = Field(description="The same service's other names: the compose name of a folder, "
                                               "the folder name of a compose service; sorted.")


class StackNote(ReportModel):
    """The compose file the build uses (discovery's `stack`), and the ones it does not."""

    compose_file: str | None = Field(description="The stack compose file built from; null when there is none.")
    chosen_by: str = Field(description="Why it is the one (NEXUS_COMPOSE_FILE, default name, first by name).")
    other_compose_files: list[str] = Field(description="Compose files reported, not built from.")


class DiscrepancyReport(ReportModel):
    """reports/discrepancy_report.json: canonical modules against the repository (guide step C)."""

    generated_at: str = Field(description="When it was made: ISO 8601, UTC, whole seconds.")
    stack: StackNote
    synopsis: SynopsisSummary
    totals: Totals
    parity_percent: float = Field(description="present / canonical x 100, one decimal.")
    coverage_percent: float = Field(description="(present + partial) / canonical x 100, one decimal.")
    critical: list[str] = Field(description="Critical modules, sorted.")
    critical_missing: list[str] = Field(description="Critical modules with status missing, in module order.")
    gate: Gate
    modules: list[ModuleRow] = Field(description="By synopsis category order, then name.")
    non_canonical_services: list[NonCanonicalService] = Field(description="By name.")
    scaffolded: list[str] = Field(description="Normalized names of scaffolded modules, sorted.")
    problems: list[Problem] = Field(description="Problems of the [parity] configuration.")
    action: str = Field(description="What the guide says to do next, or `none`.")
