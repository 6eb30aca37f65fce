"""Image builds through the engine's BuildKit (the docker CLI 20.10, DOCKER_BUILDKIT=1): the
Dockerfile line of a failing step, cache mounts, the deadline stopping the build in the engine,
the layer cache's hits, and the fallback to the classic builder said once."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from nexus_assets.core.errors import BuildError, ConfigError
from nexus_assets.core.settings import builder_setting
from nexus_assets.images import buildkit
from nexus_assets.images.build import build_image, plan_build
from nexus_assets.images.buildkit import Builder
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import find_services
from tests.conftest import wait_until

# The engine's BuildKit (20.10) as it printed a failed build here.
PLAIN_FAILED = """#4 [stage-0 1/5] FROM docker.io/library/python:3.11-slim
#4 DONE 0.1s

#6 [stage-0 2/5] COPY app.py /app.py
#6 CACHED

#7 [stage-0 3/5] RUN echo hello 1
#7 0.423 hello 1
#7 DONE 0.6s

#9 [stage-0 5/5] RUN sh -c "exit 7"
#9 ERROR: executor failed running [/bin/sh -c sh -c "exit 7"]: exit code: 7
------
 > [stage-0 5/5] RUN sh -c "exit 7":
------
executor failed running [/bin/sh -c sh -c "exit 7"]: exit code: 7
"""


def _service(repo: Path, name: str, dockerfile: str, **files: str):
    folder = repo / "services" / name
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "app.py").write_text("print('ok')\n")
    for file, text in files.items():
        (folder / file).write_text(text)
    return next(s for s in find_services(repo) if s.name == name)


def _build(docker_client, service, registry, log: Path, **kwargs):
    plan = plan_build(service, docker_client, load_base_image_map())
    return build_image(docker_client, plan, registry=registry, version="1.0.0", revision=None,
                       source=f"services/{service.name}", log_path=log, **kwargs)


def test_the_plain_output_gives_steps_cache_hits_and_the_failure_in_classic_words(tmp_path):
    counts = buildkit.count_steps(PLAIN_FAILED)
    assert (counts.steps, counts.cached) == (3, 1)  # FROM is not a step of its own
    step, named, error = buildkit.failure(PLAIN_FAILED)
    assert step == ("stage-0", 5, 'RUN sh -c "exit 7"') and named is None
    assert error == """The command '/bin/sh -c sh -c "exit 7"' returned a non-zero code: 7"""
    newer = 'ERROR [build 2/2] RUN false\nDockerfile:4\nERROR: failed to solve: process "/bin/sh -c false" ' \
            'did not complete successfully: exit code: 1\n'
    assert buildkit.failure(newer) == (("build", 2, "RUN false"), 4, "The command '/bin/sh -c false' returned a "
                                                                      "non-zero code: 1")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG V=1\nFROM base AS build\nENV A=1\nRUN true\nLABEL x=y\nRUN \\\n  false\n"
                          "FROM base\nCOPY --from=build /a /a\nRUN false\n")
    assert buildkit.step_line(dockerfile, ("build", 3, "RUN false")) == 6
    assert buildkit.step_line(dockerfile, ("stage-1", 3, "RUN false")) == 10
    assert buildkit.step_line(dockerfile, ("stage-1", 3, "COPY x")) is None  # not that instruction
    assert buildkit.step_line(dockerfile, (None, 2, "RUN true")) is None  # two stages: which one?


def test_the_setting_is_checked_and_forced_classic_probes_nothing():
    assert builder_setting({}) == "auto"
    assert builder_setting({"NEXUS_BUILDER": " BuildKit "}) == "buildkit"
    with pytest.raises(ConfigError, match="NEXUS_BUILDER='kaniko': choose one of auto, buildkit, classic"):
        builder_setting({"NEXUS_BUILDER": "kaniko"})
    said: list[str] = []
    assert Builder("classic", say=said.append).kind == "classic" and said == ["builder: classic (NEXUS_BUILDER=classic)"]


@pytest.mark.docker
def test_a_failing_run_names_its_dockerfile_line_through_buildkit(tmp_path, docker_client, unique_registry,
                                                                  remove_test_images):
    dockerfile = ("FROM python:3.11-slim AS build\nARG FLAVOUR=plain\nENV MODE=$FLAVOUR\nWORKDIR /src\n"
                  "COPY app.py .\nLABEL stage=build\nRUN echo \"flavour $FLAVOUR\" \\\n    && sh -c 'exit 7'\n"
                  "FROM python:3.11-slim\nCOPY --from=build /src/app.py /app.py\n")
    service = _service(tmp_path / "repo", "breaks", dockerfile)
    log = tmp_path / "build_breaks.log"
    said: list[str] = []
    builder = Builder("auto", say=said.append)
    assert builder.kind == "buildkit", said
    with pytest.raises(BuildError) as info:
        _build(docker_client, service, unique_registry, log, builder=builder)
    assert str(info.value).startswith(f"service breaks: docker build failed at {service.dockerfile} line 7: "
                                      "The command '/bin/sh -c echo \"flavour $FLAVOUR\"")
    assert "returned a non-zero code: 7" in str(info.value) and str(log) in str(info.value)
    text = log.read_text()
    assert "[build 4/4] RUN echo" in text and "flavour plain" in text  # BuildKit's plain output is the log


@pytest.mark.docker
def test_cache_mounts_work_and_a_rebuild_counts_its_cache_hits(tmp_path, docker_client, unique_registry,
                                                              remove_test_images):
    cache_id = f"nexus-test-{uuid.uuid4().hex[:8]}"
    first = _service(tmp_path / "repo", "writer", "FROM python:3.11-slim\nCOPY unique.txt /unique.txt\n"
                     f"RUN --mount=type=cache,target=/cache,id={cache_id} echo {cache_id} > /cache/seen\n",
                     **{"unique.txt": cache_id})
    built = _build(docker_client, first, unique_registry, tmp_path / "writer.log")
    assert built["builder"] == "buildkit" and built["layer_cache"] == {"steps": 2, "cached": 0}
    # Another image reads what the first left in the cache mount: it outlives the build.
    reader = _service(tmp_path / "repo", "reader", "FROM python:3.11-slim\n"
                      f"RUN --mount=type=cache,target=/cache,id={cache_id} cp /cache/seen /seen\n"
                      'CMD ["cat", "/seen"]\n')
    read = _build(docker_client, reader, unique_registry, tmp_path / "reader.log")
    assert docker_client.containers.run(read["image_id"], remove=True).decode().strip() == cache_id

    again = _build(docker_client, first, unique_registry, tmp_path / "writer-again.log")
    assert again["image_id"] == built["image_id"]
    assert again["layer_cache"] == {"steps": 2, "cached": 2}
    assert "CACHED" in (tmp_path / "writer-again.log").read_text()


def _running(marker: str) -> bool:
    """A process whose command line holds marker is running on this host (BuildKit's RUN steps are)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                return True
        except OSError:
            continue
    return False


@pytest.mark.docker
def test_the_deadline_stops_the_build_in_the_engine(tmp_path, docker_client, unique_registry, remove_test_images):
    marker = f"{4_000_000 + uuid.uuid4().int % 1_000_000}"  # a sleep no one else runs
    service = _service(tmp_path / "repo", "hangs", f"FROM python:3.11-slim\nRUN sleep {marker}\n")
    log = tmp_path / "build_hangs.log"
    seen: list[bool] = []
    started = time.monotonic()
    with pytest.raises(BuildError, match=r"service hangs: build timed out after 6s"):
        import threading

        def watch() -> None:  # the step really ran in the engine before the deadline
            while time.monotonic() - started < 6 and not seen:
                if _running(f"sleep {marker}"):
                    seen.append(True)
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _build(docker_client, service, unique_registry, log, timeout=6)
    watcher.join()
    assert seen, "the RUN step never started"
    assert time.monotonic() - started < 6 + buildkit.STOP_GRACE_SECONDS + 5
    wait_until(lambda: not _running(f"sleep {marker}"), 15, "the engine to stop the RUN step")
    assert "ERROR: build timed out after 6s" in log.read_text()


@pytest.mark.docker
def test_without_buildkit_the_run_builds_classic_and_says_so_once(tmp_path, docker_client, unique_registry,
                                                                  remove_test_images, monkeypatch):
    monkeypatch.setattr(buildkit, "DOCKER_CLI", tmp_path / "no-such-docker")
    said: list[str] = []
    builder = Builder("auto", say=said.append)
    repo = tmp_path / "repo"
    results = [_build(docker_client, _service(repo, name, "FROM python:3.11-slim\nCOPY app.py /app.py\n"),
                      unique_registry, tmp_path / f"{name}.log", builder=builder) for name in ("one", "two")]
    assert [r["builder"] for r in results] == ["classic", "classic"]
    assert said == [f"builder: classic, BuildKit is not available here: no docker CLI at {tmp_path / 'no-such-docker'} "
                    "(scripts/bootstrap.sh installs Debian's docker.io)"]
    # The engine refusing BuildKit mid-run turns the rest of the run classic, said once too.
    monkeypatch.undo()
    later = Builder("auto", say=said.append)
    assert later.refused("buildkit not supported by daemon") and later.refused("again") and later.kind == "classic"
    assert said[-1] == "builder: classic from now on, the engine refused BuildKit: buildkit not supported by daemon"
    assert len(said) == 3  # the first Builder's line, the second's BuildKit line, its one fallback
    forced = Builder("buildkit")
    assert forced.refused("buildkit not supported by daemon") is False  # forced: the build fails instead


@pytest.mark.docker
def test_a_killed_nexus_agent_leaves_no_build_running(tmp_path):
    """kill -9 of the process that runs the CLI kills the CLI too (setpriv's parent-death signal), and
    the engine drops the build whose session went away."""
    import signal
    import subprocess
    import sys

    marker = f"{5_000_000 + uuid.uuid4().int % 1_000_000}"
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.11-slim\nRUN sleep {marker}\n")
    script = ("import sys\nfrom pathlib import Path\nfrom nexus_assets.images import buildkit\n"
              f"ctx = Path({str(tmp_path)!r})\n"
              "argv = buildkit.command(ctx, None, 'nexus-test-killed:1', {}, {}, ctx / 'iid')\n"
              "buildkit.run_build(argv, sys.stdout, lambda text: text)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _running(f"sleep {marker}"), 60, "the RUN step to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wait_until(lambda: not _running(f"sleep {marker}"), 15, "the engine to drop the killed client's build")
