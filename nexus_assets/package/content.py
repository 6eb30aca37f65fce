"""What goes into reports/deployment_package_YYYYMMDD.tar.gz, as {path in the package: bytes}.

The package's folder `deployment_package_YYYYMMDD/` holds: `docker-compose.full.yml` (released
services pinned by registry digest, and the repository's infrastructure), `deployment/` (the
`.env.template` with keys only, `images.txt`), `scripts/` (deploy, audit, rollback), the
reports and the compliance PDF, the manifest, the SBOMs, provenance statements and public key
that exist, `README.md`, `RELEASE` and `SHA256SUMS`. No file may hold a value of the
repository's `.env`: one that does stops the package, naming the file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

from nexus_assets.core.git import git_answer
from nexus_assets.core.hashing import SUMS
from nexus_assets.core.keys import ARTIFACTS_MANIFEST_FILE, DEPLOYMENT_PACKAGE_FILE, dated
from nexus_assets.core.release_version import release_tag
from nexus_assets.core.settings import Settings
from nexus_assets.evidence import check as evidence_check
from nexus_assets.package.archive import DEFAULT_MTIME, Entry, PackageError
from nexus_assets.package.compose import DeploymentCompose, deployment_compose
from nexus_assets.policy.secret_scan import count_in_bytes
from nexus_assets.target.secrets import read_env_files

SCRIPTS = Path(__file__).parent / "scripts"
SCRIPT_NAMES = ("common.sh", "remote_deploy_runner.sh", "post_deploy_audit.sh", "rollback_to_tag.sh")
# The offline provenance verifier (evidence/check.py, standard library and cryptography only):
# the runner verifies every image's signed provenance on the host before it starts anything.
VERIFIER = "scripts/verify_provenance.py"
COMPOSE_NAME = "docker-compose.full.yml"
NA = "not available"
# ${VAR} or $VAR is needed; ${VAR:-default} / ${VAR-default} / ${VAR:+x} has a fallback.
_VAR_USE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+?])?|\$([A-Za-z_][A-Za-z0-9_]*)")


def package_name(day: date) -> str:
    """The package's folder name inside the archive: the archive's name without .tar.gz."""
    return PurePosixPath(dated(DEPLOYMENT_PACKAGE_FILE, day)).name.removesuffix(".tar.gz")


def commit_time(repo: Path) -> int | None:
    """The target's HEAD commit time (Unix seconds), or None when it is no git checkout."""
    text = git_answer(repo, "log", "-1", "--format=%ct", timeout=20) or ""
    return int(text) if text.isdigit() else None


def env_template(repo: Path, compose_text: str, version: str) -> tuple[bytes, list[str]]:
    """deployment/.env.template: every key the compose file needs (required, uncommented) and
    every other key of the repository's `.env*` files (commented: optional here). Keys only."""
    needed, fallback = set(), set()
    for name, op, bare in _VAR_USE_RE.findall(compose_text):
        if bare or not op or op.endswith("?"):
            needed.add(name or bare)
        else:
            fallback.add(name)
    files, _ = read_env_files(repo)
    known = {k for f in files for k in f["keys"]}
    lines = [f"# Nexus COS {release_tag(version)}: the settings the host's .env must give.",
             "# cp deployment/.env.template .env, fill in every uncommented key, keep .env mode 600, never commit it.",
             "# Keys only: this template never holds a value.", "",
             f"# Required by {COMPOSE_NAME}:"]
    lines += [f"{key}=" for key in sorted(needed)] or ["# (none)"]
    optional = sorted((known | fallback) - needed)
    if optional:
        lines += ["", "# Also in the repository's .env files or with a default in the compose file (optional here):"]
        lines += [f"# {key}=" for key in optional]
    return ("\n".join(lines) + "\n").encode(), sorted(needed)


@dataclass
class PackageContent:
    name: str
    files: dict[str, Entry]
    compose: DeploymentCompose
    mtime: int
    required_keys: list[str]


def _readme(settings: Settings, manifest: dict[str, Any], compose: DeploymentCompose, commit: str, name: str,
            attachments: list[str], discovery: dict[str, Any]) -> bytes:
    tag = release_tag(settings.version)
    seen = [i for i in (discovery.get("archive") or {}).get("compose_dump", {}).get("images") or []
            if any(k in i.rsplit("/", 1)[-1] for k in compose.infrastructure_missing)]
    out = [f"# Nexus COS {tag}", "", f"Version {manifest.get('version') or settings.version}, commit {commit}.", "",
           "## Deploy", "", "```bash", f"tar -xzf {name}.tar.gz && cd {name}",
           "cp deployment/.env.template .env && nano .env   # fill in every uncommented key",
           "bash scripts/remote_deploy_runner.sh            # --host-dir DIR (default /opt/nexus-cos)",
           "bash scripts/post_deploy_audit.sh", f"bash scripts/rollback_to_tag.sh {tag}   # a release deployed before",
           "```", "", f"## Released services ({len(compose.released)}), pinned by registry digest", ""]
    out += [f"- `{svc}`: `{ref}`" for svc, ref in sorted(compose.released.items())] or ["- none"]
    out += ["", f"## Not in this package ({len(compose.excluded)})", ""]
    out += [f"- `{svc}`: {why}" for svc, why in sorted(compose.excluded.items())] or ["- none"]
    out += ["", "## Infrastructure", ""]
    out += [f"- {kind}: {where}" for kind, where in sorted(compose.infrastructure.items())]
    for kind in compose.infrastructure_missing:
        hint = [i for i in seen if kind in i.rsplit("/", 1)[-1]]
        out.append(f"- {kind}: not declared by the repository's compose files, so not in this package"
                   + (f" (the discovery archive shows the VPS running {', '.join(hint)})" if hint else ""))
    out += [f"- note: {note}" for note in compose.notes]
    out += ["", "## Contents", ""] + [f"- `{path}`" for path in attachments]
    out += ["", "`SHA256SUMS` lists the sha256 of every other file (`sha256sum --check SHA256SUMS`)."]
    return ("\n".join(out) + "\n").encode()


