"""The realistic monorepo generator (issue 8) writes services that install real packages while
building, in every way the real platform does, and two broken ones on known lines; and a
failed RUN is mapped back to its Dockerfile line (no engine needed)."""

from __future__ import annotations

import json

from nexus_assets.images.build import failed_step_line
from nexus_assets.target.services import find_services
from nexus_assets.testrepos.realistic import BROKEN_REQUIREMENT, generate_realistic_monorepo


def test_services_install_real_packages_in_every_way_the_platform_does(tmp_path):
    real = generate_realistic_monorepo(tmp_path / "repo", 20, second_broken=True)
    services = {s.name: s for s in find_services(real.root)}
    assert set(services) == set(real.services)
    dockerfiles = {name: s.dockerfile.read_text() for name, s in services.items() if s.dockerfile}
    everything = "\n".join(dockerfiles.values())
    for step in ("RUN npm ci --omit=dev", "RUN npm install --production", "RUN pip install --no-cache-dir -r",
                 "apt-get install -y", "RUN addgroup -S app && adduser -S -G app app"):
        assert step in everything, step
    assert sum("apt-get" in text for text in dockerfiles.values()) == 1  # the index download is slow
    for name, service in services.items():
        folder = service.own_folder  # the context, or below it (gateway's is the repository's root)
        if service.language == "node":
            package = json.loads((folder / "package.json").read_text())
            assert package["dependencies"], name
            lock = folder / "package-lock.json"
            if lock.exists():  # npm ci: the lockfile is the package's own, with registry URLs
                data = json.loads(lock.read_text())
                assert data["name"] == package["name"] and data["packages"][""]["name"] == package["name"]
                assert data["packages"]["node_modules/express"]["resolved"].startswith("https://registry.npmjs.org/")
            assert (folder / "tests" / "deps.test.js").is_file()
        else:
            assert (folder / "requirements.txt").read_text().strip(), name
            assert (folder / "tests" / "test_deps.py").is_file()
    # Nested under grouping folders, depends_on only where given.
    assert {"services/media/transcoder", "services/platform/worker_010"} <= set(real.services.values())
    assert [n["name"] for n in services["auth-service"].infrastructure] == ["postgres", "redis"]
    assert services["worker-011"].infrastructure == ()
    # Two broken: an unknown instruction, and a requirement that does not exist.
    assert set(real.all_broken) == {"legacy-reports", "payments-legacy"}
    assert not set(real.all_broken) & set(real.sound)
    dockerfile, line = real.all_broken["payments-legacy"]
    assert dockerfile == "services/payments_legacy/Dockerfile"
    assert dockerfiles["payments-legacy"].splitlines()[line - 1].startswith("RUN pip install")
    assert (real.root / "services/payments_legacy/requirements.txt").read_text().strip() == BROKEN_REQUIREMENT


def test_a_failed_run_step_is_mapped_to_its_dockerfile_line(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# syntax comment\nARG BASE=python:3.11-slim\nFROM ${BASE}\nWORKDIR /app\n"
                          "RUN echo one \\\n    two\n\nRUN pip install -r requirements.txt\nCOPY . .\n")
    # The classic builder counts steps from FROM; ARGs before it are not steps.
    assert failed_step_line(dockerfile, "Step 4/5 : RUN pip install -r requirements.txt") == 8
    assert failed_step_line(dockerfile, "Step 3/5 : RUN echo one     two") == 5
    assert failed_step_line(dockerfile, "Step 9/9 : RUN nothing") is None
    assert failed_step_line(dockerfile, None) is None


def test_services_that_only_run_as_compose_runs_them(tmp_path):
    """Issue 15's traits: ports and variables only compose sets, a compose healthcheck, a context
    at the repository root, and one health check that probes a port never opened."""
    from nexus_assets.target.compose_runtime import resolve
    from nexus_assets.testrepos.realistic_compose import LINT_TRAP

    real = generate_realistic_monorepo(tmp_path / "repo")
    services = {s.name: s for s in find_services(real.root)}
    assert set(real.compose_run) == {"streaming-api", "ledger", "notifier", "gateway", "status-board"}
    assert real.unhealthy == "status-board" and real.unhealthy in real.builds and real.unhealthy not in real.sound
    runs = {name: resolve(services[name].runtime) for name in real.compose_run}
    # The code's default port is not compose's; the Dockerfile EXPOSEs and probes compose's.
    port = runs["streaming-api"].environment["PORT"]
    dockerfile = services["streaming-api"].dockerfile.read_text()
    assert f"EXPOSE {port}" in dockerfile and f"port:{port}" in dockerfile and "PORT=" not in dockerfile
    assert f"Number('{int(port) + 9}')" in (services["streaming-api"].path / "server.js").read_text()
    # Variables only compose gives: an env_file outside the context, and a secret of .env.
    assert sorted(runs["ledger"].environment) == ["LEDGER_CURRENCY", "LEDGER_SIGNING_KEY"]
    assert runs["ledger"].environment["LEDGER_SIGNING_KEY"] in runs["ledger"].secrets
    # No EXPOSE and no HEALTHCHECK: compose publishes the port and defines the healthcheck.
    notifier = services["notifier"].dockerfile.read_text()
    assert "EXPOSE" not in notifier and "HEALTHCHECK" not in notifier
    assert runs["notifier"].ports and runs["notifier"].healthcheck["test"][0] == "CMD"
    # Built from the repository's root, beside a Python 2 script that is no service's.
    assert services["gateway"].folder == "." and (real.root / LINT_TRAP).is_file()
    assert f"127.0.0.1:{real.health_port}/health" in " ".join(runs["status-board"].healthcheck["test"])
