"""Write the JSON Schemas of the pipeline's reports into schemas/ from their pydantic models.

    .venv/bin/python scripts/export_schemas.py          # rewrite schemas/*.schema.json
    .venv/bin/python scripts/export_schemas.py --check  # exit 1 if a file differs from its model

tests/test_report_schemas.py fails when a schema file and its model drift apart: after
changing a report model, run this and commit the schema with the change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "schemas"
if str(ROOT) not in sys.path:  # run as a script, the repository itself must come first
    sys.path.insert(0, str(ROOT))

from nexus_assets.core.report_models import ReportModel, report_schema  # noqa: E402
from nexus_assets.discovery.report import DiscoveryReport  # noqa: E402
from nexus_assets.parity.report import DiscrepancyReport  # noqa: E402
from nexus_assets.release.report import ArtifactsManifest  # noqa: E402
from nexus_assets.scaffold.report import ScaffoldReport  # noqa: E402

# schemas/<report>.schema.json describes reports/<report>.json (artifacts/ for the manifest)
SCHEMAS: dict[str, type[ReportModel]] = {
    "discovery_parsed": DiscoveryReport,
    "discrepancy_report": DiscrepancyReport,
    "scaffold_report": ScaffoldReport,
    "artifacts_manifest": ArtifactsManifest,  # artifacts/, not reports/
}


def schema_path(report: str) -> Path:
    return SCHEMA_DIR / f"{report}.schema.json"


def render(model: type[ReportModel]) -> str:
    """The schema file's exact text: two-space indent, the model's field order, final newline."""
    return json.dumps(report_schema(model), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for report, model in SCHEMAS.items():
        path, text = schema_path(report), render(model)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT).as_posix())
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date (run scripts/export_schemas.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    print(f"{'wrote' if stale else 'up to date'}: {', '.join(stale) or str(len(SCHEMAS)) + ' schemas'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
