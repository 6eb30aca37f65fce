"""The run-time traits of the real platform's compose files (issue 15), for the realistic
generator (`realistic.generate_realistic_monorepo`) and a small repository of the suite
(`generate_compose_run_repo`): services that only run as compose runs them.

- `streaming-api`: its code listens on `process.env.PORT || <other>`; compose sets PORT, and its
  Dockerfile EXPOSEs and HEALTHCHECKs compose's port (run bare, it is never healthy);
- `ledger`: exits at start without the variables compose gives it (an `env_file` outside its
  context, and a secret of `.env` in `environment:`, which it prints as it starts);
- `notifier`: no EXPOSE and no HEALTHCHECK in its Dockerfile; compose publishes its port and
  defines its healthcheck;
- `gateway`: built from the repository's root (`context: .`, its Dockerfile in
  services/gateway/), beside an unrelated Python 2 script that must not fail its lint;
- `status-board`: truly broken: compose's healthcheck probes a port it never opens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nexus_assets.scaffold.generate import port_for

UNHEALTHY = "status-board"
NEVER_OPENED = 4999  # the port status-board's health check probes
LEDGER_SECRET = ("LEDGER_SIGNING_KEY", "ldg_sk_9f27c4e1b8a36d05e2")
LINT_TRAP = "scripts/legacy_migrate.py"  # Python 2: a syntax error for python3, outside every service
ROOT_DOCKERIGNORE = ".git\n**/node_modules\n**/__pycache__\n.env\nconfig/*.env\n*.log\n"
LEDGER_START = '''def main() -> int:
    missing = [k for k in ("LEDGER_CURRENCY", "LEDGER_SIGNING_KEY") if not os.environ.get(k)]
    if missing:
        print(f"ledger: {', '.join(missing)} not set: run it with docker compose", file=sys.stderr, flush=True)
        return 1
    print(f"ledger: signing with {os.environ['LEDGER_SIGNING_KEY']} in {os.environ['LEDGER_CURRENCY']}", flush=True)
'''


@dataclass(frozen=True)
class ComposeRunTraits:
    services: dict[str, str]  # compose name -> the folder of its build context
    unhealthy: str = UNHEALTHY
    health_port: int = NEVER_OPENED
    lint_trap: str = LINT_TRAP
    secret: tuple[str, str] = LEDGER_SECRET


def _node_health(port: int) -> str:
    js = (f"require('http').get('http://127.0.0.1:{port}/health', (r) => process.exit(r.statusCode === 200 ? 0 : 1))"
          ".on('error', () => process.exit(1))")
    return f'["CMD", "node", "-e", "{js}"]'


def _rebase_copies(text: str, folder: str) -> str:
    """COPY sources made relative to the repository's root (the context) instead of folder."""
    out = []
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, dest = line.split()[1:]
            sources = [f"{folder}/" if s == "." else f"{folder}/{s}" for s in sources]
            line = "COPY " + " ".join([*sources, dest])
        out.append(line)
    return "\n".join(out) + "\n"


