"""The deployment configuration without an engine: the compose file as Debian's docker-compose reads
it, the instance template as Dagster reads it once scripts/dagster_stack.sh has filled it, and the
Helm values for Dagster's chart (helm itself is not installed here: they are read as YAML)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import ConfigurableClassData

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
STACK_ENV = {"NEXUS_STACK_PORT": "3123", "NEXUS_STACK_GRPC_PORT": "4123", "DAGSTER_PG_PORT": "5123",
             "NEXUS_EVIDENCE_PORT": "3124",
             "NEXUS_STACK_PROJECT": "nexusstackcfg", "NEXUS_STACK_IMAGE": "nexus-assets:cfg",
             "NEXUS_STACK_POSTGRES_IMAGE": "postgres:15", "NEXUS_STACK_DOCKER_GID": "106",
             "DAGSTER_PG_USER": "dagster", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_PASSWORD": "not-shown"}


def _compose_config(tmp_path: Path) -> dict:
    assert shutil.which("docker-compose"), "Debian's docker-compose is installed by scripts/bootstrap.sh"
    env_file = tmp_path / "stack.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**STACK_ENV, "NEXUS_STACK_DATA": str(tmp_path)}.items()))
    done = subprocess.run(["docker-compose", "--project-directory", str(DEPLOY / "dagster"), "--env-file", str(env_file),
                           "-f", str(DEPLOY / "dagster" / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_runs_the_services_of_the_code_location_image_on_the_host_network(tmp_path):
    services = _compose_config(tmp_path)["services"]
    assert set(services) == {"postgres", "code_server", "webserver", "daemon", "evidence"}
    for name in ("code_server", "webserver", "daemon"):
        service = services[name]
        assert service["image"] == "nexus-assets:cfg"
        assert service["network_mode"] == "host"  # the runs reach the registry on 127.0.0.1 as the engine does
        assert "/var/run/docker.sock:/var/run/docker.sock:rw" in service["volumes"]
        assert f"{tmp_path}:{tmp_path}:rw" in service["volumes"]  # the shared working volume, same path
        assert service["group_add"] == ["106"]
    assert services["webserver"]["command"][:5] == ["dagster-webserver", "-h", "127.0.0.1", "-p", "3123"]
    assert services["code_server"]["environment"]["DAGSTER_CURRENT_IMAGE"] == "nexus-assets:cfg"
    assert services["webserver"]["depends_on"]["code_server"] == {"condition": "service_healthy"}
    evidence = services["evidence"]  # beside the webserver, the working copy read-only, on 127.0.0.1
    assert evidence["image"] == "nexus-assets:cfg" and evidence["network_mode"] == "host"
    assert evidence["command"] == ["python", "-m", "nexus_assets.automation.evidence_server", "--host", "127.0.0.1",
                                   "--port", "3124", "--workdir", f"{tmp_path}/work"]
    assert evidence["volumes"] == [f"{tmp_path}/work:{tmp_path}/work:ro"]
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15" and postgres["network_mode"] == "host"
    # only -c options: the substitute's entrypoint hands its arguments to postgres itself
    assert postgres["command"] == ["-c", "port=5123", "-c", "listen_addresses=127.0.0.1"]
    assert postgres["environment"]["POSTGRES_USER"] == "dagster"


def test_the_instance_template_filled_in_is_postgres_storage_and_the_docker_run_launcher(tmp_path, monkeypatch):
    assert shutil.which("envsubst"), "gettext-base's envsubst (scripts/dagster_stack.sh fills the template with it)"
    env = {"NEXUS_STACK_DATA": str(tmp_path), "NEXUS_STACK_DOCKER_GID": "106", "NEXUS_STACK_PROJECT": "nexusstackcfg"}
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(["envsubst", "${NEXUS_STACK_DATA} ${NEXUS_STACK_DOCKER_GID} ${NEXUS_STACK_PROJECT}"],
                          input=(DEPLOY / "dagster" / "dagster.yaml").read_text(), capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, check=True)
    (home / "dagster.yaml").write_text(done.stdout)
    for key, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5123", "DAGSTER_PG_USER": "dagster",
                       "DAGSTER_PG_PASSWORD": "not-shown", "DAGSTER_PG_DB": "dagster"}.items():
        monkeypatch.setenv(key, value)
    config, _ = dagster_instance_config(str(home))  # Dagster's own validation of the instance file
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    launcher = config["run_launcher"]
    rebuilt = ConfigurableClassData(launcher["module"], launcher["class"], yaml.safe_dump(launcher["config"])).rehydrate(
        as_type=object)
    assert type(rebuilt).__name__ == "DockerRunLauncher"
    assert rebuilt.networks == ["host"]
    kwargs = rebuilt.container_kwargs
    assert kwargs["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock", f"{tmp_path}:{tmp_path}"]
    assert kwargs["group_add"] == ["106"] and kwargs["labels"] == {"io.nexus-assets.stack": "nexusstackcfg"}
    # what a run needs to find the target, the registry and the instance, and nothing read at load
    assert {"NEXUS_REPO", "NEXUS_WORKDIR", "REGISTRY", "REGISTRY_USERNAME", "REGISTRY_PASSWORD",
            "DAGSTER_PG_PASSWORD"} <= set(rebuilt.env_vars)
    assert "not-shown" not in done.stdout


def test_helm_values_name_the_code_location_image_the_k8s_launcher_and_external_postgres():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"].endswith("/nexus/nexus-assets")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /opt/nexus-assets" in dockerfile and "/opt/nexus-assets/definitions.py" in deployment["codeServerArgs"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert deployment["env"]["DOCKER_HOST"].startswith("ssh://")
    assert {"name": "nexus-registry"} in deployment["envSecrets"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert {"name": "nexus-registry"} in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlHost"] and postgres["postgresqlDatabase"] == "dagster"
    assert values["global"]["postgresqlSecretName"] == "dagster-postgresql-secret"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in postgres  # secrets are Kubernetes secrets, never values


@pytest.mark.parametrize("command", [[], ["sideways"]])
def test_the_stack_script_says_how_to_call_it(command):
    done = subprocess.run(["bash", str(ROOT / "scripts" / "dagster_stack.sh"), *command], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "usage:" in done.stderr and "up|down" in done.stderr


def test_up_refuses_a_port_in_use_naming_the_setting(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "NEXUS_STACK_PORT": str(port), "NEXUS_STACK_DATA": str(tmp_path / "stack")}
        done = subprocess.run(["bash", str(ROOT / "scripts" / "dagster_stack.sh"), "up"], capture_output=True, text=True,
                              timeout=30, env=env)
    assert done.returncode == 1
    assert f"NEXUS_STACK_PORT: 127.0.0.1:{port} is in use" in done.stderr
    assert not (tmp_path / "stack").exists()  # refused before anything was made


def test_the_dockerfile_starts_from_the_public_python_image():
    froms = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.upper().startswith("FROM ")]
    assert froms == ["FROM python:3.11-slim"]  # a name any machine can pull; the map provides it here
