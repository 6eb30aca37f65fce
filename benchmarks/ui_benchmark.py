"""How fast the Dagster UI shows the graph: the global asset lineage page until its nodes are
drawn, and the asset catalog until every row it shows has its status, in Debian's headless
Chromium (Playwright), at the bundled sample, 103 and 300 generated services.

Definitions only, no run: each size gets a fresh DAGSTER_HOME, either empty (--instance empty:
every status "Never materialized") or holding one recorded event per asset and per check
(--instance recorded, the default: a runless materialization or observation each, a passed check
evaluation each, as the status column reads them after a good run, with no build). --home measures
the sample against the instance of a real run made before instead. Loading the definitions makes
no engine call, so this needs no engine lock.

    .venv/bin/python benchmarks/ui_benchmark.py [--sizes sample,103,300] [--instance recorded|empty]
        [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.ui.auditor import launch  # noqa: E402

PAGES = {
    # the global asset lineage ("Lineage" in the navigation): SVG nodes, one per asset or per
    # collapsed group, drawn once the layout is done
    "graph": ("/asset-groups", "() => document.querySelectorAll('svg foreignObject').length"),
    # one stage's group expanded (the images group: every image node of the repository)
    "images_group": ("/locations/nexus_assets/asset-groups/images/lineage",
                     "() => document.querySelectorAll('svg foreignObject').length"),
    # the catalog ("Catalog"): a virtualized table whose rows (those in view) show the status in
    # their fourth cell (checkbox, name, code location and group, status), empty while it loads
    "catalog": ("/assets", """() => {
        const rows = [...document.querySelectorAll('[class*="VirtualizedAssetRow_rowGrid"]')];
        const done = rows.filter(r => r.children.length > 3 && r.children[3].innerText.trim().length > 0);
        return rows.length && done.length === rows.length ? rows.length : 0;
    }"""),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def asset_count(url: str) -> int:
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": "{ assetNodes { id } }"}).encode(),
                                     headers={"Content-Type": "application/json"})
    return len(json.loads(urllib.request.urlopen(request, timeout=60).read())["data"]["assetNodes"])


@contextlib.contextmanager
def webserver(env: dict, log: Path):
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "dagster-webserver"), "-w", "workspace.yaml", "-h",
                                 "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    try:
        deadline = start + 600
        while True:
            with contextlib.suppress(OSError, KeyError, TypeError, ValueError):
                if (count := asset_count(url)) > 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"dagster-webserver showed no asset; see {log}")
            time.sleep(1)
        yield url, count, time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def measure(context, url: str, page_name: str, timeout: float = 300) -> tuple[float, int]:
    """Seconds from navigation until the page's probe holds a positive value for 0.5 s, and that value."""
    path, probe = PAGES[page_name]
    page = context.new_page()
    try:
        start = time.monotonic()
        page.goto(url + path, wait_until="commit")
        seen, since = 0, None
        while time.monotonic() - start < timeout:
            value = page.evaluate(probe)
            if value and value == seen:
                if since is not None and time.monotonic() - since >= 0.5:
                    return since - start, value
            else:
                seen, since = value, time.monotonic() if value else None
            time.sleep(0.1)
        raise TimeoutError(f"{page_name} did not render within {timeout:.0f} s")
    finally:
        page.close()


def record(env: dict) -> None:
    """In a process of its own (the definitions read the environment): one event per asset and check."""
    subprocess.run([sys.executable, __file__, "--record-into", env["DAGSTER_HOME"]], cwd=ROOT, check=True, env=env)


def _record_into(home: Path) -> None:
    import dagster as dg

    from nexus_assets.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    instance = dg.DagsterInstance.from_config(str(home))
    observable = set(graph.observable_asset_keys)
    for key in graph.get_all_asset_keys():
        metadata = {"recorded_by": "benchmarks/ui_benchmark.py"}
        instance.report_runless_asset_event(dg.AssetObservation(key, metadata=metadata) if key in observable
                                            else dg.AssetMaterialization(key, metadata=metadata))
    for check in graph.asset_check_keys:
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(asset_key=check.asset_key, check_name=check.name,
                                                                    passed=True))


def main() -> int:
    if sys.argv[1:2] == ["--record-into"]:
        _record_into(Path(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="sample,103,300")
    parser.add_argument("--instance", choices=("recorded", "empty"), default="recorded")
    parser.add_argument("--repeat", type=int, default=2, help="loads per page (the first warms the server's caches)")
    parser.add_argument("--home", type=Path, help="DAGSTER_HOME of a sample run, for the sample's status")
    parser.add_argument("--workdir", type=Path, help="that run's working copy (NEXUS_WORKDIR)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from nexus_assets.testrepos.synthetic import generate_monorepo

    results = []
    with tempfile.TemporaryDirectory(prefix="nexus-ui-bench-") as tmp, sync_playwright() as playwright:
        root = Path(tmp)
        for size in args.sizes.split(","):
            repo = None
            home, work = root / f"home-{size}", root / f"work-{size}"
            home.mkdir()
            if size != "sample":
                repo = root / f"repo-{size}"
                generate_monorepo(repo, int(size))
            elif args.home:
                home, work = args.home, args.workdir or args.home.parent
            env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "DAGSTER_HOME": str(home), "NEXUS_WORKDIR": str(work),
                   **({"NEXUS_REPO": str(repo)} if repo else {})}
            instance = "run" if args.home and size == "sample" else args.instance
            if instance == "recorded":
                record(env)
            with webserver(env, root / f"webserver-{size}.log") as (url, assets, loaded):
                context = launch(playwright, root / f"profile-{size}")
                try:
                    row = {"size": size, "assets": assets, "instance": instance, "definitions_s": round(loaded, 1)}
                    for page_name in PAGES:
                        times = [measure(context, url, page_name) for _ in range(args.repeat)]
                        row[page_name] = {"first_s": round(times[0][0], 2), "warm_s": round(min(t for t, _ in times[1:]
                                                                                            or times), 2),
                                          "rendered": times[-1][1]}
                finally:
                    context.close()
            print(json.dumps(row), flush=True)
            results.append(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
