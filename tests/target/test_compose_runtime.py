"""How compose runs a service, read from the compose file (templates only) when the services are
scanned, and resolved from `.env` and the operator's secrets file only when a test starts; what
is recorded names keys, never values (no engine needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexus_assets.core.errors import ConfigError
from nexus_assets.core.settings import Settings
from nexus_assets.target.compose_runtime import container_ports, duration_ns, resolve
from nexus_assets.target.services import find_services

DB_PASSWORD = "s3cr3t-Pa55w0rd-from-env"
OPERATOR_TOKEN = "op-T0ken-only-in-the-operator-file"

COMPOSE = """services:
  api:
    build: ./services/api
    environment:
      PORT: 3008
      NODE_ENV: production
      DB_PASSWORD: ${DB_PASSWORD}
      API_TOKEN:
      FEATURE: "${FEATURE:-on}"
    env_file:
      - config/api.env
      - path: config/optional.env
        required: false
    command: node server.js --port ${API_PORT:-3008}
    entrypoint: ["/usr/bin/env"]
    ports: ["127.0.0.1:8080:3008/tcp", "9000-9001:9000-9001", "53:53/udp"]
    expose: [4000]
    healthcheck:
      test: wget -qO- http://127.0.0.1:3008/health
      interval: 1m30s
      timeout: 500ms
      retries: 4
  worker:
    build: ./services/worker
    environment: [MODE=batch, DB_PASSWORD]
    healthcheck: {disable: true}
  postgres:
    image: postgres:15
"""


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for name in ("api", "worker"):
        (repo / "services" / name).mkdir(parents=True)
        (repo / "services" / name / "Dockerfile").write_text("FROM node:20-alpine\n")
    (repo / "docker-compose.yml").write_text(COMPOSE)
    (repo / ".env").write_text(f"DB_PASSWORD={DB_PASSWORD}\nAPI_PORT=3008\n")
    (repo / "config").mkdir()
    # ${HOME} is not taken from this process's environment: .env and the secrets file only.
    (repo / "config/api.env").write_text("LOG_LEVEL=debug\nNODE_ENV=development\nHOME_COPY=${HOME}\n")
    return repo


def test_the_model_holds_templates_and_the_test_gets_the_values(tmp_path):
    repo = _repo(tmp_path)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"API_TOKEN={OPERATOR_TOKEN}\n")
    services = {s.name: s for s in find_services(repo, secrets_file=str(secrets))}
    api = services["api"].runtime
    # As written: no value of .env or of the secrets file is in the service model.
    assert DB_PASSWORD not in repr(api) and OPERATOR_TOKEN not in repr(api)
    run = resolve(api)
    assert run.error is None
    assert run.environment == {"LOG_LEVEL": "debug", "NODE_ENV": "production", "HOME_COPY": "", "PORT": "3008",
                               "DB_PASSWORD": DB_PASSWORD, "API_TOKEN": OPERATOR_TOKEN, "FEATURE": "on"}
    assert run.command == ["node", "server.js", "--port", "3008"] and run.entrypoint == ["/usr/bin/env"]
    assert run.ports == [3008, 9000, 9001, 4000]  # container ports, tcp only
    assert run.healthcheck == {"test": ["CMD-SHELL", "wget -qO- http://127.0.0.1:3008/health"],
                               "interval": 90_000_000_000, "timeout": 500_000_000, "retries": 4}
    assert set(run.secrets) >= {DB_PASSWORD, OPERATOR_TOKEN}
    # What reports and metadata get: where the settings came from, keys only.
    record = json.dumps(run.record)
    assert DB_PASSWORD not in record and OPERATOR_TOKEN not in record and "debug" not in record
    assert run.record["compose_file"] == "docker-compose.yml" and run.record["compose_service"] == "api"
    assert run.record["env_files"] == ["config/api.env"] and run.record["from_secrets_file"] == ["API_TOKEN"]
    assert run.record["healthcheck"] == "compose" and run.record["command"] is True
    assert run.container_args()["healthcheck"]["retries"] == 4

    worker = resolve(services["worker"].runtime)
    assert worker.environment == {"MODE": "batch", "DB_PASSWORD": DB_PASSWORD}
    assert worker.healthcheck == {"test": ["NONE"]} and worker.command is None and worker.ports == []


def test_values_are_read_when_the_test_starts_and_a_missing_env_file_is_a_note(tmp_path):
    repo = _repo(tmp_path)
    (api,) = [s for s in find_services(repo) if s.name == "api"]
    (repo / ".env").write_text("DB_PASSWORD=changed-after-the-scan\n")
    (repo / "config/api.env").unlink()
    run = resolve(api.runtime)
    assert run.environment["DB_PASSWORD"] == "changed-after-the-scan"
    assert run.error is None
    assert "env_file config/api.env of compose service api (docker-compose.yml) does not exist" in \
        run.record["notes"][0]
    # The written settings did not change: the same fingerprint (a change there reruns the tests).
    before = api.runtime.fingerprint()
    (repo / "docker-compose.yml").write_text(COMPOSE.replace("PORT: 3008", "PORT: 3009"))
    (after,) = [s for s in find_services(repo) if s.name == "api"]
    assert after.runtime.fingerprint() != before


def test_a_folder_service_has_no_compose_settings(tmp_path):
    repo = _repo(tmp_path)
    (repo / "services/lonely").mkdir()
    (repo / "services/lonely/Dockerfile").write_text("FROM node:20-alpine\n")
    (lonely,) = [s for s in find_services(repo) if s.name == "lonely"]
    run = resolve(lonely.runtime, ({"name": "postgres", "environment": {"POSTGRES_PASSWORD": DB_PASSWORD}},))
    assert lonely.runtime is None and run.environment == {} and run.record == {}
    assert DB_PASSWORD in run.secrets  # the infrastructure's values are masked in the stage's log too


def test_durations_ports_and_a_bad_healthcheck(tmp_path):
    assert duration_ns("1m30s") == 90_000_000_000 and duration_ns("250ms") == 250_000_000 and duration_ns(2) == 2e9
    with pytest.raises(ValueError):
        duration_ns("soon")
    assert container_ports(("${P:-3000}", "[::1]:80:8080", "1.2.3.4::5000"), {}) == [3000, 8080, 5000]
    repo = _repo(tmp_path)
    (repo / "docker-compose.yml").write_text(COMPOSE.replace("interval: 1m30s", "interval: soon"))
    (api,) = [s for s in find_services(repo) if s.name == "api"]
    run = resolve(api.runtime)
    assert run.error and "healthcheck of compose service api (docker-compose.yml) cannot be used" in run.error


def test_a_secrets_file_that_is_not_there_is_a_settings_error(tmp_path):
    settings = Settings(repo=tmp_path / "repo", workdir=tmp_path / "work", registry="127.0.0.1:5000",
                        version="1.0.0", max_parallel=1, secrets_file=str(tmp_path / "nope.env"))
    with pytest.raises(ConfigError, match=r"NEXUS_SECRETS_FILE names .*nope\.env, which is not a file"):
        settings.validate()


def test_keys_nexus_agent_toml_names_secret_are_masked_in_test_output(tmp_path):
    repo = _repo(tmp_path)
    (api,) = [s for s in find_services(repo) if s.name == "api"]
    assert "debug" not in resolve(api.runtime).secrets  # plainly public: not masked
    (repo / "nexus-agent.toml").write_text('[secrets]\nsecret = ["LOG_*"]\n')
    assert "debug" in resolve(api.runtime).secrets
