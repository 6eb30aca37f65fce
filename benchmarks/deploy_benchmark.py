"""The staging deploy on the bundled sample (47 services), measured end to end as an operator runs it:

1. a staging host of its own (scripts/staging_host.sh with another name, /30 and port: cold, it
   has none of the images), then `nexus-agent run --deploy-staging` on a fresh working copy of the
   sample: upload -> all healthy (checksums and 47 signed provenances verified on the host, 47
   images pulled by digest, started, every health check waited for);
2. `nexus-agent audit`, three times (wall clock: Dagster's start-up included);
3. a v1.0.1 whose `payments` health check fails on the host only (the operator's secrets file sets
   HEALTH_MODE=broken; it passes where the pipeline tests it): the failed audit, then the rollback
   to v1.0.0 (its images still on the host) and the second audit;
then removes the host. Writes benchmarks/deploy_latest.json and prints a table. Needs root, the
engine, the registry and its credentials in the environment (as scripts/run.sh exports them).

    flock /tmp/nexus-engine.lock .venv/bin/python benchmarks/deploy_benchmark.py [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AGENT = str(ROOT / ".venv" / "bin" / "nexus-agent")
GIT = ["git", "-c", "user.name=Benchmark", "-c", "user.email=benchmark@example.invalid"]
HOST_ENV = {"NEXUS_STAGING_NAME": "nexus-staging-bench", "NEXUS_STAGING_NET": "10.254.253.8",
            "NEXUS_STAGING_PORT": "2224"}
BROKEN = """    healthcheck:
      test: ["CMD", "node", "-e", "process.exit(process.env.HEALTH_MODE === 'broken' ? 1 : 0)"]
      interval: 2s
      retries: 1
"""


def _run(command: list[str], env: dict[str, str], log: Path) -> tuple[int, float]:
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return code, round(time.monotonic() - started, 2)


def _staging(work: Path) -> dict:
    [path] = sorted((work / "reports").glob("deployment_report_*.json"))[-1:]
    return json.loads(path.read_text())["staging"]


def _break_payments(checkout: Path) -> None:
    """v1.0.1: payments' compose entry gets HEALTH_MODE and a health check that fails when it is 'broken'."""
    compose = checkout / "docker-compose.yml"
    text = compose.read_text()
    marker = '      PAYMENTS_MODE: "sandbox"\n'
    assert marker in text, "the sample's payments service changed: update the benchmark"
    text = text.replace(marker, marker + '      HEALTH_MODE: "${HEALTH_MODE:-ok}"\n' + BROKEN)
    compose.write_text(text)
    subprocess.run([*GIT, "-C", str(checkout), "commit", "-q", "-am", "v1.0.1: payments health check"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("/tmp/nexus_deploy_bench"))
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "deploy_latest.json")
    args = parser.parse_args()
    root: Path = args.root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log = root / "benchmark.log"
    env = {**os.environ, **HOST_ENV, "NEXUS_STAGING_STATE": str(root / "host")}
    script = ["bash", str(ROOT / "scripts" / "staging_host.sh")]
    results: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": f"{os.cpu_count()} cores",
                     "sample": "bundled sample (nexus_assets/sample_repo), 47 services"}
    try:
        up = subprocess.run([*script, "up"], env=env, capture_output=True, text=True, check=True)
        for line in up.stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        secrets = root / "secrets.env"
        shutil.copy(ROOT / "nexus_assets" / "sample_repo" / ".env", secrets)
        work = root / "work"
        env |= {"NEXUS_STAGING_ENV_FILE": str(secrets), "DAGSTER_HOME": str(root / "dagster_home")}
        env.pop("VERSION", None)

        code, wall = _run([AGENT, "run", "--workdir", str(work), "--deploy-staging"], env, log)
        first = _staging(work)
        results["deploy_v1"] = {"exit": code, "wall_s": wall, "services": len(first["audit"]["services"]),
                                "audit_passed": first["audit"]["passed"], **first["durations"]}

        audits = []
        for _ in range(3):
            code, wall = _run([AGENT, "audit", "--workdir", str(work)], env, log)
            audits.append({"exit": code, "wall_s": wall})
        results["audit"] = audits

        _break_payments(Path(f"{work}-sample-repo"))
        secrets.write_text(secrets.read_text() + "HEALTH_MODE=broken\n")
        code, wall = _run([AGENT, "run", "--workdir", str(work), "--version", "1.0.1", "--deploy-staging"], env, log)
        second = _staging(work)
        results["failed_v2"] = {"exit": code, "wall_s": wall, "failure": (second["failure"] or "")[:300],
                                "rolled_back_to": second["rolled_back_to"],
                                "second_audit_passed": (second.get("second_audit") or {}).get("passed"),
                                **second["durations"]}
    finally:
        subprocess.run([*script, "down"], env=env, capture_output=True, check=False)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    v1, v2 = results["deploy_v1"], results["failed_v2"]
    rows = [("deploy v1 (exit)", v1["exit"]), ("  upload", v1.get("upload")),
            ("  upload -> all 47 healthy (cold host)", v1.get("upload_to_healthy")),
            ("  post-deploy audits (script + digest)", v1.get("audit")),
            *[(f"nexus-agent audit #{i + 1} (exit {a['exit']})", a["wall_s"]) for i, a in enumerate(results["audit"])],
            ("failed v2 (exit)", v2["exit"]), ("  upload -> verdict (health deadline)", v2.get("upload_to_healthy")),
            ("  failed audit -> v1 healthy again (rollback)", v2.get("rollback_to_healthy")),
            ("  rolled back to / second audit passed", f"{v2['rolled_back_to']} / {v2['second_audit_passed']}")]
    for name, value in rows:
        print(f"{name:<48} {value}")
    print(f"written {args.json}; log {log}")
    return 0 if v1["exit"] == 0 and v2["exit"] == 1 and v2["second_audit_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
