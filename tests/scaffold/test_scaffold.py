"""Step D (auto-scaffolding): the rules of nexus_assets.scaffold, the generated services'
own unit tests on the host, and, marked `docker`, real builds of scaffolded and sample
services that must come up healthy and answer every GET path of their OpenAPI spec."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from nexus_assets.core.errors import InputError, TargetRepoError
from nexus_assets.core.settings import SAMPLE_REPO
from nexus_assets.parity.synopsis import parse_synopsis
from nexus_assets.scaffold import generate as scaffold
from nexus_assets.scaffold.generate import (
    PORT_RANGES,
    REASON_CREATED,
    REASON_EXISTS,
    REASON_INVALID,
    REASON_PMMG,
    language_for,
    port_for,
    scaffold_missing,
    scaffold_service,
)
from nexus_assets.target.repo_config import DEFAULTS, load_repo_config

SCAFFOLD_DEFAULTS = DEFAULTS["scaffold"]
SAMPLE_SERVICES = SAMPLE_REPO / "services"
SAMPLE_WITH_DOCKERFILE = sorted(p.name for p in SAMPLE_SERVICES.iterdir() if (p / "Dockerfile").is_file())
# The guide's 47 canonical modules, from the bundled synopsis.
CANONICAL = [(m.name, m.description) for m in parse_synopsis(SAMPLE_REPO / "docs" / "investor_synopsis.md").modules]
EXPECTED_FILES = {
    "node": {"Dockerfile", "server.js", "openapi.json", "package.json", "tests/server.test.js", ".env.example",
             "README.md", ".dockerignore", ".nexus-scaffolded"},
    "python": {"Dockerfile", "app.py", "openapi.json", "requirements.txt", "tests/test_app.py", "tests/__init__.py",
               ".env.example", "README.md", ".dockerignore", ".nexus-scaffolded"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Loopback only: never send test traffic through a proxy from the environment.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def tree_snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """relative path -> (sha256 or link target or 'dir', mode) for everything under root."""
    snap = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_symlink():
            snap[rel] = ("link:" + os.readlink(path), st.st_mode)
        elif path.is_dir():
            snap[rel] = ("dir", st.st_mode)
        else:
            snap[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mode)
    return snap


def files_of(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def assert_openapi3(doc: dict, title: str) -> list[str]:
    """Structural OpenAPI 3 checks; returns the GET paths."""
    assert isinstance(doc.get("openapi"), str) and doc["openapi"].startswith("3."), doc.get("openapi")
    assert doc["info"]["title"] == title
    assert isinstance(doc["info"]["version"], str) and doc["info"]["version"]
    assert isinstance(doc["paths"], dict) and doc["paths"]
    get_paths = []
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        operations = {k: v for k, v in item.items() if k in HTTP_METHODS}
        assert operations, f"{path} has no operations"
        for method, op in operations.items():
            assert op["responses"], f"{method.upper()} {path} has no responses"
            for code, response in op["responses"].items():
                assert code == "default" or re.fullmatch(r"[1-5](\d\d|XX)", code), code
                assert "description" in response, f"{method.upper()} {path} {code} lacks a description"
        if "get" in operations:
            assert "200" in operations["get"]["responses"]
            get_paths.append(path)
    return get_paths


# --- language, ports, config --------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "language"),
    [
        ("analytics", "python"),
        ("analytics-worker", "python"),
        ("recommendation", "python"),
        ("puabo-ai-core", "python"),
        ("puabo-nexus-ai-dispatch", "python"),
        ("transcoder", "python"),
        ("transcode-worker", "python"),
        ("auth", "node"),
        ("backend-api", "node"),
        ("streaming-engine", "node"),
        ("puabo-blac-financing", "node"),
        ("ott-mini", "node"),
        ("nexus-stream", "node"),
        ("email-worker", "node"),
    ],
)
def test_language_rule_follows_the_operator_guide(module, language):
    assert language_for(module, SCAFFOLD_DEFAULTS) == language


def test_language_rule_comes_from_the_repository_config(tmp_path):
    (tmp_path / "nexus-agent.toml").write_text('[scaffold]\npython = ["*-worker"]\ndefault_language = "python"\n')
    config = load_repo_config(tmp_path)["scaffold"]
    assert language_for("email-worker", config) == "python"
    assert language_for("analytics", {"python": [], "default_language": "node"}) == "node"
    assert language_for("auth", config) == "python"  # the repository's default, not the guide's


@pytest.mark.parametrize(
    "config",
    [{"python": "analytics*", "default_language": "node"}, {"python": [], "default_language": "go"}],
)
def test_bad_scaffold_config_is_an_input_error_naming_the_setting(config, workdir):
    with pytest.raises(InputError, match=r"nexus-agent\.toml \[scaffold\]"):
        language_for("auth", config)
    with pytest.raises(InputError):
        scaffold_missing(workdir, [("auth", "")], config)


def test_port_is_in_the_language_range_and_identical_in_another_process():
    names = [name for name, _ in CANONICAL]
    ports = {name: port_for(name, language_for(name, SCAFFOLD_DEFAULTS)) for name in names}
    for name, port in ports.items():
        low, high = PORT_RANGES[language_for(name, SCAFFOLD_DEFAULTS)]
        assert low <= port <= high, (name, port)
    # A fresh interpreter with another hash seed must agree: the port is not hash()-based.
    code = ("import json,sys; from nexus_assets.scaffold.generate import port_for, language_for; "
            "from nexus_assets.target.repo_config import DEFAULTS; c=DEFAULTS['scaffold']; "
            "print(json.dumps({n: port_for(n, language_for(n, c)) for n in sys.argv[1:]}))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True,
                         env=env, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert json.loads(out.stdout) == ports


def test_unknown_language_has_no_port_range():
    with pytest.raises(InputError):
        port_for("auth", "go")


# --- what a scaffold contains ------------------------------------------------------


@pytest.mark.parametrize(("module", "language"), [("auth", "node"), ("puabo-ai-core", "python")])
def test_scaffold_writes_a_complete_service_with_every_placeholder_filled(workdir, module, language):
    result = scaffold_service(workdir, module, "Sign-in & sessions", SCAFFOLD_DEFAULTS)
    assert result.created and result.reason == REASON_CREATED
    assert (result.name, result.language, result.path) == (module, language, workdir / "services" / module)
    assert result.port == port_for(module, language)
    assert files_of(result.path) == EXPECTED_FILES[language]
    for path in result.path.rglob("*"):
        if path.is_file():
            assert not re.search(r"\{\{[A-Z_]+\}\}", path.read_text(encoding="utf-8")), f"{path}: placeholder left"
    assert (result.path / ".env.example").read_text().count(f"PORT={result.port}") == 1
    assert "Sign-in & sessions" in (result.path / "README.md").read_text()
    marker = json.loads((result.path / ".nexus-scaffolded").read_text())
    assert marker == {"module": module, "language": language, "template": f"nexus_assets/templates/{language}"}
    # Only the service folder appears: no temporary folder is left beside it.
    assert [p.name for p in (workdir / "services").iterdir()] == [module]


@pytest.mark.parametrize(("module", "base"), [("auth", "node:20-alpine"), ("puabo-ai-core", "python:3.11-slim")])
def test_generated_dockerfile_runs_as_numeric_user_with_healthcheck(workdir, module, base):
    result = scaffold_service(workdir, module, "", SCAFFOLD_DEFAULTS)
    dockerfile = (result.path / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line and not line.startswith((" ", "#"))]
    assert f"FROM {base}" in dockerfile.splitlines()
    assert "USER 10001" in dockerfile.splitlines()
    assert f"EXPOSE {result.port}" in dockerfile.splitlines()
    assert f"PORT={result.port}" in dockerfile
    assert re.search(r"^HEALTHCHECK --interval=2s --timeout=3s --start-period=2s --retries=15 \\$", dockerfile, re.M)
    assert "/health" in dockerfile
    # The user switch comes after COPY and before the process starts.
    assert instructions.index("COPY") < instructions.index("USER") < instructions.index("CMD")


@pytest.mark.parametrize("module", ["auth", "puabo-ai-core"])
def test_generated_openapi_is_an_openapi3_document_with_get_operations(workdir, module):
    result = scaffold_service(workdir, module, "A description", SCAFFOLD_DEFAULTS)
    doc = json.loads((result.path / "openapi.json").read_text())
    paths = assert_openapi3(doc, module)
    assert {"/health", "/", "/openapi.json"} <= set(paths)
    assert doc["info"]["description"] == "A description"
    assert doc["servers"][0]["url"] == f"http://127.0.0.1:{result.port}"


def test_hostile_description_cannot_break_any_generated_file(workdir):
    hostile = 'He said "hi" $(id) `uname` \\ {{PORT}} """ \n second line\x00'
    node = scaffold_service(workdir, "auth", hostile, SCAFFOLD_DEFAULTS)
    python = scaffold_service(workdir, "analytics", hostile, SCAFFOLD_DEFAULTS)
    for result in (node, python):
        spec = json.loads((result.path / "openapi.json").read_text())
        description = spec["info"]["description"]
        assert "\n" not in description and "$" not in description and "`" not in description
        assert "{{" not in description and '"' not in description and "\x00" not in description
        assert "He said 'hi'" in description
        label = next(line for line in (result.path / "Dockerfile").read_text().splitlines() if "description=" in line)
        assert "$" not in label and label.count('"') == 2
    json.loads((node.path / "package.json").read_text())
    py_compile.compile(str(python.path / "app.py"), cfile=str(workdir / "app.pyc"), doraise=True)
    subprocess.run(["node", "--check", str(node.path / "server.js")], check=True, timeout=60)


