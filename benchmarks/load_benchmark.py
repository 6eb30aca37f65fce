"""How long the code location takes to load at 103, 300 and 1,000 generated services, and that
loading makes no engine call.

Generates one synthetic monorepo per size (nexus_assets/testrepos/synthetic.py, the services of
benchmarks/run_benchmark.py at every size: the generator has one template per language, so
1,000 services are 1,000 full scaffolds) and times, each run in a fresh Python process:

  dagster: the code location as `dagster dev` loads it: Dagster's code server loader
           (LoadedRepositories) on the file workspace.yaml names, which imports definitions.py,
           builds the Definitions, the repository and every job, then the repository snapshot
           the webserver asks the code server for (RepositorySnap, deferred snapshots, serialized);
  agent:   the graph as `nexus-agent run` builds it before planning: importing cli/pipeline.py,
           the settings, the services, definitions_for, the asset graph and the pipeline job;
  cli:     importing the CLI entry point (nexus_assets.cli.main), which is all a run with
           nothing changed pays before it answers.

Engine calls are counted, not assumed: each process gets DOCKER_HOST pointing at a Unix socket
this script listens on and closes at once (no engine answers there: a load that needed one would
fail), and an audit hook in the process records every socket connect and every `docker` it starts.
Both must be 0. The engine is never used, so no engine lock is needed.

--against CHECKOUT also runs every measurement with another checkout's code (e.g. /work/main,
before a change), interleaved run by run with this one, and prints both medians side by side.

    .venv/bin/python benchmarks/load_benchmark.py [--sizes 103,300,1000] [--runs 5]
        [--against /path/to/other/checkout] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("dagster", "agent", "cli")
PHASES = {"dagster": ("imports_s", "definitions_s", "snapshot_s"), "agent": ("imports_s", "definitions_s"),
          "cli": ("imports_s",)}


class FakeEngine:
    """A Unix socket where DOCKER_HOST points: every connection is counted and closed unanswered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections = 0
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._server.close()


# --- in the fresh process -------------------------------------------------------------------

def _audit() -> tuple[list[str], list[str]]:
    """Record every socket connect and every process started from here on (sys.addaudithook)."""
    connects: list[str] = []
    spawns: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "socket.connect":
            connects.append(str(args[1]))
        elif event == "subprocess.Popen":
            argv = args[1]
            spawns.append(os.path.basename(str(argv[0] if isinstance(argv, (list, tuple)) else argv)))

    sys.addaudithook(hook)
    return connects, spawns


def child(mode: str) -> dict:
    """One measurement in this (fresh) process; the checkout is NEXUS_CHECKOUT."""
    connects, spawns = _audit()
    checkout = Path(os.environ["NEXUS_CHECKOUT"])
    sys.path.insert(0, str(checkout))
    result: dict = {}
    started = time.perf_counter()
    if mode == "cli":
        import nexus_assets.cli.main

        result["imports_s"] = time.perf_counter() - started
        result["dagster_loaded"] = "dagster" in sys.modules
    elif mode == "dagster":
        import dagster  # noqa: F401
        from dagster._core.remote_representation.external_data import RepositorySnap
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
        from dagster._grpc.server import LoadedRepositories
        from dagster._serdes import serialize_value

        import nexus_assets.definitions  # what definitions.py imports

        imported = time.perf_counter()
        origin = LoadableTargetOrigin(executable_path=sys.executable, python_file=str(checkout / "definitions.py"),
                                      working_directory=str(checkout))
        loaded = LoadedRepositories(origin, container_image=None, entry_point=["dagster"], container_context=None,
                                    code_location_name="nexus_assets")
        (repo_def,) = loaded.definitions_by_name.values()
        repo_def.get_job("nexus_pipeline")
        built = time.perf_counter()
        snapshot = serialize_value(RepositorySnap.from_def(repo_def, defer_snapshots=True))
        done = time.perf_counter()
        result.update(imports_s=imported - started, definitions_s=built - imported, snapshot_s=done - built,
                      snapshot_bytes=len(snapshot), assets=len(repo_def.asset_graph.get_all_asset_keys()))
    else:
        import nexus_assets.cli.pipeline  # noqa: F401  what a run that needs Dagster imports
        from nexus_assets.core.keys import PIPELINE_JOB
        from nexus_assets.core.settings import Settings
        from nexus_assets.definitions import definitions_for
        from nexus_assets.target.services import build_services

        imported = time.perf_counter()
        settings = Settings.from_env()
        settings.validate()
        services = build_services(settings)
        defs = definitions_for(settings, services)
        graph = defs.resolve_asset_graph()
        defs.resolve_job_def(PIPELINE_JOB)
        done = time.perf_counter()
        result.update(imports_s=imported - started, definitions_s=done - imported,
                      assets=len(graph.get_all_asset_keys()), services=len(services))
    result["total_s"] = time.perf_counter() - started
    engine = os.environ["DOCKER_HOST"].removeprefix("unix://")
    result["engine_connects"] = [c for c in connects if engine in c or "docker.sock" in c]
    result["other_connects"] = [c for c in connects if c not in result["engine_connects"]]
    result["docker_cli_started"] = spawns.count("docker")
    result["code"] = str(Path(sys.modules["nexus_assets"].__file__ or "").parents[1])
    return result


# --- the parent: repositories, runs, table ----------------------------------------------------

