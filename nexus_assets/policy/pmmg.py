"""The PMMG policy (N3XUS-SYSTEM-PMMG, the guide's Special Handling), in one place for every
stage that applies it.

PMMG is browser-only: no image may containerize its execution logic and no transcoding job may
be scheduled for it; only a static file server for its client assets is allowed. Its ownership
lock (PUABO Holdings LLC) must be verified in CANONICAL_RATIFICATION_INDEX.md before any
deployment: the compliance report's blocking check `pmmg_ownership_lock` stops the deployment
package and the verified release without it, and a deploy calls `ownership_lock` again just
before it starts (the repository may have changed since the release).

Every rule is a `Rule` naming the file (and line) that decided it, so the UI and the PDF can
say which file to fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from nexus_assets.core.keys import SCAFFOLD_REPORT_FILE

# "pmmg" as a whole word of a name (pmmg, nexus-pmmg, pmmg_client), or the system's full name.
_PMMG_RE = re.compile(r"N3XUS-SYSTEM-PMMG|(?<![a-z0-9])pmmg(?![a-z0-9])", re.IGNORECASE)
BROWSER_ONLY_RE = re.compile(r"browser[- ]only", re.IGNORECASE)
REASON_BROWSER_ONLY = "PMMG is browser-only: never containerized"

RATIFICATION_INDEX = "CANONICAL_RATIFICATION_INDEX.md"
PMMG_PRIMITIVE = "N3XUS-SYSTEM-PMMG"
PMMG_OWNER = "PUABO Holdings LLC"
LOCKED = "LOCKED"


def mentions_pmmg(text: str) -> bool:
    """True when a line of text speaks of PMMG."""
    return bool(_PMMG_RE.search(text))


def is_pmmg(name: str, description: str = "") -> bool:
    """True when a module belongs to PMMG: browser-only, never containerized or scaffolded."""
    return mentions_pmmg(name) or mentions_pmmg(description)


@dataclass(frozen=True)
class Rule:
    """One rule's verdict: what was found, and where (`file` or `file:line`, relative to the
    repository; "" when no single file decided it)."""

    name: str
    passed: bool
    detail: str
    where: str = ""

    def text(self) -> str:
        """The verdict as one line, naming the file."""
        return f"{self.detail} ({self.where})" if self.where and self.where not in self.detail else self.detail


@dataclass
class PolicyVerdict:
    rules: list[Rule] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rules) and all(r.passed for r in self.rules)

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def table_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """(1-based line, {header: cell}) of every row of every table in a Markdown text."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows: list[tuple[int, dict[str, str]]] = []
    headers: list[str] = []
    cells: list[str] = []
    line = 0
    for token in tokens:
        if token.type == "thead_open":
            headers = []
        elif token.type == "tr_open":
            cells, line = [], (token.map[0] + 1 if token.map else 0)
        elif token.type == "inline" and token.children is not None:
            cells.append("".join(c.content for c in token.children if c.type in ("text", "code_inline")).strip())
        elif token.type == "tr_close":
            if not headers:
                headers = cells
            else:
                rows.append((line, dict(zip(headers, cells, strict=False))))
    return rows


def _cell(row: dict[str, str], name: str) -> str:
    """A cell by its header, whatever the header's case."""
    return next((v for k, v in row.items() if k.strip().lower() == name), "")


