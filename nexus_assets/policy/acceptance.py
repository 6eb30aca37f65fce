"""The guide's Acceptance Gates where they are a rule rather than a test stage:

- Tests Pass: a service with no tests is "no tests", never passed; whether that blocks the
  release is the repository's choice, `[tests] no_tests = "warn" | "block"` in nexus-agent.toml
  (default warn: the check is a WARN, the PDF says so per service). A skipped e2e (no e2e stack
  in the repository: "if applicable") is "skipped", never passed, and does not block.
- Compliance Report: the report holds every section with its data and lists every gate with
  its evidence (`report_contents`); its blocking check reads the PDF back
  (`missing_from_text`). Never a constant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexus_assets.core.errors import InputError
from nexus_assets.target.repo_config import CONFIG_NAME, load_repo_config

NO_TESTS = "no_tests"  # the state of a stage with no tests to run (manifest, image metadata)
NO_TESTS_MODES = ("warn", "block")
# The compliance PDF's sections, in order, as its headings read.
REPORT_SECTIONS = ("Overall gate verdict", "1. Discovery summary", "2. Parity by category",
                   "3. Scaffolded modules", "4. Test results per service and stage",
                   "5. Images, digests and substitutions", "6. PMMG policy", "7. Security", "8. Lineage",
                   "9. Artifacts and their sha256")
NOT_AVAILABLE = "not available"


def no_tests_mode(repo: Path) -> str:
    """`[tests] no_tests` of the repository's nexus-agent.toml: "warn" (default) or "block"."""
    value = load_repo_config(repo).get("tests", {}).get("no_tests", "warn")
    if value not in NO_TESTS_MODES:
        raise InputError(f"{repo / CONFIG_NAME}: [tests] no_tests = {value!r} is not one of "
                         f"{', '.join(repr(m) for m in NO_TESTS_MODES)}")
    return str(value)


def no_tests_note(mode: str) -> str:
    """What a service with no tests means for the release, as the check and the PDF say it."""
    return ("blocks the release ([tests] no_tests = \"block\" in nexus-agent.toml)" if mode == "block" else
            "reported, does not block ([tests] no_tests = \"warn\", the default; \"block\" makes it block)")


def blocking_states(mode: str) -> frozenset[str]:
    """The test states that fail the Tests Pass gate."""
    return frozenset({"failed", NO_TESTS}) if mode == "block" else frozenset({"failed"})


def e2e_state(e2e: dict[str, Any] | None) -> str:
    """passed | failed | skipped | not available, from the manifest's or the asset's e2e record;
    a skipped e2e is never passed, whatever else the record says."""
    if not e2e:
        return NOT_AVAILABLE
    if e2e.get("skipped"):
        return "skipped"
    return "passed" if e2e.get("passed") else "failed"


def report_contents(sections: dict[str, str], gates: list[tuple[str, str]]) -> tuple[bool, str]:
    """(passed, evidence) of the Compliance Report gate. sections: {section: "" when it has its
    data, else why not}; gates: (name, detail) of every other gate on the cover: each must say
    what it found (a detail that is empty or only "not available" is no evidence)."""
    missing = [f"{name} ({why})" for name, why in sections.items() if why]
    bare = [name for name, detail in gates
            if not detail.strip() or detail.strip().lower().startswith(NOT_AVAILABLE)]
    problems = ([f"section(s) without their data: {', '.join(missing)}"] if missing else []) + \
               ([f"gate(s) without evidence: {', '.join(bare)}"] if bare else [])
    if problems:
        return False, "; ".join(problems)
    return True, f"{len(sections)} sections with their data; {len(gates)} gates listed, each with its evidence"


def missing_from_text(text: str, gate_names: list[str]) -> list[str]:
    """What a compliance PDF's extracted text lacks: a section heading or a gate's row (names
    compared without white space: a long cell wraps across lines)."""
    flat = "".join(text.split())
    wanted = [*REPORT_SECTIONS, *(f"gate {g}" for g in gate_names)]
    return [w for w in wanted if "".join(w.removeprefix("gate ").split()) not in flat]