def run_child(mode: str, checkout: Path, env: dict[str, str], engine: FakeEngine) -> dict:
    before = engine.connections
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode], capture_output=True,
                          text=True, timeout=600, env={**env, "NEXUS_CHECKOUT": str(checkout)}, cwd=checkout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{mode} load ({checkout}) failed:\n{done.stdout}{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != str(checkout):
        raise RuntimeError(f"{mode}: the process loaded nexus_assets from {result['code']}, not {checkout}")
    result["process_s"] = wall
    time.sleep(0.05)  # the listener thread counts a connect made just before the exit
    result["engine_calls"] = (engine.connections - before) + len(result["engine_connects"]) \
        + result["docker_cli_started"]
    return result


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def summarize(rows: list[dict]) -> dict:
    summary = {k: median(rows, k) for k in ("imports_s", "definitions_s", "snapshot_s", "total_s", "process_s")}
    summary = {k: v for k, v in summary.items() if v is not None}
    summary.update(runs=len(rows), engine_calls=max(r["engine_calls"] for r in rows),
                   other_connects=sorted({c for r in rows for c in r["other_connects"]}))
    for key in ("assets", "dagster_loaded"):
        if key in rows[0]:
            summary[key] = rows[0][key]
    return summary


def paired_ratios(rows: dict[tuple[str, int, str], list[dict]], sizes: list[int]) -> dict[str, dict[str, float]]:
    """{size: {mode: median of this / against, run by run}}: each pair ran back to back, so a ratio
    holds on a shared machine whose load moves between rounds, where two medians may not."""
    return {str(size): {mode: round(statistics.median(
        a["total_s"] / b["total_s"] for a, b in zip(rows[("this", size, mode)], rows[("against", size, mode)],
                                                    strict=True)), 3) for mode in MODES} for size in sizes}


def format_table(results: dict) -> str:
    sides = list(results["sides"])
    head = ["services", "assets", "load: dagster dev (imports + definitions + snapshot)",
            "nexus-agent graph", "CLI import", "engine calls"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---:" for _ in head) + " |"]
    for size in results["sizes"]:
        cells = [str(size), str(results["sides"][sides[0]][str(size)]["dagster"].get("assets", "?"))]
        for mode in MODES:
            parts = []
            for side in sides:
                s = results["sides"][side][str(size)][mode]
                detail = " + ".join(f"{s[p]:.2f}" for p in PHASES[mode]) if len(PHASES[mode]) > 1 else ""
                parts.append(f"{s['total_s']:.2f} s" + (f" ({detail})" if detail else "")
                             + (f" [{side}]" if len(sides) > 1 else ""))
            cells.append("<br>".join(parts))
        cells.append(str(max(results["sides"][side][str(size)][m]["engine_calls"] for side in sides for m in MODES)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="103,300,1000", help="comma-separated service counts")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per size, mode and checkout (median)")
    parser.add_argument("--against", type=Path, help="another checkout, measured interleaved with this one")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.runs < 1:
        parser.error("--sizes needs whole numbers of at least 1, --runs at least 1")
    sides = {"this": ROOT}
    if args.against:
        if not (args.against / "definitions.py").is_file():
            parser.error(f"--against {args.against}: no definitions.py there")
        sides["against"] = args.against.resolve()

    sys.path.insert(0, str(ROOT))
    from nexus_assets.testrepos.synthetic import generate_monorepo

    rows: dict[tuple[str, int, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="nexus-load-bench-") as tmp:
        root = Path(tmp)
        engine = FakeEngine(root / "engine.sock")
        repos = {}
        for size in sizes:
            started = time.perf_counter()
            repos[size] = root / f"repo-{size}"
            generate_monorepo(repos[size], size)
            print(f"generated {size} services in {time.perf_counter() - started:.1f} s", flush=True)
        try:
            for run in range(args.runs):  # interleaved: every size, mode and side once per round
                for size in sizes:
                    for mode in MODES:
                        # ABBA: which side goes first alternates, so neither always follows the other
                        for side, checkout in list(sides.items())[::1 if run % 2 == 0 else -1]:
                            home = root / f"home-{side}-{size}-{mode}-{run}"
                            home.mkdir()
                            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root),
                                   "DAGSTER_HOME": str(home), "NEXUS_REPO": str(repos[size]),
                                   "NEXUS_WORKDIR": str(root / f"work-{side}-{size}"),
                                   "DOCKER_HOST": f"unix://{engine.path}"}
                            row = run_child(mode, checkout, env, engine)
                            rows.setdefault((side, size, mode), []).append(row)
                            print(f"round {run + 1}/{args.runs} {size:>5} services {mode:8} {side:8} "
                                  f"{row['total_s']:.2f} s (process {row['process_s']:.2f} s, "
                                  f"engine calls {row['engine_calls']})", flush=True)
        finally:
            engine.close()
    results = {"sizes": sizes, "runs": args.runs, "cores": os.cpu_count(),
               "checkouts": {side: str(path) for side, path in sides.items()},
               "sides": {side: {str(size): {mode: summarize(rows[(side, size, mode)]) for mode in MODES}
                                for size in sizes} for side in sides}}
    if args.against:
        results["paired_ratios"] = paired_ratios(rows, sizes)
    print("\nmedians of", args.runs, "fresh processes each; seconds inside the process (phases in brackets)\n")
    print(format_table(results))
    for size, by_mode in results.get("paired_ratios", {}).items():
        print(f"{size} services, this / against, median of the {args.runs} paired runs (a run of each side in "
              "turn, so machine load hits both): " + ", ".join(f"{m} {r:.2f}" for m, r in by_mode.items()))
    calls = max(s[m]["engine_calls"] for side in results["sides"].values() for s in side.values() for m in MODES)
    print(f"\nengine calls while loading: {calls} (DOCKER_HOST pointed at a socket no engine answers)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if calls == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
