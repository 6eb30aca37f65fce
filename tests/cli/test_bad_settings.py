"""Issue 16, cases 5, 6 and 7: a broken nexus-agent.toml, an out-of-range setting (in the file, a
flag or the environment) and a version that is not X.Y.Z are bad input: `nexus-agent run` exits 2
with one line naming the file or setting and what to do, before anything is built or written, and
never a default quietly put in the place of what was asked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.cli.pipeline import _root_cause
from nexus_assets.core.settings import Settings
from nexus_assets.target.repo_config import load_repo_config

NEXUS_AGENT = [sys.executable, "-m", "nexus_assets.cli"]
FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", target)
    return target


def _one_line(tmp_path: Path, repo: Path, *args: str, **env: str) -> str:
    """The run's error line: exit 2, one line on stderr, no traceback, no working copy made."""
    workdir = tmp_path / "w"
    done = subprocess.run([*NEXUS_AGENT, "run", "--repo", str(repo), "--workdir", str(workdir), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path / "dh"), **env})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert not workdir.exists(), "bad input must stop the run before the working copy is made"
    return lines[0]


def test_invalid_toml_is_exit_2_and_one_line_naming_the_file_and_line(tmp_path, repo):
    """It exited 1 with a bare `TOMLDecodeError` and no file name."""
    config = repo / "nexus-agent.toml"
    config.write_text("[parity]\nmax_critical_missing = 6\naliases = { auth = [\"auth-service\" }\n")
    line = _one_line(tmp_path, repo)
    assert line.startswith(f"nexus-agent: error: {config}: invalid TOML: ")
    assert "line 3" in line and "fix the file" in line


def test_a_toml_error_in_a_step_names_the_file_not_the_library_error(tmp_path):
    """`_root_cause` went down to the innermost cause (TOMLDecodeError, UnicodeDecodeError) and
    dropped the error that named the file; through Dagster's own wrapping of a failed step."""
    (tmp_path / "nexus-agent.toml").write_bytes(b"[parity]\nmax_critical_missing = \xff\n")

    @dg.asset
    def reads_the_config() -> None:
        load_repo_config(tmp_path)

    result = dg.materialize([reads_the_config], raise_on_error=False)
    (failure,) = result.get_step_failure_events()
    line = _root_cause(failure.step_failure_data.error, Settings(
        repo=tmp_path, workdir=tmp_path, registry="r", version="1.0.0", max_parallel=1))
    assert line == f"InputError: {tmp_path / 'nexus-agent.toml'}: not UTF-8 (byte 32); save it as UTF-8"


@pytest.mark.parametrize("text, named", [
    ("[parity]\nmax_critical_missing = -1\n", "[parity] max_critical_missing must be a whole number from 0 to 1000, got -1"),
    ("[parity]\nmax_critical_missing = 1000000000\n", "from 0 to 1000, got 1000000000"),
    ("[parity]\nmax_critical_missing = \"6\"\n", "got '6'"),
    ("[parity]\nmax_critical_missing = true\n", "got True"),
    ("[parity]\nmax_critcal_missing = 2\n", "[parity] has no setting 'max_critcal_missing'"),
    ("[parity]\ncritical = \"auth\"\naliases = [\"auth-service\"]\n", "[parity] aliases must map each module"),
    ("[parity]\ncritical = [1, 2]\n", "[parity] critical must be a list of module names"),
    ("parity = 5\n", "parity must be a table ([parity]), got 5"),
    ("[scaffold]\nmax_per_run = -5\n", "[scaffold] max_per_run must be a whole number from 0 to 1800, got -5"),
    ("[scaffold]\nmax_per_run = 99999\n", "from 0 to 1800, got 99999"),
    ("[scaffold]\ndefault_language = \"rust\"\n", "[scaffold] default_language must be one of node, python"),
    ("[scaffold]\npython = \"analytics*\"\n", "[scaffold] python must be a list of glob patterns"),
])
def test_out_of_range_repository_settings_are_exit_2_naming_file_and_setting(tmp_path, repo, text, named):
    """`max_critical_missing = -1` silently became 6 (looser than asked)."""
    (repo / "nexus-agent.toml").write_text(text)
    line = _one_line(tmp_path, repo)
    assert line.startswith(f"nexus-agent: error: {repo / 'nexus-agent.toml'}: ") and named in line, line


