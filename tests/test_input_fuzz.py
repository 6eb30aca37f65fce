"""Random input for the readers of a target repository's text files: the service list, compose
files and Dockerfiles. Whatever the bytes, a reader returns problems or raises a NexusError;
nothing else escapes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_assets.core.errors import NexusError
from nexus_assets.discovery.inventory import parse_compose_file, read_service_list
from nexus_assets.target.dockerfile import parse_dockerfile, read_dockerfile

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INSTRUCTIONS = ["FROM", "ARG", "ENV", "EXPOSE", "HEALTHCHECK", "RUN", "COPY", "CMD", "#", "# escape=`", ""]
ARGUMENTS = ["AS", "builder", "NONE", "CMD", "[", "[\"a\", 1]", "--start-interval=1s", "--interval=1s", "${PORT:-80}",
             "$X", "X=1", "<<EOF", "EOF", "\\", "`", "scratch", "65536", "1-99999/udp", "80/tcp", "9" * 5000, "[" * 3000]
dockerfile_lines = st.lists(st.tuples(st.sampled_from(INSTRUCTIONS),
                                      st.lists(st.one_of(st.sampled_from(ARGUMENTS), st.text(max_size=8)), max_size=4)),
                            max_size=15)
dockerfile_text = st.one_of(
    st.text(max_size=400),
    dockerfile_lines.map(lambda ls: "FROM node:20\n" + "".join(f"{k} {' '.join(a)}\n" for k, a in ls)),
)

COMPOSE_KEYS = ["services", "build", "context", "dockerfile", "image", "ports", "environment", "depends_on",
                "healthcheck", "disable", "published", "target", "host_ip", "protocol", "container_name"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                    st.sampled_from(["/etc", "..", "../../x", "${CTX}", "git@host:x", "services/a", "\x00"]),
                    st.dates())
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(COMPOSE_KEYS), st.text(max_size=8), st.integers()), inner, max_size=5)),
    max_leaves=25)
# Block YAML written by hand with values inserted as written, so values PyYAML parses but cannot
# construct (a 13th month, `!!int x`) and odd shapes (a number as host_ip) reach the reader,
# not only syntax errors.
VALUES = ["", "2001-13-45", "!!int x", "!!float y", "!!timestamp 2001-01-01x", "[1, 2", "/etc", "${X}", "\t",
          "{host_ip: 1, target: 80}", "[{host_ip: 7, target: 1, published: 2}]", "{context: /etc, dockerfile: passwd}",
          "[a, b]", "{disable: true}", "42", "null", "&a 1", "*a", "\"\\q\"", "\"a\\0b\""]
raw_trees = st.recursive(st.one_of(st.sampled_from(VALUES), st.text(alphabet="abc/.:-[]{}", max_size=10)),
                         lambda inner: st.dictionaries(st.sampled_from([*COMPOSE_KEYS, "web", "api"]), inner,
                                                       min_size=1, max_size=4),
                         max_leaves=20)


def block_yaml(tree: object, depth: int = 0) -> str:
    if not isinstance(tree, dict):
        return f" {tree}\n"
    return "\n" + "".join(f"{'  ' * depth}{key}:{block_yaml(value, depth + 1)}" for key, value in tree.items())


raw_yaml = raw_trees.map(lambda t: "services:" + block_yaml({"web": t}, 1))
compose_text = st.one_of(
    st.text(max_size=400),
    raw_yaml,
    trees.map(lambda t: yaml.safe_dump({"services": t}, allow_unicode=True)),
    trees.map(lambda t: yaml.safe_dump(t, allow_unicode=True)),
)
any_bytes = st.binary(max_size=300)


def _write(data: str | bytes, name: str) -> tuple[Path, Path, tempfile.TemporaryDirectory]:
    tmp = tempfile.TemporaryDirectory()
    repo = Path(tmp.name)
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return repo, path, tmp


@BOUNDED
@given(st.one_of(st.text(max_size=400), any_bytes))
def test_service_list_reader_never_crashes(data):
    repo, _, tmp = _write(data, "deployment/service_list.txt")
    with tmp:
        try:
            listing = read_service_list(repo)
        except NexusError:
            return
        json.dumps(listing)
        assert all(isinstance(n, str) for n in listing["names"])


@BOUNDED
@given(st.one_of(compose_text, any_bytes))
def test_compose_reader_never_crashes(data):
    repo, path, tmp = _write(data, "docker-compose.yml")
    with tmp:
        try:
            parsed, _pairs = parse_compose_file(repo, path)
        except NexusError:
            return
        json.dumps(parsed)
        for service in parsed["services"]:
            build = service["build"]
            # Whatever the text says, a build is either refused, remote/unresolved, or inside the repo.
            assert build is None or build["refused"] or build["exists"] is None or not build["outside_repo"]


@BOUNDED
@given(st.one_of(dockerfile_text, any_bytes))
def test_dockerfile_reader_never_crashes(data):
    _repo, path, tmp = _write(data, "services/x/Dockerfile")
    with tmp:
        try:
            text, _problems = read_dockerfile(path, "services/x/Dockerfile", "x")
            parsed = parse_dockerfile(text or "", "services/x/Dockerfile", "x")
        except NexusError:
            return
        json.dumps(parsed)
        assert all(0 <= p <= 65535 for p in parsed["exposed_ports"])
