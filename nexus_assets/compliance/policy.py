"""The policy verdicts of the compliance report: PMMG (N3XUS-SYSTEM-PMMG, the operator guide's
agent protocol) and the KYC sandbox flag, read from the repository and the pipeline's reports.

PMMG rules, each a line of the report:
1. ownership lock: CANONICAL_RATIFICATION_INDEX.md has a row for `N3XUS-SYSTEM-PMMG` owned by
   PUABO Holdings LLC with status LOCKED (the table read with markdown-it-py);
2. browser-only: every released image whose name speaks of PMMG is a static file server (its
   name says `static`), nothing else of PMMG is containerized;
3. never scaffolded: no PMMG module was scaffolded as a container;
4. no transcoding: no service of PMMG is a transcoder.

KYC: where the repository requires KYC in sandbox mode (documents naming KYC), and what its
configuration says (compose `environment:` keys and `.env` keys naming KYC; values are shown
only for compose, and masked like every output)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from markdown_it import MarkdownIt

from nexus_assets.core.compose_model import compose_files
from nexus_assets.core.pmmg import is_pmmg

RATIFICATION_INDEX = "CANONICAL_RATIFICATION_INDEX.md"
PMMG_PRIMITIVE = "N3XUS-SYSTEM-PMMG"
PMMG_OWNER = "PUABO Holdings LLC"
_STATIC_RE = re.compile(r"(^|[-_.])static($|[-_.])", re.IGNORECASE)
_TRANSCODE_RE = re.compile(r"transcod|ffmpeg", re.IGNORECASE)
_KYC_RE = re.compile(r"\bKYC\b", re.IGNORECASE)
_SANDBOX_VALUE_RE = re.compile(r"^(sandbox|test|testing|true|1|yes|on)$", re.IGNORECASE)


@dataclass
class Rule:
    name: str
    passed: bool
    detail: str


@dataclass
class PolicyVerdict:
    rules: list[Rule] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rules) and all(r.passed for r in self.rules)


def _table_rows(text: str) -> list[tuple[int, dict[str, str]]]:
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
        elif token.type == "inline" and token.children is not None and cells is not None:
            cells.append("".join(c.content for c in token.children if c.type in ("text", "code_inline")).strip())
        elif token.type == "tr_close":
            if not headers:
                headers = cells
            else:
                rows.append((line, dict(zip(headers, cells, strict=False))))
    return rows


def ownership_lock(repo: Path) -> Rule:
    path = repo / RATIFICATION_INDEX
    if not path.is_file():
        return Rule("ownership lock", False, f"{RATIFICATION_INDEX} not found: the lock cannot be verified")
    for line, row in _table_rows(path.read_text(encoding="utf-8", errors="replace")):
        if PMMG_PRIMITIVE not in " ".join(row.values()):
            continue
        owner, status = row.get("Owner", ""), row.get("Status", "")
        ok = owner == PMMG_OWNER and status.upper() == "LOCKED"
        return Rule("ownership lock", ok, f"{RATIFICATION_INDEX} line {line}: {PMMG_PRIMITIVE} owner "
                    f"'{owner or 'none'}', status '{status or 'none'}' (required: {PMMG_OWNER}, LOCKED)")
    return Rule("ownership lock", False, f"{RATIFICATION_INDEX} has no row for {PMMG_PRIMITIVE}")


def pmmg_verdict(repo: Path, manifest: dict, discrepancy: dict, scaffold: dict) -> PolicyVerdict:
    """The four PMMG rules, each with what it found."""
    verdict = PolicyVerdict([ownership_lock(repo)])
    released = [i["service"] for i in manifest.get("images") or [] if i.get("image_id") or i.get("digest")]
    pmmg_images = [s for s in released if is_pmmg(s)]
    containerized = [s for s in pmmg_images if not _STATIC_RE.search(s)]
    verdict.rules.append(Rule(
        "browser-only", not containerized,
        (f"PMMG logic containerized in: {', '.join(containerized)}" if containerized else
         f"PMMG images: {', '.join(pmmg_images) or 'none'}; each is a static file server for the client assets")))
    scaffolded = sorted({m["name"] for m in discrepancy.get("modules") or [] if m.get("pmmg") and m.get("scaffolded")}
                        | {s["name"] for s in scaffold.get("services") or [] if s.get("created") and is_pmmg(s["name"])})
    pmmg_modules = [m["name"] for m in discrepancy.get("modules") or [] if m.get("pmmg")]
    verdict.rules.append(Rule(
        "never scaffolded", not scaffolded,
        f"PMMG scaffolded as a container: {', '.join(scaffolded)}" if scaffolded else
        f"no PMMG module scaffolded (PMMG modules in the synopsis: {', '.join(pmmg_modules) or 'none'})"))
    transcoders = [s for s in released if is_pmmg(s) and _TRANSCODE_RE.search(s)]
    verdict.rules.append(Rule("no transcoding", not transcoders,
                              f"PMMG transcoding services: {', '.join(transcoders)}" if transcoders else
                              "no PMMG transcoding service released"))
    return verdict


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
