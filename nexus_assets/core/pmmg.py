"""The PMMG policy (N3XUS-SYSTEM-PMMG), in one place for every stage that applies it.

PMMG is browser-only: no image may containerize its execution logic and no transcoding job
may be scheduled for it; only a static file server for its client assets is allowed. Its
ownership lock (PUABO Holdings LLC) must be verified before any deployment."""

from __future__ import annotations

import re

# "pmmg" as a whole word of a name (pmmg, nexus-pmmg, pmmg_client), or the system's full name.
_PMMG_RE = re.compile(r"N3XUS-SYSTEM-PMMG|(?<![a-z0-9])pmmg(?![a-z0-9])", re.IGNORECASE)
BROWSER_ONLY_RE = re.compile(r"browser[- ]only", re.IGNORECASE)
REASON_BROWSER_ONLY = "PMMG is browser-only: never containerized"


def mentions_pmmg(text: str) -> bool:
    """True when a line of text speaks of PMMG."""
    return bool(_PMMG_RE.search(text))


def is_pmmg(name: str, description: str = "") -> bool:
    """True when a module belongs to PMMG: browser-only, never containerized or scaffolded."""
    return mentions_pmmg(name) or mentions_pmmg(description)
