"""The staging host as a Dagster resource: its settings (config, then environment) and an SSH
session to it with paramiko, key auth only and the host key verified against a known_hosts file
(an unknown or changed key refuses; nothing is ever added to the file)."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import paramiko

from nexus_assets.core.errors import ConfigError, NexusError

_HOST_RE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\])(?::(?P<port>\d{1,5}))?$")


class StagingHostError(NexusError):
    """The staging host cannot be reached, refused us, or a command on it failed."""


@dataclass(frozen=True)
class StagingSettings:
    user: str
    host: str
    port: int
    ssh_key: Path
    known_hosts: Path
    dir: str
    env_file: Path | None
    health_timeout: int = 30
    keep_releases: int = 5
    lock_wait: float = 60.0
    probe_interval: int = 0  # how often Docker runs the containers' own health checks there (0: the images')
    connect_timeout: float = 10.0

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def _number(name: str, text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be zero or more, got {text!r}")
    return value


def staging_settings(host: str = "", ssh_key: str = "", known_hosts: str = "", dir: str = "",
                     env_file: str = "", health_timeout: str = "", keep_releases: str = "",
                     lock_wait: str = "", probe_interval: str = "", need_env_file: bool = True) -> StagingSettings:
    """Settings from the given values (flags, job config), else NEXUS_STAGING_HOST, NEXUS_STAGING_SSH_KEY,
    NEXUS_STAGING_KNOWN_HOSTS, NEXUS_STAGING_DIR, NEXUS_STAGING_ENV_FILE, NEXUS_HEALTH_TIMEOUT (30),
    NEXUS_KEEP_RELEASES (5), NEXUS_DEPLOY_LOCK_WAIT (60), NEXUS_PROBE_INTERVAL (0: the images' own).
    Raises ConfigError naming the setting."""
    env = os.environ
    host = host or env.get("NEXUS_STAGING_HOST", "")
    match = _HOST_RE.match(host)
    if not match:
        raise ConfigError(f"NEXUS_STAGING_HOST must be user@host[:port], got {host!r}"
                          if host else "NEXUS_STAGING_HOST is not set (user@host[:port]; "
                                       "`bash scripts/staging_host.sh up` prints one)")
    key = Path(ssh_key or env.get("NEXUS_STAGING_SSH_KEY", "") or "~/.ssh/id_ed25519").expanduser()
    if not key.is_file():
        raise ConfigError(f"NEXUS_STAGING_SSH_KEY: no private key at {key}")
    known = Path(known_hosts or env.get("NEXUS_STAGING_KNOWN_HOSTS", "") or "~/.ssh/known_hosts").expanduser()
    if not known.is_file():
        raise ConfigError(f"NEXUS_STAGING_KNOWN_HOSTS: no known_hosts file at {known}; the host key must be pinned")
    folder = dir or env.get("NEXUS_STAGING_DIR", "") or "/opt/nexus-cos"
    if not folder.startswith("/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", folder):
        raise ConfigError(f"NEXUS_STAGING_DIR must be an absolute path of letters, digits and ._-/, got {folder!r}")
    secrets = env_file or env.get("NEXUS_STAGING_ENV_FILE", "")
    if need_env_file and not secrets:
        raise ConfigError("NEXUS_STAGING_ENV_FILE is not set: the host's .env comes from the operator's secrets "
                          "file, never from the repository")
    if secrets and not Path(secrets).expanduser().is_file():
        raise ConfigError(f"NEXUS_STAGING_ENV_FILE: no file at {secrets}")
    port = int(match["port"] or 22)
    if not 0 < port < 65536:
        raise ConfigError(f"NEXUS_STAGING_HOST: port {port} is out of range")
    timeout = int(_number("NEXUS_HEALTH_TIMEOUT", health_timeout or env.get("NEXUS_HEALTH_TIMEOUT") or "30", int))
    probe = int(_number("NEXUS_PROBE_INTERVAL", probe_interval or env.get("NEXUS_PROBE_INTERVAL") or "0", int))
    if probe and probe >= timeout:
        raise ConfigError(f"NEXUS_PROBE_INTERVAL ({probe}s) must be shorter than NEXUS_HEALTH_TIMEOUT ({timeout}s): "
                          "Docker runs a container's first health check one interval after it starts")
    return StagingSettings(
        user=match["user"], host=match["host"].strip("[]"), port=port, ssh_key=key, known_hosts=known,
        dir=folder.rstrip("/") or "/", env_file=Path(secrets).expanduser() if secrets else None,
        health_timeout=timeout,
        keep_releases=max(1, int(_number("NEXUS_KEEP_RELEASES", keep_releases or env.get("NEXUS_KEEP_RELEASES")
                                         or "5", int))),
        lock_wait=_number("NEXUS_DEPLOY_LOCK_WAIT", lock_wait or env.get("NEXUS_DEPLOY_LOCK_WAIT") or "60", float),
        probe_interval=probe)


@dataclass
class Done:
    code: int
    out: str
    err: str


class Session:
    """One SSH connection to the staging host."""

    def __init__(self, settings: StagingSettings) -> None:
        self.settings = settings
        self.client = paramiko.SSHClient()
        where = f"staging host {settings.target}"
        try:
            self.client.load_host_keys(str(settings.known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise StagingHostError(f"{where}: cannot read {settings.known_hosts}: {exc}") from None
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())  # unknown key: refuse
        try:
            self.client.connect(settings.host, port=settings.port, username=settings.user,
                                key_filename=str(settings.ssh_key), timeout=settings.connect_timeout,
                                banner_timeout=settings.connect_timeout, auth_timeout=settings.connect_timeout,
                                allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException as exc:
            raise StagingHostError(f"{where}: its host key ({exc.key.get_name()} "
                                   f"{exc.key.get_fingerprint().hex()}) is not the one {settings.known_hosts} pins: "
                                   "refused, nothing was changed") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise StagingHostError(f"{where}: its host key is not in {settings.known_hosts}: refused (unknown "
                                       "host), nothing was changed") from None
            raise StagingHostError(f"{where}: SSH failed: {exc}; nothing was changed") from None
        except OSError as exc:  # TimeoutError included
            raise StagingHostError(f"{where} is unreachable: {exc.strerror or exc}; nothing was changed") from None
        self.sftp = self.client.open_sftp()

    def run(self, command: str, stdin: bytes | None = None, timeout: float = 600.0, check: bool = True) -> Done:
        """Run a shell command on the host; stdin (secrets go this way, never in the command line)."""
        chan = self._transport().open_session()
        chan.settimeout(timeout)
        try:
            chan.exec_command(command)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                else:
                    chan.status_event.wait(0.05)
            code = chan.recv_exit_status()
        except TimeoutError:
            raise StagingHostError(f"staging host {self.settings.target}: `{command.split()[0]}` did not finish "
                                   f"within {timeout:.0f}s") from None
        finally:
            chan.close()
        done = Done(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if check and code != 0:
            raise StagingHostError(f"staging host {self.settings.target}: {_first(command)} failed (exit {code}): "
                                   f"{(done.err or done.out).strip()[-800:]}")
        return done

    def open(self, command: str) -> paramiko.Channel:
        """A command left running (the deploy lock); its stdin stays open until the channel closes."""
        chan = self._transport().open_session()
        chan.exec_command(command)
        return chan

    def _transport(self) -> paramiko.Transport:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise StagingHostError(f"staging host {self.settings.target}: the SSH connection was lost")
        return transport

    def put(self, local: Path, remote: str) -> None:
        self.sftp.put(str(local), remote)

    def write(self, remote: str, data: bytes, mode: int = 0o600) -> None:
        """Write a file on the host created with mode (the .env: 600 before a byte is in it)."""
        with self.sftp.open(remote, "wb") as handle:
            handle.chmod(mode)
            handle.write(data)

    def read(self, remote: str) -> str | None:
        try:
            with self.sftp.open(remote, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return None

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first(command: str) -> str:
    words = shlex.split(command)[:3] if command else []
    return "`" + " ".join(words) + "`"


class StagingHost(dg.ConfigurableResource):  # type: ignore[type-arg]  # subclassed bare, as Dagster documents it
    """Where `staging_deployment` deploys and the audit looks. Empty fields: the environment
    (NEXUS_STAGING_HOST, NEXUS_STAGING_SSH_KEY, NEXUS_STAGING_KNOWN_HOSTS, NEXUS_STAGING_DIR,
    NEXUS_STAGING_ENV_FILE, NEXUS_HEALTH_TIMEOUT, NEXUS_KEEP_RELEASES, NEXUS_DEPLOY_LOCK_WAIT,
    NEXUS_PROBE_INTERVAL)."""

    host: str = ""
    ssh_key: str = ""
    known_hosts: str = ""
    dir: str = ""
    env_file: str = ""
    health_timeout: str = ""
    keep_releases: str = ""
    lock_wait: str = ""
    probe_interval: str = ""

    def settings(self, need_env_file: bool = True) -> StagingSettings:
        return staging_settings(self.host, self.ssh_key, self.known_hosts, self.dir, self.env_file,
                                self.health_timeout, self.keep_releases, self.lock_wait, self.probe_interval,
                                need_env_file=need_env_file)
