"""Benchmark: our stale-only pipeline against the naive one the original shell scripts ran.

Generates a synthetic monorepo (103 standard-library services by default) and measures, side
by side in one run on the real engine:
  (a) naive: for each service in turn, `docker build`, then the same unit and integration
      tests as ours; cold (no build cache) and again with nothing changed;
  (b) ours, cold: a full `nexus-agent run` (lint, build, unit, integration per service);
  (c) ours, nothing changed;
  (d) ours, after changing one file of one service.
Prints wall time, images built and test containers started for each, and the ratios.

    .venv/bin/python benchmarks/run_benchmark.py [--services 103] [--max-parallel 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nexus_assets.cli.pipeline import run_pipeline
from nexus_assets.core.services import find_services
from nexus_assets.core.settings import Settings
from nexus_assets.resources import docker_client
from nexus_assets.synthetic import generate_monorepo
from nexus_assets.verify import service_tests

NAIVE_REGISTRY = "bench-naive.local"
OURS_REGISTRY = "bench-ours.local"


def remove_images(client, prefixes: tuple[str, ...]) -> None:
    """Untag and delete every benchmark image; their untagged build-cache parents go with them."""
    for image in client.images.list():
        if any(tag.startswith(prefixes) for tag in image.tags):
            try:
                client.images.remove(image.id, force=True)
            except Exception as exc:  # another image may still share it: report, go on
                print(f"  (could not remove {image.tags[0]}: {exc})", file=sys.stderr)


def naive_run(client, repo: Path, logs: Path) -> dict:
    """The original pipeline: every service, one after another, built and tested every time."""
    started = time.monotonic()
    builds = containers = failures = 0
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    for service in find_services(repo):
        tag = f"{NAIVE_REGISTRY}/nexus/{service.name}:bench"
        with open(logs / f"build_{service.name}.log", "w") as log:
            done = subprocess.run(["/usr/bin/docker", "build", "-t", tag, str(service.path)],
                                  stdout=log, stderr=subprocess.STDOUT, env=env)
        builds += 1
        if done.returncode != 0:
            failures += 1
            continue
        image_id = client.images.get(tag).id
        for stage in (service_tests.run_unit(client, service, image_id, logs),
                      service_tests.run_integration(client, service, image_id, logs)):
            containers += stage.containers
            failures += 0 if stage.passed else 1
    return {"seconds": time.monotonic() - started, "builds": builds, "test_containers": containers, "failures": failures}


def ours_run(settings: Settings) -> dict:
    started = time.monotonic()
    summary = run_pipeline(settings)
    return {"seconds": time.monotonic() - started, "builds": len(summary.built),
            "test_containers": summary.test_containers, "failures": len(summary.failed) + len(summary.failed_gates),
            "built": summary.built if len(summary.built) <= 3 else f"{len(summary.built)} services"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=103)
    parser.add_argument("--max-parallel", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic repo and workdir")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nexus-bench-"))
    repo, logs = root / "repo", root / "naive-logs"
    logs.mkdir()
    names = generate_monorepo(repo, args.services)
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    settings = Settings(repo=repo, workdir=root / "work", registry=OURS_REGISTRY, version="1.0.0",
                        max_parallel=args.max_parallel)
    client = docker_client()
    results: dict[str, dict] = {}
    try:
        print(f"benchmark: {len(names)} services in {repo}, {os.cpu_count()} cores, max parallel {args.max_parallel}")
        remove_images(client, (NAIVE_REGISTRY, OURS_REGISTRY))
        print("(a) naive, cold ...", flush=True)
        results["naive_cold"] = naive_run(client, repo, logs)
        print("(a) naive, nothing changed ...", flush=True)
        results["naive_unchanged"] = naive_run(client, repo, logs)
        remove_images(client, (NAIVE_REGISTRY, OURS_REGISTRY))  # ours starts from an empty build cache too
        print("(b) ours, cold ...", flush=True)
        results["ours_cold"] = ours_run(settings)
        print("(c) ours, nothing changed ...", flush=True)
        results["ours_unchanged"] = ours_run(settings)
        changed = repo / "services" / names[len(names) // 2] / "server.js"
        if not changed.exists():
            changed = repo / "services" / names[1] / "server.js"
        changed.write_text(changed.read_text() + "\n// benchmark: one change\n")
        print(f"(d) ours, one service changed ({changed.parent.name}) ...", flush=True)
        results["ours_one_change"] = ours_run(settings)
    finally:
        remove_images(client, (NAIVE_REGISTRY, OURS_REGISTRY))
        client.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    ratios = {
        "cold: ours / naive cold": results["ours_cold"]["seconds"] / results["naive_cold"]["seconds"],
        "nothing changed: naive / ours": results["naive_unchanged"]["seconds"] / results["ours_unchanged"]["seconds"],
        "one change: naive / ours": results["naive_unchanged"]["seconds"] / results["ours_one_change"]["seconds"],
    }
    targets = {"cold: ours / naive cold": ("<=", 0.7), "nothing changed: naive / ours": (">=", 10),
               "one change: naive / ours": (">=", 5)}
    print(f"\n{'run':22} {'wall s':>8} {'builds':>7} {'test containers':>16} {'failures':>9}")
    for name, r in results.items():
        print(f"{name:22} {r['seconds']:8.1f} {r['builds']:7d} {r['test_containers']:16d} {r['failures']:9d}")
    print()
    all_met = True
    for name, value in ratios.items():
        op, target = targets[name]
        met = value <= target if op == "<=" else value >= target
        all_met &= met
        print(f"{name:32} {value:7.2f}x  (target {op} {target}) {'met' if met else 'NOT MET'}")
    exact = results["ours_unchanged"]["builds"] == 0 and results["ours_unchanged"]["test_containers"] == 0 \
        and results["ours_one_change"]["builds"] == 1
    print(f"nothing changed -> 0 builds, 0 test containers; one change -> 1 build: {'yes' if exact else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps({"services": len(names), "results": results, "ratios": ratios}, indent=2) + "\n")
    return 0 if all_met and exact else 1


if __name__ == "__main__":
    sys.exit(main())
