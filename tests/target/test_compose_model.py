"""Issue 8: compose is the source of truth for builds. The service model on a checkout shaped
like the real platform (nexus_assets.testrepos.realistic), without the engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nexus_assets.core.hashing import context_hash
from nexus_assets.core.lineage import observe_sources
from nexus_assets.core.settings import SAMPLE_REPO, Settings
from nexus_assets.target.compose_model import build_args, infrastructure_needs, interpolate, stack_file
from nexus_assets.target.services import build_services, find_services, scan_services
from nexus_assets.testrepos.realistic import generate_realistic_monorepo
from nexus_assets.testrepos.synthetic import generate_monorepo


@pytest.fixture
def real(tmp_path: Path):
    return generate_realistic_monorepo(tmp_path / "repo")


def _by_name(repo: Path, compose_file: str | None = None):
    return {s.name: s for s in find_services(repo, compose_file)}


def test_every_buildable_service_with_its_context_dockerfile_args_and_compose_file(real):
    found = _by_name(real.root)
    assert sorted(found) == sorted(real.services)
    for name, folder in real.services.items():
        assert found[name].folder == folder and found[name].path == real.root / folder
    auth = found["auth-service"]  # dashed compose name, underscored folder, arg from .env
    assert auth.compose_name == "auth-service" and auth.compose_file == "docker-compose.yml"
    assert auth.dockerfile == real.root / "services/auth_service/Dockerfile"
    env = dict(line.split("=", 1) for line in (real.root / ".env").read_text().splitlines())
    assert auth.build_args == {"SERVICE_PORT": env["AUTH_PORT"]}
    billing = found["billing"]  # short name, Dockerfile outside the context, list args with a default
    assert billing.dockerfile == real.root / "docker/node.Dockerfile" and billing.build_args["SERVICE_PORT"].isdigit()
    assert found["transcoder"].build_args == {"SERVICE_PORT": env["SERVICE_PORT"]}  # `- SERVICE_PORT`: from .env
    assert found["web"].build_args == {"SERVICE_PORT": "3000"} and found["web"].folder == "apps/web"
    thumb = found["thumbnailer"]  # nested, no compose entry: a folder service named by its folder
    assert thumb.compose_name is None and thumb.build_args == {} and thumb.language == "python"
    assert {"postgres", "redis", "nginx", "shared-lib", "media", "billing-service", "metrics-exporter"}.isdisjoint(found)


def test_problems_say_which_compose_file_is_built_and_that_a_library_is_not_a_service(real):
    _, problems = scan_services(real.root)
    messages = {p["file"]: p["message"] for p in problems}
    assert "docker-compose.prod.yml" in messages["docker-compose.yml"]
    assert "not a service" in messages["services/shared-lib"]
    assert not [p for p in problems if "outside the repository" in p["message"]]


def test_nexus_compose_file_picks_the_stack(real, tmp_path, monkeypatch):
    found = _by_name(real.root, "docker-compose.prod.yml")
    assert found["metrics-exporter"].folder == "tools/metrics"
    assert found["auth-service"].build_args == {"SERVICE_PORT": "1"}
    # Folders no compose service of that stack builds are still services, named by folder.
    assert {"legacy_reports", "thumbnailer", "transcoder"} <= set(found) and "web" not in found
    monkeypatch.setenv("NEXUS_COMPOSE_FILE", "docker-compose.prod.yml")
    settings = Settings.from_env(repo=real.root, workdir=tmp_path / "work")
    assert "metrics-exporter" in {s.name for s in build_services(settings)}
    from nexus_assets.core.keys import image_key
    from nexus_assets.definitions import build_definitions

    defs = build_definitions(settings)  # the runs' resource carries the choice too
    assert defs.resolve_asset_graph().has(image_key("metrics-exporter"))
    assert defs.resources["nexus"].settings().compose_file == "docker-compose.prod.yml"
    assert stack_file(real.root, "missing.yml")[0] is None
    # Without docker-compose.yml, the first compose file by name is the stack.
    (real.root / "docker-compose.yml").unlink()
    assert stack_file(real.root)[0] == real.root / "docker-compose.prod.yml"


def test_interpolation_and_args_forms_as_compose_does():
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("${A}-${B:-d}-${EMPTY:-e}-${EMPTY-f}-$$A-$A-${A:+set}", env) == ("1-d-e--$A-1-set", [])
    assert interpolate("x${MISSING}y${REQ:?need it}", env) == ("xy", ["MISSING", "REQ"])
    args, problems = build_args({"P": 3000, "FLAG": True, "FROM_ENV": None, "NOPE": None, "M": "${MISSING}"},
                                env | {"FROM_ENV": "v"}, "c.yml", "svc")
    assert args == {"P": "3000", "FLAG": "true", "FROM_ENV": "v", "M": ""}
    assert problems and "MISSING" in problems[0]["message"] and "M " in problems[0]["message"]
    assert build_args(["A=${A}", "B", "C=x=y"], {"B": "2"}, "c.yml", "svc")[0] == {"A": "", "B": "2", "C": "x=y"}
    assert build_args("nope", {}, "c.yml", "svc")[1][0]["message"].startswith("`build.args`")


def test_a_context_or_dockerfile_outside_the_repository_is_refused(real, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM busybox\n")
    compose = real.root / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("services:\n", "services:\n  escape:\n    build: ../outside\n"
                                                   "  sneaky:\n    build:\n      context: apps/web\n"
                                                   "      dockerfile: ../../../outside/Dockerfile\n", 1))
    services, problems = scan_services(real.root)
    assert {"escape", "sneaky"}.isdisjoint(s.name for s in services) and "web" in {s.name for s in services}
    refused = [p for p in problems if "outside the repository" in p["message"]]
    assert {p["service"] for p in refused} == {"escape", "sneaky"}


def test_sources_hash_covers_exactly_what_the_build_reads(real):
    service = _by_name(real.root)["auth-service"]
    first = observe_sources([service])[0].data_version
    (service.path / ".dockerignore").write_text((service.path / ".dockerignore").read_text() + "notes/\n")
    second = observe_sources([service])[0].data_version
    (service.path / "notes").mkdir()
    (service.path / "notes" / "todo.txt").write_text("not sent to the engine\n")
    assert observe_sources([service])[0].data_version == second != first
    (service.path / "server.js").open("a").write("// changed\n")
    assert observe_sources([service])[0].data_version != second
    billing = _by_name(real.root)["billing"]  # its Dockerfile lies outside the context
    before = context_hash(billing.path, billing.dockerfile)
    billing.dockerfile.write_text(billing.dockerfile.read_text() + "# changed\n")
    assert context_hash(billing.path, billing.dockerfile) != before
    # Which Dockerfile is used is part of it too, and a mirror of the folder hashes the same.
    shutil.copy(service.dockerfile, service.path / "Dockerfile.prod")
    assert context_hash(service.path, service.dockerfile) != context_hash(service.path, service.path / "Dockerfile.prod")
    mirror = real.root.parent / "mirror" / "services" / "auth_service"
    shutil.copytree(service.path, mirror)
    assert context_hash(mirror, mirror / "Dockerfile") == context_hash(service.path, service.dockerfile)


def test_image_code_version_carries_the_build_args(real):
    from nexus_assets.images.assets import image_spec

    auth = _by_name(real.root)["auth-service"]
    thumb = _by_name(real.root)["thumbnailer"]
    import dataclasses

    other = dataclasses.replace(auth, build_args={"SERVICE_PORT": "1"})
    assert image_spec(auth).code_version != image_spec(other).code_version
    assert image_spec(thumb).metadata["service_path"] == "services/media/thumbnailer"


def test_bundled_and_synthetic_repositories_keep_their_service_names(tmp_path):
    folders = sorted(p.name for p in (SAMPLE_REPO / "services").iterdir() if (p / "Dockerfile").is_file())
    found = find_services(SAMPLE_REPO)
    assert [s.name for s in found] == folders
    assert all(s.compose_file == "docker-compose.yml" for s in found)
    names = generate_monorepo(tmp_path / "synth", 5)
    assert [s.name for s in find_services(tmp_path / "synth")] == sorted(names)


def test_nested_and_top_level_folders_with_one_name_are_both_refused(real):
    shutil.copytree(real.root / "services/media/thumbnailer", real.root / "services/thumbnailer")
    shutil.copytree(real.root / "services/media/thumbnailer", real.root / "services/media/.cache")
    services, problems = scan_services(real.root)
    assert "thumbnailer" not in {s.name for s in services} and "transcoder" in {s.name for s in services}
    messages = [p["message"] for p in problems]
    assert ("folders services/media/thumbnailer and services/thumbnailer map to the same image name "
            "nexus/thumbnailer; none is built: rename all but one") in messages
    assert any(p["file"] == "services/media/.cache" and "hidden" in p["message"] for p in problems)


def test_the_build_copy_in_the_working_copy_hashes_as_the_repository_observes(real, tmp_path):
    from nexus_assets.images.assets import _build_context

    settings = Settings(repo=real.root, workdir=tmp_path / "work", registry="r", version="1.0.0", max_parallel=1)
    for service in find_services(real.root):
        copy = _build_context(settings, service, None, service.name)
        # The repository's root is mirrored apart from the working copy's root (which holds reports).
        expected = settings.cache / "root-context" if service.folder == "." else settings.workdir / service.folder
        assert copy.path == expected and copy.build_args == service.build_args
        assert copy.dockerfile is not None and copy.dockerfile.is_file()
        assert copy.sources_hash() == service.sources_hash(), service.name  # else every run rebuilds it
    assert (settings.workdir / "docker/node.Dockerfile").read_text() == (real.root / "docker/node.Dockerfile").read_text()


def test_build_args_read_from_dotenv_are_named_as_secrets(tmp_path):
    from nexus_assets.target.compose_model import compose_builds, env_derived

    env = {"NPM_TOKEN": "t", "EMPTY": ""}
    assert env_derived({"NPM_TOKEN": "${NPM_TOKEN}", "LITERAL": "x", "MIXED": "pre-$EMPTY", "UNSET": "${NOPE}",
                        "NODE_VERSION": 18}, env) == ("MIXED", "NPM_TOKEN")
    assert env_derived(["NPM_TOKEN", "OTHER", "X=${NPM_TOKEN:-d}"], env) == ("NPM_TOKEN", "X")
    assert env_derived(None, env) == () and env_derived("junk", env) == ()
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / ".env").write_text("export NPM_TOKEN='multi\nline'  # comment\n")
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  svc:\n    build:\n      context: ./svc\n      args: [NPM_TOKEN, PLAIN=1]\n")
    (build,), _, _ = compose_builds(tmp_path)
    # An arg carrying an .env value is refused (docker history would keep it), yet still named as read from .env.
    assert build.build_args == {"PLAIN": "1"} and build.secret_args == ("NPM_TOKEN",)
    assert build.env_args == ("NPM_TOKEN",)


def test_infrastructure_needs_are_the_image_only_services_it_depends_on():
    services = {
        "api": {"build": ".", "depends_on": {"db": {"condition": "service_healthy"}, "cache": {}, "worker": {}}},
        "db": {"image": "postgres:${PG:-15}-alpine", "environment": ["POSTGRES_PASSWORD=${DB_PASS}", "BARE"]},
        "cache": {"image": "redis:7", "environment": {"A": 1, "B": None}},
        "worker": {"build": "./worker", "image": "nexus/worker"},  # built, not infrastructure
    }
    needs = infrastructure_needs(services["api"], services, {"DB_PASS": "from-dotenv"})
    assert needs == (
        {"name": "db", "image": "postgres:15-alpine", "environment": {"POSTGRES_PASSWORD": "from-dotenv"}},
        {"name": "cache", "image": "redis:7", "environment": {"A": "1", "B": ""}},
    )
    assert infrastructure_needs({"depends_on": ["db", "nowhere"]}, services, {})[0]["name"] == "db"
    assert infrastructure_needs({}, services, {}) == ()
