"""The KYC sandbox flag of the compliance report: where the repository requires KYC in sandbox
mode (documents naming KYC), and what its configuration says (compose `environment:` keys and
`.env` keys naming KYC; values are shown only for compose, and masked like every output).

The PMMG rules are the policy package's (nexus_assets.policy.pmmg)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from nexus_assets.target.compose_model import compose_files

_KYC_RE = re.compile(r"\bKYC\b", re.IGNORECASE)
_SANDBOX_VALUE_RE = re.compile(r"^(sandbox|test|testing|true|1|yes|on)$", re.IGNORECASE)


@dataclass
class KycFlag:
    required_by: list[str]  # "file:line: text"
    settings: list[str]  # "file: service KEY=value" or ".env: KEY (value not shown)"
    status: str  # sandbox | NOT sandbox | not configured | not required


def _doc_mentions(repo: Path) -> list[str]:
    found = []
    docs = sorted(repo.glob("*.md")) + sorted((repo / "docs").glob("*.md"))
    for path in docs:
        if path.is_symlink() or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if _KYC_RE.search(line):
                text = " ".join(line.replace("|", " ").split())
                found.append(f"{path.relative_to(repo).as_posix()}:{number}: {text[:160]}")
    return found


def kyc_flag(repo: Path, env_keys: list[str]) -> KycFlag:
    """Where KYC sandbox mode is required and what the configuration sets for it."""
    settings: list[str] = []
    values: list[str] = []
    for path in compose_files(repo):
        if path.is_symlink():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
        except yaml.YAMLError:
            continue  # discovery reports the broken file; nothing to read here
        services = data.get("services") if isinstance(data, dict) else None
        for name, spec in (services or {}).items():
            env = spec.get("environment") if isinstance(spec, dict) else None
            pairs = env.items() if isinstance(env, dict) else \
                (str(e).partition("=")[::2] for e in env) if isinstance(env, list) else []
            for key, value in pairs:
                if _KYC_RE.search(str(key).replace("_", " ")):
                    settings.append(f"{path.name}: {name} {key}={value}")
                    values.append(str(value))
    settings += [f".env: {key} (value not shown)" for key in env_keys if _KYC_RE.search(key.replace("_", " "))]
    required = _doc_mentions(repo)
    if values:
        status = "sandbox" if all(_SANDBOX_VALUE_RE.match(v.strip()) for v in values) else "NOT sandbox"
    elif settings:
        status = "set in .env only (value not shown)"
    else:
        status = "not configured" if required else "not required"
    return KycFlag(required_by=required, settings=settings, status=status)
