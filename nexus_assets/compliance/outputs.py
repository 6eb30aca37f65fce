"""The output files the compliance report lists with their sha256 and searches for secrets: every
file under reports/ and artifacts/ but the report itself and the package made from it. Apart
from data.py so that the report's gate, which runs even when the report is kept, loads no pandas."""

from __future__ import annotations

import re
from pathlib import Path

from nexus_assets.core.settings import Settings

# Made from this report, or this report itself: listed by the package, not here.
_OWN_OUTPUTS = re.compile(r"^(compliance_report_\d{8}\.pdf|deployment_package_\d{8}\.tar\.gz)$")


def artifact_files(settings: Settings) -> list[Path]:
    """Every output file under reports/ and artifacts/ but this report and the package made from it."""
    found = []
    for folder in (settings.reports, settings.artifacts):
        if folder.is_dir():
            found += [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                      and not p.name.startswith(".") and not _OWN_OUTPUTS.match(p.name)]
    return sorted(found)
