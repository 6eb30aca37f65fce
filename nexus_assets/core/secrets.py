"""Secrets in a target repository: `.env*` files read for their keys, and every value that may
be a secret scrubbed from discovery's output.

The values of every `.env*` file, of the archive's `env_dump.txt` and of inline compose
`environment:` entries are collected once (rules in `secret_values`); `mask_tree` then applies
`mask_secrets` to every string of a JSON-like result, dict keys included. Keys are reported,
values never. (Named `secrets_mask`, not `secrets`, so the stdlib module is not shadowed.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nexus_assets.core.textfiles import inside, problem, read_text, rel_path, walk_files

MIN_SECRET_LEN = 4
MASK = "***"
_ENV_NAME_RE = re.compile(r"^(\.env(\..+)?|.+\.env)$")
_TEMPLATE_SUFFIXES = (".example", ".template", ".sample", ".dist", ".tmpl")
_ENV_LINE_RE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
_SECRET_KEY_RE = re.compile(r"PASS|PWD|PW$|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL|SALT|AUTH|COOKIE|"
                            r"SESSION|DSN|CERT|SIGN|DATABASE_URL|_URI$|(^|_)(PIN|OTP)($|_)", re.IGNORECASE)
_VAR_ONLY_RE = re.compile(r"^\$\{?\w+(?::?[-+?][^}]*)?\}?$")
# Words that carry no secret and, masked, would wreck the report (ports, flags, hostnames).
_PLAIN_VALUE_RE = re.compile(r"^(\d+|true|false|yes|no|on|off|null|none|[a-z]+(?:[._-][a-z]+)*)$")
_KEYED_SECRET_RE = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:PASS(?:WORD)?|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIALS?)[A-Z0-9_]*)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)")
_URL_CRED_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def parse_env_text(text: str) -> tuple[list[tuple[str, str]], list[int]]:
    """(key, value) pairs of a dotenv text and the numbers of lines that are not KEY=VALUE."""
    pairs, bad = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ENV_LINE_RE.match(line)
        if not m:
            bad.append(number)
            continue
        value = m.group(2).strip()
        if value[:1] in ("'", '"') and value.endswith(value[0]) and len(value) >= 2:
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        pairs.append((m.group(1), value))
    return pairs, bad


def secret_values(pairs: Iterable[tuple[str, str]], public_names: Iterable[str] = (),
                  extra: Iterable[str] = ()) -> list[str]:
    """The values to scrub from every output, longest first.

    Rules (err on masking): a value shorter than MIN_SECRET_LEN is never masked (it cannot be
    scrubbed without destroying the report, and is no credible secret). The value of a key that
    looks secret (PASSWORD, SECRET, TOKEN, KEY, AUTH, DSN, ...) is always masked. The value of
    any other key is masked unless it is plainly public: a number (ports), a boolean word, a
    name already public in the repository (a service folder or compose service, e.g.
    DB_HOST=postgres), or a lowercase word such as `production` or `nexus`. `extra` values
    (e.g. a registry token from the environment) are always masked."""
    public = {n.lower() for n in public_names}
    found = {v for v in extra if len(v) >= MIN_SECRET_LEN}
    for key, value in pairs:
        value = value.strip()
        if len(value) < MIN_SECRET_LEN:
            continue
        if _VAR_ONLY_RE.match(value):  # `${POSTGRES_PASSWORD}` names a secret, it is not one
            continue
        if _SECRET_KEY_RE.search(key) or not (_PLAIN_VALUE_RE.match(value) or value.lower() in public):
            found.add(value)
    return sorted(found, key=lambda v: (-len(v), v))


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """text with every known secret value replaced by ***, plus anything shaped like a secret:
    `PASSWORD=...`/`token: ...` assignments, credentials in URLs, bearer tokens."""
    for value in secrets:  # longest first, so a secret containing another is masked whole
        if value and value in text:
            text = text.replace(value, MASK)
    text = _KEYED_SECRET_RE.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    text = _URL_CRED_RE.sub(lambda m: m.group(1) + MASK + "@", text)
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


def read_env_files(repo: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """Per `.env*` file: its keys (never values) and problems; plus all (key, value) pairs
    for secret_values."""
    files, pairs = [], []
    for path in walk_files(repo, _ENV_NAME_RE):
        shown = rel_path(path, repo)
        if path.is_symlink() and not inside(repo, path):
            files.append({"file": shown, "keys": [], "template": False,
                          "problems": [problem(shown, None, "link pointing outside the repository; not read")]})
            continue
        text, probs = read_text(path, shown)
        found, bad = parse_env_text(text or "")
        # The line itself may hold a secret: name the line, never echo it.
        probs += [problem(shown, n, "not a KEY=VALUE line; ignored") for n in bad]
        template = path.name.endswith(_TEMPLATE_SUFFIXES)
        # A template is committed, so its plain placeholders (`changeme`, `postgres`) are public;
        # anything else in it is masked in case a real secret slipped in.
        pairs.extend((k, v) for k, v in found if not (template and _PLAIN_VALUE_RE.match(v)))
        files.append({"file": shown, "keys": sorted({k for k, _ in found}), "template": template,
                      "problems": probs})
    return files, pairs
