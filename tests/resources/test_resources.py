"""The outside services as Dagster resources (resources/): built once with the definitions,
handed to the steps that use them, and substituted by tests instead of environment variables.
The code location's config never holds a credential: empty fields are read from the
environment when a step asks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nexus_assets.core.errors import ConfigError
from nexus_assets.core.keys import STAGING_DEPLOYMENT, VERIFIED_RELEASE, image_key
from nexus_assets.core.settings import Settings
from nexus_assets.definitions import build_definitions
from nexus_assets.resources.github import GitHub
from nexus_assets.resources.registry import Registry

PACKAGE = Path(__file__).resolve().parents[2] / "nexus_assets"
SAMPLE = PACKAGE / "sample_repo"
# Where the environment is read for an outside service: the resources themselves, and the client's
# own reader they call. The CLI's nothing-changed path (cli/outcome.py) is an entry point, not a
# step: it reads them as the CLI does, without loading Dagster for the resource.
READERS = {"resources/registry.py", "registry/client.py", "cli/outcome.py"}


def test_registry_credentials_given_to_the_resource_or_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "env-secret-1")
    monkeypatch.delenv("DOCKER_REGISTRY_TOKEN", raising=False)
    from_env = Registry(address="127.0.0.1:5000")
    assert (from_env.credentials().username, from_env.credentials().password) == ("ci", "env-secret-1")
    assert from_env.credentials_origin() == "from environment"
    given = Registry(address="127.0.0.1:5000", username="test", password="given-secret-2")
    assert given.credentials().password == "given-secret-2" and given.credentials_origin() == "registry resource"
    assert "given-secret-2" not in repr(given.credentials())
    with pytest.raises(ConfigError, match="needs both a username and a password"):
        Registry(address="r", username="only").credentials()
    monkeypatch.delenv("REGISTRY_USERNAME")
    monkeypatch.delenv("REGISTRY_PASSWORD")
    assert Registry(address="r").credentials() is None and Registry(address="r").credentials_origin() == "none"
    assert given.client().registry == "127.0.0.1:5000" and given.client("other:5000").registry == "other:5000"


def test_github_target_from_the_resource_or_the_environment(monkeypatch):
    for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert GitHub().target() is None
    target = GitHub(repository="o/r", token="t0k", api_url="http://127.0.0.1:1/").target()
    assert target is not None and (target.api_url, target.repository) == ("http://127.0.0.1:1", "o/r")
    assert "t0k" not in repr(target)
    monkeypatch.setenv("GITHUB_TOKEN", "env-tok")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/nexus")
    target = GitHub().target()
    assert target is not None and (target.api_url, target.repository) == ("https://api.github.com", "acme/nexus")
    assert GitHub(publish=False).target() is None


def test_the_definitions_hand_every_outside_service_as_a_resource_and_hold_no_credential(monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "env-secret-3")
    monkeypatch.setenv("GITHUB_TOKEN", "env-tok-4")
    settings = Settings(repo=SAMPLE, workdir=tmp_path / "work", registry="127.0.0.1:5000/x", version="1.0.0",
                        max_parallel=2)
    defs = build_definitions(settings)
    resources = defs.resources or {}
    assert {"nexus", "docker_engine", "git", "registry", "github", "staging_host"} <= set(resources)
    assert resources["registry"].address == "127.0.0.1:5000/x"
    shown = repr(resources)
    assert "env-secret-3" not in shown and "env-tok-4" not in shown
    graph = defs.resolve_asset_graph()
    release = graph.get(VERIFIED_RELEASE).assets_def.required_resource_keys
    images = graph.get(image_key("users")).assets_def.required_resource_keys
    assert {"registry", "github"} <= release and {"registry", "docker_engine", "git"} <= images
    # the staging host's engine logs in to the registry with the registry resource's credentials
    assert {"registry", "staging_host"} <= graph.get(STAGING_DEPLOYMENT).assets_def.required_resource_keys


def test_no_step_reads_an_outside_service_s_settings_from_the_environment():
    """Steps are handed the registry and GitHub; only the resources read the environment."""
    wanted = {"credentials_from_env", "from_env"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        shown = path.relative_to(PACKAGE).as_posix()
        if "sample_repo" in path.parts or shown in READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name == "credentials_from_env" or (name in wanted and isinstance(node, ast.Attribute)
                                                 and getattr(node.value, "id", "") in {"GitHubTarget", "RegistryClient"}):
                found.append(f"{shown}:{node.lineno}")
    assert found == [], f"an outside service's settings read from the environment in a step: {found}"


def test_the_engine_resource_says_whether_it_answers_on_a_new_connection(tmp_path):
    """A failed build asks the run's engine (images/build.engine_gone), not whatever DOCKER_HOST says."""
    from nexus_assets.core.errors import EngineError
    from nexus_assets.images.build import engine_gone
    from nexus_assets.resources import DockerEngine

    gone = DockerEngine(base_url=f"unix://{tmp_path}/no-engine.sock", timeout_seconds=5)
    assert not gone.answers(timeout=2) and engine_gone(gone)
    with pytest.raises(EngineError, match=f"no Docker engine reachable at unix://{tmp_path}/no-engine.sock"):
        gone.client()
