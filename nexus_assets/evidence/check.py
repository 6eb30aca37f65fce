#!/usr/bin/env python3
"""Offline checks of signed release evidence: every provenance envelope's signature, its subject
digest against the manifest, and the sha256 of every SBOM, provenance file and listed file.

This module uses the Python standard library and `cryptography` only, and imports nothing of
nexus-assets: the evidence pack ships it verbatim as `verify.py`, so an auditor runs

    python3 verify.py [FOLDER] [--public-key PATH] [--expect-keyid HEX]

on a machine that has never seen this project. `nexus-agent verify` runs the same checks on
WORKDIR/artifacts and adds the registry's answer for each digest.

What is checked, per image the manifest lists with a registry digest:
- the DSSE envelope (provenance/<service>.intoto.jsonl) is signed by the public key: ed25519 over
  the DSSE pre-authentication encoding (PAE) of its payload type and payload;
- the payload is an in-toto Statement v1 with a SLSA provenance v1 predicate whose subject is
  the manifest's image and registry digest;
- the SBOM file's sha256 is the one the manifest and the signed statement record, and the
  provenance file's sha256 is the manifest's;
and for the folder: when SHA256SUMS is present, its signed copy (SHA256SUMS.dsse.json) verifies
and every file it lists has that sha256 (the manifest and the compliance report included).
Exit status 0 when every check passed, 1 otherwise."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SUMS_PAYLOAD_TYPE = "text/plain; charset=utf-8; format=sha256sum"
MANIFEST = "artifacts_manifest.json"
PUBLIC_KEY = "signing_key.pub"
# This file ships alone as verify.py and imports nothing of nexus-assets, so it keeps its own
# copies of SUMS, file_sha256 and parse_sums: the one exception to core.hashing's writer and parser.
SUMS = "SHA256SUMS"
SUMS_ENVELOPE = "SHA256SUMS.dsse.json"


class CheckFailed(Exception):
    """One check that did not pass; the message says which and why."""


@dataclass
class Verdict:
    """The outcome for one image (or for the folder's own checksums)."""

    name: str
    passed: bool = True
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.passed = False
        self.reasons.append(reason)

    def line(self) -> str:
        if self.passed:
            return f"PASS {self.name}" + (f": {'; '.join(self.notes)}" if self.notes else "")
        return f"FAIL {self.name}: {'; '.join(self.reasons)}"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The ed25519 public key in a PEM file (SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CheckFailed(f"cannot read the public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckFailed(f"{path} is not an ed25519 public key")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id in envelopes: sha256 of its raw 32 bytes, hex."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def open_envelope(envelope: dict[str, Any], public_key: Ed25519PublicKey, payload_type: str) -> bytes:
    """The payload of a DSSE envelope after its signature verified with public_key."""
    from cryptography.exceptions import InvalidSignature

    if not isinstance(envelope, dict) or envelope.get("payloadType") != payload_type:
        raise CheckFailed(f"not a DSSE envelope of {payload_type}")
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [(s.get("keyid", ""), base64.b64decode(s["sig"], validate=True)) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CheckFailed("malformed DSSE envelope (payload or signatures)") from None
    if not signatures:
        raise CheckFailed("the envelope has no signature")
    ours = key_id(public_key)
    message = pae(payload_type, payload)
    for _, signature in signatures:
        try:
            public_key.verify(signature, message)
            return payload
        except InvalidSignature:
            continue
    signed_by = ", ".join(sorted({k[:16] or "?" for k, _ in signatures}))
    raise CheckFailed(f"signature does not verify with key {ours[:16]} (envelope signed by key {signed_by})")


def _sha256_of(digest: str | None) -> str:
    return (digest or "").removeprefix("sha256:")


def check_image(folder: Path, entry: dict[str, Any], public_key: Ed25519PublicKey) -> Verdict:
    """Signature, subject digest and checksums of one released image."""
    name = entry.get("service") or "?"
    verdict = Verdict(name)
    digest = entry.get("digest") or ""
    repo_digest = entry.get("repo_digest") or ""
    provenance, sbom = entry.get("provenance") or {}, entry.get("sbom") or {}
    if not provenance.get("path"):
        verdict.fail("the manifest records no provenance for this image")
        return verdict
    if not sbom.get("path"):
        verdict.fail("the manifest records no SBOM for this image")
    path = folder / provenance["path"]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        verdict.fail(f"provenance {provenance['path']} cannot be read: {exc.strerror or exc}")
        return verdict
    if hashlib.sha256(raw).hexdigest() != provenance.get("sha256"):
        verdict.fail(f"provenance {provenance['path']} sha256 differs from the manifest's")
    try:
        envelope = json.loads(raw.decode("utf-8").splitlines()[0])
        statement = json.loads(open_envelope(envelope, public_key, PAYLOAD_TYPE))
    except CheckFailed as exc:
        verdict.fail(f"provenance {provenance['path']}: {exc}")
        return verdict
    except (ValueError, IndexError, UnicodeDecodeError):
        verdict.fail(f"provenance {provenance['path']} is not a JSON envelope")
        return verdict
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        verdict.fail("the statement is not an in-toto v1 statement with a SLSA provenance v1 predicate")
    subjects = statement.get("subject") or []
    signed = {(s.get("name"), (s.get("digest") or {}).get("sha256")) for s in subjects if isinstance(s, dict)}
    wanted = (repo_digest.split("@", 1)[0], _sha256_of(digest))
    if not digest:
        verdict.fail("the manifest records no registry digest for this image")
    elif wanted not in signed:
        shown = ", ".join(f"{n}@sha256:{d}" for n, d in sorted(signed, key=str)) or "none"
        verdict.fail(f"signed subject {shown} is not the manifest's image {wanted[0]}@{digest}")
    byproducts = ((statement.get("predicate") or {}).get("runDetails") or {}).get("byproducts") or []
    signed_sbom = next((b.get("digest", {}).get("sha256") for b in byproducts
                        if isinstance(b, dict) and b.get("name") == "sbom"), None)
    if sbom.get("path"):
        try:
            actual = file_sha256(folder / sbom["path"])
        except OSError as exc:
            verdict.fail(f"SBOM {sbom['path']} cannot be read: {exc.strerror or exc}")
        else:
            if actual != sbom.get("sha256"):
                verdict.fail(f"SBOM {sbom['path']} sha256 {actual[:16]}… differs from the manifest's")
            if actual != signed_sbom:
                verdict.fail(f"SBOM {sbom['path']} sha256 {actual[:16]}… is not the one the signed statement records")
    if verdict.passed:
        verdict.notes.append(f"{repo_digest or digest} signed by {key_id(public_key)[:16]}, SBOM and provenance intact")
    return verdict


def parse_sums(text: str) -> dict[str, str]:
    """{relative path: sha256} of a `sha256sum` listing. The standalone verifier's own parser
    (see SUMS above); the package reads listings with core.hashing.parse_sha256sums."""
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            sums[name.strip().removeprefix("*")] = digest.strip()
    return sums


def check_sums(folder: Path, public_key: Ed25519PublicKey) -> Verdict:
    """The folder's SHA256SUMS: signed, and every listed file has its sha256; no file unlisted."""
    verdict = Verdict(SUMS)
    try:
        envelope = json.loads((folder / SUMS_ENVELOPE).read_text(encoding="utf-8"))
        signed = open_envelope(envelope, public_key, SUMS_PAYLOAD_TYPE)
    except OSError:
        verdict.fail(f"{SUMS_ENVELOPE} is missing: the checksums are not signed")
        signed = None
    except (ValueError, CheckFailed) as exc:
        verdict.fail(f"{SUMS_ENVELOPE}: {exc}")
        signed = None
    listing = (folder / SUMS).read_bytes()
    if signed is not None and signed != listing:
        verdict.fail(f"{SUMS} differs from its signed copy")
    sums = parse_sums(signed.decode("utf-8") if signed is not None else listing.decode("utf-8", "replace"))
    for name, digest in sorted(sums.items()):
        target = folder / name
        if not target.is_file():
            verdict.fail(f"{name} is listed but missing")
        elif file_sha256(target) != digest:
            verdict.fail(f"{name} sha256 differs from {SUMS}")
    ignored = {SUMS, SUMS_ENVELOPE}
    extra = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.relative_to(folder).as_posix() not in sums and p.name not in ignored
                   and "__pycache__" not in p.parts)
    if extra:
        verdict.fail(f"not listed in {SUMS}: {', '.join(extra[:5])}")
    if verdict.passed:
        verdict.notes.append(f"{len(sums)} files match their signed checksums")
    return verdict


def check_folder(folder: Path, public_key_path: Path | None = None, expect_keyid: str | None = None) -> list[Verdict]:
    """Every check for a folder holding the manifest, the public key, sbom/ and provenance/."""
    key_path = public_key_path or folder / PUBLIC_KEY
    public_key = load_public_key(key_path)
    if expect_keyid and not key_id(public_key).startswith(expect_keyid.lower()):
        raise CheckFailed(f"{key_path} has key id {key_id(public_key)}, not the expected {expect_keyid}")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckFailed(f"cannot read {folder / MANIFEST}: {exc}") from None
    verdicts = []
    if (folder / SUMS).is_file():
        verdicts.append(check_sums(folder, public_key))
    for entry in manifest.get("images") or []:
        if entry.get("digest") or entry.get("provenance"):
            verdicts.append(check_image(folder, entry, public_key))
    if not any(v.name != SUMS for v in verdicts):
        verdicts.append(Verdict("images", False, ["the manifest lists no released image"]))
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the signatures, digests and checksums of release evidence, "
                                                 "offline.")
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parent),
                        help="the evidence folder (default: the folder this script is in)")
    parser.add_argument("--public-key", help=f"the ed25519 public key (PEM; default FOLDER/{PUBLIC_KEY})")
    parser.add_argument("--expect-keyid", help="fail unless the public key's id starts with this (hex)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    try:
        verdicts = check_folder(folder, Path(args.public_key) if args.public_key else None, args.expect_keyid)
    except CheckFailed as exc:
        print(f"FAIL {exc}")
        return 1
    for verdict in verdicts:
        print(verdict.line())
    failed = [v for v in verdicts if not v.passed]
    key = load_public_key(Path(args.public_key) if args.public_key else folder / PUBLIC_KEY)
    print(f"{'VERIFIED' if not failed else 'NOT VERIFIED'}: {len(verdicts) - len(failed)} passed, "
          f"{len(failed)} failed (public key id {key_id(key)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
