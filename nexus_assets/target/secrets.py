"""Secrets in a target repository: `.env*` files read for their keys, and every value that may
be a secret scrubbed from discovery's output.

`.env*` files are parsed by python-dotenv (`parse_stream`: `export`, comments, quoted and
multi-line values, `${VAR}` left as written); a line that is no binding is reported by number
and its text kept as a secret. The values of every `.env*` file, of the archive's
`env_dump.txt` (`parse_env_dump`) and of inline compose `environment:` entries are collected
once (rules in `secret_values`: the whole value and each line of it); `mask_tree` then applies
`mask_secrets` to every string of a JSON-like result, dict keys included. Keys are reported,
values never. What makes a value of a repository's `.env` a secret rather than public
configuration (a value its committed compose files, Dockerfiles or `.env` templates show) is
`target.secrets_rule`; `judge` applies it."""

from __future__ import annotations

import bisect
import io
import ipaddress
import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotenv.parser import parse_stream

from nexus_assets.core.masking import URL_CRED_RE
from nexus_assets.core.textfiles import inside, problem, read_text, rel_path, walk_files

if TYPE_CHECKING:  # target.secrets_rule reads nexus-agent.toml; imported where a repository is judged
    from nexus_assets.target.secrets_rule import SecretRule

MIN_SECRET_LEN = 4
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


def _public_shape(value: str, public: AbstractSet[str]) -> bool:
    return bool(_PLAIN_VALUE_RE.match(value) or _VERSION_RE.match(value) or _is_address(value)
                or _HOST_PORT_RE.match(value) or _PLAIN_URL_RE.match(value) or value.lower() in public)


def judge(key: str, value: str, public: AbstractSet[str] = frozenset(), rule: SecretRule | None = None) -> tuple[bool, str]:
    """(whether value, the value of key, is a secret; the rule that decided, in words a refusal
    can print: it never holds the value). Without a rule (no repository known: an env dump, a
    build arg alone) a value that is not plainly public is a secret; with one, such a value is
    configuration when a committed compose file, Dockerfile or .env template holds it."""
    value = value.strip()
    named = rule.named(key) if rule is not None and key != UNPARSED else None
    if named is not None:
        return named
    if len(value) < MIN_SECRET_LEN or _VAR_ONLY_RE.match(value) or _is_address(value):
        return False, "too short, a variable or an address: no credible secret"
    if key == UNPARSED:
        return True, "it is a line of an env file that is no KEY=VALUE binding"
    if URL_CRED_RE.search(value):
        return True, "its value is a URL with user info"
    if _LOCATION_KEY_RE.search(key) and _public_shape(value, public):
        return False, "its key names a place and its value is plainly public"
    if _SECRET_KEY_RE.search(key):
        return True, "its key names a secret"
    if _public_shape(value, public):
        return False, "its value is plainly public (a number, a word, a version, an address)"
    if rule is None:
        return True, "its value is not plainly public"
    where = rule.committed_in(value)
    if where is not None:
        return False, f"configuration: {where} holds it in plain text"
    return True, rule.nowhere


class SecretValues(tuple[str, ...]):
    """Secret values, longest first (a secret holding another is masked whole), with the key and
    rule that made each one secret, for a refusal to name (never the value itself)."""

    reasons: dict[str, tuple[str, str]]

    def __new__(cls, values: Iterable[str] = (), reasons: dict[str, tuple[str, str]] | None = None) -> SecretValues:
        made = super().__new__(cls, sorted(set(values), key=lambda v: (-len(v), v)))
        made.reasons = dict(reasons or {})
        return made

    def why(self, value: str) -> tuple[str, str]:
        """(key, rule) of a secret value; an `extra` value was named by the environment."""
        return self.reasons.get(value, ("", "it is a credential of the environment"))


def judge_secrets(pairs: Iterable[tuple[str, str]], public_names: Iterable[str] = (),
                  extra: Iterable[str] = (), rule: SecretRule | None = None) -> SecretValues:
    """secret_values, with the key and rule of each value kept for refusals."""
    public = {n.lower() for n in public_names}
    reasons: dict[str, tuple[str, str]] = {}
    for value in extra:
        reasons |= {v: ("", "it is a credential of the environment") for v in [value.strip(), *_lines(value)]
                    if len(v) >= MIN_SECRET_LEN}
    for key, value in pairs:
        value = value.strip()
        secret, why = judge(key, value, public, rule)
        if not secret:
            continue
        found = {value} | {line for line in _lines(value) if len(line) >= MIN_SECRET_LEN
                           and not _public_shape(line, public) and not _VAR_ONLY_RE.match(line)}
        for one in found:
            reasons.setdefault(one, (key, why))
    return SecretValues(reasons, reasons)


def secret_values(pairs: Iterable[tuple[str, str]], public_names: Iterable[str] = (),
                  extra: Iterable[str] = (), rule: SecretRule | None = None) -> list[str]:
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
    are always masked. With a rule (the repository's: `target.secrets_rule`), nexus-agent.toml's
    `[secrets]` names decide first, and a value a committed compose file, Dockerfile or .env
    template holds in plain text is configuration unless its key names a secret."""
    return list(judge_secrets(pairs, public_names, extra, rule))


def read_env_files(repo: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Per `.env*` file: its keys (never values) and problems; plus all (key, value) pairs
    for secret_values."""
    files: list[dict[str, Any]] = []
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


def repo_secrets(repo: Path) -> SecretValues:
    """The secret values of every `.env*` file of repo, as the repository's rule judges them
    (`target.secrets_rule`: a value its committed configuration publishes is no secret): what the
    build step masks in its logs and messages, and refuses to put into an image."""
    from nexus_assets.target.secrets_rule import SecretRule

    return judge_secrets(read_env_files(repo)[1], rule=SecretRule.for_repo(repo))


def is_reference(value: str) -> bool:
    """Whether value only names a variable (`$X`, `${X:-d}`): it names a secret, it is not one."""
    return bool(_VAR_ONLY_RE.match(value.strip()))
