"""The values of `nexus-agent.toml`'s [parity] and [scaffold] sections checked when the file is
read: a wrong type, a negative or absurd number or an unknown key is one InputError naming the
file, the setting and what to do, never a default quietly put in its place (a limit of -1 that
became 6 made the parity gate looser than the repository asked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeGuard

from nexus_assets.core.errors import InputError

# The most critical modules a gate may allow to be missing: past it the number means "no gate".
MAX_CRITICAL_MISSING = 1000
# The scaffold templates' port ranges hold 900 Node.js and 900 Python services (scaffold.generate).
MAX_SCAFFOLD_PER_RUN = 1800
LANGUAGES = ("node", "python")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _count(path: Path, section: str, key: str, value: object, high: int, default: int) -> None:
    if not _is_int(value) or not 0 <= value <= high:
        raise InputError(f"{path}: [{section}] {key} must be a whole number from 0 to {high}, got {value!r}: "
                         f"fix it, or remove the line for the default ({default})")


def _known_keys(path: Path, section: str, values: dict[str, Any], known: dict[str, Any]) -> None:
    for key in values:
        if key not in known:
            raise InputError(f"{path}: [{section}] has no setting {key!r}: the settings are "
                             f"{', '.join(sorted(known))}; fix the name or remove the line")


def check_repo_config(path: Path, loaded: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Raise InputError for the first value of loaded (the file as read) that cannot be used."""
    for section in defaults:
        if section in loaded and not isinstance(loaded[section], dict):
            raise InputError(f"{path}: {section} must be a table ([{section}]), got {loaded[section]!r}")
    parity = loaded.get("parity") or {}
    _known_keys(path, "parity", parity, defaults["parity"])
    if "critical" in parity and not (isinstance(parity["critical"], str) or _strings(parity["critical"])):
        raise InputError(f"{path}: [parity] critical must be a list of module names (strings), got "
                         f"{parity['critical']!r}")
    if "max_critical_missing" in parity:
        _count(path, "parity", "max_critical_missing", parity["max_critical_missing"], MAX_CRITICAL_MISSING,
               defaults["parity"]["max_critical_missing"])
    aliases = parity.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) or _strings(v) for v in aliases.values()):
        raise InputError(f"{path}: [parity] aliases must map each module to a name or a list of names, "
                         f'e.g. aliases = {{ auth = ["auth-service"] }}; got {aliases!r}')
    scaffold = loaded.get("scaffold") or {}
    _known_keys(path, "scaffold", scaffold, defaults["scaffold"])
    if "python" in scaffold and not _strings(scaffold["python"]):
        raise InputError(f"{path}: [scaffold] python must be a list of glob patterns (strings), got "
                         f"{scaffold['python']!r}")
    if scaffold.get("default_language", "node") not in LANGUAGES:
        raise InputError(f"{path}: [scaffold] default_language must be one of {', '.join(LANGUAGES)}, got "
                         f"{scaffold['default_language']!r}")
    if "max_per_run" in scaffold:
        _count(path, "scaffold", "max_per_run", scaffold["max_per_run"], MAX_SCAFFOLD_PER_RUN,
               defaults["scaffold"]["max_per_run"])
