"""The staging deploy over SSH: lock the host, upload the deployment package, verify its
checksums and every image's signed provenance on the host before anything starts (the package's
own runner does it), write the host's .env from the operator's secrets file (mode 600, values
never logged), run `remote_deploy_runner.sh` (pull by digest, start, wait for health), then
`post_deploy_audit.sh` and the digest-level audit; when either fails after the release started,
roll back with `rollback_to_tag.sh` to the previous release kept on the host and audit again.
Every deployment appends one JSON line to HOST_DIR/deploy.log."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shlex
import socket
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from nexus_assets.core.errors import ConfigError, NexusError
from nexus_assets.core.keys import ARTIFACTS_MANIFEST_FILE, DEPLOYMENT_PACKAGE_FILE, newest
from nexus_assets.core.settings import Settings
from nexus_assets.deploy.audit import Audit, collect
from nexus_assets.evidence.check import key_id, load_public_key
from nexus_assets.policy.pmmg import ownership_lock
from nexus_assets.registry.client import CredentialSource, split_registry
from nexus_assets.resources.staging import Session, StagingSettings

q = shlex.quote


class DeployLockError(NexusError):
    """Another deployment holds the host's lock past the wait."""


@dataclass
class DeployOutcome:
    target: str
    release: str
    package: str
    previous: str | None = None
    ok: bool = False
    started: bool = False
    audit: dict[str, Any] | None = None
    script_audit: str = ""
    rolled_back_to: str | None = None
    second_audit: dict[str, Any] | None = None
    pruned: list[str] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


@dataclass(frozen=True)
class Package:
    path: Path
    top: str
    tag: str
    required: list[str]


def find_package(settings: Settings) -> Package:
    """The newest reports/deployment_package_*.tar.gz, its folder name, release tag and required keys."""
    path = newest(settings.workdir, DEPLOYMENT_PACKAGE_FILE)
    if path is None:
        raise ConfigError(f"no deployment package in {settings.reports}: run the pipeline first")
    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
        top = names[0].split("/", 1)[0]
        release = tar.extractfile(f"{top}/RELEASE")
        template = tar.extractfile(f"{top}/deployment/.env.template")
        if release is None or template is None:
            raise ConfigError(f"{path} is not a deployment package (no RELEASE or deployment/.env.template)")
        tag = next((line.split("=", 1)[1] for line in release.read().decode().splitlines()
                    if line.startswith("RELEASE_TAG=")), "")
        required = [line.split("=", 1)[0] for line in template.read().decode().splitlines()
                    if line and not line.startswith("#") and "=" in line]
    return Package(path, top, tag, required)


def read_secrets(path: Path | None, required: list[str]) -> bytes:
    """The operator's secrets file, refused (naming the keys, never a value) when it misses one."""
    if path is None:
        raise ConfigError("NEXUS_STAGING_ENV_FILE is not set")
    values = dotenv_values(path)
    missing = [key for key in required if not values.get(key)]
    if missing:
        raise ConfigError(f"NEXUS_STAGING_ENV_FILE {path} does not set {', '.join(missing)} (the package's "
                          "deployment/.env.template requires them); nothing was changed on the host")
    return path.read_bytes()


def _who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


@contextmanager
def host_lock(session: Session, staging: StagingSettings, release: str,
              say: Callable[[str], None] = lambda _: None) -> Iterator[None]:
    """HOST_DIR/.deploy.lock held with flock by a command left running for the deployment (on a
    file descriptor `cat` inherits: the lock goes when the connection does). A second deployment
    says whom it waits for, waits up to lock_wait seconds and proceeds when the holder lets go, or
    fails naming the holder and since when."""
    lock, holder = f"{staging.dir}/.deploy.lock", f"{staging.dir}/.deploy.lock.holder"
    chan = session.open(f"mkdir -p {q(staging.dir)} && exec 9>>{q(lock)} && "
                        f"{{ flock -n 9 || {{ echo waiting; flock -w {int(staging.lock_wait)} 9; }}; }} && "
                        "echo locked && exec cat >/dev/null")
    chan.settimeout(staging.lock_wait + 30)
    got = b""
    started = time.monotonic()
    try:
        while not got.endswith(b"locked\n"):
            piece = chan.recv(64)
            if not piece:
                break
            got += piece
            if got == b"waiting\n":
                say(f"another deployment holds {lock} ({(session.read(holder) or 'holder unknown').strip()}); "
                    f"waiting up to {staging.lock_wait:.0f}s")
    except TimeoutError:
        pass
    if not got.endswith(b"locked\n"):
        chan.close()
        raise DeployLockError(f"staging host {staging.target}: another deployment holds {lock} "
                              f"({(session.read(holder) or 'holder unknown').strip()}); waited {staging.lock_wait:.0f}s, "
                              "nothing was changed")
    if got.startswith(b"waiting"):
        say(f"got the deploy lock after {time.monotonic() - started:.1f}s")
    session.write(holder, f"{_who()} deploying {release} since {datetime.now(UTC).isoformat(timespec='seconds')}\n"
                  .encode(), 0o644)
    try:
        yield
    finally:
        session.run(f"rm -f {q(holder)}", check=False)
        chan.shutdown_write()  # cat sees the end of its input, flock lets go
        chan.close()


