"""How fast Dagster's SQLite instance stores a step's events: one multi-asset of N assets with
three checks each, materialized twice in one process on a new DAGSTER_HOME, each side in a fresh
process, sides alternating. The sides: `plain` (Dagster as it ships), `tuned` (this checkout's
core/instance_storage.tune_sqlite), and with `--against DIR` that checkout's tune_sqlite too.
No engine, no registry.

    .venv/bin/python benchmarks/instance_storage_benchmark.py [--assets 100] [--rounds 2] [--against /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

ONE_SIDE = textwrap.dedent("""
    import os, sys, time
    checkout, assets = sys.argv[1], int(sys.argv[2])
    os.environ["DAGSTER_HOME"] = sys.argv[3]
    open(os.path.join(sys.argv[3], "dagster.yaml"), "w").write("telemetry:\\n  enabled: false\\n")
    import dagster as dg
    if checkout != "plain":
        sys.path.insert(0, checkout)
        from nexus_assets.core.instance_storage import tune_sqlite
        tune_sqlite()
    specs = [dg.AssetSpec(["s", str(i)]) for i in range(assets)]
    checks = [dg.AssetCheckSpec(f"c{j}", asset=spec.key) for spec in specs for j in range(3)]

    @dg.multi_asset(specs=specs, check_specs=checks)
    def many():
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key, metadata={"n": 1})
            for j in range(3):
                yield dg.AssetCheckResult(asset_key=spec.key, check_name=f"c{j}", passed=True)

    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        for _ in range(2):
            assert dg.materialize([many], instance=instance).success
    print(time.perf_counter() - started)
""")


def one(side: str, assets: int) -> float:
    with tempfile.TemporaryDirectory() as home:
        done = subprocess.run([sys.executable, "-c", ONE_SIDE, side, str(assets), home],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode:
            raise SystemExit(f"{side}: {done.stderr[-2000:]}")
        return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--against", help="another checkout, measured beside this one")
    args = parser.parse_args()
    sides = {"plain": "plain", "tuned (this checkout)": str(HERE)}
    if args.against:
        sides[f"tuned ({args.against})"] = str(Path(args.against).resolve())
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, side in sides.items():
            times[name].append(one(side, args.assets))
    for name, seconds in times.items():
        print(f"{name:40} median {statistics.median(seconds):6.2f} s  ({', '.join(f'{s:.2f}' for s in seconds)})")


if __name__ == "__main__":
    main()
