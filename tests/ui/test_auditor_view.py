"""The auditor's view (issue 21), clicked through in Debian's Chromium as an auditor would: from
the deployment package back to one image's commit, its logs, SBOM and provenance, and the PDF and
a log opened through their links. Screenshots go to test-results/ui/.

The one step marked xfail(strict) is a known limit the README answers (node labels): should a
Dagster upgrade label nodes apart, strict turns the XPASS into a failure and the marker goes."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.slow]

def test_follows_the_package_back_to_the_commit(auditor, audited_run):
    svc, services = audited_run.service, str(len(list((audited_run.repo / "services").iterdir())))
    auditor.open("deployment_package")
    auditor.shot("deployment_package")
    assert auditor.entry("released") == services
    assert auditor.entry("path").endswith(".tar.gz")

    auditor.follow("artifacts_manifest")  # the package's upstream: what it pins
    auditor.shot("artifacts_manifest")
    assert auditor.entry("with_digest") == services  # ("services" becomes a per-service table)

    auditor.follow("attestations")  # today the manifest reaches the images through the attestations
    auditor.shot("attestations")
    assert svc in auditor.entry("services")

    auditor.follow(f"pushed/{svc}")
    auditor.shot("pushed")
    assert auditor.entry("digest").startswith("sha256:") and auditor.entry("pushed") == "true"
    image_id = auditor.entry("image_id")

    auditor.follow(f"image/{svc}")
    auditor.shot("image")
    assert auditor.entry("image_id") == image_id  # the image pushed is the image built
    labels = json.loads(auditor.entry("labels"))
    assert labels["org.opencontainers.image.revision"] == audited_run.commit  # the commit, in the labels today
    assert labels["io.nexus-assets.service"] == svc

    auditor.follow(f"source/{svc}")
    auditor.shot("source")
    assert f"image/{svc}" in auditor.lineage_links()  # the end of the chain: the sources the image was built from


def test_image_shows_its_logs_sbom_and_provenance(auditor, audited_run):
    svc, reports = audited_run.service, audited_run.workdir / "reports"
    auditor.open(f"image/{svc}")
    build_log = auditor.entry("build_log")
    assert build_log == str(reports / f"build_{svc}.log") and (reports / f"build_{svc}.log").stat().st_size > 0

    auditor.tab("Checks")  # each test stage is a check carrying its log
    auditor.page.get_by_text("unit", exact=True).first.click()
    unit_log = reports / f"test_results_{svc}_unit.log"
    auditor.page.get_by_text(str(unit_log), exact=True).first.wait_for(state="visible")
    assert unit_log.stat().st_size > 0
    auditor.shot("unit_check")

    auditor.open(f"image/{svc}")
    auditor.follow(f"sbom/{svc}")
    auditor.shot("sbom")
    sbom = audited_run.workdir / "artifacts" / "sbom" / f"{svc}.cdx.json"
    assert auditor.entry("path") == str(sbom)
    assert int(auditor.entry("components")) == len(json.loads(sbom.read_text())["components"]) > 0

    auditor.follow(f"provenance/{svc}")
    auditor.shot("provenance")
    assert auditor.entry("path").endswith(f"provenance/{svc}.intoto.jsonl")
    assert auditor.entry("subject").endswith(auditor.entry("digest"))


def test_opens_the_pdf_through_its_link(auditor, audited_run):
    auditor.open("compliance_report")
    auditor.shot("compliance_report")
    pdf = auditor.open_evidence(".pdf")
    assert pdf.content_type.startswith("application/pdf") and pdf.body.startswith(b"%PDF")
    assert pdf.body == next((audited_run.workdir / "reports").glob("compliance_report_*.pdf")).read_bytes()


def test_opens_a_build_log_through_its_link(auditor, audited_run):
    svc = audited_run.service
    auditor.open(f"image/{svc}")
    log = auditor.open_evidence(f"build_{svc}.log")
    assert log.content_type.startswith("text/plain")
    assert log.body == (audited_run.workdir / "reports" / f"build_{svc}.log").read_bytes()


def test_manifest_links_each_service_to_its_provenance(auditor, audited_run):
    svc = audited_run.service
    auditor.open("artifacts_manifest")
    assert svc in auditor.entry("services")  # a table of rows, one per service, not a count
    links = auditor.lineage_links()
    assert "attestations" in links, f"the manifest links to {sorted(links)}, not to attestations"
    auditor.follow("attestations")
    links = auditor.lineage_links()
    assert f"provenance/{svc}" in links, f"attestations link to {sorted(links)}, not to provenance/{svc}"
    auditor.follow(f"provenance/{svc}")
    auditor.follow(f"pushed/{svc}")
    auditor.follow(f"image/{svc}")
    auditor.shot("manifest_to_image")


def test_image_shows_its_commit_as_an_entry(auditor, audited_run):
    auditor.open(f"image/{audited_run.service}")
    commits = [e for e in auditor.entries() if "commit" in e]
    assert commits, f"no commit entry among {sorted(auditor.entries())}"
    assert any(auditor.entry(e).startswith(audited_run.commit[:12]) for e in commits)


@pytest.mark.xfail(strict=True, reason="Dagster 1.13's graph labels a node with its key's last part, so image, "
                                        "pushed, SBOM and source nodes of one service read the same; the keys stay "
                                        "(README, The auditor's view: Names)")
def test_lineage_graph_tells_the_nodes_of_one_service_apart(auditor, audited_run):
    svc = audited_run.service
    auditor.open(f"image/{svc}", view="lineage")
    auditor.page.wait_for_timeout(2000)  # the graph lays out after the data arrives
    auditor.shot("lineage")
    # The header's breadcrumb names the page's asset once; a node labelled with the bare name is another.
    bare = auditor.page.get_by_text(svc, exact=True).count()
    assert bare <= 2, f"{bare - 1} nodes of the graph are labelled with the bare name {svc}"
