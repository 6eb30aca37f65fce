"""What makes a value of the target repository's `.env*` files a secret, per repository.

A value is a secret when its key names one (PASSWORD, SECRET, TOKEN, KEY, PRIVATE, CREDENTIAL,
AUTH, ...: `target.secrets`' key rule), when it is a URL with user info, or when it is written in
no committed file of the repository. A value written in plain text in a committed compose file,
Dockerfile or `.env` template (`.env.example`, ...) is configuration: the repository publishes it
already, and a Dockerfile line that holds it (a build-time handshake such as
`RUN [ "$X" = "v1-handshake" ]`) puts nothing into the image that its own source does not show.

"Committed" is what `git ls-files` lists when the repository is in a git checkout, read as it is
in the working tree. A folder that is in no checkout (a tarball, a test's generated tree) has no
history to tell local files from published ones: its files as they are on disk count.
`nexus-agent.toml` names keys either way, and wins over every rule: `[secrets] public = [...]`,
`secret = [...]` (exact names or globs such as `*_HANDSHAKE`).

`target.secrets.judge` applies the rule and answers with the rule that decided, in words a refusal
can print; the refusals of a build that would put a secret into an image (a build arg carrying
one, a Dockerfile line holding one) are found here, naming the key and the rule, never the value."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nexus_assets.core.git import GitError, run_git
from nexus_assets.core.masking import holds, whole_token
from nexus_assets.core.textfiles import inside, rel_path, walk_files
from nexus_assets.target.repo_config import load_repo_config
from nexus_assets.target.secrets import MIN_SECRET_LEN, UNPARSED, SecretValues, is_reference

# The files a value counts as configuration in: what compose, the builder and a new developer
# read. A `.env` itself never counts (committed by mistake, it still holds secrets).
_CONFIGURATION_RE = re.compile(r"^(docker-)?compose([.-][\w.-]*)?\.ya?ml$"  # compose files
                                r"|^(Dockerfile|Containerfile)([.-][\w.-]+)?$|^[\w.-]+\.(Dockerfile|dockerfile)$"
                                r"|^(\.env(\..+)?|.+\.env)\.(example|template|sample|dist|tmpl)$")  # env templates
_MAX_FILE_BYTES = 1 << 20  # a compose file or Dockerfile is small; a huge one is no configuration


def _tracked(repo: Path) -> list[Path] | None:
    """The files git tracks under repo, or None when repo is in no git checkout (or git is
    missing). A checkout owned by another user is read; git never prompts."""
    try:
        listed = run_git(repo, "ls-files", "-z", timeout=30)
    except GitError:
        return None
    return [repo / name for name in listed.decode("utf-8", "surrogateescape").split("\0") if name]


def _read_configuration(repo: Path) -> tuple[dict[str, str], bool]:
    """{relative path: text} of the repository's committed compose files, Dockerfiles and env
    templates; and whether git told which files are committed."""
    tracked = _tracked(repo)
    candidates = tracked if tracked is not None else walk_files(repo, _CONFIGURATION_RE)
    texts: dict[str, str] = {}
    root = repo.resolve()  # once, not once per file (1,000 services: 2,000 files)
    for path in candidates:
        if not _CONFIGURATION_RE.match(path.name) or not path.is_file() or not inside(repo, path, resolved_root=root):
            continue
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                continue
            texts[rel_path(path, repo)] = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # unreadable: it publishes nothing
    return texts, tracked is not None


def _matches(patterns: list[str], key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


@dataclass(frozen=True)
class SecretRule:
    """One repository's rule: its `[secrets]` names and the text of its committed configuration."""

    public_keys: list[str] = field(default_factory=list)
    secret_keys: list[str] = field(default_factory=list)
    configuration: dict[str, str] = field(default_factory=dict)
    in_git: bool = False

    @classmethod
    def for_repo(cls, repo: Path) -> SecretRule:
        names = load_repo_config(repo)["secrets"]
        texts, in_git = _read_configuration(repo)
        return cls(public_keys=list(names["public"]), secret_keys=list(names["secret"]), configuration=texts,
                   in_git=in_git)

    def named(self, key: str) -> tuple[bool, str] | None:
        """(secret?, rule) when nexus-agent.toml names the key; None when it does not."""
        if _matches(self.secret_keys, key):
            return True, "nexus-agent.toml [secrets] secret names it"
        if _matches(self.public_keys, key):
            return False, "nexus-agent.toml [secrets] public names it"
        return None

    def committed_in(self, value: str) -> str | None:
        """The first committed configuration file that holds value in plain text, as a whole
        token (`v1-handshake` is not written in `v1-handshake-2`), or None."""
        if not value:
            return None
        token = whole_token(value)
        for name, text in sorted(self.configuration.items()):
            if value in text and token.search(text):
                return name
        return None

    @property
    def nowhere(self) -> str:
        """The rule that makes a value found in no committed file a secret, in words."""
        return ("its value is written in no committed compose file, Dockerfile or .env template" if self.in_git else
                "its value is written in no compose file, Dockerfile or .env template of the repository "
                "(not a git checkout: its files on disk count)")


