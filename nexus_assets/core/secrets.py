"""Secrets in a target repository: `.env*` files read for their keys, and every value that may
be a secret scrubbed from discovery's output.

`.env*` files are parsed by python-dotenv (`parse_stream`: `export`, comments, quoted and
multi-line values, `${VAR}` left as written); a line that is no binding is reported by number
and its text kept as a secret. The values of every `.env*` file, of the archive's
`env_dump.txt` (`parse_env_dump`) and of inline compose `environment:` entries are collected
once (rules in `secret_values`: the whole value and each line of it); `mask_tree` then applies
`mask_secrets` to every string of a JSON-like result, dict keys included. Keys are reported,
values never."""

from __future__ import annotations

import bisect
import io
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dotenv.parser import parse_stream

from nexus_assets.core.textfiles import inside, problem, read_text, rel_path, walk_files

MIN_SECRET_LEN = 4
# A known value shorter than this is masked only as a whole token, never inside a longer word,
# so a four-letter secret such as `auth` does not turn `auth-service` into `***-service`.
WHOLE_TOKEN_BELOW = 8
MASK = "***"
# The key given to text of an env file that is no KEY=VALUE binding (a bare line, a broken
# quote): most likely the continuation of a value, so it is always treated as a secret.
UNPARSED = "UNPARSED_SECRET_LINE"
ENV_NAME_RE = re.compile(r"^(\.env(\..+)?|.+\.env)$")
TEMPLATE_SUFFIXES = (".example", ".template", ".sample", ".dist", ".tmpl")
_KEY_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NEWLINE_RE = re.compile(r"\r\n|\n|\r")
_SECRET_KEY_RE = re.compile(r"PASS|PWD|PW$|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL|SALT|AUTH|COOKIE|"
                            r"SESSION|DSN|CERT|SIGN|DATABASE_URL|_URI$|HASH|SEED|NONCE|WEBHOOK|ENCRYPT|"
                            r"CIPHER|(^|_)(PIN|OTP)($|_)", re.IGNORECASE)
# Keys that name a place (a host, a port, a bind address), even under a secret-looking prefix
# such as AUTH_HOST or SESSION_PORT: a plain value of theirs is public.
_LOCATION_KEY_RE = re.compile(r"(^|_)(HOST|HOSTNAME|PORT|ADDR|ADDRESS|BIND|LISTEN|IP)$", re.IGNORECASE)
_VAR_ONLY_RE = re.compile(r"^\$\{?\w+(?::?[-+?][^}]*)?\}?$")
# Words that carry no secret and, masked, would wreck the report (ports, flags, hostnames).
_PLAIN_VALUE_RE = re.compile(r"^(\d{1,6}|(?i:true|false|yes|no|on|off|null|none)|[a-z]+(?:[._-][a-z]+)*)$")
_VERSION_RE = re.compile(r"^v?\d+(\.\d+){1,3}$")
_HOSTNAME = r"[a-z0-9]+(?:[.-][a-z0-9]+)*"
_HOST_PORT_RE = re.compile(rf"^{_HOSTNAME}:\d{{1,5}}$")
# A URL without credentials or query and at most one plain path word (`http://users:8001/health`);
# a longer path may carry a token (`/services/T000/B000/...`).
_PLAIN_URL_RE = re.compile(rf"^[a-z][a-z0-9+.-]*://({_HOSTNAME}|\[[0-9a-fA-F:]+\])(:\d{{1,5}})?"
                           r"(/[a-z]+(?:[._-][a-z]+)*)?/?$")
_KEYED_SECRET_RE = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:PASS(?:WORD)?|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|CREDENTIALS?)[A-Z0-9_]*)"
    r"(\s*[=:]\s*)(\"[^\"]*\"?|'[^']*'?|[^\s,;&\"']+)")
_URL_CRED_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_ENV_DUMP_RE = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in _NEWLINE_RE.split(text)]


def _unparsed(text: str) -> list[tuple[str, str]]:
    """Text that is no binding, as UNPARSED pairs: each line, and what follows its first `=`."""
    out = []
    for line in _lines(text):
        out.append((UNPARSED, line))
        if "=" in line:
            out.append((UNPARSED, line.split("=", 1)[1].strip().strip("\"'")))
    return [(k, v) for k, v in out if v]


