"""Monorepos shaped like a real Nexus COS checkout, for the tests of the compose service model.

Unlike `synthetic.generate_monorepo` (one folder per service, compose naming them alike), this
writes the traits of the real platform that folders alone get wrong: compose names that differ
from folder names (`auth-service` builds `services/auth_service`, `billing` builds
`services/billing-service`), services nested under a grouping folder (`services/media/...`), a
build context outside services/ (`apps/web`), a Dockerfile outside its context
(`docker/node.Dockerfile`), Dockerfiles that fail on purpose without the build args only
compose supplies (interpolated from `.env`, mapping and list forms), a library folder with no
Dockerfile, infrastructure as `image:` only, a second compose file that is not the stack, and
one Dockerfile that is broken on a known line. Every service comes from the scaffold templates
(standard library only, so it builds offline)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nexus_assets.core.fileio import write_atomic
from nexus_assets.scaffold.generate import TEMPLATES_DIR, port_for, render, template_files

# The check every compose-built Dockerfile makes: built without compose's args, it fails.
REQUIRE_PORT = ('ARG SERVICE_PORT\nRUN test -n "$SERVICE_PORT" || '
                '(echo "build arg SERVICE_PORT is required: build with docker compose" >&2; exit 1)\n')
BROKEN_INSTRUCTION = "COPPY . ."  # an unknown instruction: the engine names its line


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

    @property
    def sound(self) -> list[str]:
        return sorted(n for n in self.services if n != self.broken)


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


def _service(dest: Path, language: str, name: str, port: int, *, needs_arg: bool, dockerfile: bool = True) -> None:
    """A scaffold-template service in dest; its Dockerfile requires SERVICE_PORT when needs_arg."""
    root = TEMPLATES_DIR / language
    for relative in template_files(language):
        if relative.name == "Dockerfile" and not dockerfile:
            continue
        text = render((root / relative).read_text(encoding="utf-8"), name, port, f"realistic service {name}",
                      relative.suffix == ".json")
        if relative.name == "Dockerfile" and needs_arg:
            head, _, rest = text.partition("\nWORKDIR /app\n")
            text = f"{head}\n{REQUIRE_PORT}WORKDIR /app\n{rest}"
        _write(dest / relative, text)


def generate_realistic_monorepo(dest: Path, count: int = 8) -> RealisticRepo:
    """Write a realistic monorepo of `count` buildable services (at least 7) into dest."""
    if count < 7:
        raise ValueError(f"a realistic monorepo has at least 7 services (one per trait), not {count}")
    dest.mkdir(parents=True, exist_ok=True)
    services: dict[str, str] = {}
    compose: list[str] = []

    def add(compose_name: str, folder: str, language: str, *, build: list[str], needs_arg: bool = True) -> int:
        port = port_for(compose_name, language)
        _service(dest / folder, language, compose_name, port, needs_arg=needs_arg)
        services[compose_name] = folder
        compose.extend([f"  {compose_name}:", "    build:", *build,
                        f"    image: ${{REGISTRY:-127.0.0.1:5000}}/nexus/{compose_name}:${{VERSION:-latest}}",
                        "    depends_on: [postgres, redis]"])
        return port

    # 1. A dashed compose name for an underscored folder; args as a mapping, from .env.
    auth_port = add("auth-service", "services/auth_service", "node", build=[
        "      context: ./services/auth_service", "      args:", "        SERVICE_PORT: ${AUTH_PORT}"])
    # 2. A short compose name for a folder with a suffix; a shared Dockerfile outside the
    #    context; args as a list with a default.
    billing_port = port_for("billing", "node")
    _service(dest / "services/billing-service", "node", "billing", billing_port, needs_arg=False, dockerfile=False)
    services["billing"] = "services/billing-service"
    compose += ["  billing:", "    build:", "      context: services/billing-service",
                "      dockerfile: ../../docker/node.Dockerfile", "      args:",
                f"        - SERVICE_PORT=${{BILLING_PORT:-{billing_port}}}", "    depends_on: [postgres]"]
    template = (TEMPLATES_DIR / "node" / "Dockerfile").read_text(encoding="utf-8")
    shared = render(template, "node-service", billing_port, "shared Node.js service image", False)
    shared = shared.replace(f"PORT={billing_port}", "PORT=${SERVICE_PORT}").replace(
        f"EXPOSE {billing_port}", "EXPOSE ${SERVICE_PORT}")
    head, _, rest = shared.partition("\nWORKDIR /app\n")
    _write(dest / "docker" / "node.Dockerfile", f"{head}\n{REQUIRE_PORT}WORKDIR /app\n{rest}")
    # 3. Nested under a grouping folder, built by compose; the arg given by name only (from .env).
    transcoder_port = add("transcoder", "services/media/transcoder", "python", build=[
        "      context: ./services/media/transcoder", "      args:", "        - SERVICE_PORT"])
    # 4. Nested, no compose entry: a folder service (its Dockerfile needs no arg).
    _service(dest / "services/media/thumbnailer", "python", "thumbnailer", port_for("thumbnailer", "python"),
             needs_arg=False)
    services["thumbnailer"] = "services/media/thumbnailer"
    # 5. A build context outside services/.
    add("web", "apps/web", "node", build=["      context: ./apps/web", "      args:",
                                          "        SERVICE_PORT: \"${WEB_PORT:-3000}\""])
    # 6. The broken one: an unknown instruction on a known line.
    add("legacy-reports", "services/legacy_reports", "node", build=[
        "      context: ./services/legacy_reports", "      args:", "        SERVICE_PORT: 3999"])
    broken_file = dest / "services/legacy_reports/Dockerfile"
    lines = broken_file.read_text(encoding="utf-8").splitlines()
    broken_line = lines.index("COPY . .") + 1
    lines[broken_line - 1] = BROKEN_INSTRUCTION
    _write(broken_file, "\n".join(lines) + "\n")
    # 7.. Plain compose services, alternating languages, underscored folders.
    for i in range(7, count + 1):
        language = "python" if i % 2 else "node"
        add(f"worker-{i:03d}", f"services/worker_{i:03d}", language, build=[
            f"      context: ./services/worker_{i:03d}", "      args:", f"        SERVICE_PORT: \"{i + 3300}\""])

    # A library (no Dockerfile), a group's README, infrastructure, .env and the second compose file.
    _write(dest / "services/shared-lib/package.json", '{"name": "@nexus/shared-lib", "version": "1.0.0", '
                                                       '"main": "index.js"}\n')
    _write(dest / "services/shared-lib/index.js", "module.exports = { ok: () => true };\n")
    _write(dest / "services/media/README.md", "# Media services\n")
    compose += ["  postgres:", "    image: postgres:15", "  redis:", "    image: redis:7",
                "  nginx:", "    image: nginx:1.25", "    depends_on: [web]"]
    _write(dest / "docker-compose.yml", "\n".join(["# Nexus COS stack", "services:", *compose]) + "\n")
    _write(dest / ".env", f"AUTH_PORT={auth_port}\nSERVICE_PORT={transcoder_port}\n")
    _write(dest / "docker-compose.prod.yml", "\n".join([
        "services:", "  metrics-exporter:", "    build: ./tools/metrics", "  auth-service:",
        "    build:", "      context: ./services/auth_service", "      args:", "        SERVICE_PORT: \"1\"", ""]))
    _service(dest / "tools/metrics", "python", "metrics-exporter", port_for("metrics-exporter", "python"),
             needs_arg=False)

    names = sorted(services)
    synopsis = ["# Realistic Nexus COS synopsis", "", "## 1. Services", ""]
    synopsis += [f"- **{n}** - realistic service {n}" for n in names]
    _write(dest / "docs" / "investor_synopsis.md", "\n".join(synopsis) + "\n")
    _write(dest / "deployment" / "service_list.txt", "# generated\n" + "\n".join(names) + "\n")
    _write(dest / "nexus-agent.toml", "[parity]\ncritical = []\n")
    _readable(dest)
    return RealisticRepo(root=dest, services=services, broken="legacy-reports",
                         broken_dockerfile="services/legacy_reports/Dockerfile", broken_line=broken_line,
                         libraries=["services/shared-lib"], not_built=["metrics-exporter"])
