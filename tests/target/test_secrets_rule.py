"""Public configuration is not a secret (issue 15): a value of `.env` that a committed compose
file, Dockerfile or `.env` template holds in plain text is configuration unless its key names a
secret; nexus-agent.toml's `[secrets]` decides first; a refusal names the key and the rule, never
the value. And masking keeps a message's words (issue 16, item 9)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nexus_assets.core.errors import BuildError, InputError
from nexus_assets.core.masking import mask_secrets
from nexus_assets.discovery.inventory import discover
from nexus_assets.images.build import plan_build
from nexus_assets.policy.secret_scan import env_secrets
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.compose_model import SECRET_ARG_ADVICE, compose_builds
from nexus_assets.target.secrets import judge, repo_secrets
from nexus_assets.target.secrets_rule import SecretRule, secret_line_rules
from nexus_assets.target.services import find_services

HANDSHAKE = "nexus-hs-v2-7781"
SESSION = "sess-planted-4412"  # a secret-named key, in .env only
EXAMPLE_PW = "pw-also-in-example-9931"  # a secret-named key whose value .env.example shows too
LABEL = "label-only-in-env-Qx55"  # a plain-named key whose value nothing committed holds


def make_repo(repo: Path, *, git: bool) -> Path:
    """A service whose Dockerfile checks a public build-time handshake (ARG, ENV, RUN test), which
    compose's build.args and environment and the committed .env.example also write in plain text."""
    folder = repo / "services" / "gateway"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text("print('ok')\n")
    (folder / "Dockerfile").write_text(
        "FROM python:3.11-slim\nARG APP_HANDSHAKE\nENV APP_HANDSHAKE=${APP_HANDSHAKE}\n"
        f'RUN [ "$APP_HANDSHAKE" = "{HANDSHAKE}" ] || exit 1\nCOPY app.py /app.py\nCMD ["python3", "/app.py"]\n')
    (repo / "docker-compose.yml").write_text(
        "services:\n  gateway:\n    build:\n      context: ./services/gateway\n      args:\n"
        f"        APP_HANDSHAKE: {HANDSHAKE}\n    environment:\n      APP_HANDSHAKE: {HANDSHAKE}\n"
        "      SESSION_SECRET: ${SESSION_SECRET}\n")
    (repo / ".env").write_text(f"APP_HANDSHAKE={HANDSHAKE}\nSESSION_SECRET={SESSION}\nDB_PASSWORD={EXAMPLE_PW}\n"
                               f"BUILD_LABEL={LABEL}\n")
    (repo / ".env.example").write_text(f"APP_HANDSHAKE={HANDSHAKE}\nSESSION_SECRET=changeme\nDB_PASSWORD={EXAMPLE_PW}\n")
    if git:
        (repo / ".gitignore").write_text(".env\n")
        _git(repo, "init", "-q", "-b", "main")
    return repo


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   check=True, env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull})


def _gateway(repo: Path):
    return next(s for s in find_services(repo) if s.name == "gateway")


def test_a_committed_handshake_is_configuration_and_secret_named_keys_stay_secrets(tmp_path):
    repo = make_repo(tmp_path / "repo", git=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    secrets = repo_secrets(repo)
    assert HANDSHAKE not in secrets
    # A key that names a secret is one, though the committed .env.example shows its value.
    assert {SESSION, EXAMPLE_PW, LABEL} <= set(secrets)
    assert secrets.why(EXAMPLE_PW) == ("DB_PASSWORD", "its key names a secret")
    assert secrets.why(LABEL)[1] == "its value is written in no committed compose file, Dockerfile or .env template"
    rule = SecretRule.for_repo(repo)
    assert judge("APP_HANDSHAKE", HANDSHAKE, rule=rule) == (False, "configuration: .env.example holds it in plain text")
    # The release's scan searches the same values: the handshake in an output is no finding.
    _, values = env_secrets(repo)
    assert HANDSHAKE not in values and EXAMPLE_PW in values
    # Nothing refuses it: no secret build arg, no Dockerfile line holding a secret.
    service = _gateway(repo)
    assert service.secret_args == () and service.build_args == {"APP_HANDSHAKE": HANDSHAKE}
    assert secret_line_rules(service.dockerfile.read_text(), secrets) == []  # the docker test builds it
    # A .env committed by mistake publishes nothing: its values are judged as before.
    _git(repo, "add", "-f", ".env")
    assert LABEL in repo_secrets(repo)


def test_the_same_value_uncommitted_is_a_secret_and_the_refusal_names_key_and_rule(tmp_path):
    repo = make_repo(tmp_path / "repo", git=True)  # a git checkout with nothing committed yet
    secrets = repo_secrets(repo)
    assert HANDSHAKE in secrets
    service = _gateway(repo)
    assert service.secret_args == ("APP_HANDSHAKE",) and "APP_HANDSHAKE" not in service.build_args
    with pytest.raises(BuildError) as refused:
        plan_build(service, None, load_base_image_map(), service.build_args, secrets)
    message = str(refused.value)
    assert ("build arg APP_HANDSHAKE of docker-compose.yml carries a secret (it holds the value of .env key "
            "APP_HANDSHAKE, secret because its value is written in no committed compose file") in message, message
    assert HANDSHAKE not in message
    # Once the compose file alone is committed (the Dockerfile and .env.example not yet), it is public.
    _git(repo, "add", "docker-compose.yml")
    assert HANDSHAKE not in repo_secrets(repo)
    assert _gateway(repo).secret_args == ()


def test_a_dockerfile_line_holding_a_secret_names_the_key_and_rule_never_the_value(tmp_path):
    repo = make_repo(tmp_path / "repo", git=False)
    dockerfile = repo / "services" / "gateway" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + f"RUN echo {EXAMPLE_PW} > /dev/null\nRUN echo {LABEL}\n")
    secrets = repo_secrets(repo)
    # Not a git checkout: its files on disk count, so the handshake (in its Dockerfile, compose
    # file and .env.example) is configuration; a password stays a secret wherever it is written.
    assert HANDSHAKE not in secrets and EXAMPLE_PW in secrets
    # The label is now written in the Dockerfile on disk: configuration too (the Dockerfile shows it).
    assert LABEL not in secrets
    service = _gateway(repo)
    with pytest.raises(BuildError) as refused:
        plan_build(service, None, load_base_image_map(), service.build_args, secrets)
    message = str(refused.value)
    assert ("Dockerfile line 7 holds a value of an .env file (the value of .env key DB_PASSWORD, secret because "
            "its key names a secret): the image would keep it") in message, message
    assert EXAMPLE_PW not in message


