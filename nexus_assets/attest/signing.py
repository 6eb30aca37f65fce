"""The project's signing key and DSSE envelopes signed with it (ed25519, via `cryptography`).

The private key lives at NEXUS_SIGNING_KEY (default WORKDIR/.nexus-signing/ed25519.pem). It is
made once when absent, written with mode 0600 in a 0700 folder, and never copied into any
output; the public key is published next to the artifacts (artifacts/signing_key.pub)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from nexus_assets.core.errors import ConfigError
from nexus_assets.evidence.check import key_id, pae

KEY_ENV = "NEXUS_SIGNING_KEY"  # its path is Settings.signing_key_path


def load_or_create_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """(the private key, whether it was made now). A key file that others can read, or that is
    no ed25519 key, is an error naming the file (never its content)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:  # O_EXCL: two steps racing to make the key never overwrite each other's
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return key, True
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"signing key {path} is readable by others (mode {mode:o}): chmod 600 it "
                          f"(or point {KEY_ENV} at another key)")
    try:
        loaded = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"signing key {path} cannot be read as an unencrypted PEM private key "
                          f"({type(exc).__name__}); set {KEY_ENV} to an ed25519 key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is not an ed25519 key; set {KEY_ENV} to one")
    return loaded, False


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def signing_key_id(key: Ed25519PrivateKey) -> str:
    return key_id(key.public_key())


def sign_envelope(key: Ed25519PrivateKey, payload_type: str, payload: bytes) -> dict[str, Any]:
    """A DSSE envelope of payload, signed over its pre-authentication encoding."""
    signature = key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": signing_key_id(key), "sig": base64.b64encode(signature).decode("ascii")}],
    }
