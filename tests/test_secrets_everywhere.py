"""Secrets planted in every input a real `nexus-agent run` reads (the `.env` files, with
`export`, multi-line quoted and bare lines; the discovery archive's env dump and journal; the
compose file's environment and build args; Dockerfiles; env files inside a build context),
then every output scanned for them: the screen, reports/, artifacts/, the build and test logs,
every file under DAGSTER_HOME (the event log, runs, their SQLite files), and the metadata and
history of every image the run built. A build that would put a secret into an image (a
secret build arg, a Dockerfile line holding an `.env` value) is refused, naming the service
and the arg or line, never the value."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.testrepos.synthetic import generate_monorepo

pytestmark = pytest.mark.docker

FIXTURES = Path(__file__).parent / "fixtures"
NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]

PEM = "-----BEGIN PLANTED E2E KEY-----\nMIIBe2ePlantedMiddleLine77aa\nQmFzZTY0RTJlVGFpbA==\n-----END PLANTED E2E KEY-----"
VPS_PEM = "-----BEGIN VPS E2E-----\nMIIBvpsE2eDumpMiddle55x\n-----END VPS E2E-----"
PLANTED = [
    PEM,                                  # .env: multi-line, double-quoted
    "orphanE2eBareLine88Zq",              # .env: a bare line (no '=')
    "npm-planted-tok-5521",               # .env: export NPM_TOKEN=... -> a compose build arg
    "e2e-label-Qx71zz",                   # .env: a plain-named value -> another service's build arg
    "e2e-db-pass-0192",                   # .env: DB_PASSWORD -> compose environment, a Dockerfile RUN line
    "prod-e2e-sess-77q",                  # .env.production, single-quoted
    "svc-local-tok-6612",                 # services/py-svc-003/.env.local (dockerignored)
    "svc-config-pw-3318",                 # services/py-svc-003/config/prod.env (warned)
    VPS_PEM,                              # the archive's env_dump.txt, multi-line
    "compose-e2e-hook-4455",              # compose environment, inline
]


def _pieces() -> list[str]:
    """Every planted value, and every line of it, as text and as JSON writes it."""
    found = set()
    for value in PLANTED:
        for piece in [value, *value.splitlines()]:
            if len(piece) >= 8:
                found |= {piece, json.dumps(piece)[1:-1]}
    return sorted(found)


def _plant(repo: Path, host: Path) -> None:
    (repo / ".env").write_text(
        "# planted\nexport NPM_TOKEN=npm-planted-tok-5521\n"
        f'PRIVATE_KEY="{PEM}"\norphanE2eBareLine88Zq\nBUILD_LABEL=e2e-label-Qx71zz\n'
        "DB_PASSWORD=e2e-db-pass-0192\nAPP_MODE=plain\n")
    (repo / ".env.production").write_text("SESSION_SECRET='prod-e2e-sess-77q'\n")
    svc = repo / "services" / "py-svc-003"
    (svc / ".env.local").write_text("SESSION_TOKEN=svc-local-tok-6612\n")
    (svc / "config").mkdir()
    (svc / "config" / "prod.env").write_text("DB_PASSWORD=svc-config-pw-3318\n")
    (svc / ".dockerignore").write_text(".env*\n")
    archive = repo / "nexus-discovery"
    shutil.copytree(FIXTURES / "discovery_archive", archive)
    with (archive / "env_dump.txt").open("a") as fh:
        fh.write(f"VPS_PRIVATE_KEY={VPS_PEM}\nVPS_API_TOKEN=compose-e2e-hook-4455\n")
    with (archive / "docker_journal.txt").open("a") as fh:
        fh.writelines(f"Nov 25 12:00:00 vps app[1]: loaded {line}\n"
                      for value in PLANTED for line in value.splitlines())
    compose = repo / "docker-compose.yml"
    text = compose.read_text()
    text = text.replace("    build: ./services/node-svc-001\n",
                        "    build:\n      context: ./services/node-svc-001\n      args:\n"
                        "        NPM_TOKEN: ${NPM_TOKEN}\n", 1)
    text = text.replace("    build: ./services/node-svc-002\n",
                        "    build:\n      context: ./services/node-svc-002\n      args:\n"
                        "        - BUILD_NOTE=${BUILD_LABEL}\n", 1)
    text = text.replace("    build: ./services/py-svc-003\n",
                        "    build:\n      context: ./services/py-svc-003\n      args:\n"
                        "        APP_MODE: ${APP_MODE}\n    environment:\n"
                        "      DB_PASSWORD: ${DB_PASSWORD}\n      WEBHOOK_SECRET: compose-e2e-hook-4455\n", 1)
    compose.write_text(text)
    for name, arg in (("node-svc-001", "NPM_TOKEN"), ("node-svc-002", "BUILD_NOTE"), ("py-svc-003", "APP_MODE")):
        # A RUN after the ARG: the classic builder records the arg's value in that step's history.
        dockerfile = repo / "services" / name / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text().replace(
            "WORKDIR /app\n", f"WORKDIR /app\nARG {arg}\nRUN test -n \"${arg}\"\n", 1))
    dockerfile = repo / "services" / "node-svc-004" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(
        "WORKDIR /app\n", "WORKDIR /app\n# the deploy password is e2e-db-pass-0192 (a comment: never built)\n"
        "RUN echo e2e-db-pass-0192 > /dev/null\n", 1))
    # A service folder that is a link out of the repository (issue 10, fault 1).
    (repo / "services" / "linked").symlink_to(host)


def _images(registry: str) -> list[str]:
    listing = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                             text=True, check=True).stdout.split()
    return sorted(tag for tag in listing if tag.startswith(registry + "/"))


def test_no_planted_secret_reaches_any_output_and_secret_builds_are_refused(tmp_path, unique_registry,
                                                                              remove_test_images):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 4)
    host = tmp_path / "host"
    host.mkdir()
    (host / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . /leak\n")
    (host / "host-secret.txt").write_text("host-only-content-7731\n")
    _plant(repo, host)
    home, workdir = tmp_path / "dagster_home", tmp_path / "work"
    done = subprocess.run([*NEXUS_AGENT, "run", "--repo", str(repo), "--workdir", str(workdir),
                           "--registry", unique_registry], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "DAGSTER_HOME": str(home)})
    screen = done.stdout + done.stderr
    assert done.returncode == 1, screen
    assert "Traceback" not in screen

    # The refused builds: on screen, naming the service and the arg or line, never the value.
    lines = screen.splitlines()
    (npm,) = [line for line in lines if "FAILED node-svc-001:" in line]
    assert "build arg NPM_TOKEN of docker-compose.yml carries a secret" in npm and "docker history" in npm
    (note,) = [line for line in lines if "FAILED node-svc-002:" in line]
    assert "build arg BUILD_NOTE" in note
    # Each refusal names the key and the rule that made it a secret (issue 15), never the value.
    assert "it holds the value of .env key BUILD_LABEL, secret because its value is written in no" in note, note
    (run_line,) = [line for line in lines if "FAILED node-svc-004:" in line]
    assert ("Dockerfile line 9 holds a value of an .env file (the value of .env key DB_PASSWORD, secret because "
            "its key names a secret)") in run_line, run_line
    assert "built py-svc-003" in screen and "tests passed" in screen
    # Discovery's warnings reach the screen too, with file and line.
    (warned,) = [line for line in lines
                 if "docker-compose.yml: build arg NPM_TOKEN of compose service 'node-svc-001' carries a secret" in line]
    # Masked, the warning keeps its words (issue 16, item 9: it read "*** history`" once).
    assert "(its name names a secret): `docker history` would keep its value in the image" in warned, warned
    assert any("services/py-svc-003/config/prod.env: warning: env file in the build context" in line
               for line in lines), screen
    assert not any("services/py-svc-003/.env.local" in line for line in lines)  # .dockerignore honoured
    assert any("services/linked" in line and "outside the repository" in line for line in lines), screen

    # Each refused service is refused, not merely failed, in discovery and the manifest (issue 16).
    manifest = json.loads((workdir / "artifacts" / "artifacts_manifest.json").read_text())
    statuses = {i["service"]: i["status"] for i in manifest["images"]}
    assert statuses == {"linked": "refused", "node-svc-001": "refused", "node-svc-002": "refused",
                        "node-svc-004": "refused", "py-svc-003": "current"}, statuses
    discovery = json.loads((workdir / "reports" / "discovery_parsed.json").read_text())
    assert sorted(r["service"] for r in discovery["refused"]) == ["linked", "node-svc-001", "node-svc-002",
                                                                  "node-svc-004"]

    # Nothing was built for the refused services, nor from outside the repository.
    built = _images(unique_registry)
    assert built == [f"{unique_registry}/nexus/py-svc-003:1.0.0", f"{unique_registry}/nexus/py-svc-003:latest"], built

    # Every output, scanned.
    outputs: dict[str, bytes] = {"screen": screen.encode()}
    for folder in (workdir / "reports", workdir / "artifacts", home):
        for path in folder.rglob("*"):
            if path.is_file():
                outputs[str(path)] = path.read_bytes()
    assert any(name.endswith("build_py-svc-003.log") for name in outputs)
    assert any(name.endswith(".db") for name in outputs), "the Dagster instance's SQLite files"
    instance = dg.DagsterInstance.from_config(str(home))
    records = [record for run in instance.get_runs() for record in instance.all_logs(run.run_id)]
    assert records
    outputs["event log"] = "\n".join(dg.serialize_value(r) for r in records).encode()
    outputs["runs"] = "\n".join(dg.serialize_value(run) for run in instance.get_runs()).encode()
    image = built[0]
    inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, check=True).stdout
    config = json.loads(inspect)[0]["Config"]
    assert config["Labels"] and config["Env"]
    outputs["image inspect"] = inspect.encode()
    outputs["image history"] = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
                                              capture_output=True, text=True, check=True).stdout.encode()
    assert b"APP_MODE=plain" in outputs["image history"]  # a build arg that is no secret is kept, as docker does
    files = subprocess.run(["docker", "run", "--rm", "--entrypoint", "ls", image, "-a", "/app", "/app/config"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert ".env.local" not in files and "prod.env" in files  # .dockerignore honoured; the other one was warned
    # The scan is not vacuous: every planted piece is in the working copy the run read.
    inputs = b"\n".join(p.read_bytes() for p in (workdir).rglob("*") if p.is_file() and not p.is_symlink()
                        and "reports" not in p.parts and "artifacts" not in p.parts)
    assert [piece for piece in _pieces() if "\\n" not in piece and piece.encode() not in inputs] == []
    leaks = [(piece, name) for piece in _pieces() for name, data in outputs.items() if piece.encode() in data]
    leaks += [("host-only-content-7731", name) for name, data in outputs.items() if b"host-only-content-7731" in data]
    assert leaks == [], leaks
