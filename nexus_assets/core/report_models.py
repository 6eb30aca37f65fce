"""What every typed report shares: the model base, the problem record, and the one way a
report goes through its model before it is written.

The stages' report models (`discovery.report`, `parity.report`, `scaffold.report`) describe
the JSON files the pipeline writes under `reports/`; their JSON Schemas are kept in the
repository's `schemas/` folder (`scripts/export_schemas.py` writes them) so a reader knows a
report's shape without the code.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nexus_assets.core.errors import ReportError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class ReportModel(BaseModel):
    """Base of every report model.

    Strict: a value of the wrong type is refused, never converted, so what is written is what
    the stage produced. Forbidding unknown keys keeps the schema complete: a key the code adds
    without adding it to its model fails the stage (and the schema test) instead of going
    undocumented."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(ReportModel):
    """One thing wrong in the input; the stage went on without it. At least one of file and
    service says where."""

    file: str | None = Field(description="The file (relative to the repository) or the source "
                                         "(`docker engine`, `nexus-agent.toml [parity]`) that is wrong.")
    line: int | None = Field(description="1-based line in file, when the problem has one.")
    service: str | None = Field(description="The service or module the problem concerns, when one does.")
    message: str = Field(description="What is wrong and what was done about it; never a secret value.")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str) -> Any:
    """A field whose key the producer writes only in some cases (the description says which).
    Not required, and without a default in the schema: the key is absent, not null, otherwise.
    Annotate it `T | SkipJsonSchema[None]`, or `T | None` when null is itself a value."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


M = TypeVar("M", bound=ReportModel)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def checked_report(model: type[M], payload: Any, shown: str) -> dict[str, Any]:
    """payload validated by model and returned as the JSON-ready dict to write.

    Keys the producer left out (the fields with a default, e.g. a family's counts on a plain
    module) stay out, so the written file has exactly the producer's keys and values.
    Raises ReportError naming shown and each offending field (the value itself is never
    quoted: it could be a secret the report masks elsewhere)."""
    try:
        report = model.model_validate(payload)
    except ValidationError as exc:
        fields = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)[:10])
        more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
        raise ReportError(f"{shown}: report does not match its schema ({model.__name__}): {fields}{more}; "
                          "a bug in the stage that writes it, not in the repository") from None
    return report.model_dump(mode="json", exclude_unset=True)


def report_schema(model: type[ReportModel]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a report model, as kept in `schemas/`."""
    return {"$schema": SCHEMA_DIALECT, **model.model_json_schema()}