def _prune(session: Session, staging: StagingSettings) -> list[str]:
    """Keep keep_releases releases: the current one, then those that ran here most recently
    (deployments.log has one line per switch of `current`, so a release rolled back to ranks
    above the failed one it replaced), then any never switched to, newest first. Remove the
    others and their images no kept release uses."""
    script = f"""set -eu
cd {q(staging.dir)}/releases
current="$(basename "$(readlink ../current)")"
order="$( {{ if [ -f ../deployments.log ]; then tac ../deployments.log | awk '{{print $3}}'; fi; ls -1t; }} | awk '!seen[$0]++')"
kept=""
n=0
for r in $current $order; do
  [ -d "$r" ] || continue
  case " $kept " in *" $r "*) continue ;; esac
  [ "$n" -lt {staging.keep_releases} ] || break
  kept="$kept $r"
  n=$((n + 1))
done
for r in *; do
  [ -d "$r" ] || continue
  case " $kept " in *" $r "*) continue ;; esac
  for image in $(cut -f2 "$r/deployment/images.txt" 2>/dev/null); do
    used=0
    for k in $kept; do grep -qF "$image" "$k/deployment/images.txt" 2>/dev/null && used=1; done
    [ "$used" -eq 1 ] || docker image rm "$image" >/dev/null 2>&1 || true
  done
  rm -rf "$r"
  echo "$r"
done"""
    return session.run(script, check=False).out.split()


def _log(session: Session, staging: StagingSettings, outcome: DeployOutcome, digests: dict[str, str]) -> None:
    line = {"who": _who(), "when": datetime.now(UTC).isoformat(timespec="seconds"), "release": outcome.release,
            "previous": outcome.previous, "digests": digests, "result": "ok" if outcome.ok else "failed",
            "rolled_back_to": outcome.rolled_back_to, "failure": outcome.failure}
    session.run(f"cat >> {q(staging.dir + '/deploy.log')}", stdin=(json.dumps(line, sort_keys=True) + "\n").encode())


