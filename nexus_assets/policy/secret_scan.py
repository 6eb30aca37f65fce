"""The release's secret scan: every value of the repository's `.env*` files that target.secrets
counts as a secret, searched for in every output file. The compliance report states the count
(expected 0); the deployment package refuses to ship a file that holds one.

Values are searched as written and as JSON writes them (a quote or a newline escaped), so a
secret inside a JSON string is found too. Findings name the file and how many values it holds,
never a value."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nexus_assets.core.masking import holds, mask_known
from nexus_assets.target.secrets import read_env_files, secret_values
from nexus_assets.target.secrets_rule import SecretRule


@dataclass(frozen=True)
class SecretScan:
    """What one scan looked for and where it found something (values never kept here)."""

    env_files: list[str]
    values: int  # how many distinct secret values were searched for
    files_scanned: int
    findings: dict[str, int] = field(default_factory=dict)  # file -> number of values found in it

    @property
    def found(self) -> int:
        return sum(self.findings.values())


def env_secrets(repo: Path, public_names: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(the repository's `.env*` files, the secret values they hold, longest first), as
    target.secrets parses them and the repository's rule (target.secrets_rule) decides what is
    secret: a value its committed configuration publishes is not searched for."""
    files, pairs = read_env_files(repo)
    return [f["file"] for f in files], secret_values(pairs, public_names, rule=SecretRule.for_repo(repo))


def _occurs(data: bytes, value: str) -> bool:
    # A short value counts only as a whole token, as target.secrets masks it: `auth` is no leak
    # inside `auth-service`; the value is searched as JSON holds it too.
    needles = {value.encode("utf-8"), json.dumps(value)[1:-1].encode("utf-8")}
    return any(holds(data, needle, len(value)) for needle in needles)


def mask_values(text: str, values: Iterable[str]) -> str:
    """text with each known value replaced by ***, as target.secrets masks a value (a short one
    only as a whole token), and nothing else: no guessing from shapes, whose patterns take
    `passed: 0` for a password in a report's own words."""
    return mask_known(text, values)  # longest first (env_secrets' order), so a value holding another goes whole


def count_in_bytes(data: bytes, values: Iterable[str]) -> int:
    """How many of values occur in data (each value counted once)."""
    return sum(1 for value in values if value and _occurs(data, value))


def scan_files(paths: Iterable[Path], values: list[str], *, root: Path | None = None,
               env_files: list[str] | None = None) -> SecretScan:
    """Search every file for every value; findings keyed by the path (relative to root)."""
    findings: dict[str, int] = {}
    scanned = 0
    for path in sorted(paths):
        if not path.is_file() or path.is_symlink():
            continue
        scanned += 1
        hits = count_in_bytes(path.read_bytes(), values)
        if hits:
            findings[str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)] = hits
    return SecretScan(env_files=env_files or [], values=len(values), files_scanned=scanned, findings=findings)
