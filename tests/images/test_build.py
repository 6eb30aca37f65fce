from __future__ import annotations

import os
import subprocess

import pytest

from nexus_assets.core.errors import BuildError
from nexus_assets.images.build import build_image, plan_build
from nexus_assets.resources import GitRepo
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import find_services

pytestmark = pytest.mark.docker


def _service(repo, name, dockerfile):
    folder = repo / "services" / name
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "app.py").write_text("print('ok')\n")
    return next(s for s in find_services(repo) if s.name == name)


def test_build_tags_labels_and_records_substituted_base(tmp_path, docker_client, unique_registry, remove_test_images):
    service = _service(tmp_path / "repo", "hello", "FROM python:3.11-slim\nCOPY app.py /app.py\nCMD [\"python3\", \"/app.py\"]\n")
    plan = plan_build(service, docker_client, load_base_image_map())
    assert plan.bases[0]["substituted"] is True
    result = build_image(docker_client, plan, registry=unique_registry, version="2.3.4", revision="abc123",
                         source="services/hello", log_path=tmp_path / "build_hello.log")
    image = docker_client.images.get(result["image_id"])
    assert f"{unique_registry}/nexus/hello:2.3.4" in image.tags
    assert f"{unique_registry}/nexus/hello:latest" in image.tags
    labels = image.labels
    assert labels["org.opencontainers.image.version"] == "2.3.4"
    assert labels["org.opencontainers.image.revision"] == "abc123"
    assert labels["io.nexus-assets.source-hash"] == plan.fingerprint
    assert result["image_id"].split(":")[1][:12] in (tmp_path / "build_hello.log").read_text()  # either builder's log
    assert docker_client.containers.run(result["image_id"], remove=True).decode().strip() == "ok"


def test_fingerprint_changes_with_source_and_not_otherwise(tmp_path, docker_client):
    service = _service(tmp_path / "repo", "fp", "FROM python:3.11-slim\nCOPY app.py /app.py\n")
    base_map = load_base_image_map()
    first = plan_build(service, docker_client, base_map).fingerprint
    assert plan_build(service, docker_client, base_map).fingerprint == first
    (service.path / "app.py").write_text("print('changed')\n")
    assert plan_build(service, docker_client, base_map).fingerprint != first


def test_failing_dockerfile_names_the_service_and_keeps_the_log(tmp_path, docker_client, unique_registry, remove_test_images):
    service = _service(tmp_path / "repo", "broken", "FROM python:3.11-slim\nRUN exit 3\n")
    plan = plan_build(service, docker_client, load_base_image_map())
    log = tmp_path / "build_broken.log"
    with pytest.raises(BuildError, match="service broken: docker build failed") as info:
        build_image(docker_client, plan, registry=unique_registry, version="1.0.0", revision=None,
                    source="services/broken", log_path=log)
    assert str(log) in str(info.value)
    assert "ERROR" in log.read_text()


def test_missing_dockerfile_fails_alone_with_what_to_do(tmp_path, docker_client):
    folder = tmp_path / "repo" / "services" / "nodocker"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text("x\n")
    # A folder without a Dockerfile is a library unless compose builds it: here compose does.
    assert find_services(tmp_path / "repo") == []
    (tmp_path / "repo" / "docker-compose.yml").write_text("services:\n  nodocker:\n    build: ./services/nodocker\n")
    service = find_services(tmp_path / "repo")[0]
    with pytest.raises(BuildError, match="service nodocker: no Dockerfile"):
        plan_build(service, docker_client, load_base_image_map())


def test_compose_args_and_a_dockerfile_outside_the_context_reach_the_build(tmp_path, docker_client, unique_registry,
                                                                           remove_test_images):
    from nexus_assets.testrepos.realistic import generate_realistic_monorepo

    real = generate_realistic_monorepo(tmp_path / "repo")
    billing = next(s for s in find_services(real.root) if s.name == "billing")
    assert not billing.dockerfile.is_relative_to(billing.path)
    # Without compose's args the Dockerfile refuses to build, as it does in the real checkout.
    bare = plan_build(billing, docker_client, load_base_image_map(), {})
    with pytest.raises(BuildError, match="returned a non-zero code: 1"):
        build_image(docker_client, bare, registry=unique_registry, version="1.0.0", revision=None,
                    source="services/billing-service", log_path=tmp_path / "bare.log")
    assert "build arg SERVICE_PORT is required" in (tmp_path / "bare.log").read_text()
    plan = plan_build(billing, docker_client, load_base_image_map())  # the service's own args
    assert plan.build_args == billing.build_args and plan.fingerprint != bare.fingerprint
    result = build_image(docker_client, plan, registry=unique_registry, version="1.0.0", revision=None,
                         source="services/billing-service", log_path=tmp_path / "billing.log")
    env = docker_client.images.get(result["image_id"]).attrs["Config"]["Env"]
    assert f"PORT={billing.build_args['SERVICE_PORT']}" in env


