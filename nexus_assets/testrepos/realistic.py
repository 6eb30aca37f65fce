"""Monorepos shaped like a real Nexus COS checkout, for the tests of the compose service model.

Unlike `synthetic.generate_monorepo` (one folder per service, compose naming them alike), this
writes the traits of the real platform that folders alone get wrong: compose names that differ
from folder names (`auth-service` builds `services/auth_service`, `billing` builds
`services/billing-service`), services nested under a grouping folder (`services/media/...`), a
build context outside services/ (`apps/web`), a Dockerfile outside its context
(`docker/node.Dockerfile`), Dockerfiles that fail on purpose without the build args only
compose supplies (interpolated from `.env`, mapping and list forms), a library folder with no
Dockerfile, infrastructure as `image:` only, a second compose file that is not the stack, and
one Dockerfile that is broken on a known line (and, with `second_broken`, one whose
`pip install` asks for a version that does not exist). Every service comes from the scaffold
templates and installs REAL packages from the registries while building, in one of four
profiles (`PROFILES`): `npm ci` of express from a real package-lock.json with Alpine's
`addgroup -S`/`adduser -S`, `npm install --production` of lodash and ms, `pip install -r` of
flask, and `pip install -r` of requests after an `apt-get install`. A unit test in each image
loads what was installed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexus_assets.core.fileio import write_atomic
from nexus_assets.policy.pmmg import RATIFICATION_INDEX, ratification_index
from nexus_assets.scaffold.generate import TEMPLATES_DIR, port_for, render, template_files

# The check every compose-built Dockerfile makes: built without compose's args, it fails.
REQUIRE_PORT = ('ARG SERVICE_PORT\nRUN test -n "$SERVICE_PORT" || '
                '(echo "build arg SERVICE_PORT is required: build with docker compose" >&2; exit 1)\n')
BROKEN_INSTRUCTION = "COPPY . ."  # an unknown instruction: the engine names its line
BROKEN_REQUIREMENT = "requests==0.0.404"  # no such release: pip install fails in its RUN line
DEPS_DIR = Path(__file__).parent / "realistic_deps"  # real package-lock.json files

# How each profile installs its dependencies (language, FROM, the lines before `COPY . .`,
# what it installs, the unit test that loads it). Node services install with npm ci from a
# lockfile, or npm install --production without one; Python services with pip install -r.
PROFILES: dict[str, dict[str, Any]] = {
    "express": {"language": "node", "from": "node:20-alpine", "deps": {"express": "^4.21.2"},
                "lock": "express", "install": "COPY package.json package-lock.json ./\nRUN npm ci --omit=dev\n",
                "user": "RUN addgroup -S app && adduser -S -G app app\nUSER app\n"},
    "lodash": {"language": "node", "from": "node:18-alpine", "deps": {"lodash": "^4.17.21", "ms": "^2.1.3"},
               "install": "COPY package.json ./\nRUN npm install --production\n"},
    "flask": {"language": "python", "from": "python:3.11-slim", "requirements": ["flask==3.0.3"],
              "install": "COPY requirements.txt ./\nRUN pip install --no-cache-dir -r requirements.txt\n"},
    "requests": {"language": "python", "from": "python:3.12-slim", "requirements": ["requests==2.32.3"],
                 "install": "COPY requirements.txt ./\nRUN pip install --no-cache-dir -r requirements.txt\n"},
    # apt-get update fetches Debian's whole package index (about a minute here): one service only.
    "requests-apt": {"language": "python", "from": "python:3.12-slim", "requirements": ["requests==2.32.3"],
                     "only_named": True,
                     "install": ("RUN apt-get update && apt-get install -y --no-install-recommends tini "
                                 "&& rm -rf /var/lib/apt/lists/*\n"
                                 "COPY requirements.txt ./\nRUN pip install --no-cache-dir -r requirements.txt\n")},
}
NODE_DEPS_TEST = """'use strict';
// The packages npm installed while the image was built load, and work.
const { it } = require('node:test');
const assert = require('node:assert/strict');
const pkg = require('../package.json');

it('loads every dependency npm installed', () => {
  for (const name of Object.keys(pkg.dependencies || {})) {
    assert.ok(require(name), name);
  }
});
"""
PYTHON_DEPS_TEST = """import importlib
import pathlib
import unittest