def add_compose_run_traits(dest: Path, compose: list[str], *, plain: bool) -> tuple[ComposeRunTraits, list[str]]:
    """Write the five trait services into dest and their compose entries onto compose; returns
    the traits and the lines they need in `.env`. plain: standard-library services (quick builds)
    instead of ones that install packages."""
    from nexus_assets.testrepos.realistic import _service, _write

    services: dict[str, str] = {}

    def service(name: str, folder: str, language: str, port: int, profile: str) -> Path:
        _service(dest / folder, language, name, port, needs_arg=False, profile=profile, plain=plain)
        services[name] = folder
        return dest / folder / "Dockerfile"

    # The code's default port differs from compose's; only compose's environment makes them meet.
    stream_port = port_for("streaming-api", "node")
    code_port = stream_port + 9
    dockerfile = service("streaming-api", "services/streaming_api", "node", code_port, "lodash")
    text = dockerfile.read_text(encoding="utf-8").replace(f"ENV NODE_ENV=production \\\n    PORT={code_port}\n",
                                                          "ENV NODE_ENV=production\n")
    text = text.replace(f"EXPOSE {code_port}", f"EXPOSE {stream_port}").replace("port:process.env.PORT",
                                                                                f"port:{stream_port}")
    _write(dockerfile, text)
    compose += ["  streaming-api:", "    build: ./services/streaming_api", "    environment:",
                f'      PORT: "{stream_port}"', "      NEXUS_REGION: ${NEXUS_REGION:-eu-west}"]

    ledger_port = port_for("ledger", "python")
    service("ledger", "services/ledger", "python", ledger_port, "flask")
    app = dest / "services/ledger/app.py"
    _write(app, app.read_text(encoding="utf-8").replace("def main() -> int:\n", LEDGER_START, 1))
    _write(dest / "config/ledger.env", "# committed: public settings of the ledger\nLEDGER_CURRENCY=EUR\n")
    compose += ["  ledger:", "    build:", "      context: ./services/ledger", "    env_file: [config/ledger.env]",
                "    environment:", f"      {LEDGER_SECRET[0]}: ${{{LEDGER_SECRET[0]}}}"]

    notifier_port = port_for("notifier", "node")
    dockerfile = service("notifier", "services/notifier", "node", notifier_port, "lodash")
    lines = dockerfile.read_text(encoding="utf-8").splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("# No curl/wget"))
    del lines[start:start + 3]  # the comment and the two lines of HEALTHCHECK
    _write(dockerfile, "\n".join(ln for ln in lines if not ln.startswith("EXPOSE ")) + "\n")
    compose += ["  notifier:", "    build: ./services/notifier", f'    ports: ["{notifier_port}:{notifier_port}"]',
                "    healthcheck:", f"      test: {_node_health(notifier_port)}", "      interval: 2s",
                "      timeout: 3s", "      retries: 15", "      start_period: 2s"]

    dockerfile = service("gateway", "services/gateway", "python", port_for("gateway", "python"), "flask")
    _write(dockerfile, _rebase_copies(dockerfile.read_text(encoding="utf-8"), "services/gateway"))
    _write(dest / LINT_TRAP, '# the v1 migration, kept for the record\nprint "migrating the v1 tables"\n')
    _write(dest / ".dockerignore", ROOT_DOCKERIGNORE)
    compose += ["  gateway:", "    build:", "      context: .", "      dockerfile: services/gateway/Dockerfile"]
    services["gateway"] = "."  # its build context

    service(UNHEALTHY, "services/status_board", "node", port_for(UNHEALTHY, "node"), "lodash")
    compose += [f"  {UNHEALTHY}:", "    build: ./services/status_board", "    healthcheck:",
                f"      test: {_node_health(NEVER_OPENED)}", "      interval: 1s", "      timeout: 2s",
                "      retries: 3"]
    env_lines = [f"{LEDGER_SECRET[0]}={LEDGER_SECRET[1]}", "NEXUS_REGION=eu-west"]
    return ComposeRunTraits(services=services), env_lines


def generate_compose_run_repo(dest: Path) -> ComposeRunTraits:
    """A small repository of the five traits alone, standard-library services (quick to build)."""
    from nexus_assets.policy.pmmg import RATIFICATION_INDEX, ratification_index
    from nexus_assets.testrepos.realistic import _readable, _write

    compose: list[str] = []
    traits, env_lines = add_compose_run_traits(dest, compose, plain=True)
    _write(dest / "docker-compose.yml", "\n".join(["services:", *compose]) + "\n")
    _write(dest / ".env", "\n".join(env_lines) + "\n")
    names = sorted(traits.services)
    _write(dest / "docs" / "investor_synopsis.md", "# Synopsis\n\n## Required Modules\n\n"
           + "".join(f"- **{n}** - service {n}\n" for n in names))
    _write(dest / "deployment" / "service_list.txt", "\n".join(names) + "\n")
    _write(dest / "nexus-agent.toml", "[parity]\ncritical = []\n")
    _write(dest / RATIFICATION_INDEX, ratification_index())  # the PMMG lock a release needs
    _readable(dest)
    return traits
