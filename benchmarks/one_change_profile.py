"""Where a one-change `nexus-agent run` spends its time, step by step, on a synthetic monorepo.

`setup` generates the repo (103 services by default) under ROOT and runs the pipeline once cold
(a unique repository path in the registry, about 4 minutes on 2 cores). Each `change` then appends
a comment to the next service's entry point (a different service each time, so every iteration
really rebuilds one image), runs `run_pipeline` again in-process and prints the wall time of
every step as the Dagster instance recorded it, plus what the invocation spent outside the run
(loading, observing, judging, and Dagster writing one "planned" event per selected asset).
`--profile FILE` also writes a cProfile of that run (slower, about
1.5x). `clean` removes every local image tagged under this benchmark's registry path, its
manifests in the registry, and the directory. ROOT holds state.json (registry path, next service), the repo, the working copy and
DAGSTER_HOME, so the cold run is paid once across iterations.

    .venv/bin/python benchmarks/one_change_profile.py setup [--root /tmp/fastrel-bench] [--services 103]
    .venv/bin/python benchmarks/one_change_profile.py change [--root ...] [--profile out.prof] [--json out.json]
    .venv/bin/python benchmarks/one_change_profile.py clean [--root ...]
    NEXUS_CHECKOUT=/work/main .venv/bin/python benchmarks/one_change_profile.py change   # another checkout's code
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

# Measure the checkout this script lives in (or NEXUS_CHECKOUT, e.g. main before a change), not
# whichever copy the venv installed.
sys.path.insert(0, os.environ.get("NEXUS_CHECKOUT") or str(Path(__file__).resolve().parent.parent))

CREDENTIALS = Path(os.environ.get("NEXUS_STATE_DIR", "/var/lib/nexus-assets")) / "registry" / "credentials.env"


def _credentials() -> None:
    if not (os.environ.get("REGISTRY_USERNAME") or os.environ.get("DOCKER_REGISTRY_TOKEN")) and CREDENTIALS.is_file():
        from dotenv import dotenv_values

        os.environ.update({k: v for k, v in dotenv_values(CREDENTIALS).items() if v is not None})


def _settings(root: Path, state: dict):
    from nexus_assets.core.settings import Settings

    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    return Settings(repo=root / "repo", workdir=root / "work", registry=state["registry"], version="1.0.0",
                    max_parallel=4)


def _state(root: Path) -> dict:
    return json.loads((root / "state.json").read_text())


def _save(root: Path, state: dict) -> None:
    (root / "state.json").write_text(json.dumps(state, indent=1))


def step_table(run_ids: list[str]) -> list[tuple[str, float]]:
    """(step key, seconds) of every step of the given runs, in start order."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    steps = []
    for run_id in run_ids:
        for stat in instance.get_run_step_stats(run_id):
            if stat.start_time and stat.end_time:
                steps.append((stat.start_time, stat.step_key, stat.end_time - stat.start_time))
    return [(key, seconds) for _, key, seconds in sorted(steps)]


