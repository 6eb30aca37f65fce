"""Where the pipeline reads from and writes to. Flags beat environment, environment beats
defaults; secrets are never stored here, only read from the environment where used."""

from __future__ import annotations

import os
import re
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from nexus_assets.core.errors import ConfigError
from nexus_assets.core.sample_checkout import SAMPLE_REPO, sample_checkout

__all__ = ["BUILDERS", "BUILDER_ENV", "DEFAULT_REGISTRY", "DEFAULT_WORKDIR", "SAMPLE_REPO", "UNCHANGED_STAMP", "WORKDIR_GENERATED",
           "WORKSPACE_STATE", "Settings", "default_values"]
DEFAULT_WORKDIR = Path("/tmp/nexus_agent")  # the guide's WORKDIR
DEFAULT_REGISTRY = "127.0.0.1:5000"
MAX_PARALLEL = 64  # builds, pushes and SBOM threads at once: past this a typo, not a machine
MAX_SECONDS = 86400.0  # a test stage, build or lock wait longer than a day: a typo, not a setting
MAX_ATTEMPTS = 20
DEFAULT_ATTEMPTS = 4  # tries of one registry call or push, retries included (NEXUS_PUSH_ATTEMPTS)
BUILDER_ENV = "NEXUS_BUILDER"  # which builder builds the images (images/buildkit.py)
BUILDERS = ("auto", "buildkit", "classic")
# The image reference grammar the Docker SDK checks every build's tag against (docker.utils.build's
# _TAG; tests/core/test_image_reference.py keeps them equal): written here so that checking
# the settings does not import the SDK, a quarter of a second of a nothing-changed run.
IMAGE_REFERENCE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(?::[0-9]+)?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
                             r"(:[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127})?$")
UNCHANGED_STAMP = ".nexus-unchanged.json"  # WORKDIR's record of the last "nothing to do" (cli/unchanged.py)
WORKSPACE_STATE = ".nexus-workspace.json"  # what the workspace sync copied last (workspace/sync.py)
# What the pipeline makes itself at the top of WORKDIR, beside the repository's files: a sync never
# removes them, and they are no input of a verdict. ".nexus-signing" holds the default signing key
# (attest.signing), ".nexus-cache" what steps keep to skip work they did before (Settings.cache).
WORKDIR_GENERATED = ("reports", "artifacts", "output", ".dagster_home", ".nexus-signing", ".nexus-cache",
                     WORKSPACE_STATE, UNCHANGED_STAMP)


