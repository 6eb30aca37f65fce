"""The guide's Special Handling as blocking checks of the compliance report, and what the report's
own gate reads back from the PDF.

`pmmg_ownership_lock`, `pmmg_browser_only` and `pmmg_no_transcoding` are checks of
compliance_report, blocking: the PDF is made and shows each rule with the file that decided it,
and a failed rule stops Dagster before the deployment package and the verified release (so no
release and no deployment without the ownership lock; the deploy checks the lock again before it
starts). Each reads the repository as it is now, so fixing the file and running again is enough.
The rules themselves are nexus_assets.policy's."""


import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg

from nexus_assets.core.fileio import read_json
from nexus_assets.core.keys import ARTIFACTS_MANIFEST_FILE, COMPLIANCE_REPORT, image_key
from nexus_assets.core.lineage import AssetRecords
from nexus_assets.core.one_step import Check
from nexus_assets.core.settings import Settings
from nexus_assets.policy.acceptance import missing_from_text, no_tests_mode
from nexus_assets.policy.pmmg import Rule, browser_only, ownership_lock
from nexus_assets.policy.pmmg_jobs import no_transcoding
from nexus_assets.resources import NexusConfig


def _current_services(settings: Settings) -> list[str]:
    path = settings.workdir / ARTIFACTS_MANIFEST_FILE
    try:
        manifest = read_json(path)
    except (OSError, ValueError):
        return []
    return [str(i.get("service")) for i in manifest.get("images") or [] if i.get("image_id")]


def recorded_pmmg_images(instance: dg.DagsterInstance, settings: Settings) -> dict[str, dict[str, Any]]:
    """{service: its PMMG browser-only verdict} as the image step recorded it on the current
    image of every service the manifest lists (one query)."""
    found: dict[str, dict[str, Any]] = {}
    keys = [image_key(n) for n in _current_services(settings)]
    for key, last in AssetRecords(instance).latest(keys).items():
        verdict = last.metadata.get("pmmg_policy")
        if isinstance(verdict, dict):
            found[key.path[-1]] = verdict
    return found


def policy_fingerprint(repo: Path, pmmg_images: dict[str, dict[str, Any]]) -> str:
    """What the report's policy sections read that Dagster's data versions do not carry (the
    repository's lock and job files, `[tests] no_tests`, each image's PMMG verdict): a report
    kept while this changed is made again."""
    rules = [ownership_lock(repo), no_transcoding(repo)]
    body = json.dumps([[r.passed, r.detail] for r in rules] + [no_tests_mode(repo), pmmg_images], sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def contents_problems(path: Path, metadata: dict[str, Any]) -> list[str]:
    """What the compliance PDF lacks, read back from the file: a section, a gate's row, or the
    evidence its own contents gate judged when it was made."""
    # PDFium (Chrome's PDF engine) reads the text of a 50-page report in a tenth of a second;
    # pypdf parsed its content streams in Python for about a second. Loaded by the check only.
    import pypdfium2

    problems = []
    if metadata.get("contents_passed") is False:
        problems.append(f"{path.name}: {metadata.get('contents')}")
    try:
        text = _pdf_text(path)
    except (pypdfium2.PdfiumError, ValueError) as exc:
        return [*problems, f"{path.name} cannot be read back: {exc}"]
    missing = missing_from_text(text, [str(g) for g in metadata.get("gates") or []])
    if missing:
        problems.append(f"{path.name} lacks: {', '.join(missing)}")
    return problems


def _pdf_text(path: Path) -> str:
    import pypdfium2

    document = pypdfium2.PdfDocument(path.read_bytes())
    pages = []
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range())
            textpage.close()
            page.close()
    finally:
        document.close()
    return "\n".join(pages)


def _result(rule: Rule, name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=COMPLIANCE_REPORT, check_name=name, passed=rule.passed,
                               description=rule.text(), metadata={"file": rule.where or "", "rule": rule.name})


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=COMPLIANCE_REPORT, blocking=True, description=description)


def _nexus(context: dg.AssetExecutionContext) -> NexusConfig:
    nexus: NexusConfig = context.resources.nexus
    return nexus


# Evaluated in the compliance report's step, after the report (compliance/assets.py).
PMMG_CHECKS = (
    Check(_spec("pmmg_ownership_lock",
                "Guide, Special Handling 4: PMMG (N3XUS-SYSTEM-PMMG) is owned by PUABO Holdings LLC, LOCKED, in "
                "CANONICAL_RATIFICATION_INDEX.md; missing or another owner blocks the package, the release and "
                "every deployment."),
          lambda context: _result(ownership_lock(_nexus(context).settings().repo), "pmmg_ownership_lock")),
    Check(_spec("pmmg_browser_only",
                "Guide, Special Handling 1-2: no released image containerizes PMMG execution logic (each PMMG "
                "image's own check, judged from its Dockerfile, command and files); only a static file server "
                "for its client assets."),
          lambda context: _result(browser_only(recorded_pmmg_images(context.instance, _nexus(context).settings())),
                                  "pmmg_browser_only")),
    Check(_spec("pmmg_no_transcoding",
                "Guide, Special Handling 3: no FFmpeg or transcoding job scheduled for PMMG assets (compose "
                "services, worker and job configuration)."),
          lambda context: _result(no_transcoding(_nexus(context).settings().repo), "pmmg_no_transcoding")),
)
