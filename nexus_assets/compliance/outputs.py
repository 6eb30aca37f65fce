"""The output files the compliance report lists with their sha256 and searches for secrets: every
file under reports/ and artifacts/ but the report itself and the package made from it. Apart
from data.py so that the report's gate, which runs even when the report is kept, loads no pandas."""

from __future__ import annotations

from pathlib import Path

from nexus_assets.core.keys import COMPLIANCE_REPORT_FILE, DEPLOYMENT_PACKAGE_FILE, day_pattern
from nexus_assets.core.settings import Settings

# Made from this report, or this report itself: listed by the package, not here.
_OWN_OUTPUTS = [day_pattern(COMPLIANCE_REPORT_FILE), day_pattern(DEPLOYMENT_PACKAGE_FILE)]


def artifact_files(settings: Settings) -> list[Path]:
    """Every output file under reports/ and artifacts/ but this report and the package made from it."""
    found = []
    for folder in (settings.reports, settings.artifacts):
        if folder.is_dir():
            found += [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                      and not p.name.startswith(".") and not any(own.match(p.name) for own in _OWN_OUTPUTS)]
    return sorted(found)
