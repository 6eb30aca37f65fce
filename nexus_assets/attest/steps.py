"""The work of the attest stage for one service, apart from Dagster: write its SBOM, write its
signed provenance, and read what Dagster recorded about its image, push and SBOM."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from importlib import metadata as distributions
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.attest.image_files import ImageFiles, read_image_files
from nexus_assets.attest.provenance import BuildFacts, build_statement, envelope_line, statement_bytes
from nexus_assets.attest.sbom import Package, image_packages, make_bom_json
from nexus_assets.attest.signing import sign_envelope, signing_key_id
from nexus_assets.core.fileio import write_atomic
from nexus_assets.core.masking import mask_tree
from nexus_assets.evidence.check import PAYLOAD_TYPE
from nexus_assets.target.secrets import read_env_files, secret_values
from nexus_assets.target.services import Service


def tool_versions() -> dict[str, str]:
    """The versions of what makes and signs the evidence (the builder's own version)."""
    found = {}
    for name in ("nexus-assets", "dagster", "docker", "cyclonedx-python-lib", "cryptography"):
        try:
            found[name] = distributions.version(name)
        except distributions.PackageNotFoundError:
            found[name] = "unknown"
    return found


def sbom_relpath(service: str) -> str:
    return f"sbom/{service}.cdx.json"


def provenance_relpath(service: str) -> str:
    return f"provenance/{service}.intoto.jsonl"


BomMaker = Callable[[str, str, ImageFiles, list[Package], str], str]
BOMS_PER_PROCESS = 8  # fewer than this per extra process: starting it costs more than it saves


@contextmanager
def bom_makers(count: int) -> Iterator[BomMaker]:
    """make_bom_json for `count` documents: in worker processes when there are many, since the
    CycloneDX library is pure Python and threads make one document at a time (about 0.3 s for
    300 packages); forkserver, as a Dagster step process has threads of its own."""
    workers = min(os.cpu_count() or 1, count // BOMS_PER_PROCESS)
    if workers < 2:
        yield make_bom_json
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        yield lambda *args: pool.submit(make_bom_json, *args).result()


def write_sbom(client: Any, service: str, image_id: str, image_name: str, artifacts: Path,
               make_bom: BomMaker = make_bom_json) -> dict[str, Any]:
    """Read the image's package records, write artifacts/sbom/<service>.cdx.json, and say what it holds."""
    files = read_image_files(client, image_id)
    packages = image_packages(files)
    document = make_bom(service, image_name, files, packages, tool_versions()["nexus-assets"]).encode("utf-8")
    relpath = sbom_relpath(service)
    write_atomic(artifacts / relpath, document)
    kinds: dict[str, int] = {}
    for package in packages:
        kinds[package.kind] = kinds.get(package.kind, 0) + 1
    return {"path": relpath, "sha256": hashlib.sha256(document).hexdigest(), "components": len(packages),
            "by_ecosystem": dict(sorted(kinds.items())), "image_id": files.image_id,
            "os_database": "dpkg" if files.dpkg_status else "apk" if files.apk_installed else "none"}


def masked_build_args(service: Service, repo: Path, public_names: list[str]) -> dict[str, str]:
    """The service's build args with every value that may be a secret replaced by ***: the
    repository's .env values, values of secret-looking keys, anything shaped like a credential."""
    _, pairs = read_env_files(repo)
    secrets = secret_values([*pairs, *service.build_args.items()], public_names)
    masked: dict[str, str] = mask_tree(dict(service.build_args), secrets)
    return masked


def write_provenance(key: Ed25519PrivateKey, facts: BuildFacts, sbom: dict[str, Any], artifacts: Path, *,
                     builder_id: str, run_id: str) -> dict[str, Any]:
    """Sign the statement of one image into a DSSE envelope, write it as one JSON line to
    artifacts/provenance/<service>.intoto.jsonl, and say what was signed."""
    statement = build_statement(facts, sbom_path=sbom["path"], sbom_sha256=sbom["sha256"], builder_id=builder_id,
                                attest_run_id=run_id, versions=tool_versions())
    envelope = sign_envelope(key, PAYLOAD_TYPE, statement_bytes(statement))
    data = envelope_line(envelope)
    relpath = provenance_relpath(facts.service)
    write_atomic(artifacts / relpath, data)
    return {"path": relpath, "sha256": hashlib.sha256(data).hexdigest(), "subject": facts.repo_digest,
            "digest": facts.digest, "image_id": facts.image_id, "key_id": signing_key_id(key),
            "sbom_sha256": sbom["sha256"], "built_by_run": facts.image_run_id}
