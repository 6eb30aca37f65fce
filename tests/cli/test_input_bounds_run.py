"""Issue 16, cases 4 and 10 through `nexus-agent run` on the real engine and registry: a synopsis
of 2,000 modules scaffolds nothing and says why in one line, run after run; a full disk while the
SBOMs are made names the file, never a bare `OSError: [Errno 28]`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexus_assets.testrepos.synthetic import generate_monorepo
from tests.conftest import mounted_tmpfs

pytestmark = [pytest.mark.docker]

NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]


def _run(repo: Path, workdir: Path, registry: str, home: Path) -> tuple[int, str]:
    done = subprocess.run([*NEXUS_AGENT, "run", "--repo", str(repo), "--workdir", str(workdir), "--registry", registry],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "DAGSTER_HOME": str(home)})
    return done.returncode, done.stdout + done.stderr


def test_a_synopsis_of_2000_modules_scaffolds_nothing_and_names_the_synopsis_and_count(tmp_path, unique_registry):
    """It scaffolded until "all 900 node scaffold ports are taken", left 900 folders in the working
    copy, and every later run planned 902 builds and failed the same way."""
    repo = tmp_path / "repo"
    generate_monorepo(repo, 1)
    synopsis = repo / "docs" / "investor_synopsis.md"
    synopsis.write_text("# Synopsis\n\n## Required Modules\n\n- **node-svc-001** - the one service\n"
                        + "".join(f"- **extra-{i:04d}** - module {i}\n" for i in range(2000)))
    workdir = tmp_path / "w"
    for attempt in ("first", "again"):
        code, text = _run(repo, workdir, unique_registry, tmp_path / "dh")
        assert code == 1, text
        assert "Traceback" not in text and "ports are taken" not in text
        failed = [line for line in text.splitlines() if " failed: " in line]
        assert failed == [
            f"[nexus] step scaffolded_services failed: InputError: {synopsis} lists 2000 modules the repository "
            "does not have, more than nexus-agent.toml [scaffold] max_per_run = 200 scaffolded in one run; nothing "
            "scaffolded: check the synopsis's Required Modules section, or raise max_per_run"], (attempt, text)
        assert [p.name for p in (workdir / "services").iterdir()] == ["node-svc-001"], attempt
        assert "1 service(s): 1 to build" in text  # never 902: nothing was scaffolded


def test_a_full_disk_while_making_sboms_names_the_file(tmp_path, unique_registry, remove_test_images):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 1)
    workdir = tmp_path / "w"
    sboms = workdir / "artifacts" / "sbom"
    with mounted_tmpfs(sboms, "256k", full=True):
        code, text = _run(repo, workdir, unique_registry, tmp_path / "dh")
        assert code == 1, text
        assert f"sbom/node-svc-001 FAILED: no space left on device: {sboms}/node-svc-001.cdx.json" in text, text
        assert "[Errno 28]" not in text and "Traceback" not in text
        assert sorted(p.name for p in sboms.iterdir()) == ["filler"]  # nothing half-written


def test_a_build_log_on_a_full_disk_is_named_and_not_taken_for_a_lost_engine(tmp_path, docker_client, unique_registry,
                                                                            remove_test_images):
    """A write to the build log that failed on a full disk was an OSError like a broken engine
    stream, so the service failed as `lost the Docker engine during the build`."""
    from nexus_assets.core.errors import no_space_line
    from nexus_assets.images.build import build_image, plan_build
    from nexus_assets.target.baseimages import load_base_image_map
    from nexus_assets.target.services import find_services

    folder = tmp_path / "repo" / "services" / "hello"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM nexus-base/bookworm:2\nRUN echo 'a line for the log'\n")
    service = next(s for s in find_services(tmp_path / "repo") if s.name == "hello")
    reports = tmp_path / "reports"
    with mounted_tmpfs(reports, "64k", full=True):
        plan = plan_build(service, docker_client, load_base_image_map())
        with pytest.raises(OSError) as caught:
            build_image(docker_client, plan, registry=unique_registry, version="1.0.0", revision=None, source=None,
                        log_path=reports / "build_hello.log")
        assert no_space_line(caught.value) == f"no space left on device: {reports}/build_hello.log"