def test_nexus_agent_toml_names_keys_public_or_secret(tmp_path):
    repo = make_repo(tmp_path / "repo", git=False)
    (repo / "nexus-agent.toml").write_text('[secrets]\npublic = ["SESSION_*"]\nsecret = ["APP_HANDSHAKE"]\n')
    secrets = repo_secrets(repo)
    assert HANDSHAKE in secrets and SESSION not in secrets
    assert secrets.why(HANDSHAKE) == ("APP_HANDSHAKE", "nexus-agent.toml [secrets] secret names it")
    service = _gateway(repo)
    assert service.secret_args == ("APP_HANDSHAKE",)
    assert dict(service.secret_arg_rules) == {"APP_HANDSHAKE": "nexus-agent.toml [secrets] secret names it"}
    # A build arg named like a credential is public when nexus-agent.toml says so.
    (repo / "nexus-agent.toml").write_text('[secrets]\npublic = ["NPM_TOKEN_ID"]\n')
    compose = repo / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("      args:\n", "      args:\n        NPM_TOKEN_ID: public-id-1\n"))
    (build,), _, _ = compose_builds(repo)
    assert build.secret_args == () and build.build_args["NPM_TOKEN_ID"] == "public-id-1"


@pytest.mark.parametrize("text, why", [
    ('[secrets]\npublic = ["A"]\nsecret = ["A", "B"]\n', "names A both public and secret; keep one"),
    ('[secrets]\npublic = "A"\n', "[secrets] public must be a list of key names"),
])
def test_bad_secrets_section_is_one_clear_error(tmp_path, text, why):
    repo = make_repo(tmp_path / "repo", git=False)
    (repo / "nexus-agent.toml").write_text(text)
    with pytest.raises(InputError) as bad:
        repo_secrets(repo)
    assert "nexus-agent.toml" in str(bad.value) and why in str(bad.value)


def test_masking_keeps_the_words_of_a_warning(tmp_path):
    """Issue 16, item 9: `carries a secret: \\`docker history\\` would keep ...` came out as
    `carries a secret: *** history\\` would keep ...` in discovery's warning (the shape rule took
    `secret: \\`docker` for an assignment), while the error line printed it right."""
    warning = f"build arg NPM_TOKEN of compose service 'x' carries a secret: {SECRET_ARG_ADVICE}"
    assert mask_secrets(warning, []) == warning
    assert mask_secrets("the password: is missing; a token: `abc-123-xyz`", []) == \
        "the password: is missing; a token: ***"
    # Assignments and credential-shaped values are still masked by shape.
    assert mask_secrets("PASSWORD=hunter API_TOKEN: word password: hunter22 secret=word", []) == \
        "PASSWORD=*** API_TOKEN: *** password: *** secret=***"
    # Through discovery, whose warnings reach the screen: the advice keeps its words.
    (tmp_path / "services" / "svc").mkdir(parents=True)
    (tmp_path / "services" / "svc" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "docker-compose.yml").write_text("services:\n  svc:\n    build:\n      context: ./services/svc\n"
                                                 "      args:\n        NPM_TOKEN: npm-literal-tok-4410\n")
    report = discover(tmp_path)
    (message,) = [p["message"] for p in report["problems"] if "carries a secret" in p["message"]]
    assert message == ("build arg NPM_TOKEN of compose service 'svc' carries a secret (its name names a secret): "
                       f"{SECRET_ARG_ADVICE}"), message
    assert "npm-literal-tok-4410" not in str(report)


@pytest.mark.docker
def test_a_service_with_a_public_handshake_builds_on_the_engine(tmp_path, docker_client, unique_registry,
                                                               remove_test_images):
    """The 26 services issue 15 saw refused: built now, the handshake passed as compose passes it;
    the secrets beside it reach neither the image nor the build log."""
    from nexus_assets.images.build import build_image

    repo = make_repo(tmp_path / "repo", git=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    service = _gateway(repo)
    secrets = repo_secrets(repo)  # as the images step reads them
    plan = plan_build(service, docker_client, load_base_image_map(), service.build_args, secrets)
    log = tmp_path / "build_gateway.log"
    built = build_image(docker_client, plan, registry=unique_registry, version="1.0.0", revision=None,
                        source="services/gateway", log_path=log, secrets=secrets)
    image = docker_client.images.get(built["image_id"])
    assert f"APP_HANDSHAKE={HANDSHAKE}" in image.attrs["Config"]["Env"]
    assert docker_client.containers.run(built["image_id"], remove=True).decode().strip() == "ok"
    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", built["image_id"]],
                             capture_output=True, text=True, check=True).stdout
    assert HANDSHAKE in history  # public configuration, kept as docker keeps a build arg
    everything = history + str(image.attrs) + log.read_text()
    assert [s for s in (SESSION, EXAMPLE_PW, LABEL) if s in everything] == []
