"""The guide's parity gate as a blocking asset check."""

import dagster as dg

from nexus_assets.core.fileio import read_json
from nexus_assets.core.keys import DISCREPANCY_REPORT_FILE
from nexus_assets.parity.assets import discrepancy_report
from nexus_assets.parity.compare import critical_gate
from nexus_assets.resources import NexusConfig


# Not blocking in Dagster's sense: the guide lets images build and test after a failed parity
# gate; what the gate blocks is the release, which reads this check's result.
@dg.asset_check(asset=discrepancy_report, blocking=False,
                description="Guide gate: at most 6 critical modules missing, or auto-scaffolded.")
def critical_modules_gate(nexus: NexusConfig) -> dg.AssetCheckResult:
    report = read_json(nexus.settings().workdir / DISCREPANCY_REPORT_FILE)
    passed, message = critical_gate(report)
    return dg.AssetCheckResult(passed=passed, description=message,
                               metadata={"critical_missing": report.get("critical_missing", []),
                                         "scaffolded": report.get("scaffolded", [])})
