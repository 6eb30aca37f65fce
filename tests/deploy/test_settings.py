"""Staging settings: flags beat the environment, and each bad setting is one clear line."""

from __future__ import annotations

import pytest

from nexus_assets.cli.main import main
from nexus_assets.core.errors import ConfigError
from nexus_assets.resources.staging import staging_settings


@pytest.fixture
def files(tmp_path, monkeypatch):
    for name in ("NEXUS_STAGING_HOST", "NEXUS_STAGING_SSH_KEY", "NEXUS_STAGING_KNOWN_HOSTS", "NEXUS_STAGING_DIR",
                 "NEXUS_STAGING_ENV_FILE", "NEXUS_HEALTH_TIMEOUT", "NEXUS_KEEP_RELEASES", "NEXUS_PROBE_INTERVAL",
                 "NEXUS_DEPLOY_LOCK_WAIT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "key").write_text("k")
    (tmp_path / "known").write_text("")
    (tmp_path / "secrets.env").write_text("A=1\n")
    monkeypatch.setenv("NEXUS_STAGING_SSH_KEY", str(tmp_path / "key"))
    monkeypatch.setenv("NEXUS_STAGING_KNOWN_HOSTS", str(tmp_path / "known"))
    monkeypatch.setenv("NEXUS_STAGING_ENV_FILE", str(tmp_path / "secrets.env"))
    return tmp_path


def test_host_port_and_defaults(files, monkeypatch):
    monkeypatch.setenv("NEXUS_STAGING_HOST", "root@10.0.0.2")
    settings = staging_settings()
    assert (settings.user, settings.host, settings.port, settings.dir) == ("root", "10.0.0.2", 22, "/opt/nexus-cos")
    assert (settings.health_timeout, settings.keep_releases, settings.probe_interval) == (30, 5, 0)
    flagged = staging_settings(host="deploy@[::1]:2222", dir="/srv/nexus/", health_timeout="5")
    assert (flagged.user, flagged.host, flagged.port, flagged.dir, flagged.health_timeout) == \
        ("deploy", "::1", 2222, "/srv/nexus", 5)
    monkeypatch.setenv("NEXUS_PROBE_INTERVAL", "10")
    assert staging_settings().probe_interval == 10


@pytest.mark.parametrize(("env", "message"), [
    ({}, "NEXUS_STAGING_HOST is not set"),
    ({"NEXUS_STAGING_HOST": "host-without-user"}, "NEXUS_STAGING_HOST must be user@host[:port]"),
    ({"NEXUS_STAGING_HOST": "r@h", "NEXUS_STAGING_SSH_KEY": "/nonexistent/key"}, "no private key at /nonexistent/key"),
    ({"NEXUS_STAGING_HOST": "r@h", "NEXUS_STAGING_KNOWN_HOSTS": "/nonexistent/kh"}, "the host key must be pinned"),
    ({"NEXUS_STAGING_HOST": "r@h", "NEXUS_STAGING_DIR": "relative/dir"}, "NEXUS_STAGING_DIR must be an absolute"),
    ({"NEXUS_STAGING_HOST": "r@h", "NEXUS_STAGING_ENV_FILE": ""}, "never from the repository"),
    ({"NEXUS_STAGING_HOST": "r@h", "NEXUS_HEALTH_TIMEOUT": "soon"}, "NEXUS_HEALTH_TIMEOUT must be a number"),
    ({"NEXUS_STAGING_HOST": "r@h", "NEXUS_PROBE_INTERVAL": "-1"}, "NEXUS_PROBE_INTERVAL must be zero or more"),
    ({"NEXUS_STAGING_HOST": "r@h", "NEXUS_PROBE_INTERVAL": "10", "NEXUS_HEALTH_TIMEOUT": "8"},
     "NEXUS_PROBE_INTERVAL .10s. must be shorter than NEXUS_HEALTH_TIMEOUT .8s.: Docker runs"),
])
def test_each_bad_setting_is_named(files, monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        staging_settings()


def test_audit_with_bad_settings_exits_2(files, monkeypatch, capsys):
    monkeypatch.setenv("NEXUS_STAGING_HOST", "nobody")
    assert main(["audit", "--workdir", str(files / "work")]) == 2
    assert "NEXUS_STAGING_HOST must be user@host[:port], got 'nobody'" in capsys.readouterr().err


def test_a_secrets_file_missing_a_required_key_is_refused_naming_it_not_a_value(tmp_path):
    from nexus_assets.deploy.remote import read_secrets

    secrets = tmp_path / "secrets.env"
    secrets.write_text("JWT_SECRET=hunter2-do-not-show\nPOSTGRES_PASSWORD=\n")
    with pytest.raises(ConfigError) as error:
        read_secrets(secrets, ["JWT_SECRET", "POSTGRES_PASSWORD", "REDIS_PASSWORD"])
    assert "does not set POSTGRES_PASSWORD, REDIS_PASSWORD" in str(error.value)
    assert "hunter2" not in str(error.value) and "nothing was changed on the host" in str(error.value)
    assert read_secrets(secrets, ["JWT_SECRET"]) == secrets.read_bytes()


def test_a_deploy_without_the_pmmg_ownership_lock_is_refused_before_the_host_is_reached(files, tmp_path):
    """The guide's Canonical Lock is verified before any deployment: no lock, no connection."""
    import io
    import tarfile

    from nexus_assets.core.settings import Settings
    from nexus_assets.deploy.remote import deploy
    from nexus_assets.resources.registry import Registry

    repo, work = tmp_path / "repo", tmp_path / "work"
    (repo / "services").mkdir(parents=True)
    reports = work / "reports"
    reports.mkdir(parents=True)
    with tarfile.open(reports / "deployment_package_20260101.tar.gz", "w:gz") as tar:
        for name, text in (("pkg/RELEASE", "verified_release_v1.0.0\n"), ("pkg/deployment/.env.template", "A=\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    settings = Settings.from_env(repo=str(repo), workdir=str(work))
    # a port nothing listens on: reaching for the host would fail differently
    staging = staging_settings(host="root@127.0.0.1:9", dir="/opt/nexus")
    with pytest.raises(ConfigError, match=r"staging deploy refused, nothing changed on root@127.0.0.1:9: "
                                          r"CANONICAL_RATIFICATION_INDEX.md not found"):
        deploy(settings, staging, Registry(address=settings.registry), print)