# A build arg named like a credential carries one, whatever its value looks like.
_SECRET_ARG_RE = re.compile(r"PASS|PWD|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL", re.IGNORECASE)


def secret_build_arg_rules(args: dict[str, str], secrets: Iterable[str],
                           rule: SecretRule | None = None) -> dict[str, str]:
    """{name: why, in words (never the value)} of the build args whose value is, or holds, a secret: a
    secret value of the `.env` files (or a line of one), or any value of an arg named like a
    credential (*TOKEN*, *SECRET*, *PASSWORD*, *KEY*, ...) or named secret in nexus-agent.toml;
    an arg nexus-agent.toml names public is not one. `docker history` keeps build-arg values in
    the image."""
    secrets = secrets if isinstance(secrets, SecretValues) else list(secrets)
    found: dict[str, str] = {}
    for key, value in args.items():
        if not value.strip() or is_reference(value):
            continue
        named = rule.named(key) if rule is not None else None
        if named is not None:
            if named[0]:
                found[key] = named[1]
            continue
        if _SECRET_ARG_RE.search(key) and len(value.strip()) >= MIN_SECRET_LEN:
            found[key] = "its name names a secret"
            continue
        held = next((s for s in secrets if holds(value, s)), None)
        if held is not None:
            env_key, why = secrets.why(held) if isinstance(secrets, SecretValues) else ("", "")
            found[key] = f"it holds {_held_rule(env_key, why)}"
    return dict(sorted(found.items()))


def secret_build_args(args: dict[str, str], secrets: Iterable[str], rule: SecretRule | None = None) -> list[str]:
    """The names of the build args secret_build_arg_rules finds."""
    return list(secret_build_arg_rules(args, secrets, rule))


def _held_rule(key: str, why: str) -> str:
    """Which secret a text holds, for a refusal: its key and the rule, never its value."""
    if key == UNPARSED:
        return "a line of an .env file that is no KEY=VALUE binding"
    if key:
        return f"the value of .env key {key}, secret because {why}"
    return f"a secret value ({why})" if why else "a secret value of an .env file"


def secret_lines(text: str, secrets: Iterable[str]) -> list[int]:
    """Numbers of the lines of text (comments aside) that hold a known secret value."""
    return [n for n, _ in secret_line_rules(text, secrets)]


def secret_line_rules(text: str, secrets: Iterable[str]) -> list[tuple[int, str]]:
    """(number, which secret it holds: ".env key K, secret because RULE", never the value) of each line of text
    (comments aside) that holds a known secret value; the key is known when secrets is a
    SecretValues."""
    secrets = secrets if isinstance(secrets, SecretValues) else list(secrets)
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        held = [s for s in secrets if holds(line, s)]
        if held:
            whys = [_held_rule(*(secrets.why(s) if isinstance(secrets, SecretValues) else ("", ""))) for s in held]
            found.append((n, "; ".join(dict.fromkeys(whys))))
    return found