def test_the_bundled_sample_and_fixture_settings_are_valid():
    from nexus_assets.core.settings import SAMPLE_REPO

    assert load_repo_config(SAMPLE_REPO)["scaffold"]["max_per_run"] == 200
    assert load_repo_config(FIXTURES / "nexus_mini")["parity"]["max_critical_missing"] == 6


@pytest.mark.parametrize("args, env, named", [
    (["--max-parallel", "0"], {}, "max parallel builds (--max-parallel, NEXUS_MAX_PARALLEL) must be a whole "
                                  "number from 1 to 64, got 0"),
    (["--max-parallel", "100000"], {}, "from 1 to 64, got 100000"),
    ([], {"NEXUS_MAX_PARALLEL": "-3"}, "NEXUS_MAX_PARALLEL) must be a whole number from 1 to 64, got -3"),
    ([], {"NEXUS_MAX_PARALLEL": "many"}, "NEXUS_MAX_PARALLEL must be a whole number, got 'many': fix or unset it"),
    (["--max-parallel", "x"], {}, "argument --max-parallel: invalid int value: 'x'"),
    (["--test-timeout", "-1"], {}, "test timeout (--test-timeout, NEXUS_TEST_TIMEOUT) must be positive seconds "
                                   "up to 86400, got -1.0"),
    (["--test-timeout", "nan"], {}, "got nan"),
    ([], {"NEXUS_TEST_TIMEOUT": "inf"}, "NEXUS_TEST_TIMEOUT) must be positive seconds up to 86400, got inf"),
    ([], {"NEXUS_BUILD_TIMEOUT": "1e12"}, "NEXUS_BUILD_TIMEOUT) must be positive seconds up to 86400"),
    ([], {"NEXUS_LOCK_WAIT": "-1"}, "NEXUS_LOCK_WAIT must be 0 to 86400, got -1.0"),
    ([], {"NEXUS_PUSH_ATTEMPTS": "0"}, "NEXUS_PUSH_ATTEMPTS must be a whole number of tries"),
    ([], {"NEXUS_PUSH_ATTEMPTS": "100000"}, "NEXUS_PUSH_ATTEMPTS must be a whole number of tries"),
    # read when the image step starts; it failed that step (exit 1) after the prepare steps had run
    ([], {"NEXUS_BUILDER": "kaniko"}, "NEXUS_BUILDER='kaniko': choose one of auto, buildkit, classic"),
])
def test_out_of_range_flags_and_environment_are_exit_2_naming_the_setting(tmp_path, repo, args, env, named):
    line = _one_line(tmp_path, repo, *args, **env)
    assert line.startswith("nexus-agent: error: ") and named in line, line


@pytest.mark.parametrize("args, env", [
    (["--version", "1.0"], {}),
    ([], {"VERSION": "1.0"}),
    (["--version", "01.0.0"], {}),
    (["--version", "v1.0.0"], {}),
    (["--version", "1.0.0-rc1"], {}),
    (["--version", "1.0.0+build"], {}),
    (["--version", "1.0/evil"], {}),
])
def test_a_version_that_is_not_x_y_z_is_exit_2(tmp_path, repo, args, env):
    """`--version 1.0` was accepted, and a later run tagged verified_release_v1.0.0 on the same
    commit: one commit, two release tags."""
    version = args[1] if args else env["VERSION"]
    line = _one_line(tmp_path, repo, *args, **env)
    assert line == (f"nexus-agent: error: version {version!r} (--version, VERSION) is not X.Y.Z: give three "
                    "whole numbers without leading zeros, e.g. 1.2.0, or leave it out for the next patch")


def test_the_code_location_refuses_what_the_cli_refuses(tmp_path, repo, monkeypatch):
    """The UI and the sensor load the definitions from the environment: VERSION=1.0 there would
    release v1.0 beside a later v1.0.0 just the same."""
    from nexus_assets.core.errors import ConfigError
    from nexus_assets.definitions import build_definitions

    monkeypatch.setenv("NEXUS_REPO", str(repo))
    monkeypatch.setenv("NEXUS_WORKDIR", str(tmp_path / "w"))
    monkeypatch.setenv("VERSION", "1.0")
    with pytest.raises(ConfigError, match=r"version '1.0' \(--version, VERSION\) is not X.Y.Z"):
        build_definitions()
    monkeypatch.setenv("VERSION", "1.0.0")
    assert build_definitions().resolve_asset_graph().has(dg.AssetKey("discrepancy_report"))