def deploy(settings: Settings, staging: StagingSettings, registry: CredentialSource,
           say: Callable[[str], None]) -> DeployOutcome:
    """Deploy the newest deployment package to the staging host; see the module's docstring.
    registry: who the host's engine is to the registry (the Registry resource)."""
    package = find_package(settings)
    lock = ownership_lock(settings.repo)  # the guide: verified before any deployment, nothing touched if not
    if not lock.passed:
        raise ConfigError(f"staging deploy refused, nothing changed on {staging.target}: {lock.detail}"
                          + (f" ({lock.where})" if lock.where else ""))
    secrets = read_secrets(staging.env_file, package.required)
    key_path = settings.artifacts / "signing_key.pub"
    if not key_path.is_file():
        raise ConfigError(f"no {key_path}: the release has no signing key to verify its provenance with")
    keyid = key_id(load_public_key(key_path))
    manifest = json.loads((settings.workdir / ARTIFACTS_MANIFEST_FILE).read_text(encoding="utf-8"))
    digests = {i["service"]: i["repo_digest"] for i in manifest.get("images") or [] if i.get("repo_digest")}
    outcome = DeployOutcome(staging.target, package.tag, package.path.name)
    clock = time.monotonic()
    with Session(staging) as session, host_lock(session, staging, package.tag, say):
        home = staging.dir
        outcome.previous = (session.run(f"readlink {q(home + '/current')} || true").out.strip().rsplit("/", 1)[-1]
                            or None)
        incoming = f"{home}/incoming/{uuid.uuid4().hex[:12]}"
        unpacked = f"{incoming}/{package.top}"
        try:
            session.run(f"mkdir -p {q(incoming)} && chmod 700 {q(incoming)}")
            session.put(package.path, f"{incoming}/{package.path.name}")
            remote_sum = session.run(f"sha256sum {q(incoming + '/' + package.path.name)}").out.split()[0]
            if remote_sum != hashlib.sha256(package.path.read_bytes()).hexdigest():
                raise NexusError(f"staging host {staging.target}: the uploaded {package.path.name} differs from ours")
            session.run(f"tar -xzf {q(incoming + '/' + package.path.name)} -C {q(incoming)} --no-same-owner")
            session.write(f"{unpacked}/.env", secrets, 0o600)
            outcome.durations["upload"] = round(time.monotonic() - clock, 2)
            say(f"uploaded {package.path.name} to {staging.target}:{incoming}")
            _login(session, settings, registry)
            clock = time.monotonic()
            runner = session.run(f"NEXUS_HEALTH_TIMEOUT={staging.health_timeout} bash {q(unpacked)}/scripts/"
                                 f"remote_deploy_runner.sh --host-dir {q(home)} --health-timeout "
                                 f"{staging.health_timeout} --probe-interval {staging.probe_interval} --expect-keyid {keyid}",
                                 check=False, timeout=staging.health_timeout + 900)
            _say_host(runner.out + runner.err, say)
            outcome.durations["upload_to_healthy"] = round(time.monotonic() - clock, 2)
            outcome.started = "installed in" in runner.out
            if runner.code != 0 and not outcome.started:
                failed = [line for line in runner.out.splitlines() if line.startswith("FAIL ")]  # the verifier's
                why = (runner.err.strip().splitlines() or ["no output"])[-1]
                outcome.failure = f"remote_deploy_runner.sh refused the release (exit {runner.code}): {why}" + \
                    ("" if "nothing was started" in why else "; nothing was started") + \
                    "".join(f"; {line}" for line in failed)
                return outcome
            clock = time.monotonic()
            script = session.run(f"bash {q(home)}/releases/{q(package.tag)}/scripts/post_deploy_audit.sh --host-dir "
                                 f"{q(home)} --wait {staging.health_timeout}", check=False)
            outcome.script_audit = (script.out + script.err).strip()
            result = collect(session, home)
            outcome.audit = result.as_dict()
            outcome.durations["audit"] = round(time.monotonic() - clock, 2)
            outcome.ok = runner.code == 0 and script.code == 0 and result.ok
            if not outcome.ok:
                outcome.failure = _why(runner.code, script.code, result)
                _roll_back(session, staging, package.tag, outcome, say)
            else:
                outcome.pruned = _prune(session, staging)
        finally:
            session.run(f"rm -rf {q(incoming)}", check=False)  # the package's .env copy with it
            if outcome.started:  # a release refused before it started changed nothing, the log included
                _log(session, staging, outcome, digests)
    return outcome


def _say_host(text: str, say: Callable[[str], None]) -> None:
    """The host's lines, without compose's per-layer pull progress."""
    for line in text.replace("\r", "\n").splitlines():
        if line.strip() and not (line.startswith("Pulling ") and not line.rstrip().endswith(("done", "error"))):
            say(f"host: {line.rstrip()}")


def _why(runner: int, script: int, result: Audit) -> str:
    parts = [] if runner == 0 else [f"remote_deploy_runner.sh exit {runner} (not healthy)"]
    parts += [] if script == 0 else [f"post_deploy_audit.sh exit {script}"]
    parts += result.drifts
    return "; ".join(parts)


def _roll_back(session: Session, staging: StagingSettings, tag: str, outcome: DeployOutcome,
               say: Callable[[str], None]) -> None:
    previous = outcome.previous
    if not previous or previous == tag:
        say(f"no previous release on {staging.target} to roll back to; {tag} stays as it is")
        return
    clock = time.monotonic()
    say(f"audit of {tag} failed: rolling back to {previous}")
    done = session.run(f"NEXUS_HEALTH_TIMEOUT={staging.health_timeout} bash {q(staging.dir)}/releases/{q(tag)}/scripts/"
                       f"rollback_to_tag.sh {q(previous)} --host-dir {q(staging.dir)}", check=False,
                       timeout=staging.health_timeout + 900)
    _say_host(done.out + done.err, say)
    second = collect(session, staging.dir)
    outcome.rolled_back_to = previous
    outcome.second_audit = second.as_dict()
    outcome.durations["rollback_to_healthy"] = round(time.monotonic() - clock, 2)


def _login(session: Session, settings: Settings, registry: CredentialSource) -> None:
    """The host's engine logs in to the registry with the pipeline's credentials, the registry
    resource's (the password on stdin, never in a command line or a log); an open registry needs none."""
    credentials = registry.credentials()
    if credentials is None:
        return
    host, _ = split_registry(settings.registry)
    session.run(f"docker login {q(host)} -u {q(credentials.username)} --password-stdin",
                stdin=credentials.password.encode())


def outcome_dict(outcome: DeployOutcome) -> dict[str, Any]:
    return asdict(outcome)


__all__ = ["DeployLockError", "DeployOutcome", "deploy", "find_package", "outcome_dict"]