def _optional(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None and path.is_file() and not path.is_symlink() else None


def _attestations(settings: Settings, manifest: dict[str, Any], released: dict[str, str]) -> dict[str, bytes]:
    """The SBOM and provenance of each released service (the manifest's path, else the usual
    place), and the public key, when they exist."""
    found: dict[str, bytes] = {}
    entries = {i.get("service"): i for i in manifest.get("images") or []}
    for service in sorted(released):
        for kind, folder, suffix in (("sbom", "sbom", ".cdx.json"), ("provenance", "provenance", ".intoto.jsonl")):
            item = entries.get(service, {}).get(kind)
            path = Path(str(item["path"])) if isinstance(item, dict) and item.get("path") else \
                settings.artifacts / folder / f"{service}{suffix}"
            if not path.is_absolute():  # the manifest names it under artifacts/ (older ones: the working copy)
                path = next((p for p in (settings.artifacts / path, settings.workdir / path) if p.is_file()),
                            settings.artifacts / path)
            data = _optional(path)
            if data is not None:
                found[f"artifacts/{folder}/{path.name}"] = data
    key = _optional(settings.artifacts / "signing_key.pub")
    if key is not None:
        found["artifacts/signing_key.pub"] = key
    return found


def package_content(settings: Settings, manifest: dict[str, Any], discovery: dict[str, Any],
                    compliance_pdf: Path | None, *,
                    commit: str | None, day: date, secrets: list[str]) -> PackageContent:
    """Every file of the package; raises PackageError when one holds a secret value."""
    name = package_name(day)
    compose = deployment_compose(settings.repo, settings.compose_file, manifest)
    header = (f"Nexus COS {release_tag(settings.version)}: every released service pinned by registry digest,\n"
              "and the infrastructure as the repository's compose declares it. Variables come from the host's .env.")
    compose_text = compose.yaml_text(header)
    template, required = env_template(settings.repo, compose_text, settings.version)
    files: dict[str, Entry] = {
        COMPOSE_NAME: Entry(compose_text.encode()),
        "deployment/.env.template": Entry(template),
        "deployment/images.txt": Entry("".join(f"{s}\t{r}\n" for s, r in sorted(compose.released.items())).encode()),
        "RELEASE": Entry(f"RELEASE_TAG={release_tag(settings.version)}\nVERSION={settings.version}\n"
                         f"COMMIT={commit or NA}\n".encode()),
    }
    files.update({f"scripts/{s}": Entry((SCRIPTS / s).read_bytes(), executable=s != "common.sh")
                  for s in SCRIPT_NAMES})
    files[VERIFIER] = Entry(Path(evidence_check.__file__).read_bytes())
    if settings.reports.is_dir():
        files.update({f"reports/{p.name}": Entry(p.read_bytes()) for p in sorted(settings.reports.glob("*.json"))
                      if p.is_file() and not p.is_symlink()})
    pdf = _optional(compliance_pdf)
    if pdf is not None and compliance_pdf is not None:
        files[f"reports/{compliance_pdf.name}"] = Entry(pdf)
    manifest_bytes = _optional(settings.workdir / ARTIFACTS_MANIFEST_FILE)
    if manifest_bytes is not None:
        files[ARTIFACTS_MANIFEST_FILE] = Entry(manifest_bytes)
    files.update({path: Entry(data) for path, data in _attestations(settings, manifest, compose.released).items()})
    files["README.md"] = Entry(_readme(settings, manifest, compose, commit or NA, name,
                                       sorted([*files, "README.md", SUMS]), discovery))
    leaking = sorted(path for path, entry in files.items() if count_in_bytes(entry.data, secrets))
    if leaking:
        raise PackageError(f"deployment package: a value of the repository's .env is in {', '.join(leaking)}; "
                           "nothing was packaged (the value is not shown)")
    return PackageContent(name=name, files=files, compose=compose, mtime=commit_time(settings.repo) or DEFAULT_MTIME,
                          required_keys=required)
