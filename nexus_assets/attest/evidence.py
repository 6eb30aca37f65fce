"""The evidence pack: one folder an auditor takes away (artifacts/evidence/), holding the manifest,
the SBOMs and signed provenance it lists, the public key, the newest compliance report when there
is one, a standalone `verify.py` (evidence/check.py, verbatim: standard library plus
`cryptography`), a README, and SHA256SUMS of every file with its signed copy
SHA256SUMS.dsse.json. The folder is made beside and then put in place, so it is never half-made."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexus_assets.attest.signing import public_pem, sign_envelope, signing_key_id
from nexus_assets.core.errors import NexusError
from nexus_assets.core.hashing import SUMS, file_sha256, sha256sums
from nexus_assets.evidence import check as evidence_check
from nexus_assets.evidence.check import MANIFEST, PUBLIC_KEY, SUMS_ENVELOPE, SUMS_PAYLOAD_TYPE

README = """Evidence of a Nexus COS release
===============================

{manifest}           every released image: tags, image id, registry digest, SBOM and provenance (path, sha256)
sbom/<service>.cdx.json         CycloneDX SBOM of each image (OS packages and language packages it records)
provenance/<service>.intoto.jsonl  SLSA provenance of each pushed image: an in-toto statement whose subject is the
                                registry digest, in a DSSE envelope signed with ed25519
{key}             the public key (key id {key_id})
{pdf}
verify.py                       re-checks all of it offline (Python 3.11+ with the `cryptography` package)
SHA256SUMS, SHA256SUMS.dsse.json  the sha256 of every file here, and its signed copy

Check it:   python3 verify.py              (or: python3 verify.py FOLDER --expect-keyid {short})
Compare the key id above with the one the release was published with: whoever can replace the
public key can re-sign everything, so the key id is what ties this pack to its signer.
"""


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def build_evidence_pack(artifacts: Path, folder: Path, key: Ed25519PrivateKey, pdf: Path | None) -> dict[str, str]:
    """Make the pack from artifacts/ (and the PDF); returns {file: sha256} as SHA256SUMS lists it."""
    manifest_path = artifacts / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NexusError(f"cannot make the evidence pack: {manifest_path} cannot be read ({exc})") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        _copy(manifest_path, staging / MANIFEST)
        (staging / PUBLIC_KEY).write_bytes(public_pem(key))
        for entry in manifest.get("images") or []:
            for kind in ("sbom", "provenance"):
                relpath = (entry.get(kind) or {}).get("path")
                if relpath and (artifacts / relpath).is_file():
                    _copy(artifacts / relpath, staging / relpath)
        if pdf is not None:
            _copy(pdf, staging / pdf.name)
        (staging / "verify.py").write_text(Path(evidence_check.__file__).read_text(encoding="utf-8"), encoding="utf-8")
        key_id = signing_key_id(key)
        (staging / "README.txt").write_text(README.format(
            manifest=MANIFEST.ljust(32)[:32], key=PUBLIC_KEY.ljust(29), key_id=key_id, short=key_id[:16],
            pdf=f"{pdf.name}  the compliance report" if pdf else "(no compliance report was made for this release)"),
            encoding="utf-8")
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        listed = {name: file_sha256(staging / name) for name in files}
        listing = sha256sums(listed)
        (staging / SUMS).write_bytes(listing)
        envelope = sign_envelope(key, SUMS_PAYLOAD_TYPE, listing)
        (staging / SUMS_ENVELOPE).write_text(json.dumps(envelope, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        old = folder.parent / f".{folder.name}.old"
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        if old.exists():
            shutil.rmtree(old)
        return listed
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