def test_a_build_arg_carrying_an_env_secret_is_refused_before_the_build_and_logs_stay_masked(
        tmp_path, docker_client, unique_registry, remove_test_images):
    """A compose build arg read from .env is refused (docker history would keep its value), naming
    the arg, never the value; a RUN step that prints an .env value it got another way, and one
    that fails quoting it, leave *** in the log and the error."""
    repo = tmp_path / "repo"
    folder = repo / "services" / "leaky"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text("print('ok')\n")
    (repo / ".env").write_text('export NPM_TOKEN="npm_PlantedSecret_4471"\n# a comment\nAPP_FLAVOUR=plain-literal\n')
    (repo / "docker-compose.yml").write_text(
        "services:\n  leaky:\n    build:\n      context: ./services/leaky\n"
        "      args:\n        NPM_TOKEN: ${NPM_TOKEN}\n        FLAVOUR: vanilla-build\n")
    dockerfile = folder / "Dockerfile"
    dockerfile.write_text('FROM python:3.11-slim\nARG NPM_TOKEN\nARG FLAVOUR\n'
                          'RUN echo "token is $NPM_TOKEN, flavour $FLAVOUR"\n')
    service = next(s for s in find_services(repo) if s.name == "leaky")
    assert service.secret_args == ("NPM_TOKEN",) and "NPM_TOKEN" not in service.build_args
    with pytest.raises(BuildError) as refused:
        plan_build(service, docker_client, load_base_image_map())
    assert "NPM_TOKEN" in str(refused.value) and "npm_PlantedSecret_4471" not in str(refused.value)

    # the same value reaching a RUN step another way (here a literal in a fetched script) is masked
    (repo / "docker-compose.yml").write_text(
        "services:\n  leaky:\n    build:\n      context: ./services/leaky\n      args:\n        FLAVOUR: vanilla-build\n")
    (folder / "token.txt").write_text("npm_PlantedSecret_4471\n")
    dockerfile.write_text('FROM python:3.11-slim\nARG FLAVOUR\nCOPY token.txt /t\n'
                          'RUN echo "token is $(cat /t), flavour $FLAVOUR" && sh -c "exit 7"\n')
    service = next(s for s in find_services(repo) if s.name == "leaky")
    log = tmp_path / "build_leaky.log"
    with pytest.raises(BuildError) as info:
        build_image(docker_client, plan_build(service, docker_client, load_base_image_map()),
                    registry=unique_registry, version="1.0.0", revision=None, source="services/leaky", log_path=log,
                    secrets=["npm_PlantedSecret_4471"])
    assert "npm_PlantedSecret_4471" not in str(info.value) + log.read_text()
    assert "token is ***, flavour vanilla-build" in log.read_text()


def test_oci_labels_come_from_the_git_checkout_not_the_path_or_the_clock(tmp_path, docker_client, unique_registry,
                                                                        remove_test_images):
    repo = tmp_path / "repo"
    service = _service(repo, "labelled", "FROM python:3.11-slim\nCOPY app.py /app.py\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    when = {"GIT_COMMITTER_DATE": "2024-02-03T04:05:06+02:00", "GIT_AUTHOR_DATE": "2024-02-03T04:05:06+02:00"}
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True, env={**os.environ, **when})
    # a clone made with a token in its URL: the label must not carry it
    subprocess.run([*git, "remote", "add", "origin", "https://ci:tok3n-s3cret@git.example.invalid/acme/nexus-cos.git"],
                   check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    origin = GitRepo(path=str(repo))
    assert origin.revision() == head
    assert origin.remote_url() == "https://git.example.invalid/acme/nexus-cos.git"
    assert origin.commit_time() == "2024-02-03T02:05:06Z"
    plan = plan_build(service, docker_client, load_base_image_map())
    labels = []
    for attempt in range(2):
        built = build_image(docker_client, plan, registry=unique_registry, version="1.0.0", revision=origin.revision(),
                            source=origin.remote_url(), created=origin.commit_time(),
                            log_path=tmp_path / f"build_{attempt}.log")
        labels.append(docker_client.images.get(built["image_id"]).labels)
    assert labels[0] == labels[1], "two builds of one commit carry the same labels"
    assert labels[0]["org.opencontainers.image.source"] == "https://git.example.invalid/acme/nexus-cos.git"
    assert labels[0]["org.opencontainers.image.revision"] == head
    assert labels[0]["org.opencontainers.image.created"] == "2024-02-03T02:05:06Z"

    plain = GitRepo(path=str(tmp_path / "not-a-checkout"))
    assert (plain.revision(), plain.remote_url(), plain.commit_time()) == (None, None, None)
    subprocess.run([*git, "remote", "remove", "origin"], check=True)
    assert origin.remote_url() is None  # no remote: the label is left out, never a local path
