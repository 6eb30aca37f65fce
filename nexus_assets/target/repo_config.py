"""Per-repository settings: `nexus-agent.toml` at the top of the target repository.

Every section is optional; missing keys fall back to the defaults below, which are the
operator guide's own rules."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import InputError
from nexus_assets.target.repo_config_checks import check_repo_config

CONFIG_NAME = "nexus-agent.toml"

DEFAULTS: dict[str, Any] = {
    "parity": {
        # The guide's critical set.
        "critical": [
            "backend-api", "auth", "users", "streaming-engine",
            "puabo-blac-financing", "ott-mini", "nexus-stream",
        ],
        "max_critical_missing": 6,
        # module name -> other names that count as that module
        "aliases": {},
    },
    "scaffold": {
        # The guide's rule: analytics, recommendation, AI/ML and transcoding are Python;
        # every other module is Node.js. Glob patterns on the module name.
        "python": ["analytics*", "*-analytics", "recommendation*", "*-ai-*", "*-ai", "ai-*",
                   "*ml*", "transcode*", "transcoder*"],
        "default_language": "node",
        # Modules scaffolded by one run at most, checked before anything is written: a synopsis
        # listing thousands of modules is a mistake to fix, not a platform to scaffold.
        "max_per_run": 200,
    },
    # Keys (names or globs) whose `.env` values are public configuration, or secrets, whatever
    # target.secrets_rule would decide; a key in both is refused.
    "secrets": {"public": [], "secret": []},
    # A service with no tests: "warn" (reported as "no tests", does not block) or "block".
    "tests": {"no_tests": "warn"},
}


def load_repo_config(repo: Path) -> dict[str, Any]:
    """Defaults overlaid with the repository's nexus-agent.toml, section by section."""
    merged = {section: dict(values) for section, values in DEFAULTS.items()}
    path = repo / CONFIG_NAME
    if not path.is_file():
        return merged
    try:
        loaded = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}; fix the file") from None
    check_repo_config(path, loaded, DEFAULTS)
    for section, values in loaded.items():
        if isinstance(values, dict):
            merged.setdefault(section, {}).update(values)
    _check_secrets(path, merged["secrets"])
    return merged


def _check_secrets(path: Path, names: dict[str, Any]) -> None:
    """`[secrets] public` and `secret` are lists of key names; one key on both is an error."""
    for side in ("public", "secret"):
        value = names.get(side)
        if not isinstance(value, list) or not all(isinstance(k, str) and k.strip() for k in value):
            raise InputError(f"{path}: [secrets] {side} must be a list of key names (e.g. [\"APP_HANDSHAKE\"])")
    both = sorted(set(names["public"]) & set(names["secret"]))
    if both:
        raise InputError(f"{path}: [secrets] names {', '.join(both)} both public and secret; keep one")
