"""PMMG's browser-only rule on the images that belong to PMMG: judged in the image step as soon as
the image exists (built or pulled from the cache), recorded as the image's `pmmg_policy`
metadata and its check `pmmg_browser_only` (ERROR: it blocks the release), and read by the push,
which refuses such an image: a PMMG image that runs a media engine never reaches the registry,
so it can be neither released nor deployed (policy.pmmg_images decides; this module feeds it
what the engine and the working copy hold)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.keys import image_key
from nexus_assets.core.textfiles import rel_path
from nexus_assets.policy.pmmg_images import ImageFacts, belongs_to_pmmg, engine_facts, judge_image
from nexus_assets.target.services import Service

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient


PMMG_CHECK = "pmmg_browser_only"


def is_pmmg_service(service: Service) -> bool:
    """Whether the service belongs to PMMG (its names or its Dockerfile say so): read from files,
    so the load and the step agree."""
    return belongs_to_pmmg([service.name, service.compose_name, service.folder], service.dockerfile)


def check_spec(service: Service) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(PMMG_CHECK, asset=image_key(service.name),
                             description="PMMG is browser-only: this image must be a static file server for the "
                                         "client assets, never the media engine (judged from its Dockerfile, "
                                         "command, base layers and files, not its name).")


def judge(client: DockerClient, service: Service, image_id: str, workdir: Path) -> dict[str, Any]:
    """{passed, detail, where} of one PMMG image in the engine (service: its context in workdir)."""
    facts = engine_facts(client, image_id)
    shown_context = service.folder or rel_path(service.path, workdir)
    rule = judge_image(ImageFacts(
        service=service.name, context=service.path, dockerfile=service.dockerfile, shown_context=shown_context,
        shown_dockerfile=rel_path(service.dockerfile, workdir) if service.dockerfile else f"{shown_context}/Dockerfile",
        **facts))
    return {"passed": rule.passed, "detail": rule.detail, "where": rule.where}


def check_result(service_name: str, record: dict[str, Any] | None) -> dg.AssetCheckResult:
    """The check from a judgement (None: the image did not build, so nothing was judged)."""
    if record is None:
        return dg.AssetCheckResult(asset_key=image_key(service_name), check_name=PMMG_CHECK, passed=False,
                                   description="not judged: the image did not build")
    return dg.AssetCheckResult(
        asset_key=image_key(service_name), check_name=PMMG_CHECK, passed=bool(record["passed"]),
        description=(record["detail"] if record["passed"] else
                     f"PMMG execution logic containerized, not pushed: {record['detail']}"),
        metadata={"file": str(record.get("where") or ""), "detail": str(record["detail"])})
