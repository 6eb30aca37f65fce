"""Settings are written once: the Dagster resource (resources/config.NexusConfig) is Settings as
config, field for field, its defaults Settings' own, and converting either way loses nothing."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from nexus_assets.core.settings import Settings, default_values
from nexus_assets.resources import NexusConfig


def test_the_resource_has_every_setting_and_its_default():
    assert set(NexusConfig.model_fields) == {f.name for f in fields(Settings)}
    for name, default in default_values().items():
        expected = "" if default is None else default
        assert NexusConfig.model_fields[name].default == expected, name


def test_settings_survive_the_resource_both_ways(tmp_path):
    full = Settings(repo=tmp_path / "repo", workdir=tmp_path / "w", registry="reg.local:5000/x", version="1.2.3",
                    max_parallel=7, test_timeout=9.5, compose_file="compose.ci.yml", build_timeout=99.0,
                    signing_key=str(tmp_path / "k.pem"), lock_wait=3.0, version_auto=True, registry_cache=False,
                    secrets_file=str(tmp_path / "s.env"))
    assert NexusConfig.of(full).settings() == full
    bare = Settings(repo=Path("/r"), workdir=Path("/w"), registry="r", version="1.0.0")
    assert NexusConfig.of(bare).settings() == bare
    # a resource made with the four required fields only (as tests and the launchpad do) has Settings' defaults
    assert NexusConfig(repo="/r", workdir="/w", registry="r", version="1.0.0").settings() == bare
