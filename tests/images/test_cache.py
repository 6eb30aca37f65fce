"""The registry cache's key and switch, without an engine: what the key covers, the setting that
turns the cache off, and a registry that is away costing one warning and no wait."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from nexus_assets.core.errors import ConfigError
from nexus_assets.core.lineage import RECIPE_VERSION
from nexus_assets.core.settings import Settings
from nexus_assets.images.build import BuildPlan
from nexus_assets.images.cache import RegistryCache, cache_key
from nexus_assets.resources.registry import Registry
from tests.conftest import free_port


def _plan(**changes) -> BuildPlan:
    plan = BuildPlan(service=None, tree_hash="tree", fingerprint="f" * 24,  # type: ignore[arg-type]
                     bases=[{"requested": "node:20-alpine", "image_id": "sha256:" + "a" * 64}], build_args={})
    return replace(plan, **changes)


def test_the_key_covers_fingerprint_bases_and_recipe(monkeypatch):
    key = cache_key(_plan())
    assert len(key) == 32 and key == cache_key(_plan()), "the same plan, the same key on any machine"
    assert cache_key(_plan(fingerprint="e" * 24)) != key
    assert cache_key(_plan(bases=[{"requested": "node:20-alpine", "image_id": "sha256:" + "b" * 64}])) != key
    assert cache_key(_plan(build_args={"NODE_ENV": "production"})) != key
    assert cache_key(_plan(tree_hash="other")) == key, "the tree counts through the fingerprint"
    composed = SimpleNamespace(runtime=SimpleNamespace(fingerprint=lambda: "compose-run-1"))
    assert cache_key(_plan(service=composed)) != key, "tests passed as compose ran it: its settings count"
    monkeypatch.setattr("nexus_assets.core.lineage.RECIPE_VERSION", RECIPE_VERSION + "-next")
    assert cache_key(_plan()) != key, "a new recipe (how images are built) is a new key"


@pytest.mark.parametrize(("text", "on"), [(None, True), ("", True), ("1", True), ("on", True), ("0", False),
                                          ("false", False), ("OFF", False), ("no", False)])
def test_nexus_registry_cache_turns_it_off(monkeypatch, tmp_path, text, on):
    if text is None:
        monkeypatch.delenv("NEXUS_REGISTRY_CACHE", raising=False)
    else:
        monkeypatch.setenv("NEXUS_REGISTRY_CACHE", text)
    assert Settings.from_env(workdir=tmp_path / "w", version="1.0.0").registry_cache is on


def test_a_bad_switch_value_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("NEXUS_REGISTRY_CACHE", "maybe")
    with pytest.raises(ConfigError, match="NEXUS_REGISTRY_CACHE"):
        Settings.from_env(workdir=tmp_path / "w", version="1.0.0")


def test_off_asks_nothing_and_a_registry_away_is_one_warning_without_a_wait(tmp_path):
    settings = Settings(repo=tmp_path, workdir=tmp_path / "w", registry=f"127.0.0.1:{free_port()}/x", version="1.0.0",
                        max_parallel=1)
    registry = Registry(address=settings.registry)
    warnings: list[str] = []
    assert RegistryCache.open(replace(settings, registry_cache=False), registry, warnings.append) is None and warnings == []
    started = time.monotonic()
    assert RegistryCache.open(settings, registry, warnings.append) is None
    assert time.monotonic() - started < 3, "one try: the builds do not wait for a registry that is away"
    assert len(warnings) == 1 and settings.registry in warnings[0] and "connection refused" in warnings[0]
