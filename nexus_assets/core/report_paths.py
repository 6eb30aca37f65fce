"""Where every report an asset writes lives under the working copy, and its dated names: beside the
asset keys (core/keys.py re-exports them), in a module of their own so that nexus-agent's
nothing-changed path reads them without loading Dagster."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path, PurePosixPath

# The files the assets write, relative to the working copy, named once beside their keys (the
# operator guide's names): a path is `workdir / NAME`, and a message names NAME as it is.
# YYYYMMDD is the day the file is made (dated() fills it in, any_day() globs, day_pattern() matches).
DISCOVERY_PARSED_FILE = "reports/discovery_parsed.json"
DISCREPANCY_REPORT_FILE = "reports/discrepancy_report.json"
SCAFFOLD_REPORT_FILE = "reports/scaffold_report.json"
ARTIFACTS_MANIFEST_FILE = "artifacts/artifacts_manifest.json"
COMPLIANCE_REPORT_FILE = "reports/compliance_report_YYYYMMDD.pdf"
DEPLOYMENT_PACKAGE_FILE = "reports/deployment_package_YYYYMMDD.tar.gz"
DEPLOYMENT_REPORT_FILE = "reports/deployment_report_YYYYMMDD.json"
VERIFIED_RELEASE_FILE = "artifacts/verified_release.json"  # the last release attempt, for the report
_DAY = "YYYYMMDD"


def dated(name: str, day: date) -> str:
    """A dated file's name for day: `reports/compliance_report_20261207.pdf`."""
    return name.replace(_DAY, f"{day:%Y%m%d}")


def any_day(name: str) -> str:
    """A glob for the dated file of any day, relative to the working copy."""
    return name.replace(_DAY, "*")


def day_pattern(name: str) -> re.Pattern[str]:
    """Matches the base name of the dated file of any day (`compliance_report_20261207.pdf`)."""
    return re.compile(re.escape(PurePosixPath(name).name).replace(_DAY, r"\d{8}") + "$")


def newest(workdir: Path, name: str) -> Path | None:
    """The newest dated file of that name under workdir (by its day), or None when none was made."""
    found = sorted(workdir.glob(any_day(name)))
    return found[-1] if found else None