def parse_env_text(text: str) -> tuple[list[tuple[str, str]], list[int]]:
    """(key, value) pairs of a dotenv text as python-dotenv parses it (`export`, comments,
    quoted and multi-line values; `${VAR}` left as written), and the numbers of the lines that
    are no KEY=VALUE binding. The text of such a line (a bare word, a broken quote, a base64
    tail like `MIIB...==`) is returned as a pair under UNPARSED, never as a key, so that it is
    masked: it is most likely the continuation of a secret value. Never raises."""
    pairs: list[tuple[str, str]] = []
    bad: list[int] = []
    # Line numbers as an editor shows them: python-dotenv may split a CRLF between two bindings
    # and count it twice, so lines are counted here from where each binding's text starts.
    breaks = [m.end() for m in _NEWLINE_RE.finditer(text)]
    offset = 0
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        body = original.lstrip()
        start, offset = offset + len(original) - len(body), offset + len(original)
        line = bisect.bisect_right(breaks, start) + 1
        if not binding.error and binding.key is None:
            continue  # blank lines and comments
        key, value = binding.key, binding.value
        if binding.error or key is None or value is None or not _KEY_NAME_RE.match(key) or \
                (value and not value.strip("=")):
            bad.append(line)
            pairs.extend(_unparsed(body))
            continue
        pairs.append((key, value))
        raw = re.search(r"=\s*\"((?:\\.|[^\"\\])*)\"", body, re.DOTALL)
        if raw and raw.group(1) != value:  # escapes decoded: mask the text as written too
            pairs.append((key, raw.group(1)))
    return pairs, bad


