"""The unit + integration stage of two checkouts side by side, on the same built images.

Generates a synthetic repository (the benchmark's services: scaffold templates, every third
one Python), builds each service once, then runs `run_unit_and_integration` on every service,
`--parallel` at a time (the image step runs 4), in rounds that alternate between this checkout
and `--against` (another checkout's root, e.g. `git archive <commit> | tar -x -C /tmp/before`),
each round in a fresh child process that imports that checkout's nexus_assets. Reports per side
the median of the per-service stage seconds (unit + integration) and of each round's wall time,
and their ratio. `--trace` instead runs this checkout once and lists every engine call the
stages made (count and seconds per service), the profile of where a service's seconds go.
Every image and every file it made is removed afterwards.

    .venv/bin/python benchmarks/stage_ab.py --against /tmp/before [--services 8] [--rounds 5]
        [--parallel 4] [--trace]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Runs in the child, with the checkout under test first on sys.path: argv = job file.
CHILD = r"""
import json, re, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
job = json.load(open(sys.argv[1]))
sys.path.insert(0, job["root"])
from pathlib import Path
from nexus_assets.testing.cleanup import label_created
from nexus_assets.target.services import find_services
from nexus_assets.resources import docker_client
from nexus_assets.verify.service_tests import run_unit_and_integration
services = {s.name: s for s in find_services(Path(job["repo"]))}
calls, lock = [], threading.Lock()

def traced(client):
    api = client.api
    for verb in ("_get", "_post", "_delete", "_put"):
        def wrap(real, verb=verb):
            def call(url, *a, **k):
                began = time.monotonic()
                try:
                    return real(url, *a, **k)
                finally:
                    what = re.sub(r"/(sha256:)?[0-9a-f]{64}|/nexus-test-[\w.-]+", "/{id}", url.split("/v1.", 1)[-1].split("/", 1)[-1])
                    with lock:
                        calls.append((verb[1:].upper() + " /" + what, time.monotonic() - began))
            return call
        setattr(api, verb, wrap(getattr(api, verb)))
    return client

def one(item):
    name, image_id = item
    client = docker_client()
    label_created(client, Path(job["repo"]))
    if job["trace"]:
        traced(client)
    try:
        began = time.monotonic()
        unit, integ = run_unit_and_integration(client, services[name], image_id, Path(job["logs"]))
        return {"service": name, "unit": unit.seconds, "integration": integ.seconds,
                "wall": time.monotonic() - began, "passed": unit.passed and integ.passed,
                "reasons": [unit.reason, integ.reason]}
    finally:
        client.close()

began = time.monotonic()
with ThreadPoolExecutor(job["parallel"]) as pool:
    results = list(pool.map(one, job["images"].items()))
