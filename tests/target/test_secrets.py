"""Secrets: `.env*` files parsed by python-dotenv, every value (and every line of it) masked
wherever discovery writes, and public values such as `0.0.0.0` left readable."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from nexus_assets.core.errors import NexusError
from nexus_assets.core.fileio import write_json
from nexus_assets.core.masking import mask_secrets
from nexus_assets.discovery.archive_contents import read_discovery_archive
from nexus_assets.discovery.inventory import discover
from nexus_assets.parity.compare import compare
from nexus_assets.parity.synopsis import parse_synopsis
from nexus_assets.target.repo_config import load_repo_config
from nexus_assets.target.secrets import (
    MIN_SECRET_LEN,
    UNPARSED,
    parse_env_dump,
    parse_env_text,
    read_env_files,
    secret_values,
)

PEM = "-----BEGIN PLANTED KEY ENV-----\nMIIBplantedEnvMiddleLine0a1b2c3d\n-----END PLANTED KEY ENV-----"


def test_multi_line_value_and_bare_line_are_secrets():
    text = f'PRIVATE_KEY="{PEM}"\nNODE_ENV=production\norphanBareLineSecret9Zq\nQmFzZTY0VGFpbA==\n'
    pairs, bad = parse_env_text(text)
    assert ("PRIVATE_KEY", PEM) in pairs and ("NODE_ENV", "production") in pairs
    assert bad == [5, 6]  # the two lines after the three of PRIVATE_KEY and NODE_ENV
    assert {k for k, _ in pairs} == {"PRIVATE_KEY", "NODE_ENV", UNPARSED}  # neither line became a key
    values = secret_values(pairs)
    for line in [PEM, *PEM.splitlines(), "orphanBareLineSecret9Zq", "QmFzZTY0VGFpbA=="]:
        assert line in values, line
    assert "production" not in values
    masked = mask_secrets("log: MIIBplantedEnvMiddleLine0a1b2c3d; orphanBareLineSecret9Zq", values)
    assert masked == "log: ***; ***"


def test_dotenv_syntax_export_comments_quotes_and_interpolation():
    text = ("# comment\nexport EXPORTED_TOKEN=exp-planted-tok-7731 # note\nREF=${EXPORTED_TOKEN}\n"
            "HASHED=\"value # kept\"\nSIGNING_KEY=\"esc-line-one-A1\\nesc-line-two-B2\"\n'QUOTED'=q-value-1234\n"
            "EMPTY=\n")
    pairs, bad = parse_env_text(text)
    assert bad == []
    got = dict(pairs)
    assert got["EXPORTED_TOKEN"] == "exp-planted-tok-7731" and got["REF"] == "${EXPORTED_TOKEN}"
    assert got["HASHED"] == "value # kept" and got["QUOTED"] == "q-value-1234" and got["EMPTY"] == ""
    # The escape is decoded, and the text as written is kept too, both masked.
    assert ("SIGNING_KEY", "esc-line-one-A1\nesc-line-two-B2") in pairs
    assert ("SIGNING_KEY", "esc-line-one-A1\\nesc-line-two-B2") in pairs
    values = secret_values(pairs)
    assert {"esc-line-one-A1", "esc-line-two-B2", "exp-planted-tok-7731"} <= set(values)
    assert "${EXPORTED_TOKEN}" not in values


def test_malformed_lines_are_reported_with_file_and_line(tmp_path):
    (tmp_path / ".env").write_text('GOOD=1\nA="never closed\nB=value-after\n=no-key-here\n')
    (files, pairs) = read_env_files(tmp_path)
    (env,) = files
    assert env["keys"] == ["B", "GOOD"]
    assert [(p["file"], p["line"]) for p in env["problems"]] == [(".env", 2), (".env", 4)]
    assert all("never" not in p["message"] and "no-key" not in p["message"] for p in env["problems"])
    assert {'A="never closed', "never closed", "no-key-here"} <= set(secret_values(pairs))


def test_addresses_and_plain_values_are_not_masked_but_secrets_are():
    pairs = [("HOST", "0.0.0.0"), ("BIND", "127.0.0.1:8080"), ("LISTEN", "[::]:80"), ("AUTH_HOST", "auth-service"),
             ("SESSION_PORT", "6379"), ("USERS_URL", "http://users:8001"), ("REDIS", "redis:6379"),
             ("IMAGE_TAG", "1.25.3"), ("JWT_SECRET", "0.0.0.0"), ("DEBUG", "True"),
             # real secrets, even when shaped like something public
             ("BASIC_AUTH", "admin:1234"), ("ADMIN_PIN", "8812"), ("API_KEY", "deadbeef:cafe"),
             ("HOOK", "https://hooks.example/services/T000/B000/xyz"), ("DB_PASSWORD", "correct-horse-battery")]
    values = secret_values(pairs)
    assert sorted(values) == sorted(["admin:1234", "8812", "deadbeef:cafe", "correct-horse-battery",
                                     "https://hooks.example/services/T000/B000/xyz"])
    report = "listening on 0.0.0.0:3001 and 127.0.0.1:8080, redis:6379, golang:1.25.3"
    assert mask_secrets(report, values) == report


def test_short_values_are_masked_as_whole_tokens_only():
    values = secret_values([("JWT_SECRET", "auth")])
    assert values == ["auth"] and len("auth") >= MIN_SECRET_LEN
    assert mask_secrets("service auth-service, token auth, x=auth;", values) == "service auth-service, token ***, x=***;"


def test_env_dump_continuation_lines_belong_to_the_value():
    text = ("PATH=/usr/bin\nVPS_PRIVATE_KEY=-----BEGIN VPS PLANTED-----\nMIIBvpsDumpMiddleLineQ9w8e7\n"
            "VnBzQmFzZTY0VGFpbA==\n-----END VPS PLANTED-----\nVPS_API_TOKEN=\"vps-quoted-first-Line1\n"
            "NOT_A_KEY=vps-quoted-second-Line2\"\nNODE_ENV=production\n")
    keys, pairs = parse_env_dump(text)
    assert keys == ["NODE_ENV", "PATH", "VPS_API_TOKEN", "VPS_PRIVATE_KEY"]
    got = dict(pairs)
    assert got["VPS_PRIVATE_KEY"].splitlines()[1:3] == ["MIIBvpsDumpMiddleLineQ9w8e7", "VnBzQmFzZTY0VGFpbA=="]
    assert got["VPS_API_TOKEN"] == "vps-quoted-first-Line1\nNOT_A_KEY=vps-quoted-second-Line2"
    assert {"MIIBvpsDumpMiddleLineQ9w8e7", "VnBzQmFzZTY0VGFpbA==", "-----END VPS PLANTED-----"} <= set(
        secret_values(pairs))


def test_archive_journal_is_masked_with_its_own_env_dump(tmp_path):
    archive = tmp_path / "nexus-discovery"
    archive.mkdir()
    (archive / "env_dump.txt").write_text("VPS_KEY=-----BEGIN X-----\nMIIBvpsJournalMiddle77\n-----END X-----\n")
    (archive / "docker_journal.txt").write_text("app: loaded MIIBvpsJournalMiddle77 from env\n")
    summary, pairs = read_discovery_archive(archive)
    assert summary["env_keys"] == ["VPS_KEY"]
    assert summary["journal"]["last_lines"] == ["app: loaded *** from env"]
    assert "MIIBvpsJournalMiddle77" in dict(pairs)["VPS_KEY"]


def test_journal_tail_never_starts_inside_a_line(tmp_path):
    archive = tmp_path / "nexus-discovery"
    archive.mkdir()
    (archive / "docker_journal.txt").write_text("x" * 70000 + "tail-of-a-cut-line\nlast line\n")
    summary, _ = read_discovery_archive(archive)
    assert summary["journal"]["last_lines"] == ["last line"] and summary["journal"]["lines"] == 2


# --- planted secrets through the whole of discovery ----------------------------------------

PLANTED = {
    ".env": [PEM, "orphanBareLineSecret9Zq", "exp-planted-tok-7731"],
    ".env.production": ["prod-planted-sess-55x", "esc-line-one-A1\nesc-line-two-B2"],
    "services/auth-service/.env.local": ["local-planted-Db-9931", "MIIClocalPlantedAAAA\nQmFzZTY0TG9jYWxUYWls=="],
    "env_dump": ["-----BEGIN VPS PLANTED-----\nMIIBvpsDumpMiddleLineQ9w8e7\nVnBzQmFzZTY0VGFpbA==\n-----END VPS PLANTED-----",
                 "vps-quoted-first-Line1\nvps-quoted-second-Line2"],
    "compose": ["compose-planted-hook-4455", "compose-block-lineA-x1\ncompose-block-lineB-x2"],
}


def plant(repo: Path) -> None:
    with (repo / ".env").open("a") as fh:
        fh.write(f'HOST=0.0.0.0\nPRIVATE_KEY="{PEM}"\norphanBareLineSecret9Zq\n'
                 "export EXPORTED_TOKEN=exp-planted-tok-7731 # deploy token\n")
    (repo / ".env.production").write_text("SESSION_SECRET='prod-planted-sess-55x'\n"
                                          'SIGNING_KEY="esc-line-one-A1\\nesc-line-two-B2"\n')
    (repo / "services" / "auth-service" / ".env.local").write_text(
        'DB_PASSWORD=local-planted-Db-9931\nCERT_PEM="MIIClocalPlantedAAAA\nQmFzZTY0TG9jYWxUYWls=="\n')
    with (repo / "nexus-discovery" / "env_dump.txt").open("a") as fh:
        fh.write(f"VPS_PRIVATE_KEY={PLANTED['env_dump'][0]}\nVPS_API_TOKEN=\"{PLANTED['env_dump'][1]}\"\n")
    compose = repo / "docker-compose.yml"
    text = compose.read_text()
    anchor = '      JWT_SECRET: "${JWT_SECRET}"\n'
    assert anchor in text
    compose.write_text(text.replace(anchor, anchor + '      WEBHOOK_SECRET: "compose-planted-hook-4455"\n'
                                    "      TLS_KEY: |\n        compose-block-lineA-x1\n        compose-block-lineB-x2\n"
                                    '    container_name: "auth-MIIBvpsDumpMiddleLineQ9w8e7"\n', 1))
    # Places that discovery copies into its report: the journal's last lines, a healthcheck.
    # The journal keeps its last 20 lines: 19 planted lines (all but the first) and one more.
    every_line = [line for values in PLANTED.values() for v in values for line in v.splitlines()][1:]
    assert len(every_line) == 19
    with (repo / "nexus-discovery" / "docker_journal.txt").open("a") as fh:
        fh.writelines(f"Nov 25 12:00:00 vps app[1]: loaded {line}\n" for line in every_line)
        fh.write("Nov 25 12:00:01 vps app[1]: listening on 0.0.0.0:3002\n")
    dockerfile = repo / "services" / "users" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "HEALTHCHECK CMD curl -H 'X: local-planted-Db-9931' "
                                                    "-H 'Y: compose-block-lineB-x2' http://0.0.0.0:8001/health\n")


def test_no_planted_value_or_line_of_it_appears_in_any_output(sample_copy, tmp_path):
    plant(sample_copy)
    report = discover(sample_copy)
    reports = tmp_path / "reports"
    write_json(reports / "discovery_parsed.json", report)
    synopsis = parse_synopsis(sample_copy / "docs" / "investor_synopsis.md", display_path="docs/investor_synopsis.md")
    write_json(reports / "discrepancy_report.json", compare(synopsis, report, load_repo_config(sample_copy)))
    dumps = {p.name: p.read_text() for p in reports.glob("*.json")}
    dumps["returned"] = json.dumps(report)
    assert len(dumps) == 3
    for source, values in PLANTED.items():
        for value in values:
            for piece in [value, *value.splitlines()]:
                for name, dump in dumps.items():
                    assert piece not in dump and json.dumps(piece)[1:-1] not in dump, (source, piece, name)
    assert not any("DO-NOT-LEAK" in dump for dump in dumps.values())  # the sample's own .env
    # The planted text did reach the report, masked; addresses stay readable.
    journal = report["archive"]["journal"]["last_lines"]
    assert sum(line.endswith("loaded ***") for line in journal) == 19
    assert journal[-1].endswith("listening on 0.0.0.0:3002")
    users = next(s for s in report["services"] if s["name"] == "users")
    assert users["healthcheck"]["command"].count("***") == 2 and "http://0.0.0.0:8001/health" in \
        users["healthcheck"]["command"]
    env = {e["file"]: e for e in report["env_files"]}
    assert "HOST" in env[".env"]["keys"] and "PRIVATE_KEY" in env[".env"]["keys"]
    assert [p["line"] for p in env[".env"]["problems"]] == [len((sample_copy / ".env").read_text().splitlines()) - 1]
    assert set(env["services/auth-service/.env.local"]["keys"]) == {"DB_PASSWORD", "CERT_PEM"}
    assert "VPS_PRIVATE_KEY" in report["archive"]["env_keys"]


# --- the reader never crashes --------------------------------------------------------------

_LINE = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, v, q: f"{k}={q}{v}{q}", st.from_regex(r"(export )?[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
              st.text(max_size=30), st.sampled_from(["", "'", '"'])),
    st.sampled_from(["#", "export", "=", '"', "'", "\\", "\r", "\x00", "\ufeff", "KEY", "=="]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE, max_size=12).map("\n".join))
@example("0\x850\r\n0")  # a CRLF python-dotenv splits between two bindings
def test_env_reader_never_raises_on_random_text(text):
    try:
        pairs, bad = parse_env_text(text)
        keys, dump_pairs = parse_env_dump(text)
        values = secret_values(pairs + dump_pairs)
        masked = mask_secrets(text, values)
    except NexusError:
        return
    lines = len(re.split(r"\r\n|\n|\r", text))
    assert all(1 <= n <= lines for n in bad)
    assert all(re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", k) for k, _ in pairs)
    assert all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k) for k in keys)
    assert all(len(v) >= MIN_SECRET_LEN for v in values)
    assert isinstance(masked, str)


def test_build_args_carrying_a_secret_and_dockerfile_lines_holding_one():
    from nexus_assets.target.secrets_rule import secret_build_args, secret_lines

    secrets = secret_values([("DB_PASSWORD", "e2e-db-pass-0192"), ("JWT_SECRET", "auth"), ("NODE_ENV", "production")])
    args = {"NPM_TOKEN": "literal-tok-1", "SERVICE_PORT": "3001", "NOTE": "prefix-e2e-db-pass-0192", "MODE": "production",
            "API_KEY": "${API_KEY}", "EMPTY_SECRET": "", "WHO": "auth", "LABEL": "auth-service"}
    assert secret_build_args(args, secrets) == ["NOTE", "NPM_TOKEN", "WHO"]
    text = "FROM x\n# e2e-db-pass-0192 in a comment\nRUN echo e2e-db-pass-0192\nCOPY auth-service.js .\nENV W=auth\n"
    assert secret_lines(text, secrets) == [3, 5]


def test_compose_build_arg_with_a_secret_is_left_out_and_its_service_refused(tmp_path):
    from nexus_assets.target.compose_model import compose_builds

    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / ".env").write_text('export NPM_TOKEN=npm-planted-tok-5521\nPORT=3001\nKEY="line-one-A1\nline-two-B2"\n')
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  svc:\n    build:\n      context: ./svc\n      args:\n        NPM_TOKEN: ${NPM_TOKEN}\n"
        "        PORT: ${PORT}\n        NOTE: \"x-line-two-B2\"\n")
    (build,), _stack, problems = compose_builds(tmp_path)
    assert build.build_args == {"PORT": "3001"} and build.secret_args == ("NOTE", "NPM_TOKEN")
    messages = [p["message"] for p in problems]
    assert len(messages) == 2 and all("carries a secret" in m and "docker history" in m for m in messages)
    assert not any("npm-planted" in m or "line-two" in m for m in messages)
