"""Wall time of the unit and integration stages for a few sample services, on the real engine.

Builds each service of the sample repository once (plan_build/build_image, as the image step
does), then times, `--rounds` times per service, either the two stages one after the other
(`--mode separate`: run_unit then run_integration, each with its own container) or both
against one container (`--mode combined`: run_unit_and_integration). `--module` loads the
stage functions from another copy of service_tests.py (for instance the one before a change:
`git show <commit>:nexus_assets/verify/service_tests.py > /tmp/before.py`), which then only
offers `separate`. Every image it built is untagged afterwards.

    .venv/bin/python benchmarks/stage_timings.py [--services backend-api,analytics,users]
        [--rounds 3] [--mode separate|combined] [--module PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load(path: Path | None):
    if path is None:
        from nexus_assets.verify import service_tests

        return service_tests
    spec = importlib.util.spec_from_file_location("stage_timings_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default="backend-api,analytics,users")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=("separate", "combined"), default="combined")
    parser.add_argument("--module", type=Path, help="a service_tests.py to time instead of this checkout's")
    args = parser.parse_args()

    from nexus_assets.core.settings import SAMPLE_REPO
    from nexus_assets.images.build import build_image, plan_build
    from nexus_assets.resources import docker_client
    from nexus_assets.target.baseimages import load_base_image_map
    from nexus_assets.target.services import find_services

    tests = load(args.module)
    client = docker_client()
    registry = f"timings-{uuid.uuid4().hex[:8]}.local"
    work = Path(tempfile.mkdtemp(prefix="stage-timings-"))
    try:
        repo = work / "repo"
        shutil.copytree(SAMPLE_REPO, repo, symlinks=True)
        services = {s.name: s for s in find_services(repo)}
        print(f"mode {args.mode}, module {args.module or 'this checkout'}, {args.rounds} rounds")
        print(f"{'service':<16}{'unit s':>10}{'integ s':>10}{'total s':>10}{'containers':>12}")
        totals = []
        for name in args.services.split(","):
            service = services[name]
            plan = plan_build(service, client, load_base_image_map())
            image_id = build_image(client, plan, registry=registry, version="t", revision=None,
                                   source=name, log_path=work / f"build_{name}.log")["image_id"]
            units, integs, walls, containers = [], [], [], 0
            for _ in range(args.rounds):
                started = time.monotonic()
                if args.mode == "combined":
                    unit, integ = tests.run_unit_and_integration(client, service, image_id, work / "logs")
                else:
                    unit = tests.run_unit(client, service, image_id, work / "logs")
                    integ = tests.run_integration(client, service, image_id, work / "logs")
                walls.append(time.monotonic() - started)
                if not (unit.passed and integ.passed):
                    print(f"  {name}: FAILED: {unit.reason} / {integ.reason}")
                units.append(unit.seconds)
                integs.append(integ.seconds)
                containers = unit.containers + integ.containers
            totals.append(statistics.median(walls))
            print(f"{name:<16}{statistics.median(units):>10.2f}{statistics.median(integs):>10.2f}"
                  f"{statistics.median(walls):>10.2f}{containers:>12}")
        print(f"{'sum of medians':<36}{sum(totals):>10.2f}")
    finally:
        for image in client.images.list():
            for tag in image.tags:
                if tag.startswith(registry + "/"):
                    client.images.remove(tag)
        client.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