def ownership_lock(repo: Path) -> Rule:
    """The guide's Canonical Lock: CANONICAL_RATIFICATION_INDEX.md has a table row for
    N3XUS-SYSTEM-PMMG owned by PUABO Holdings LLC with status LOCKED. Missing file, missing row,
    another owner or another status fail, naming the file and line. The deploy calls this
    before it changes anything on a host."""
    path = repo / RATIFICATION_INDEX
    if path.is_symlink() or not path.is_file():
        return Rule("ownership lock", False, f"{RATIFICATION_INDEX} not found in the repository: the PMMG "
                    f"ownership lock ({PMMG_OWNER}) cannot be verified; add the file with a row for "
                    f"{PMMG_PRIMITIVE}", RATIFICATION_INDEX)
    for line, row in table_rows(path.read_text(encoding="utf-8", errors="replace")):
        if PMMG_PRIMITIVE not in " ".join(row.values()):
            continue
        owner, status = _cell(row, "owner"), _cell(row, "status")
        where = f"{RATIFICATION_INDEX}:{line}"
        if owner != PMMG_OWNER:
            return Rule("ownership lock", False, f"{where}: {PMMG_PRIMITIVE} is owned by '{owner or 'nobody'}', "
                        f"not {PMMG_OWNER}", where)
        if status.upper() != LOCKED:
            return Rule("ownership lock", False, f"{where}: {PMMG_PRIMITIVE} has status '{status or 'none'}', "
                        f"not {LOCKED}", where)
        return Rule("ownership lock", True, f"{where}: {PMMG_PRIMITIVE} owned by {PMMG_OWNER}, {LOCKED}", where)
    return Rule("ownership lock", False, f"{RATIFICATION_INDEX} has no table row for {PMMG_PRIMITIVE}: the PMMG "
                f"ownership lock ({PMMG_OWNER}) cannot be verified", RATIFICATION_INDEX)


def ratification_index(owner: str = PMMG_OWNER, status: str = LOCKED) -> str:
    """A CANONICAL_RATIFICATION_INDEX.md with the PMMG lock row: what the generated repositories
    (synthetic, realistic) carry, as a real checkout does."""
    return ("# Canonical Ratification Index\n\n"
            "| Primitive | Phase | Name | Owner | Status | Policy |\n| --- | --- | --- | --- | --- | --- |\n"
            f"| `{PMMG_PRIMITIVE}` | 11 | PMMG N3XUS R3CORDINGS M3DIA 3NGIN3 | {owner} | {status} | browser-only |\n")


def browser_only(images: dict[str, dict[str, Any]]) -> Rule:
    """No image containerizes PMMG execution logic. images: {service: the image step's
    `pmmg_policy` record ({passed, detail, where}) for every PMMG image} (policy.pmmg_images
    judged each from its Dockerfile, command and files, never from its name)."""
    bad = {s: r for s, r in sorted(images.items()) if not r.get("passed")}
    if bad:
        first = next(iter(bad.values()))
        good = [f"{s}: {r.get('detail')}" for s, r in sorted(images.items()) if s not in bad]
        return Rule("browser-only", False, "PMMG execution logic containerized: " + "; ".join(
            f"{s}: {r.get('detail')}" for s, r in bad.items()) + (f". Allowed: {'; '.join(good)}" if good else ""),
            str(first.get("where") or ""))
    if not images:
        return Rule("browser-only", True, "no image of the release belongs to PMMG")
    return Rule("browser-only", True, "; ".join(f"{s}: {r.get('detail')}" for s, r in sorted(images.items())),
                ", ".join(str(r.get("where")) for r in images.values() if r.get("where")))


def never_scaffolded(discrepancy: dict[str, Any], scaffold: dict[str, Any]) -> Rule:
    """No PMMG module was scaffolded as a container."""
    scaffolded = sorted({m["name"] for m in discrepancy.get("modules") or [] if m.get("pmmg") and m.get("scaffolded")}
                        | {s["name"] for s in scaffold.get("services") or [] if s.get("created") and is_pmmg(s["name"])})
    pmmg_modules = [m["name"] for m in discrepancy.get("modules") or [] if m.get("pmmg")]
    return Rule("never scaffolded", not scaffolded,
                f"PMMG scaffolded as a container: {', '.join(scaffolded)}" if scaffolded else
                f"no PMMG module scaffolded (PMMG modules in the synopsis: {', '.join(pmmg_modules) or 'none'})",
                SCAFFOLD_REPORT_FILE if scaffolded else "")


def pmmg_verdict(repo: Path, discrepancy: dict[str, Any], scaffold: dict[str, Any],
                 images: dict[str, dict[str, Any]]) -> PolicyVerdict:
    """The four PMMG rules, each with what it found and where."""
    from nexus_assets.policy.pmmg_jobs import no_transcoding  # here: pmmg_jobs imports this module

    return PolicyVerdict([ownership_lock(repo), browser_only(images), never_scaffolded(discrepancy, scaffold),
                          no_transcoding(repo)])
