"""The digest-level audit on docker inspect records as the engine writes them (no host needed):
each kind of drift is named, and a host that matches its release passes."""

from __future__ import annotations

import copy

from nexus_assets.deploy.audit import audit

PIN = "127.0.0.1:5000/nexus/api@sha256:" + "a" * 64
COMPOSE = """services:
  api:
    image: 127.0.0.1:5000/nexus/api@sha256:%s
    ports: ["127.0.0.1:3001:3001"]
    environment:
      - NODE_ENV=production
      - JWT_SECRET=${JWT_SECRET}
  redis:
    image: redis:7
""" % ("a" * 64)
IMAGES_TXT = f"api\t{PIN}\n"


def _container(service: str, image_id: str, config_image: str, env: list[str], ports: dict | None = None,
               status: str = "running", health: str | None = "healthy") -> dict:
    state = {"Status": status, **({"Health": {"Status": health}} if health else {})}
    return {"Name": f"/nexus-cos_{service}_1", "Image": image_id, "State": state,
            "Config": {"Image": config_image, "Env": env,
                       "Labels": {"com.docker.compose.project": "nexus-cos", "com.docker.compose.service": service}},
            "HostConfig": {"PortBindings": ports or {}}}


def _host() -> tuple[list[dict], dict[str, dict]]:
    containers = [
        _container("api", "sha256:api", PIN, ["NODE_ENV=production", "JWT_SECRET=s3cret-value", "PATH=/usr/bin"],
                   {"3001/tcp": [{"HostIp": "127.0.0.1", "HostPort": "3001"}]}),
        _container("redis", "sha256:redis", "redis:7", ["PATH=/usr/bin"], health=None),
    ]
    images = {"sha256:api": {"Id": "sha256:api", "RepoDigests": [PIN], "Config": {"Env": ["PATH=/usr/bin"]}},
              "sha256:redis": {"Id": "sha256:redis", "RepoDigests": [], "Config": {"Env": ["PATH=/usr/bin"]}}}
    return containers, images


def test_a_host_that_runs_its_release_passes():
    containers, images = _host()
    result = audit("verified_release_v1.0.0", COMPOSE, IMAGES_TXT, containers, images)
    assert result.ok, result.drifts
    assert [(r.service, r.running, r.ok) for r in result.services] == [("api", PIN, True), ("redis", "redis:7", True)]


def test_each_drift_is_named_and_no_env_value_is_shown():
    containers, images = _host()
    stopped = copy.deepcopy(containers)
    stopped[0]["State"] = {"Status": "exited"}
    assert audit("r", COMPOSE, IMAGES_TXT, stopped, images).drifts == [
        "api: container nexus-cos_api_1 is exited"]

    missing = audit("r", COMPOSE, IMAGES_TXT, containers[1:], images)
    assert missing.drifts == ["missing service api: no container"] and not missing.ok

    extra = [*copy.deepcopy(containers), _container("debug", "sha256:redis", "busybox", [])]
    assert audit("r", COMPOSE, IMAGES_TXT, extra, images).drifts == [
        "extra container nexus-cos_debug_1 (service debug) is not in the release"]

    other = copy.deepcopy(containers)
    other[0]["Image"] = "sha256:other"
    images_other = {**images, "sha256:other": {"Id": "sha256:other", "RepoDigests": ["x/api@sha256:" + "b" * 64],
                                               "Config": {"Env": ["PATH=/usr/bin"]}}}
    [drift] = audit("r", COMPOSE, IMAGES_TXT, other, images_other).drifts
    assert drift.startswith("api: container nexus-cos_api_1 runs another image x/api@sha256:bbb") and PIN in drift

    ports = copy.deepcopy(containers)
    ports[0]["HostConfig"]["PortBindings"] = {"3001/tcp": [{"HostIp": "0.0.0.0", "HostPort": "3999"}]}
    [drift] = audit("r", COMPOSE, IMAGES_TXT, ports, images).drifts
    assert "api: published ports [':3999->3001/tcp']" in drift and "127.0.0.1:3001->3001/tcp" in drift

    env = copy.deepcopy(containers)
    env[0]["Config"]["Env"] = ["NODE_ENV=production", "DEBUG_TOKEN=leak-me", "PATH=/usr/bin"]
    [drift] = audit("r", COMPOSE, IMAGES_TXT, env, images).drifts
    assert drift == "api: env key set differs, added DEBUG_TOKEN, missing JWT_SECRET"

    unhealthy = copy.deepcopy(containers)
    unhealthy[0]["State"]["Health"]["Status"] = "unhealthy"
    assert audit("r", COMPOSE, IMAGES_TXT, unhealthy, images).drifts == ["api: container nexus-cos_api_1 is unhealthy"]

    for result in (audit("r", COMPOSE, IMAGES_TXT, env, images),):
        assert "leak-me" not in str(result.as_dict()) and "s3cret-value" not in str(result.as_dict())


def test_no_release_on_the_host_is_a_drift():
    result = audit(None, "", "", [], {})
    assert not result.ok and result.drifts == ["no release is deployed on the host (no current release)"]
