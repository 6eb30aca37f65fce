"""Synthetic Nexus COS monorepos of any size, for the benchmark and the staleness tests.

Every service comes from the scaffold templates (standard library only, so they build
offline), the synopsis lists exactly these services, and the compose file builds them all:
a repository the pipeline treats like a real one, with nothing left to scaffold."""

from __future__ import annotations

from pathlib import Path

from nexus_assets.core.fileio import write_atomic
from nexus_assets.policy.pmmg import RATIFICATION_INDEX, ratification_index
from nexus_assets.scaffold.generate import scaffold_missing
from nexus_assets.target.services import SCAFFOLD_MARKER

# Every third service is Python, the rest Node.js, as in the real platform.
SCAFFOLD_CONFIG = {"python": ["py-*"], "default_language": "node"}


def service_names(count: int) -> list[str]:
    return [f"{'py' if i % 3 == 0 else 'node'}-svc-{i:03d}" for i in range(1, count + 1)]


def generate_monorepo(dest: Path, count: int) -> list[str]:
    """Write a monorepo of `count` services into dest (which must not hold services yet)."""
    names = service_names(count)
    dest.mkdir(parents=True, exist_ok=True)
    results = scaffold_missing(dest, [(n, f"synthetic service {n}") for n in names], SCAFFOLD_CONFIG)
    refused = [r for r in results if not r.created]
    if refused:
        raise FileExistsError(f"{dest}: could not create {', '.join(r.name for r in refused)} ({refused[0].reason})")
    for result in results:  # these are the repository's own services, not scaffolds
        (result.path / SCAFFOLD_MARKER).unlink()
    lines = ["# Synthetic Nexus COS synopsis", "", "Generated for benchmarks and tests.", ""]
    for start in range(0, count, 10):
        lines += [f"## {start // 10 + 1}. Group {start // 10 + 1}", ""]
        lines += [f"- **{n}** - synthetic service {n}" for n in names[start:start + 10]]
        lines.append("")
    write_atomic(dest / "docs" / "investor_synopsis.md", "\n".join(lines).encode())
    write_atomic(dest / "deployment" / "service_list.txt", ("# generated\n" + "\n".join(names) + "\n").encode())
    compose = ["version: '3.8'", "services:"]
    for result in results:
        compose += [f"  {result.name}:", f"    build: ./services/{result.name}",
                    f"    image: ${{REGISTRY:-127.0.0.1:5000}}/nexus/{result.name}:${{VERSION:-latest}}",
                    "    ports:", f"      - \"127.0.0.1:{result.port}:{result.port}\""]
    write_atomic(dest / "docker-compose.yml", ("\n".join(compose) + "\n").encode())
    write_atomic(dest / "nexus-agent.toml", b"[parity]\ncritical = []\n")
    write_atomic(dest / RATIFICATION_INDEX, ratification_index().encode())  # the PMMG lock a release needs
    return names
