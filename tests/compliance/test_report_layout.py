"""The compliance PDF from a 100-service release (synthetic reports, the real assembly and
layout): every section is there, tables run across pages with their header repeated, long
names are whole (wrapped, not clipped), nothing is drawn outside the page, a planted `.env`
value is counted by the secret scan and never printed."""

from __future__ import annotations

import io
import json
import re
import shutil
from datetime import date
from pathlib import Path

import pypdf
import pytest

from nexus_assets.compliance.data import assemble
from nexus_assets.compliance.layout import MARGIN, render
from nexus_assets.compliance.lineage import LineageRow
from nexus_assets.core.settings import SAMPLE_REPO, Settings
from nexus_assets.policy.secret_scan import env_secrets, mask_values

PLANTED = "planted-DO-NOT-LEAK-compliance-7731c0de"
CATEGORIES = ["Core Backend", "Content & Streaming", "Monetization", "Analytics", "PUABO Universe", "Audit"]


def _name(i: int) -> str:
    # long enough to need wrapping in every table, and unique
    return f"puabo-nexus-driver-app-backend-regional-dispatch-{i:03d}" if i % 7 == 0 else f"svc-{i:03d}"


def _write(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")


def release_inputs(root: Path, count: int = 100, *, leak: bool = False) -> Settings:
    repo, work = root / "repo", root / "work"
    repo.mkdir(parents=True)
    shutil.copy(SAMPLE_REPO / "CANONICAL_RATIFICATION_INDEX.md", repo)
    (repo / "docs").mkdir()
    (repo / "docs" / "investor_synopsis.md").write_text("- **users** - accounts, KYC in sandbox mode\n")
    (repo / ".env").write_text(f"JWT_SECRET={PLANTED}\nPORT=3000\n")
    (repo / "docker-compose.yml").write_text("services:\n  users:\n    image: x\n    environment:\n"
                                             "      KYC_MODE: sandbox\n")
    names = [_name(i) for i in range(1, count + 1)]
    modules = [{"name": n, "category": CATEGORIES[i % len(CATEGORIES)], "status": ["present", "partial", "missing"][i % 3],
                "critical": i % 10 == 0, "scaffolded": i % 3 == 2, "pmmg": False,
                "evidence": [{"source": "folder", "file": f"services/{n}", "rule": "exact", "strong": True},
                             {"source": "compose", "file": "docker-compose.yml", "rule": "exact", "strong": False}]
                if i % 3 != 2 else []} for i, n in enumerate(names)]
    _write(work / "reports" / "discrepancy_report.json", {
        "modules": modules, "parity_percent": 33.0, "coverage_percent": 66.0,
        "totals": {"canonical": count, "present": 34, "partial": 33, "missing": 33}, "critical": [],
        "critical_missing": [], "gate": {"passed": True, "message": "parity gate passed: 0 critical module(s) missing"},
        "action": ""})
    _write(work / "reports" / "discovery_parsed.json", {"summary": {"services": count, "compose_files": 1},
                                                        "git": None, "archive": {"present": False},
                                                        "env_files": [{"file": ".env", "keys": ["JWT_SECRET"]}]})
    _write(work / "reports" / "scaffold_report.json", {"services": [
        {"name": n, "language": "node", "port": 3000 + i, "created": True, "reason": "created"}
        for i, n in enumerate(names) if i % 3 == 2]})
    images = []
    for i, n in enumerate(names):
        digest = f"sha256:{i:064x}"
        images.append({"service": n, "status": "tests_failed" if i == 5 else "current",
                       "image": f"127.0.0.1:5000/nexus/{n}:1.2.0", "image_id": f"sha256:{i + 1:064x}",
                       "digest": digest, "repo_digest": f"127.0.0.1:5000/nexus/{n}@{digest}" if i % 2 == 0 else None,
                       "tests": {"lint": "passed", "unit": "failed" if i == 5 else "passed", "integration": "passed"},
                       "base_images": [{"requested": "node:20-alpine", "substitute": "nexus-base/bookworm:1",
                                        "substituted": True}],
                       "sbom": {"path": f"artifacts/sbom/{n}.cdx.json", "sha256": "ab" * 32} if i % 2 == 0 else None})
        (work / "reports" / f"test_results_{n}_unit.log").write_text("ok\n" + (PLANTED if leak and i == 3 else ""))
    _write(work / "artifacts" / "artifacts_manifest.json",
           {"version": "1.2.0", "registry": "127.0.0.1:5000", "images": images,
            "e2e": {"passed": True, "skipped": False, "seconds": 3.0}})
    return Settings(repo=repo, workdir=work, registry="127.0.0.1:5000", version="1.2.0", max_parallel=2)


def _lineage(count: int) -> list[LineageRow]:
    rows = [LineageRow(f"image/{_name(i)}", "materialized", f"run-{i:04d}-aaaa-bbbb", "2026-11-25T10:00:00+00:00",
                       f"sha256:{i:064x}", "recipe-3", [(f"source/{_name(i)}", f"{i:024x}"),
                                                        ("base_image/node_20_alpine", "sha256:" + "c" * 64)], "")
            for i in range(1, count + 1)]
    rows.append(LineageRow("tagged_images", "materialized", "run-tags", "2026-11-25T10:00:00+00:00", "v1", "tags-1",
                           [(f"image/{_name(i)}", f"sha256:{i:064x}") for i in range(1, count + 1)], ""))
    return rows


def _pdf(settings: Settings) -> tuple[bytes, object]:
    data = assemble(settings, commit="0123456789abcdef0123456789abcdef01234567", lineage=_lineage(100),
                    run_id="run-of-the-report", today=date(2026, 11, 25))
    _, values = env_secrets(settings.repo, [])
    return render(data, lambda s: mask_values(s, values)), data


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    settings = release_inputs(tmp_path_factory.mktemp("release"))
    pdf, data = _pdf(settings)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    pages = [page.extract_text() for page in reader.pages]
    return settings, pdf, data, reader, pages


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_every_section_and_the_cover_values_are_in_the_text(report):
    _, _, data, _, pages = report
    text = "\n".join(pages)
    for section in ("Nexus COS compliance report", "Overall gate verdict", "1. Discovery summary",
                    "2. Parity by category", "Modules and the evidence for each match", "3. Scaffolded modules",
                    "4. Test results per service and stage", "5. Images, digests and substitutions",
                    "6. PMMG policy", "7. Security", "KYC sandbox flag: sandbox", "8. Lineage",
                    "9. Artifacts and their sha256"):
        assert section in text, section
    assert "1.2.0" in pages[0] and "0123456789abcdef0123456789abcdef01234567" in _flat(pages[0])
    # a failed unit test and a service without a registry digest: the verdict says FAIL and why
    assert data.verdict.startswith("FAIL: tests pass") and "FAIL" in pages[0]
    assert "ownership lock" in text and "PUABO Holdings LLC" in text
    assert "parity gate passed: 0 critical module(s) missing" in text  # the report's own words are not masked


def test_tables_split_across_pages_with_their_header_repeated(report):
    pages = report[4]
    assert len(pages) > 15
    headers = sum(1 for page in pages if "registry digest (repo_digest)" in page)
    assert headers >= 2, "the images table runs onto a second page and repeats its header"
    assert sum(1 for page in pages if "made from" in page) >= 3  # lineage runs over several pages
    assert any("tagged_images(continued)" in _flat(page) for page in pages), "100 inputs are cut into rows"


def test_long_names_are_whole_and_nothing_is_drawn_off_the_page(report):
    reader, pages = report[3], report[4]
    flat = _flat("\n".join(pages))
    for i in range(7, 101, 7):
        name = _name(i)
        assert flat.count(name) >= 4, name  # modules, tests, images, lineage ... never cut short
        assert f"127.0.0.1:5000/nexus/{name}@sha256:{i - 1:064x}" in flat or i % 2 == 0  # odd ones are pushed
    for number, page in enumerate(reader.pages, 1):
        width = float(page.mediabox.width)
        xs: list[float] = []

        def visit(text, cm, tm, *_, xs=xs):
            if text.strip():
                xs.append(tm[4] * cm[0] + cm[4])

        page.extract_text(visitor_text=visit)
        assert xs, number
        assert min(xs) >= MARGIN - 1 and max(xs) <= width - MARGIN, (number, min(xs), max(xs))


def test_planted_env_value_is_never_printed_and_a_leak_in_outputs_is_counted(tmp_path, report):
    _, pdf, data, _, pages = report
    assert data.secrets.found == 0 and data.secrets.values == 1
    assert PLANTED not in "\n".join(pages) and PLANTED.encode() not in pdf
    leaky = release_inputs(tmp_path, 10, leak=True)
    pdf, data = _pdf(leaky)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert data.secrets.found == 1 and list(data.secrets.findings) == ["reports/test_results_svc-004_unit.log"]
    assert "no secret in outputs" in data.verdict and PLANTED not in text
    assert "reports/test_results_svc-004_unit.log" in _flat(text)


def test_same_inputs_give_the_same_pdf_bytes(report):
    settings, pdf, _, _, _ = report
    again, _ = _pdf(settings)
    assert again == pdf


def test_pages_render_to_png(report, tmp_path):
    import subprocess

    pdf = report[1]
    (tmp_path / "r.pdf").write_bytes(pdf)
    done = subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "3", str(tmp_path / "r.pdf"),
                           str(tmp_path / "page")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("page-*.png"))) == 3
