"""Benchmark on a realistic monorepo (issue 8): how many services build and pass their tests,
and how long `nexus-agent run` takes cold, with nothing changed and after one change, with the
local package caches and without them.

The repository comes from `nexus_assets.testrepos.realistic.generate_realistic_monorepo` (62 services by
default): compose names that differ from folders, nested services, a context outside services/,
a shared Dockerfile outside its context, build args only compose supplies, mixed Node and
Python services that install REAL packages while building (`npm ci` of express from a real
package-lock.json with `addgroup -S`/`adduser -S`, `npm install --production` of lodash and
ms, `pip install -r` of flask or requests, one `apt-get install`), services that run only as
compose runs them (issue 15: ports, variables and healthchecks only compose sets, a context at
the repository root), two broken services (an unknown instruction; a requirement that does not
exist) and one that builds but whose health check probes a port it never opens.

Each package-cache mode runs the three states in turn on a fresh working copy and DAGSTER_HOME:
  cached:      the npm (verdaccio) and PyPI (proxpi) caches, emptied first, so the cold run
               pays every first download once and the services that share it get it locally;
  passthrough: the same servers keeping nothing (every index, tarball and wheel fetched
               upstream for every build): the builds' own path without the cache's benefit.
Before each cold run every image of the benchmark goes, with its build-cache parents, so the
classic builder's layer cache (keyed by content, shared by both modes) cannot serve it. The
caches are switched with `NEXUS_PACKAGE_CACHE_MODE=... bash scripts/bootstrap.sh` and left
`cached` at the end. The machine's load average is recorded around every run: the engine is
shared, so the times say what they cost on this machine at that moment.

    python benchmarks/realistic_benchmark.py [--services 62] [--max-parallel 4]
        [--modes passthrough,cached] [--json benchmarks/realistic_latest.json]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmark this checkout, not whichever copy the venv installed

MODES = ("passthrough", "cached")
STATES = ("cold", "unchanged", "one_change")
REGISTRY = "bench-realistic.local"
CACHE_DIR = Path(os.environ.get("NEXUS_STATE_DIR", "/var/lib/nexus-assets")) / "package-cache"


def set_cache_mode(mode: str, *, empty: bool) -> None:
    """Restart the caches in mode (bootstrap does it); empty: drop what the cached mode kept."""
    if empty:
        (CACHE_DIR / "mode").unlink(missing_ok=True)  # so bootstrap restarts them on empty storage
        for folder in ("npm-storage", "pypi-files"):
            shutil.rmtree(CACHE_DIR / folder, ignore_errors=True)
    env = {**os.environ, "NEXUS_PACKAGE_CACHE_MODE": mode}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "bootstrap.sh")], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bootstrap with NEXUS_PACKAGE_CACHE_MODE={mode} failed:\n{done.stdout}{done.stderr}")


def clear_images(client) -> int:
    """Remove every image tagged under the benchmark's registry (their untagged build-cache
    parents go with them); the count removed."""
    removed = 0
    for image in client.api.images():  # the raw list: another process may remove one meanwhile
        for tag in [t for t in image.get("RepoTags") or [] if t.startswith(REGISTRY + "/")]:
            try:
                client.images.remove(tag, force=True)
                removed += 1
            except Exception as exc:  # noqa: BLE001  (gone already, or in use: say so, go on)
                print(f"  (could not remove {tag}: {exc})", file=sys.stderr)
    client.images.prune(filters={"dangling": True})
    return removed


def tests_outcome(workdir: Path) -> dict:
    """Per stage, how many services passed, failed or were skipped, from the manifest."""
    manifest = json.loads((workdir / "artifacts" / "artifacts_manifest.json").read_text())
    counts: dict[str, dict[str, int]] = {}
    for entry in manifest["images"]:
        for stage, status in (entry.get("tests") or {}).items():
            bucket = counts.setdefault(stage, {})
            bucket[status] = bucket.get(status, 0) + 1
    return {"stages": counts, "problems": [{"service": p.get("service"), "reason": str(p.get("reason"))[:300]}
                                           for p in manifest.get("problems", [])]}


def timed_run(settings, dagster_home: Path) -> dict:
    from nexus_assets.cli.pipeline import run_pipeline

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    summary = run_pipeline(settings)
    seconds = time.monotonic() - started
    return {"seconds": round(seconds, 1), "built": len(summary.built), "failed": sorted(summary.failed),
            "failed_gates": len(summary.failed_gates), "load_before": round(load_before, 1),
            "load_after": round(os.getloadavg()[0], 1)}


def run_mode(mode: str, repo, base: Path, client, max_parallel: int) -> dict:
    from nexus_assets.core.settings import Settings

    print(f"[bench] mode {mode}: switching the package caches", flush=True)
    set_cache_mode(mode, empty=True)
    print(f"[bench] removed {clear_images(client)} benchmark tag(s) before the cold run", flush=True)
    workdir, dagster_home = base / f"work-{mode}", base / f"dagster-{mode}"
    dagster_home.mkdir(parents=True, exist_ok=True)
    settings = Settings(repo=repo.root, workdir=workdir, registry=REGISTRY, version="1.0.0",
                        max_parallel=max_parallel)
    results: dict[str, dict] = {}
    changed = repo.root / repo.services[repo.sound[-1]] / "README.md"
    original = changed.read_text()
    try:
        for state in STATES:
            if state == "one_change":
                changed.write_text(original + f"\nChanged by the benchmark ({mode}).\n")
            print(f"[bench] {mode} / {state} ...", flush=True)
            results[state] = timed_run(settings, dagster_home)
            if state == "cold":
                results[state]["tests"] = tests_outcome(workdir)
            print(f"[bench] {mode} / {state}: {results[state]['seconds']} s, built {results[state]['built']}, "
                  f"failed {results[state]['failed']} (load {results[state]['load_before']} -> "
                  f"{results[state]['load_after']})", flush=True)
    finally:
        changed.write_text(original)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=62, help="services in the generated repository (>= 13)")
    parser.add_argument("--max-parallel", type=int, default=4)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: passthrough,cached")
    parser.add_argument("--keep", action="store_true", help="keep the generated repository and working copies")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    modes = [m for m in MODES if m in args.modes.split(",")]
    if args.services < 13 or not modes:
        parser.error("--services must be at least 13 and --modes name passthrough and/or cached")

    from nexus_assets.resources import docker_client
    from nexus_assets.testrepos.realistic import generate_realistic_monorepo

    base = Path(tempfile.mkdtemp(prefix="nexus-realistic-bench-"))
    repo = generate_realistic_monorepo(base / "repo", args.services, second_broken=True)
    print(f"[bench] {len(repo.services)} services in {repo.root} ({len(repo.sound)} sound, broken: "
          f"{', '.join(sorted(repo.all_broken))}); load average {os.getloadavg()}", flush=True)
    client = docker_client()
    results: dict = {"services": len(repo.services), "sound": len(repo.sound), "broken": repo.all_broken,
                     "unhealthy": repo.unhealthy,
                     "max_parallel": args.max_parallel, "cpus": os.cpu_count(), "modes": {}}
    started = time.time()
    try:
        for mode in modes:
            results["modes"][mode] = run_mode(mode, repo, base, client, args.max_parallel)
    finally:
        if "cached" not in modes or modes[-1] != "cached":
            set_cache_mode("cached", empty=False)
        clear_images(client)
        client.close()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    results["wall_seconds"] = round(time.time() - started, 1)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    cold = [results["modes"][m]["cold"] for m in modes]
    return 0 if all(c["built"] == len(repo.builds) and sorted(c["failed"]) == sorted(repo.all_broken)
                    for c in cold) else 1


if __name__ == "__main__":
    raise SystemExit(main())