def planning(run_ids: list[str]) -> tuple[int, float]:
    """How many "planned" events Dagster wrote before the runs started (one per selected asset
    and check), and the seconds from the first to the run's start."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    kinds = (dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED)
    count, seconds = 0, 0.0
    for run_id in run_ids:
        planned = [r.event_log_entry.timestamp for r in instance.get_records_for_run(run_id, limit=100000).records
                   if r.event_log_entry.dagster_event_type in kinds]
        stats = instance.get_run_stats(run_id)
        if planned and stats.start_time:
            count, seconds = count + len(planned), seconds + stats.start_time - min(planned)
    return count, seconds


def run_duration(run_ids: list[str]) -> float:
    import dagster as dg

    instance = dg.DagsterInstance.get()
    total = 0.0
    for run_id in run_ids:
        stats = instance.get_run_stats(run_id)
        if stats.start_time and stats.end_time:
            total += stats.end_time - stats.start_time
    return total


def setup(args: argparse.Namespace) -> int:
    from nexus_assets.cli.pipeline import run_pipeline
    from nexus_assets.testrepos.synthetic import generate_monorepo

    root: Path = args.root
    if (root / "state.json").exists():
        print(f"{root} is already set up (clean it first)", file=sys.stderr)
        return 2
    root.mkdir(parents=True, exist_ok=True)
    names = generate_monorepo(root / "repo", args.services)
    state = {"registry": f"{args.registry}/fastrel-bench-{uuid.uuid4().hex[:8]}", "services": names, "next": 0}
    _save(root, state)
    _credentials()
    started = time.monotonic()
    summary = run_pipeline(_settings(root, state))
    print(f"cold run: {time.monotonic() - started:.1f} s, built {len(summary.built)}, ok {summary.ok}")
    return 0 if summary.ok else 1


def _touch(root: Path, state: dict) -> str:
    name = state["services"][(len(state["services"]) // 2 + state["next"]) % len(state["services"])]
    state["next"] += 1
    _save(root, state)
    service = root / "repo" / "services" / name
    for entry in ("app.py", "server.js"):
        if (service / entry).is_file():
            mark = "#" if entry.endswith(".py") else "//"
            with (service / entry).open("a") as handle:
                handle.write(f"\n{mark} one-change profile {state['next']}\n")
            return name
    raise FileNotFoundError(f"{service}: neither app.py nor server.js")


def change(args: argparse.Namespace) -> int:
    loading = time.monotonic()
    from nexus_assets.cli.pipeline import run_pipeline  # what `nexus-agent` loads before it runs

    imported = time.monotonic() - loading
    root: Path = args.root
    state = _state(root)
    _credentials()
    settings = _settings(root, state)
    name = _touch(root, state)
    profiler = cProfile.Profile() if args.profile else None
    started = time.monotonic()
    if profiler:
        profiler.enable()
    summary = run_pipeline(settings)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    wall = time.monotonic() - started
    steps = step_table(summary.run_ids)
    in_runs = run_duration(summary.run_ids)
    planned, planning_seconds = planning(summary.run_ids)
    print(f"\none change ({name}): wall {wall:.2f} s (+ {imported:.2f} s loading the code), built {summary.built}, "
          f"ok {summary.ok}")
    print(f"{'step':<44}{'s':>8}")
    for key, seconds in steps:
        print(f"{key:<44}{seconds:>8.2f}")
    print(f"{'(run, start to end)':<44}{in_runs:>8.2f}")
    print(f"{'(outside the run: load, observe, judge, plan)':<44}{wall - in_runs:>8.2f}")
    print(f"{f'  of which planning ({planned} planned events)':<44}{planning_seconds:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps({"service": name, "wall": wall, "import": imported, "run": in_runs, "ok": summary.ok,
                                         "planned_events": planned, "planning": planning_seconds,
                                         "steps": dict(steps)}, indent=1))
    return 0 if summary.ok and summary.built == [name] else 1


def _delete_from_registry(registry: str) -> int:
    """Delete every manifest under the benchmark's repository path (the bootstrap's registry has
    deletion enabled; its garbage collector frees the blobs). Returns how many were deleted."""
    import requests

    host, _, path = registry.partition("/")
    auth = (os.environ.get("REGISTRY_USERNAME", ""), os.environ.get("REGISTRY_PASSWORD", ""))
    base = f"http://{host}/v2"
    accept = {"Accept": ", ".join(["application/vnd.oci.image.manifest.v1+json",
                                   "application/vnd.docker.distribution.manifest.v2+json",
                                   "application/vnd.oci.image.index.v1+json",
                                   "application/vnd.docker.distribution.manifest.list.v2+json"])}
    repos: list[str] = []
    while True:  # the catalog in pages of 1000, each after the last name of the one before
        page = requests.get(f"{base}/_catalog", params={"n": 1000, **({"last": repos[-1]} if repos else {})},
                            auth=auth, timeout=30).json().get("repositories") or []
        repos += page
        if len(page) < 1000:
            break
    deleted = 0
    for repo in [r for r in repos if r.startswith(path + "/")]:
        tags = requests.get(f"{base}/{repo}/tags/list", auth=auth, timeout=30).json().get("tags") or []
        digests = {requests.head(f"{base}/{repo}/manifests/{tag}", auth=auth, headers=accept,
                                 timeout=30).headers.get("Docker-Content-Digest") for tag in tags}
        for digest in sorted(d for d in digests if d):
            done = requests.delete(f"{base}/{repo}/manifests/{digest}", auth=auth, timeout=30)
            deleted += done.status_code == 202
    return deleted


def clean(args: argparse.Namespace) -> int:
    from nexus_assets.resources import docker_client

    root: Path = args.root
    state = _state(root)
    _credentials()
    client = docker_client()
    prefix = state["registry"] + "/"
    removed = 0
    try:
        for image in client.images.list():
            ours = [t for t in image.tags if t.startswith(prefix)]
            for tag in ours:
                client.images.remove(tag, force=True)
                removed += 1
            if not ours and any(d.startswith(prefix) for d in image.attrs.get("RepoDigests") or []):
                client.images.remove(image.id, force=True)  # an older build a rebuild untagged: pushed, so named
                removed += 1
    finally:
        client.close()
    deleted = _delete_from_registry(state["registry"])
    print(f"removed {removed} local tag(s) and {deleted} manifest(s) in the registry under {state['registry']}")
    shutil.rmtree(root, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("setup", "change", "clean"))
    parser.add_argument("--root", type=Path, default=Path("/tmp/fastrel-bench"))
    parser.add_argument("--services", type=int, default=103)
    parser.add_argument("--registry", default=os.environ.get("REGISTRY", "127.0.0.1:5000"))
    parser.add_argument("--profile", help="write a cProfile of the change run here")
    parser.add_argument("--json", type=Path, help="write the change run's step table here")
    args = parser.parse_args()
    return {"setup": setup, "change": change, "clean": clean}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
