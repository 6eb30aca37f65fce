"""The engine side of the unit and integration stages: a service container (on a test network
of its own when it declares infrastructure, with no network otherwise), commands run inside
it (`docker exec`) with a time limit, and HTTP probes made from inside the engine, so that
they work the same wherever the step runs (on the host, or in a run launched in a container
that cannot reach the host's loopback). No port is ever published on the host.

Everything started here is named nexus-test-*, labelled io.nexus-assets.test=1 and
registered on the Stage that started it, whose cleanup removes it (containers, then the
network) whatever happens."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nexus_assets.testing.cleanup import OWNER_LABEL, TEST_LABEL, owner
from nexus_assets.testing.stage import Stage

if TYPE_CHECKING:  # docker is an untyped package: these are Any to mypy, names to the reader
    from docker import DockerClient
    from docker.models.containers import Container
    from docker.models.networks import Network

CONTAINER_PREFIX = "nexus-test-"
POLL = 0.1  # seconds between two looks at a container, and between two /health probes
# Where the probes call a service that has no network (it declares no infrastructure): from
# inside its own container, on a loopback address other than 127.0.0.1, so that a service
# listening on 127.0.0.1 alone (which nothing outside its container could reach) fails, as it
# did when it was called at its address on a test network.
LOOPBACK = "127.0.0.2"
STALE_NETWORK = 3600  # seconds after which an empty test network is taken as left behind
_NOT_FOUND = ("executable file not found", "no such file or directory")

# A tiny HTTP client for each interpreter a service image may have. Arguments: mode, base URL,
# seconds, paths. "wait": GET /health every 100 ms until it answers (any status) or the seconds
# run out (that line marked "wait"), then, if it answered, each path once (at most 5 s each);
# "get": each path once, at most `seconds` each. One JSON line per answer printed.
PY_PROBE = """
import json, sys, time, urllib.error, urllib.request as u
mode, base, limit, paths = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
opener = u.build_opener(u.ProxyHandler({}))
def get(path, seconds):
    try:
        with opener.open(base + path, timeout=seconds) as res:
            res.read()
            return res.status, ""
    except urllib.error.HTTPError as err:
        err.close()
        return err.code, ""
    except Exception as err:
        return None, str(getattr(err, "reason", err))
def say(path, answer, **more):
    print(json.dumps(dict({"path": path, "status": answer[0], "error": answer[1]}, **more)), flush=True)
if mode == "wait":
    end = time.monotonic() + limit
    while True:
        answer = get("/health", 1.0)
        if answer[0] is not None or time.monotonic() >= end:
            break
        time.sleep(0.1)
    say("/health", answer, wait=True)
    for path in paths if answer[0] is not None else []:
        say(path, get(path, 5.0))
else:
    for path in paths:
        say(path, get(path, limit))