class InstalledRequirements(unittest.TestCase):
    def test_every_requirement_imports(self):
        names = [line.split("==")[0] for line in
                 (pathlib.Path(__file__).parent.parent / "requirements.txt").read_text().splitlines()
                 if line and not line.startswith("#")]
        for name in names:
            self.assertTrue(importlib.import_module(name), name)


if __name__ == "__main__":
    unittest.main()
"""


@dataclass(frozen=True)
class RealisticRepo:
    """What was written: the services a correct model finds (compose or folder name -> the
    folder of its context), the broken one and its bad line, and what must not be built."""

    root: Path
    services: dict[str, str]
    broken: str
    broken_dockerfile: str
    broken_line: int
    libraries: list[str] = field(default_factory=list)
    not_built: list[str] = field(default_factory=list)  # in the other compose file only
    all_broken: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (Dockerfile, bad line)
    # Builds, but its health check probes a port it never opens: its integration fails, naming it.
    unhealthy: str = ""
    health_port: int = 0
    compose_run: dict[str, str] = field(default_factory=dict)  # the services of realistic_compose's traits

    @property
    def sound(self) -> list[str]:
        """The services that build and pass lint, unit and integration."""
        return sorted(n for n in self.services if n != self.broken and n not in self.all_broken and n != self.unhealthy)

    @property
    def builds(self) -> list[str]:
        """The services whose image builds (the sound ones and the unhealthy one)."""
        return sorted([*self.sound, *([self.unhealthy] if self.unhealthy else [])])


def _write(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


def _readable(root: Path) -> None:
    """Folders 0755 and files 0644, as in a checkout: the images run as user 10001 and read
    what COPY put there (write_atomic's temporary files are private to their owner)."""
    os.chmod(root, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(Path(dirpath) / name, 0o755)
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o644)


def profile_for(language: str, index: int) -> str:
    """The dependency profile of the index-th service of a language: alternating."""
    names = [n for n, p in PROFILES.items() if p["language"] == language and not p.get("only_named")]
    return names[index % len(names)]


def _with_profile(dockerfile: str, profile: dict[str, Any]) -> str:
    """The template's Dockerfile, installing the profile's packages before `COPY . .`."""
    lines = dockerfile.splitlines(keepends=True)
    lines = [f"FROM {profile['from']}\n" if ln.startswith("FROM ") else ln for ln in lines
             if not ln.startswith(("# No dependencies to install", "# requirements.txt is empty"))]
    text = "".join(lines).replace("COPY . .\n", profile["install"] + "COPY . .\n", 1)
    if "user" in profile:
        head, _, rest = text.partition("USER 10001\n")
        head = head.rsplit("# Numeric user", 1)[0]
        text = head + profile["user"] + rest
    return text


def _service(dest: Path, language: str, name: str, port: int, *, needs_arg: bool, dockerfile: bool = True,
             profile: str | None = None, plain: bool = False) -> None:
    """A scaffold-template service in dest that installs the packages of its profile (default:
    the first of its language); its Dockerfile requires SERVICE_PORT when needs_arg. plain: the
    template as it is (standard library only, nothing installed: quick to build)."""
    if plain:
        for relative in template_files(language):
            text = (TEMPLATES_DIR / language / relative).read_text(encoding="utf-8")
            _write(dest / relative, render(text, name, port, f"service {name}", relative.suffix == ".json"))
        return
    chosen = PROFILES[profile or profile_for(language, 0)]
    root = TEMPLATES_DIR / language
    for relative in template_files(language):
        if relative.name == "Dockerfile" and not dockerfile:
            continue
        text = render((root / relative).read_text(encoding="utf-8"), name, port, f"realistic service {name}",
                      relative.suffix == ".json")
        if relative.name == "Dockerfile":
            text = _with_profile(text, chosen)
            if needs_arg:
                head, _, rest = text.partition("\nWORKDIR /app\n")
                text = f"{head}\n{REQUIRE_PORT}WORKDIR /app\n{rest}"
        elif relative.name == "package.json":
            package = json.loads(text)
            package["dependencies"] = chosen["deps"]
            text = json.dumps(package, indent=2) + "\n"
        elif relative.name == "requirements.txt":
            text = "\n".join(chosen["requirements"]) + "\n"
        _write(dest / relative, text)
    if language == "node":
        _write(dest / "tests" / "deps.test.js", NODE_DEPS_TEST)
        if "lock" in chosen:
            package = json.loads((dest / "package.json").read_text(encoding="utf-8"))
            lock = json.loads((DEPS_DIR / chosen["lock"] / "package-lock.json").read_text(encoding="utf-8"))
            lock["name"] = lock["packages"][""]["name"] = package["name"]
            lock["version"] = lock["packages"][""]["version"] = package["version"]
            _write(dest / "package-lock.json", json.dumps(lock, indent=2) + "\n")
    else:
        _write(dest / "tests" / "test_deps.py", PYTHON_DEPS_TEST)


MIN_SERVICES = 12  # one per trait


def generate_realistic_monorepo(dest: Path, count: int = MIN_SERVICES, *, second_broken: bool = False) -> RealisticRepo:
    """Write a realistic monorepo of `count` buildable services (at least MIN_SERVICES) into dest;
    with second_broken, one more (counted in `count`) whose pip install fails on its RUN line."""
    from nexus_assets.testrepos.realistic_compose import add_compose_run_traits

    if count < MIN_SERVICES:
        raise ValueError(f"a realistic monorepo has at least {MIN_SERVICES} services (one per trait), not {count}")
    dest.mkdir(parents=True, exist_ok=True)
    services: dict[str, str] = {}
    compose: list[str] = []

    def add(compose_name: str, folder: str, language: str, *, build: list[str], needs_arg: bool = True,
            profile: str | None = None, depends_on: str = "") -> int:
        port = port_for(compose_name, language)
        _service(dest / folder, language, compose_name, port, needs_arg=needs_arg, profile=profile)
        services[compose_name] = folder
        compose.extend([f"  {compose_name}:", "    build:", *build,
                        f"    image: ${{REGISTRY:-127.0.0.1:5000}}/nexus/{compose_name}:${{VERSION:-latest}}"])
        if depends_on:
            compose.append(f"    depends_on: [{depends_on}]")
        return port

    # 1. A dashed compose name for an underscored folder; args as a mapping, from .env.
    auth_port = add("auth-service", "services/auth_service", "node", build=[
        "      context: ./services/auth_service", "      args:", "        SERVICE_PORT: ${AUTH_PORT}"],
        profile="express", depends_on="postgres, redis")
    # 2. A short compose name for a folder with a suffix; a shared Dockerfile outside the
    #    context; args as a list with a default.
    billing_port = port_for("billing", "node")
    _service(dest / "services/billing-service", "node", "billing", billing_port, needs_arg=False, dockerfile=False,
             profile="express")
    services["billing"] = "services/billing-service"
    compose += ["  billing:", "    build:", "      context: services/billing-service",
                "      dockerfile: ../../docker/node.Dockerfile", "      args:",
                f"        - SERVICE_PORT=${{BILLING_PORT:-{billing_port}}}", "    depends_on: [postgres]"]
    template = (TEMPLATES_DIR / "node" / "Dockerfile").read_text(encoding="utf-8")
    shared = _with_profile(render(template, "node-service", billing_port, "shared Node.js service image", False),
                           PROFILES["express"])
    shared = shared.replace(f"PORT={billing_port}", "PORT=${SERVICE_PORT}").replace(
        f"EXPOSE {billing_port}", "EXPOSE ${SERVICE_PORT}")
    head, _, rest = shared.partition("\nWORKDIR /app\n")
    _write(dest / "docker" / "node.Dockerfile", f"{head}\n{REQUIRE_PORT}WORKDIR /app\n{rest}")
    # 3. Nested under a grouping folder, built by compose; the arg given by name only (from .env).
    transcoder_port = add("transcoder", "services/media/transcoder", "python", build=[
        "      context: ./services/media/transcoder", "      args:", "        - SERVICE_PORT"],
        profile="requests-apt", depends_on="redis")
    # 4. Nested, no compose entry: a folder service (its Dockerfile needs no arg).
    _service(dest / "services/media/thumbnailer", "python", "thumbnailer", port_for("thumbnailer", "python"),
             needs_arg=False, profile="flask")
    services["thumbnailer"] = "services/media/thumbnailer"
    # 5. A build context outside services/.
    add("web", "apps/web", "node", build=["      context: ./apps/web", "      args:",
                                          "        SERVICE_PORT: \"${WEB_PORT:-3000}\""], profile="lodash")
    # 6. The broken one: an unknown instruction on a known line.
    add("legacy-reports", "services/legacy_reports", "node", build=[
        "      context: ./services/legacy_reports", "      args:", "        SERVICE_PORT: 3999"], profile="express")
    broken_file = dest / "services/legacy_reports/Dockerfile"
    lines = broken_file.read_text(encoding="utf-8").splitlines()
    broken_line = lines.index("COPY . .") + 1
    lines[broken_line - 1] = BROKEN_INSTRUCTION
    _write(broken_file, "\n".join(lines) + "\n")
    broken = {"legacy-reports": ("services/legacy_reports/Dockerfile", broken_line)}
    last = count
    if second_broken:  # 7. A requirement that does not exist: pip fails in its RUN line.
        add("payments-legacy", "services/payments_legacy", "python", build=[
            "      context: ./services/payments_legacy", "      args:", "        SERVICE_PORT: 8999"], profile="flask")
        _write(dest / "services/payments_legacy/requirements.txt", f"{BROKEN_REQUIREMENT}\n")
        pip_line = next(n for n, ln in enumerate((dest / "services/payments_legacy/Dockerfile").read_text(
            encoding="utf-8").splitlines(), 1) if ln.startswith("RUN pip install"))
        broken["payments-legacy"] = ("services/payments_legacy/Dockerfile", pip_line)
        last -= 1
    # Services that run only as compose runs them (environment, env_file, ports, healthcheck), one
    # built from the repository's root, one whose health check probes a port it never opens.
    traits, env_lines = add_compose_run_traits(dest, compose, plain=False)
    services.update(traits.services)
    last -= len(traits.services)
    # 7.. Plain compose services, alternating languages and profiles, underscored folders;
    #     every fifth nested under a grouping folder, every tenth needing postgres.
    for i in range(7, last + 1):
        language = "python" if i % 2 else "node"
        folder = f"services/platform/worker_{i:03d}" if i % 5 == 0 else f"services/worker_{i:03d}"
        add(f"worker-{i:03d}", folder, language, build=[
            f"      context: ./{folder}", "      args:", f"        SERVICE_PORT: \"{i + 3300}\""],
            profile=profile_for(language, i // 2), depends_on="postgres" if i % 10 == 0 else "")

    # A library (no Dockerfile), a group's README, infrastructure, .env and the second compose file.
    _write(dest / "services/shared-lib/package.json", '{"name": "@nexus/shared-lib", "version": "1.0.0", '
                                                       '"main": "index.js"}\n')
    _write(dest / "services/shared-lib/index.js", "module.exports = { ok: () => true };\n")
    _write(dest / "services/media/README.md", "# Media services\n")
    compose += ["  postgres:", "    image: postgres:15", "  redis:", "    image: redis:7",
                "  nginx:", "    image: nginx:1.25", "    depends_on: [web]"]
    _write(dest / "docker-compose.yml", "\n".join(["# Nexus COS stack", "services:", *compose]) + "\n")
    _write(dest / ".env", "\n".join([f"AUTH_PORT={auth_port}", f"SERVICE_PORT={transcoder_port}", *env_lines]) + "\n")
    _write(dest / "docker-compose.prod.yml", "\n".join([
        "services:", "  metrics-exporter:", "    build: ./tools/metrics", "  auth-service:",
        "    build:", "      context: ./services/auth_service", "      args:", "        SERVICE_PORT: \"1\"", ""]))
    _service(dest / "tools/metrics", "python", "metrics-exporter", port_for("metrics-exporter", "python"),
             needs_arg=False, profile="flask")

    names = sorted(services)
    synopsis = ["# Realistic Nexus COS synopsis", "", "## 1. Services", ""]
    synopsis += [f"- **{n}** - realistic service {n}" for n in names]
    _write(dest / "docs" / "investor_synopsis.md", "\n".join(synopsis) + "\n")
    _write(dest / "deployment" / "service_list.txt", "# generated\n" + "\n".join(names) + "\n")
    _write(dest / "nexus-agent.toml", "[parity]\ncritical = []\n")
    _write(dest / RATIFICATION_INDEX, ratification_index())  # the PMMG lock a release needs
    _readable(dest)
    return RealisticRepo(root=dest, services=services, broken="legacy-reports",
                         broken_dockerfile="services/legacy_reports/Dockerfile", broken_line=broken_line,
                         libraries=["services/shared-lib"], not_built=["metrics-exporter"], all_broken=broken,
                         unhealthy=traits.unhealthy, health_port=traits.health_port, compose_run=traits.services)