def test_files_are_readable_by_the_container_user_whatever_the_umask(workdir):
    old = os.umask(0o077)
    try:
        result = scaffold_service(workdir, "auth", "", SCAFFOLD_DEFAULTS)
    finally:
        os.umask(old)
    for path in [result.path, *result.path.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def test_templates_are_found_next_to_the_module():
    assert scaffold.TEMPLATES_DIR == Path(scaffold.__file__).parent / "templates"
    for language in ("node", "python"):
        assert {str(p) for p in scaffold.template_files(language)} == EXPECTED_FILES[language] - {".nexus-scaffolded"}


# --- the rules: never overwrite, never escape, never PMMG -------------------------------


def test_existing_service_folder_is_left_untouched_byte_for_byte(workdir):
    folder = workdir / "services" / "auth"
    (folder / "src").mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM scratch\n")
    (folder / "src" / "index.js").write_bytes(b"\xff\xfe not utf-8, hand written\n")
    os.chmod(folder / "Dockerfile", 0o600)
    before = tree_snapshot(workdir)
    result = scaffold_service(workdir, "auth", "Sign-in", SCAFFOLD_DEFAULTS)
    assert not result.created and result.reason == REASON_EXISTS
    assert result.path == folder
    assert tree_snapshot(workdir) == before


@pytest.mark.parametrize("kind", ["file", "symlink", "dangling-symlink"])
def test_existing_file_or_symlink_with_the_service_name_is_left_untouched(workdir, kind, tmp_path):
    services = workdir / "services"
    services.mkdir()
    elsewhere = tmp_path / "elsewhere"
    if kind == "file":
        (services / "auth").write_text("not a folder\n")
    else:
        if kind == "symlink":
            elsewhere.mkdir()
        (services / "auth").symlink_to(elsewhere)
    before = tree_snapshot(workdir)
    result = scaffold_service(workdir, "auth", "", SCAFFOLD_DEFAULTS)
    assert (result.created, result.reason) == (False, REASON_EXISTS)
    assert tree_snapshot(workdir) == before
    assert not elsewhere.exists() or not any(elsewhere.iterdir())


@pytest.mark.parametrize(
    "name",
    ["../evil", "../../etc/cron.d/x", "a/b", "/abs", "..", ".", "", "name with space", "x;rm -rf ~", "$(id)",
     "`id`", "a|b", "UPPER", "a..b", "-leading", "tab\tname", "new\nline", "x" * 80],
)
def test_unsafe_names_are_refused_and_nothing_is_written(tmp_path, name):
    workdir = tmp_path / "deep" / "work"
    workdir.mkdir(parents=True)
    before = tree_snapshot(tmp_path)
    result = scaffold_service(workdir, name, "", SCAFFOLD_DEFAULTS)
    assert not result.created
    assert result.reason.startswith(REASON_INVALID)
    assert result.port == 0
    after = tree_snapshot(tmp_path)
    # At most the empty services/ folder itself appeared.
    assert set(after) - set(before) <= {"deep/work/services"}
    assert not any((workdir / "services").iterdir())


@pytest.mark.parametrize("name", ["pmmg", "pmmg-engine", "PMMG-Studio", "n3xus-pmmg-core", "pmmg-static"])
def test_pmmg_modules_are_never_scaffolded(workdir, name):
    result = scaffold_service(workdir, name, "PMMG N3XUS R3CORDINGS M3DIA 3NGIN3", SCAFFOLD_DEFAULTS)
    assert (result.created, result.reason, result.port) == (False, REASON_PMMG, 0)
    assert not any((workdir / "services").iterdir())


def test_a_crash_while_writing_leaves_no_half_written_service(workdir, monkeypatch):
    real_render = scaffold.render
    calls = []

    def render_then_crash(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(scaffold, "render", render_then_crash)
    with pytest.raises(OSError, match="disk full"):
        scaffold_service(workdir, "nexus-stream", "", SCAFFOLD_DEFAULTS)
    assert len(calls) == 3
    assert list((workdir / "services").iterdir()) == []  # neither the service nor a temp folder
    monkeypatch.setattr(scaffold, "render", real_render)
    assert scaffold_service(workdir, "nexus-stream", "", SCAFFOLD_DEFAULTS).created


def test_missing_working_copy_is_a_target_repo_error(tmp_path):
    with pytest.raises(TargetRepoError, match="does not exist"):
        scaffold_service(tmp_path / "nowhere", "auth", "", SCAFFOLD_DEFAULTS)
    assert not (tmp_path / "nowhere").exists()


def test_scaffold_missing_returns_one_result_per_module_with_distinct_ports(workdir):
    modules = [*CANONICAL, ("auth", "again"), ("../escape", ""), ("pmmg-engine", "")]
    (workdir / "services" / "users").mkdir(parents=True)
    results = scaffold_missing(workdir, modules, SCAFFOLD_DEFAULTS)
    assert [r.name for r in results] == [name for name, _ in modules]
    created = [r for r in results if r.created]
    assert len(created) == len(CANONICAL) - 1  # all but users, which existed
    assert len({r.port for r in created}) == len(created), "two scaffolded services share a port"
    for r in created:
        low, high = PORT_RANGES[r.language]
        assert low <= r.port <= high
        assert f"PORT={r.port}" in (r.path / "Dockerfile").read_text()
    by_name = {}
    for r in results:
        by_name.setdefault(r.name, []).append(r)
    assert by_name["users"][0].reason == REASON_EXISTS
    assert [r.reason for r in by_name["auth"]] == [REASON_CREATED, REASON_EXISTS]
    assert by_name["../escape"][0].reason.startswith(REASON_INVALID)
    assert by_name["pmmg-engine"][0].reason == REASON_PMMG
    # Same input, same ports, in another working copy.
    other = workdir.parent / "again"
    (other / "services" / "users").mkdir(parents=True)
    again = scaffold_missing(other, modules, SCAFFOLD_DEFAULTS)
    assert [(r.name, r.port, r.created) for r in again] == [(r.name, r.port, r.created) for r in results]


def test_two_new_services_whose_names_share_a_port_get_distinct_ports(workdir):
    # svc-26 and svc-53 hash to the same Node.js port.
    assert port_for("svc-26", "node") == port_for("svc-53", "node")
    first, second = scaffold_missing(workdir, [("svc-26", ""), ("svc-53", "")], SCAFFOLD_DEFAULTS)
    assert first.port == port_for("svc-26", "node")
    assert second.port == first.port + 1
    assert f"EXPOSE {second.port}" in (second.path / "Dockerfile").read_text()


def test_scaffolding_the_sample_repo_creates_only_what_is_missing(sample_copy):
    config = load_repo_config(sample_copy)
    aliases = config["parity"]["aliases"]
    present = {p.name for p in (sample_copy / "services").iterdir() if p.is_dir()}
    missing = [(name, desc) for name, desc in CANONICAL
               if name not in present and not set(aliases.get(name, [])) & present]
    critical_missing = {n for n, _ in missing} & set(config["parity"]["critical"])
    assert critical_missing == {"streaming-engine", "puabo-blac-financing", "ott-mini", "nexus-stream"}
    before = tree_snapshot(sample_copy / "services")
    results = scaffold_missing(sample_copy, missing, config["scaffold"])
    assert all(r.created for r in results)
    assert {r.name for r in results} == {n for n, _ in missing}
    assert {p.name for p in (sample_copy / "services").iterdir()} == present | {n for n, _ in missing}
    after = tree_snapshot(sample_copy / "services")
    assert {k: v for k, v in after.items() if k in before} == before  # the existing services are unchanged
    assert next(r for r in results if r.name == "analytics-worker").language == "python"
    assert next(r for r in results if r.name == "streaming-engine").language == "node"


# --- generated and sample services' own unit tests, on the host -----------------------


def run_unit_tests(folder: Path, language: str) -> subprocess.CompletedProcess:
    command = ["node", "--test", "tests/"] if language == "node" else \
        ["python3", "-m", "unittest", "discover", "-s", "tests"]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120, env=env)


def sample_language(name: str) -> str:
    return "node" if (SAMPLE_SERVICES / name / "package.json").is_file() else "python"


@pytest.mark.parametrize(("module", "language"), [("auth", "node"), ("puabo-ai-core", "python")])
def test_generated_service_unit_tests_pass_on_the_host(workdir, module, language):
    result = scaffold_service(workdir, module, "", SCAFFOLD_DEFAULTS)
    proc = run_unit_tests(result.path, language)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    if language == "node":
        assert re.search(r"^# pass [1-9]", output, re.M) and re.search(r"^# fail 0$", output, re.M), output
    else:
        assert re.search(r"^Ran [1-9]\d* tests", output, re.M) and "\nOK" in output, output


@pytest.mark.parametrize("name", SAMPLE_WITH_DOCKERFILE)
def test_sample_service_unit_tests_pass_on_the_host(name):
    proc = run_unit_tests(SAMPLE_SERVICES / name, sample_language(name))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", SAMPLE_WITH_DOCKERFILE)
def test_sample_service_openapi_is_valid_and_lists_health(name):
    doc = json.loads((SAMPLE_SERVICES / name / "openapi.json").read_text())
    assert {"/health", "/", "/openapi.json"} <= set(assert_openapi3(doc, name))


# --- real images: build, run, healthy, every GET path answers 200 ---------------------


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with NO_PROXY.open(f"http://127.0.0.1:{port}{path}", timeout=10) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def check_image_end_to_end(client, context: Path, name: str) -> None:
    """Build context, run its unit tests inside the image, start it with its port on
    127.0.0.1, wait for Docker to report it healthy, GET every path of its OpenAPI spec,
    and check `docker stop` is prompt. Removes the container and the tag afterwards."""
    tag = f"nexus-scaffold-test/{name}:{uuid.uuid4().hex[:10]}"
    language = "node" if (context / "package.json").is_file() else "python"
    container = None
    try:
        image, _ = client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        config = image.attrs["Config"]
        assert config["User"] == "10001"
        assert config["Healthcheck"]["Test"][0] == "CMD"  # exec form: no shell needed
        (exposed,) = config["ExposedPorts"]
        unit = ["node", "--test", "tests/"] if language == "node" else \
            ["python3", "-m", "unittest", "discover", "-s", "tests"]
        # containers.run raises ContainerError when the tests fail.
        client.containers.run(tag, unit, remove=True, stdout=True, stderr=True)

        container = client.containers.run(tag, detach=True, ports={exposed: ("127.0.0.1", None)})
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            container.reload()
            status = container.attrs["State"].get("Health", {}).get("Status")
            if status == "healthy" or container.status == "exited":
                break
            time.sleep(0.5)
        assert status == "healthy", f"{name}: health {status}, logs:\n{container.logs().decode(errors='replace')}"
        host_port = int(container.attrs["NetworkSettings"]["Ports"][exposed][0]["HostPort"])

        code, body = http_get(host_port, "/health")
        assert code == 200 and json.loads(body) == {"status": "ok", "service": name}
        spec = json.loads((context / "openapi.json").read_text())
        paths = assert_openapi3(spec, name)
        for path in paths:
            assert http_get(host_port, path)[0] == 200, f"{name}: GET {path}"
        assert http_get(host_port, "/no-such-path")[0] == 404

        started = time.monotonic()
        container.stop(timeout=10)
        assert time.monotonic() - started < 5, f"{name} ignored SIGTERM"
    finally:
        if container is not None:
            container.remove(force=True)
        with contextlib.suppress(Exception):
            client.images.remove(tag)  # by tag: an identical image another test tagged stays


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(("module", "language"), [("auth", "node"), ("puabo-ai-core", "python")])
def test_scaffolded_service_builds_and_is_healthy_in_docker(docker_client, workdir, module, language):
    result = scaffold_service(workdir, module, "Scaffolded in a test", SCAFFOLD_DEFAULTS)
    assert result.language == language
    check_image_end_to_end(docker_client, result.path, module)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("name", SAMPLE_WITH_DOCKERFILE)
def test_sample_service_builds_and_is_healthy_in_docker(docker_client, tmp_path, name):
    # Build from a copy so nothing is ever written into the package's own sample tree.
    context = tmp_path / name
    shutil.copytree(SAMPLE_SERVICES / name, context)
    check_image_end_to_end(docker_client, context, name)
