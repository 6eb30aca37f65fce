"""The terminal, for a person: at a terminal (a pseudo-terminal here) a run shows a live progress
view (stage, done/total per kind of work, failing, elapsed and an estimate) instead of a line per
service for its build, push, SBOM and provenance, which --verbose brings back; without a terminal
(a pipe, as in CI) the plain lines are printed as before."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nexus_assets.testrepos.synthetic import generate_monorepo
from tests.cli.ptyrun import run_at_terminal

ROOT = Path(__file__).resolve().parents[2]
AGENT = Path(sys.executable).parent / "nexus-agent"
BAR = "━"

# The prepare steps of the pipeline job on nexus_mini (no engine needed), as the UI would run them.
PREPARE = textwrap.dedent("""
    import sys
    from pathlib import Path
    import dagster as dg
    from nexus_assets.core.keys import PREPARE_KEYS
    from nexus_assets.core.settings import Settings
    from nexus_assets.definitions import PIPELINE_JOB, build_definitions
    root = Path(sys.argv[1])
    settings = Settings(repo=root / "repo", workdir=root / "work", registry="127.0.0.1:5999/t", version="1.0.0",
                        max_parallel=2)
    job = build_definitions(settings).resolve_job_def(PIPELINE_JOB)
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=list(PREPARE_KEYS))
    print("run ok" if result.success else "run failed")
""")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXUS_", "GITHUB_", "SLACK_"))}
    return {**env, "DAGSTER_HOME": str(tmp_path / "dagster_home")}


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "tests" / "fixtures" / "nexus_mini", tmp_path / "repo")
    return tmp_path


def test_at_a_terminal_the_steps_lines_print_above_a_live_view(mini):
    code, screen, raw = run_at_terminal([sys.executable, "-c", PREPARE, str(mini)], _env(mini), timeout=300)
    assert code == 0 and "run ok" in screen
    assert BAR in screen and "\x1b[" in raw, "a live view drawn with the terminal's escapes"
    assert "reports and release" in screen and "4/4" in screen and "stage: done" in screen
    assert "[nexus] parity 33.3%" in screen and "[nexus] scaffold: 6 created" in screen
    warning = "[nexus] WARNING services/drm: no Dockerfile"
    assert screen.count(warning) == 1, "each warning once, as a line of ours (never Dagster's raw line too)"
    assert "nexus_pipeline - " not in screen


def test_without_a_terminal_plain_lines_as_before(mini):
    done = subprocess.run([sys.executable, "-c", PREPARE, str(mini)], env=_env(mini), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "run ok" in done.stdout
    assert BAR not in done.stdout + done.stderr and "\x1b[" not in done.stdout
    lines = done.stdout.splitlines()
    assert "[nexus] scaffold: 6 created, 0 already there" in lines
    assert sum(line.startswith("[nexus] WARNING services/drm: no Dockerfile") for line in lines) == 1
    assert "nexus_pipeline - " not in done.stdout + done.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_a_cli_run_at_a_terminal_counts_services_and_verbose_names_each(tmp_path, unique_registry, remove_test_images):
    repo = tmp_path / "repo"
    generate_monorepo(repo, 2)
    args = [str(AGENT), "run", "--repo", str(repo), "--workdir", str(tmp_path / "work"), "--registry",
            unique_registry, "--version", "1.0.0"]
    code, screen, _ = run_at_terminal(args, _env(tmp_path))
    assert code == 0, screen[-3000:]
    for row in ("images built and tested", "images pushed", "SBOMs", "provenance signed"):
        assert row in screen, row
    assert "2/2" in screen and BAR in screen
    for hidden in ("[nexus] sbom/node-svc-001:", "[nexus] provenance/node-svc-002:", "[nexus] built node-svc-001 ",
                   "[nexus] pushed "):
        assert hidden not in screen, hidden
    assert "[nexus] manifest " in screen and "[nexus] release notes: " in screen, screen
    assert "[nexus] done in " in screen and "2 image(s) built" in screen

    code, screen, _ = run_at_terminal([*args, "--all", "--verbose"], _env(tmp_path))
    assert code == 0, screen[-3000:]
    # The attest steps' own lines show in verbose mode (an image rebuilt into the same id, as BuildKit
    # and the registry cache give, keeps its SBOM and statement: nothing is made again).
    assert "SBOM(s);" in screen and "[nexus] attestations: 2/2 images with signed provenance" in screen, screen[-3000:]
    # (--all: the registry cache has the tested image, so it is pulled rather than built)
    assert "[nexus] pulled node-svc-002 " in screen or "[nexus] built node-svc-002 " in screen
    assert BAR in screen
