"""Masking secrets in text: the one whole-token rule (a short value is masked only where it stands
as a whole token) and the shapes a secret takes (`PASSWORD=...` assignments, credentials in URLs,
bearer tokens). A kernel module: it knows nothing of the repository, so git's errors (core/git.py),
the target's secrets (target/secrets.py), the test logs and the release's secret scan share it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, AnyStr

# A known value shorter than this is masked only as a whole token, never inside a longer word,
# so a four-letter secret such as `auth` does not turn `auth-service` into `***-service`.
WHOLE_TOKEN_BELOW = 8
MASK = "***"
_KEYED_SECRET_RE = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:PASS(?:WORD)?|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIALS?)[A-Z0-9_]*)"
    r"(\s*[=:]\s*)(\"[^\"]*\"?|'[^']*'?|[^\s,;&\"']+)")
# A word of a sentence after `secret:` (backticks, quotes and punctuation around it allowed).
_PROSE_WORD_RE = re.compile(r"^[`'\"(]*[A-Za-z]+(?:['-][A-Za-z]+)*[`'\".,;:!?)]*$")
URL_CRED_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def whole_token(value: AnyStr) -> re.Pattern[AnyStr]:
    """value where it stands as a whole token, not inside a longer word or dashed name (`auth` is
    no token of `auth-service`): the one definition masking, the secret scan and the secrets rule
    share, for text and for bytes."""
    if isinstance(value, bytes):
        return re.compile(rb"(?<![\w-])" + re.escape(value) + rb"(?![\w-])")
    return re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")


def _replace(text: str, value: str) -> str:
    if len(value) >= WHOLE_TOKEN_BELOW:
        return text.replace(value, MASK)
    return whole_token(value).sub(MASK, text)


def mask_known(text: str, values: Iterable[str]) -> str:
    """text with each known value replaced by ***, a short one only as a whole token, and
    nothing else: no guessing from shapes."""
    for value in values:  # longest first, so a secret containing another is masked whole
        if value and value in text:
            text = _replace(text, value)
    return text


def _keyed(m: re.Match[str]) -> str:
    key, sep, value = m.groups()
    # Prose is no assignment: "carries a secret: `docker history` keeps its value" keeps its words.
    # An assignment (`=`), a key that is no lower-case word (`API_TOKEN: `, `api_key: `) or a value that
    # is no plain word is masked.
    if "=" not in sep and key.isalpha() and not key.isupper() and _PROSE_WORD_RE.match(value):
        return m.group(0)
    return key + sep + MASK


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """text with every known secret value replaced by ***, plus anything shaped like a secret:
    `PASSWORD=...`/`token: ...` assignments, credentials in URLs, bearer tokens. A value shorter
    than WHOLE_TOKEN_BELOW is replaced only where it stands as a whole token; a sentence such as
    "carries a secret: `docker history` keeps ..." is prose, not an assignment, and kept."""
    text = mask_known(text, secrets)
    text = _KEYED_SECRET_RE.sub(_keyed, text)
    text = URL_CRED_RE.sub(lambda m: m.group(1) + MASK + "@", text)
    return _BEARER_RE.sub(lambda m: m.group(1) + " " + MASK, text)


def mask_tree(obj: Any, secrets: list[str]) -> Any:
    """A copy of a JSON-like structure with mask_secrets applied to every string and key."""
    if isinstance(obj, str):
        return mask_secrets(obj, secrets)
    if isinstance(obj, dict):
        return {mask_tree(k, secrets) if isinstance(k, str) else k: mask_tree(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_tree(v, secrets) for v in obj]
    return obj


def holds(text: AnyStr, value: AnyStr, length: int | None = None) -> bool:
    """Whether text holds value where mask_secrets would mask it: anywhere when it is long, only
    as a whole token when shorter than WHOLE_TOKEN_BELOW. length: the secret's own length, when
    value is an encoding of it (JSON-escaped bytes)."""
    if not value or value not in text:
        return False
    long = (len(value) if length is None else length) >= WHOLE_TOKEN_BELOW
    return long or whole_token(value).search(text) is not None