print(json.dumps({"wall": time.monotonic() - began, "results": results, "calls": calls}))
"""


def run_side(root: Path, work: Path, repo: Path, images: dict, parallel: int, trace: bool) -> dict:
    job = work / f"job-{uuid.uuid4().hex[:6]}.json"
    job.write_text(json.dumps({"root": str(root), "repo": str(repo), "images": images, "parallel": parallel,
                               "trace": trace, "logs": str(work / "logs" / job.stem)}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(job)], capture_output=True, text=True, env=env,
                          cwd=str(root))
    if done.returncode:
        raise SystemExit(f"child for {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_images(repo: Path, count: int, registry: str, work: Path) -> dict:
    sys.path.insert(0, str(HERE))
    from nexus_assets.images.build import build_image, plan_build
    from nexus_assets.resources import docker_client
    from nexus_assets.target.baseimages import load_base_image_map
    from nexus_assets.target.services import find_services
    from nexus_assets.testrepos.synthetic import generate_monorepo

    generate_monorepo(repo, count)
    client = docker_client()
    images = {}
    try:
        for service in find_services(repo):
            plan = plan_build(service, client, load_base_image_map())
            images[service.name] = build_image(client, plan, registry=registry, version="t", revision=None,
                                               source=service.name, log_path=work / f"build_{service.name}.log")["image_id"]
    finally:
        client.close()
    return images


def report_trace(side: dict) -> None:
    n = len(side["results"])
    grouped: dict[str, list[float]] = {}
    for what, seconds in side["calls"]:
        grouped.setdefault(re.sub(r"\?.*", "", what), []).append(seconds)
    print(f"engine calls per service ({n} services, stage wall {statistics.median(r['wall'] for r in side['results']):.2f} s median)")
    print(f"{'call':<44}{'per service':>12}{'s per service':>15}{'median ms':>11}")
    for what, times in sorted(grouped.items(), key=lambda kv: -sum(kv[1])):
        print(f"{what:<44}{len(times) / n:>12.1f}{sum(times) / n:>15.3f}{statistics.median(times) * 1000:>11.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, help="the other checkout's root (its nexus_assets/ is imported)")
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if not args.trace and args.against is None:
        parser.error("--against PATH or --trace")

    work = Path(tempfile.mkdtemp(prefix="stage-ab-"))
    registry = f"stage-ab-{uuid.uuid4().hex[:8]}.local"
    try:
        repo = work / "repo"
        images = build_images(repo, args.services, registry, work)
        if args.trace:
            report_trace(run_side(HERE, work, repo, images, args.parallel, True))
            return 0
        sides = {"before": args.against.resolve(), "after": HERE}
        per_service: dict[str, list[float]] = {k: [] for k in sides}
        units: dict[str, list[float]] = {k: [] for k in sides}
        integs: dict[str, list[float]] = {k: [] for k in sides}
        walls: dict[str, list[float]] = {k: [] for k in sides}
        rounds: dict[str, list[float]] = {k: [] for k in sides}  # each round's median per-service seconds
        for i in range(args.rounds):
            for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
                got = run_side(sides[side], work, repo, images, args.parallel, False)
                failed = [r for r in got["results"] if not r["passed"]]
                for r in failed:
                    print(f"  {side}: {r['service']} FAILED: {r['reasons']}")
                per_service[side] += [r["unit"] + r["integration"] for r in got["results"]]
                units[side] += [r["unit"] for r in got["results"]]
                integs[side] += [r["integration"] for r in got["results"]]
                walls[side].append(got["wall"])
                rounds[side].append(statistics.median(r["unit"] + r["integration"] for r in got["results"]))
                print(f"round {i + 1} {side:<6} wall {got['wall']:6.2f} s, per service {rounds[side][-1]:.2f} s")
        print(f"{args.services} services, {args.parallel} at a time, {args.rounds} rounds a side (interleaved)")
        print(f"{'':<28}{'before':>10}{'after':>10}{'after/before':>14}")
        for label, data in (("unit s (median)", units), ("integration s (median)", integs),
                            ("per-service stage s (median)", per_service), ("round wall s (median)", walls)):
            b, a = statistics.median(data["before"]), statistics.median(data["after"])
            print(f"{label:<28}{b:>10.2f}{a:>10.2f}{a / b:>14.2f}")
        # Other load only adds time: the best round of each side is the least disturbed.
        best_b, best_a = min(rounds["before"]), min(rounds["after"])
        print(f"{'per-service s (best round)':<28}{best_b:>10.2f}{best_a:>10.2f}{best_a / best_b:>14.2f}")
        print(f"{'round wall s (min/max)':<28}" + "".join(f"{min(walls[k]):>5.1f}/{max(walls[k]):<4.1f}" for k in sides))
        # The machine's load drifts: each round's two sides ran back to back, so their ratio is
        # the fairer comparison; its spread is the noise.
        paired = sorted(a / b for a, b in zip(rounds["after"], rounds["before"], strict=True))
        print(f"paired per-round ratio of per-service seconds: median {statistics.median(paired):.2f}, "
              f"range {paired[0]:.2f}-{paired[-1]:.2f} ({', '.join(f'{r:.2f}' for r in paired)})")
    finally:
        import docker

        client = docker.from_env()
        for image in client.images.list():
            for tag in image.tags:
                if tag.startswith(registry + "/"):
                    client.images.remove(tag)
        client.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