@dataclass(frozen=True)
class Settings:
    repo: Path
    workdir: Path
    registry: str
    version: str
    max_parallel: int = 4  # builds, pushes and SBOM threads at once
    test_timeout: float = 120.0  # seconds per test stage and service; a hung stage fails alone
    # The compose file that is the stack to build, relative to the repository (NEXUS_COMPOSE_FILE);
    # None: docker-compose.yml, else the first compose file by name (target.compose_model).
    compose_file: str | None = None
    build_timeout: float = 1800.0  # seconds per image build; a build still running is stopped and fails alone
    # The ed25519 private key that signs provenance (NEXUS_SIGNING_KEY); None: WORKDIR/.nexus-signing/ed25519.pem,
    # made on first use. Its path is a setting; the key itself never leaves that file.
    signing_key: str | None = None
    lock_wait: float = 60.0  # seconds a second nexus-agent waits for the working copy before failing
    # True when no version was given (--version, VERSION): version is then the next patch after
    # the target's last verified_release_vX.Y.Z tag (core.release_version.auto_version).
    version_auto: bool = False
    # The registry as a shared build cache (NEXUS_REGISTRY_CACHE=0 turns it off): before building, ask
    # the registry for the image of the same fingerprint that passed its tests; push it after tests pass.
    registry_cache: bool = True
    # The operator's secrets file (NEXUS_SECRETS_FILE, dotenv format, e.g. /etc/nexus/secrets.env): its
    # values fill compose's `${VAR}` for the test containers, over `.env`. Its path is a setting; the
    # values are read when a test starts and go to the test container only.
    secrets_file: str | None = None
    # Base URL of the evidence file server (NEXUS_EVIDENCE_URL; "": http://127.0.0.1:3001): the UI's
    # links to logs, SBOMs, provenance, the manifest, the PDF and the package (core/metadata.py).
    evidence_url: str = ""
    # a UI launch asks for the staging deploy after its release (automation/deploy_sensor.py)
    deploy_staging: bool = False

    @property
    def reports(self) -> Path:
        return self.workdir / "reports"

    @property
    def artifacts(self) -> Path:
        return self.workdir / "artifacts"

    @property
    def cache(self) -> Path:
        """What a step keeps to skip work it has done before (charts drawn); safe to delete."""
        return self.workdir / ".nexus-cache"

    @property
    def signing_key_path(self) -> Path:
        """The private key that signs provenance: NEXUS_SIGNING_KEY, else under the working copy."""
        return Path(self.signing_key).expanduser() if self.signing_key else self.workdir / ".nexus-signing" / "ed25519.pem"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.workdir / ".dagster_home")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from NEXUS_REPO (default: the bundled sample's checkout), NEXUS_WORKDIR, REGISTRY, VERSION, NEXUS_MAX_PARALLEL,
        NEXUS_TEST_TIMEOUT, NEXUS_BUILD_TIMEOUT, NEXUS_COMPOSE_FILE, NEXUS_LOCK_WAIT,
        NEXUS_SIGNING_KEY, NEXUS_REGISTRY_CACHE, NEXUS_SECRETS_FILE, NEXUS_EVIDENCE_URL; keyword overrides (from flags) win when not None. Without a version (flag
        or VERSION), the next patch after the target's last verified_release tag (1.0.0 for the first)."""
        env = os.environ
        default = default_values()  # the defaults written once, on the fields above
        max_parallel = _number(int, "NEXUS_MAX_PARALLEL", env.get("NEXUS_MAX_PARALLEL"), default["max_parallel"])
        test_timeout = _number(float, "NEXUS_TEST_TIMEOUT", env.get("NEXUS_TEST_TIMEOUT"), default["test_timeout"])
        build_timeout = _number(float, "NEXUS_BUILD_TIMEOUT", env.get("NEXUS_BUILD_TIMEOUT"), default["build_timeout"])
        lock_wait = _number(float, "NEXUS_LOCK_WAIT", env.get("NEXUS_LOCK_WAIT"), default["lock_wait"])
        settings = cls(
            repo=Path(env.get("NEXUS_REPO") or SAMPLE_REPO),
            workdir=Path(env.get("NEXUS_WORKDIR") or env.get("WORKDIR") or DEFAULT_WORKDIR),
            registry=env.get("REGISTRY") or DEFAULT_REGISTRY,
            version=env.get("VERSION") or "",
            max_parallel=max_parallel,
            test_timeout=test_timeout,
            compose_file=env.get("NEXUS_COMPOSE_FILE") or None,
            build_timeout=build_timeout,
            lock_wait=lock_wait,
            signing_key=env.get("NEXUS_SIGNING_KEY") or None,
            registry_cache=_switch("NEXUS_REGISTRY_CACHE", env.get("NEXUS_REGISTRY_CACHE"),
                                   default=default["registry_cache"]),
            secrets_file=env.get("NEXUS_SECRETS_FILE") or None,
            evidence_url=env.get("NEXUS_EVIDENCE_URL") or "",
        )
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        for key in ("repo", "workdir"):
            if key in given:
                given[key] = Path(str(given[key]))
        settings = replace(settings, **given)
        if "repo" not in given and not env.get("NEXUS_REPO"):
            # The embedded default: the bundled sample, as a git checkout of its own beside the
            # working copy (core/sample_checkout.py), so that its release is a real tag.
            settings = replace(settings, repo=sample_checkout(settings.workdir.expanduser().absolute()))
        if not settings.version:  # none given: the next patch after the last release tag
            from nexus_assets.core.release_version import auto_version

            settings = replace(settings, version=auto_version(settings.repo.expanduser().absolute())[0],
                               version_auto=True)
        return replace(settings, repo=settings.repo.expanduser().absolute(), workdir=settings.workdir.expanduser().absolute())

    def validate(self) -> None:
        """Every setting in range, or one ConfigError naming its flag and variable and what to give."""
        _in_range("max parallel builds (--max-parallel, NEXUS_MAX_PARALLEL)", self.max_parallel, 1, MAX_PARALLEL,
                  "a whole number from 1 to", low_ok=True)
        _in_range("test timeout (--test-timeout, NEXUS_TEST_TIMEOUT)", self.test_timeout, 0, MAX_SECONDS,
                  "positive seconds up to")
        _in_range("build timeout (--build-timeout, NEXUS_BUILD_TIMEOUT)", self.build_timeout, 0, MAX_SECONDS,
                  "positive seconds up to")
        _in_range("NEXUS_LOCK_WAIT", self.lock_wait, 0, MAX_SECONDS, "0 to", low_ok=True)
        from nexus_assets.core.release_version import valid_version

        attempts_from_env()  # NEXUS_PUSH_ATTEMPTS, read where pushes happen: bad is bad input now, not mid-run
        builder_setting()  # NEXUS_BUILDER, read when the image step starts: the same
        if not valid_version(self.version):  # 1.0 would later be released again as 1.0.0: one commit, two tags
            raise ConfigError(f"version {self.version!r} (--version, VERSION) is not X.Y.Z: give three whole "
                              "numbers without leading zeros, e.g. 1.2.0, or leave it out for the next patch")
        if not IMAGE_REFERENCE.match(f"nexus/service:{self.version}"):  # also its length (128)
            raise ConfigError(f"version {self.version!r} (--version, VERSION) cannot be an image tag: use X.Y.Z")
        if not IMAGE_REFERENCE.match(f"{self.registry}/nexus/service:{self.version}"):
            raise ConfigError(f"registry {self.registry!r} cannot name an image (REGISTRY, --registry): use "
                              "host[:port][/path], the path in lowercase letters, digits and . _ -")
        if self.secrets_file and not Path(self.secrets_file).expanduser().is_file():
            raise ConfigError(f"NEXUS_SECRETS_FILE names {self.secrets_file}, which is not a file: give the "
                              "operator's secrets file (KEY=VALUE lines), or unset it")
        if self.workdir.resolve() in self.repo.resolve().parents or self.workdir.resolve() == self.repo.resolve():
            raise ConfigError(f"workdir {self.workdir} contains the target repository {self.repo}: pick another --workdir")


def attempts_from_env() -> int:
    """NEXUS_PUSH_ATTEMPTS, or 4: read where registry calls are made (registry.client), checked here."""
    text = os.environ.get("NEXUS_PUSH_ATTEMPTS") or str(DEFAULT_ATTEMPTS)
    if not text.isdigit() or not 1 <= int(text) <= MAX_ATTEMPTS:  # past it: backing off for hours
        raise ConfigError(f"NEXUS_PUSH_ATTEMPTS must be a whole number of tries from 1 to {MAX_ATTEMPTS}; got {text!r}")
    return int(text)


def builder_setting(env: dict[str, str] | None = None) -> str:
    """NEXUS_BUILDER, checked: auto (unset or empty), buildkit or classic; read where the image
    step starts (images/buildkit.py), checked with the other settings."""
    value = (os.environ if env is None else env).get(BUILDER_ENV, "").strip().lower() or "auto"
    if value not in BUILDERS:
        raise ConfigError(f"{BUILDER_ENV}={value!r}: choose one of {', '.join(BUILDERS)}")
    return value


def default_values() -> dict[str, Any]:
    """{field: default} of every Settings field that has one: the only place defaults are written
    (resources/config.NexusConfig takes its own from here)."""
    return {f.name: f.default for f in fields(Settings) if f.default is not MISSING}


def _number(kind: type[int] | type[float], name: str, text: str | None, default: float) -> Any:
    """An environment number (unset or empty: default), or one ConfigError naming the variable."""
    given = (text or "").strip()
    if not given:
        return kind(default)
    try:
        return kind(given)
    except ValueError:
        what = "a whole number" if kind is int else "a number of seconds"
        raise ConfigError(f"{name} must be {what}, got {text!r}: fix or unset it") from None


def _in_range(what: str, value: float, low: float, high: float, rule: str, *, low_ok: bool = False) -> None:
    """low < value <= high (low <= value with low_ok); NaN and infinity are out of range too."""
    if not (low <= value if low_ok else low < value) or not value <= high:
        raise ConfigError(f"{what} must be {rule} {high:g}, got {value!r}")


def _switch(name: str, text: str | None, *, default: bool) -> bool:
    """An on/off environment setting: 1/true/yes/on or 0/false/no/off; unset or empty: default."""
    value = (text or "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false, yes/no, on/off); got {text!r}")
