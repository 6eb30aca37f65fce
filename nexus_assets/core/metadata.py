"""Dagster metadata shared by every asset that writes a report file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.core.hashing import file_sha256


def report_metadata(path: Path) -> dict[str, Any]:
    """Path, sha256 and size of a written report: what an auditor checks a file against."""
    return {"path": dg.MetadataValue.path(str(path)), "sha256": file_sha256(path), "bytes": path.stat().st_size}