"""

JS_PROBE = """
const http = require('http');
const [mode, base, limit, ...paths] = process.argv.slice(1);
const get = (path, seconds) => new Promise((done) => {
  const req = http.get(base + path, { timeout: seconds * 1000, agent: false }, (res) => {
    res.on('data', () => {});
    res.on('end', () => done([res.statusCode, '']));
    res.on('error', (err) => done([null, String(err.message)]));
  });
  req.on('timeout', () => req.destroy(new Error('timed out')));
  req.on('error', (err) => done([null, String(err.message)]));
});
const say = (path, [status, error], more = {}) => console.log(JSON.stringify({ path, status, error, ...more }));
(async () => {
  if (mode === 'wait') {
    const end = Date.now() + Number(limit) * 1000;
    let answer;
    for (;;) {
      answer = await get('/health', 1);
      if (answer[0] !== null || Date.now() >= end) break;
      await new Promise((wake) => setTimeout(wake, 100));
    }
    say('/health', answer, { wait: true });
    if (answer[0] !== null) for (const path of paths) say(path, await get(path, 5));
  } else {
    for (const path of paths) say(path, await get(path, Number(limit)));
  }
})();
"""

INTERPRETERS = {"python": ["python3", "-c", PY_PROBE], "node": ["node", "-e", JS_PROBE]}


def labels(st: Stage) -> dict[str, str]:
    """The test label, the service and stage, and the process that started it (so that what a
    killed run left behind can be told from a concurrent run's)."""
    return {TEST_LABEL: "1", "io.nexus-assets.service": st.name, "io.nexus-assets.stage": st.stage,
            OWNER_LABEL: owner()}


def container_logs(container: Container) -> str:
    try:
        return str(container.logs(stdout=True, stderr=True).decode("utf-8", "replace"))
    except Exception as exc:
        return f"(logs unavailable: {exc})"


def start_container(client: DockerClient, st: Stage, image_id: str, *, role: str = "", **kwargs: Any) -> Container:
    """Create and start a container, counted on st and removed by st.cleanup()."""
    name = f"{CONTAINER_PREFIX}{st.name.lower()}-{role or st.stage}-{uuid.uuid4().hex[:8]}"
    container = client.containers.create(image_id, name=name, labels=labels(st), **kwargs)
    st.running.append(container)  # registered before start, so even a failed start is removed
    st.containers += 1
    st.details.setdefault("container_id", container.id)
    st.write(f"# container {name} ({container.id[:12]}) from image {image_id}")
    container.start()
    return container


def create_network(client: DockerClient, st: Stage) -> Network:
    """A bridge network made for this test only: internal (no route out of the machine),
    removed by st.cleanup() after its containers. If the engine has no address range left
    (networks that killed runs left behind use them up), the test networks that have stood
    empty for more than STALE_NETWORK seconds are removed and the creation tried once more."""
    import docker.errors

    name = f"{CONTAINER_PREFIX}{uuid.uuid4().hex}"
    def create() -> Network:
        return client.networks.create(name, driver="bridge", internal=True, labels=labels(st), check_duplicate=True)

    try:
        network = create()
    except docker.errors.APIError as exc:
        if "address pool" not in str(exc):
            raise
        st.write(f"# {exc}: removing test networks left behind")
        remove_stale_networks(client, st)
        network = create()
    st.networks.append(network)
    st.details["network"] = name
    st.write(f"# network {name} (internal)")
    return network


def remove_stale_networks(client: DockerClient, st: Stage) -> None:
    """Remove the test networks with no container that are older than STALE_NETWORK seconds
    (a younger one may be a concurrent stage's, about to get its container)."""
    now = datetime.now(UTC)
    for network in client.networks.list(filters={"label": f"{TEST_LABEL}=1"}):
        try:
            network.reload()
            created = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", network.attrs["Created"]).replace("Z", "+00:00"))
            if not network.attrs.get("Containers") and (now - created).total_seconds() > STALE_NETWORK:
                network.remove()
                st.write(f"# removed test network {network.name} left behind (created {network.attrs['Created']})")
        except Exception as exc:  # in use after all, or gone already
            st.write(f"# kept test network {network.name}: {exc}")


def exec_in(client: DockerClient, container: Container, cmd: list[str], limit: float, *,
            environment: dict[str, Any] | None = None) -> tuple[int | None, str]:
    """Run cmd inside the running container: (exit code, output). The exit code is None when
    the command had not finished after `limit` seconds; it is then left running (it ends
    with its container). An engine refusal (container not running) raises APIError."""
    api = client.api
    exec_id = api.exec_create(container.id, cmd, environment=environment)["Id"]
    chunks: list[bytes] = []

    def pump() -> None:
        try:
            for chunk in api.exec_start(exec_id, stream=True):
                chunks.append(chunk)
        except Exception as exc:  # the stream broke (container removed, socket timeout)
            chunks.append(f"\n(output stream ended: {exc})\n".encode())

    deadline = time.monotonic() + limit
    reader = threading.Thread(target=pump, name=f"exec-{exec_id[:12]}", daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    pause = 0.005  # the engine records the exit a moment after the output ends: look again soon
    while True:  # the stream has ended (or the time is up): has the command?
        state = api.exec_inspect(exec_id)
        if not state.get("Running"):
            reader.join(1.0)
            return state.get("ExitCode"), b"".join(chunks).decode("utf-8", "replace")
        if time.monotonic() >= deadline:
            return None, b"".join(chunks).decode("utf-8", "replace")
        time.sleep(pause)
        pause = min(pause * 2, POLL)


def missing_executable(code: int | None, output: str) -> bool:
    return code in (126, 127) and any(text in output.lower() for text in _NOT_FOUND)


def answers(output: str) -> list[dict[str, Any]]:
    """The probe's JSON lines (anything else the interpreter printed is ignored)."""
    found = []
    for line in output.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "path" in item:
            found.append(item)
    return found


class Prober:
    """Runs the probe script inside the service container with the image's own interpreter
    (node or python3, whichever it has, the service's language first); an image with neither
    is probed from a one-off container of the base image on the same network, or, when the
    service has none (network None), in the service container's own network namespace."""

    def __init__(self, client: DockerClient, st: Stage, container: Container, network: Network | None, language: str,
                 base_image: str | Callable[[], str]) -> None:
        self.client, self.st, self.container, self.network = client, st, container, network
        self.base_image = base_image
        order = [language] if language in INTERPRETERS else []
        self.candidates = order + [lang for lang in INTERPRETERS if lang not in order]
        self.how: str | None = None

    def run(self, args: list[str], limit: float) -> tuple[int | None, list[dict[str, Any]], str]:
        """(exit code or None if over time, answers, raw output)."""
        while self.candidates:
            command = INTERPRETERS[self.candidates[0]]
            code, output = exec_in(self.client, self.container, command + args, limit)
            if not missing_executable(code, output):
                if self.how is None:
                    self.how = f"{command[0]} inside the service container"
                    self.st.details["probe"] = self.how
                return code, answers(output), output
            self.st.write(f"# the image has no {command[0]}: {output.strip()[:160]}")
            self.candidates.pop(0)
        return self._from_base_image(args, limit)

    def _from_base_image(self, args: list[str], limit: float) -> tuple[int | None, list[dict[str, Any]], str]:
        if callable(self.base_image):  # read the base-image map only when it is needed
            self.base_image = self.base_image()
        self.st.details["probe"] = self.how = f"python3 in a probe container of {self.base_image}"
        where = ({"network": self.network.name} if self.network is not None
                 else {"network_mode": f"container:{self.container.id}"})
        probe = start_container(self.client, self.st, self.base_image, role="probe",
                                command=INTERPRETERS["python"] + args, **where)
        deadline = time.monotonic() + limit
        try:
            while time.monotonic() < deadline:
                probe.reload()
                if probe.attrs["State"]["Status"] in ("exited", "dead"):
                    output = container_logs(probe)
                    return probe.attrs["State"].get("ExitCode"), answers(output), output
                time.sleep(POLL)
            output = container_logs(probe)
            return None, answers(output), output
        finally:
            try:
                probe.remove(force=True, v=True)
                self.st.running.remove(probe)
            except Exception as exc:  # left registered: the stage's cleanup tries again
                self.st.write(f"# could not remove probe container {probe.id[:12]}: {exc}")


def healthcheck_command(config: dict[str, Any]) -> list[str] | None:
    """The image's HEALTHCHECK as an exec command, or None if it has none."""
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test[1:]) if test[0] == "CMD" else list(test)