def parse_env_dump(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Keys and (key, value) pairs of an `env`-style dump (the discovery archive's
    env_dump.txt): values are the rest of the line, unquoted. A line that assigns nothing
    continues the value before it (a PEM key printed by `env`), as does every line of a
    quoted value until its closing quote; such text is never taken for a key."""
    keys: list[str] = []
    pairs: list[tuple[str, str]] = []
    key, value, quote = None, "", ""
    for line in _lines(text):
        m = _ENV_DUMP_RE.search(line)
        # `MIIB...==`, the base64 tail of a key, looks like an assignment of `=`: it is not one.
        if m is None or quote or (m.group(2) and not m.group(2).strip("=")):
            if key is None:
                pairs.extend(_unparsed(line))
            else:
                value += "\n" + line
                quote = "" if quote and line.endswith(quote) else quote
            continue
        if key is not None:
            pairs.append((key, value.strip().strip("\"'")))
        key, value = m.group(1), m.group(2).strip()
        keys.append(key)
        opened = value[:1] if value[:1] in ("'", '"') else ""
        quote = opened if opened and not (len(value) >= 2 and value.endswith(opened)) else ""
    if key is not None:
        pairs.append((key, value.strip().strip("\"'")))
    return sorted(set(keys)), pairs


def _is_address(value: str) -> bool:
    """True for a literal address, never a credential: an IPv4 or IPv6 address or localhost,
    with or without a port (`0.0.0.0`, `127.0.0.1:8080`, `[::]:80`, `::1`)."""
    host, sep, port = value.rpartition(":")
    candidates = [value, value.strip("[]")]
    if sep and port.isdigit() and len(port) <= 5:
        candidates.append(host.strip("[]") if host.startswith("[") or host.count(":") == 0 else "")
    for candidate in candidates:
        if candidate == "localhost":
            return True
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        return True
    return False


def _public_shape(value: str, public: set[str]) -> bool:
    return bool(_PLAIN_VALUE_RE.match(value) or _VERSION_RE.match(value) or _is_address(value)
                or _HOST_PORT_RE.match(value) or _PLAIN_URL_RE.match(value) or value.lower() in public)


def _is_secret(key: str, value: str, public: set[str]) -> bool:
    if len(value) < MIN_SECRET_LEN or _VAR_ONLY_RE.match(value) or _is_address(value):
        return False
    if _LOCATION_KEY_RE.search(key) and _public_shape(value, public):
        return False
    return bool(_SECRET_KEY_RE.search(key)) or not _public_shape(value, public)


def secret_values(pairs: Iterable[tuple[str, str]], public_names: Iterable[str] = (),
                  extra: Iterable[str] = ()) -> list[str]:
    """The values to scrub from every output, longest first.

    Rules (err on masking): a value shorter than MIN_SECRET_LEN is never masked (it cannot be
    scrubbed without destroying the report, and is no credible secret), nor an IP address or
    localhost (with or without a port), nor `${VAR}` (it names a secret, it is not one). The
    value of a key that looks secret (PASSWORD, SECRET, TOKEN, KEY, AUTH, DSN, ...) is masked
    unless the key names a place (AUTH_HOST, SESSION_PORT) and the value is plainly public.
    The value of any other key is masked unless it is plainly public: a number of up to six
    digits (ports), a version, a boolean word, a lowercase word such as `production`,
    `host:port`, a URL without credentials or odd path, or a name already public in the
    repository (a service folder or compose service, e.g. DB_HOST=postgres). UNPARSED text
    counts as secret-named. Each line of a multi-line secret is masked on its own too, unless
    that line alone is plainly public. `extra` values (a registry token from the environment)
    are always masked."""
    public = {n.lower() for n in public_names}
    found: set[str] = set()
    for value in extra:
        found |= {v for v in [value.strip(), *_lines(value)] if len(v) >= MIN_SECRET_LEN}
    for key, value in pairs:
        value = value.strip()
        if not _is_secret(key, value, public):
            continue
        found.add(value)
        found |= {line for line in _lines(value) if len(line) >= MIN_SECRET_LEN and not _public_shape(line, public)
                  and not _VAR_ONLY_RE.match(line)}
    return sorted(found, key=lambda v: (-len(v), v))


def _replace(text: str, value: str) -> str:
    if len(value) >= WHOLE_TOKEN_BELOW:
        return text.replace(value, MASK)
    return re.sub(rf"(?<![\w-]){re.escape(value)}(?![\w-])", MASK, text)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """text with every known secret value replaced by ***, plus anything shaped like a secret:
    `PASSWORD=...`/`token: ...` assignments, credentials in URLs, bearer tokens. A value shorter
    than WHOLE_TOKEN_BELOW is replaced only where it stands as a whole token."""
    for value in secrets:  # longest first, so a secret containing another is masked whole
        if value and value in text:
            text = _replace(text, value)
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
    files: list[dict] = []
    pairs: list[tuple[str, str]] = []
    for path in walk_files(repo, ENV_NAME_RE):
        shown = rel_path(path, repo)
        if path.is_symlink() and not inside(repo, path):
            files.append({"file": shown, "keys": [], "template": False,
                          "problems": [problem(shown, None, "link pointing outside the repository; not read")]})
            continue
        text, probs = read_text(path, shown)
        found, bad = parse_env_text(text or "")
        # The line itself may hold a secret: name the line, never echo it.
        probs += [problem(shown, n, "not a KEY=VALUE line; ignored") for n in bad]
        template = path.name.endswith(TEMPLATE_SUFFIXES)
        # A template is committed, so its plain placeholders (`changeme`, `postgres`) are public;
        # anything else in it is masked in case a real secret slipped in.
        pairs.extend((k, v) for k, v in found if not (template and _PLAIN_VALUE_RE.match(v)))
        files.append({"file": shown, "keys": sorted({k for k, _ in found if k != UNPARSED}), "template": template,
                      "problems": probs})
    return files, pairs


def repo_secrets(repo: Path) -> list[str]:
    """The secret values of every `.env*` file of repo (as `secret_values` judges them): what the
    build step masks in its logs and messages, and refuses to put into an image."""
    return secret_values(read_env_files(repo)[1])


# A build arg named like a credential carries one, whatever its value looks like.
_SECRET_ARG_RE = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL", re.IGNORECASE)


def secret_build_args(args: dict[str, str], secrets: Iterable[str]) -> list[str]:
    """The names of the build args whose value is, or holds, a secret: a value of the `.env`
    files (or a line of one), or any value of an arg named like a credential (*TOKEN*,
    *SECRET*, *PASSWORD*, *KEY*, ...). `docker history` keeps build-arg values in the image."""
    secrets = list(secrets)
    found = []
    for key, value in args.items():
        if not value.strip() or _VAR_ONLY_RE.match(value.strip()):
            continue
        named = bool(_SECRET_ARG_RE.search(key)) and len(value.strip()) >= MIN_SECRET_LEN
        if named or any(_holds(value, s) for s in secrets):
            found.append(key)
    return sorted(found)


def secret_lines(text: str, secrets: Iterable[str]) -> list[int]:
    """Numbers of the lines of text (comments aside) that hold a known secret value."""
    secrets = list(secrets)
    return [n for n, line in enumerate(text.splitlines(), 1)
            if not line.lstrip().startswith("#") and any(_holds(line, s) for s in secrets)]


def _holds(text: str, value: str) -> bool:
    """Whether text holds value where mask_secrets would mask it (a short one as a whole token)."""
    return bool(value) and value in text and _replace(text, value) != text
