"""Per-repository settings: `nexus-agent.toml` at the top of the target repository.

Every section is optional; missing keys fall back to the defaults below, which are the
operator guide's own rules."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import InputError

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
    },
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
        raise InputError(f"{path}: invalid TOML: {exc}") from exc
    for section, values in loaded.items():
        if isinstance(values, dict):
            merged.setdefault(section, {}).update(values)
    return merged
