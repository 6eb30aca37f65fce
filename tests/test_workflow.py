"""The GitHub Actions workflow (.github/workflows/nexus-agent.yml): actionlint passes on it (and
fails on a broken copy), its scripts pass shellcheck, and its `run:` blocks execute in order on
this machine as a runner would run them: GITHUB_WORKSPACE, RUNNER_TEMP, a GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY file per step, the inputs, variables and secrets set to local values (the
registry of the test session, a local GitHub API, a local Slack receiver), on a one-service
repository; then what each step wrote is checked, and the upload steps' paths exist."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nexus_assets.testrepos.synthetic import generate_monorepo
from tests.automation.receiver import Receiver
from tests.release.fake_github import FakeGitHub

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "nexus-agent.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps() -> list[dict]:
    return _workflow()["jobs"]["pipeline"]["steps"]


def test_actionlint_passes_on_the_workflow_and_fails_on_a_broken_copy(tmp_path):
    assert ACTIONLINT.is_file(), "actionlint comes with the dev dependencies (pyproject.toml)"
    assert shutil.which("shellcheck"), "actionlint checks the run: blocks with shellcheck (bootstrap installs it)"
    done = subprocess.run([str(ACTIONLINT), str(WORKFLOW)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("${{ inputs.version }}", "${{ inputs.versoin }}"))
    done = subprocess.run([str(ACTIONLINT), str(broken)], capture_output=True, text=True)
    assert done.returncode == 1 and "versoin" in done.stdout


def test_ci_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in (ROOT / "scripts" / "ci").glob("*.sh"))
    assert len(scripts) == 3
    done = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_triggers_inputs_and_secrets():
    workflow = _workflow()
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert triggers["push"] == {"branches": ["main"]}
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["deploy_staging"]["type"] == "boolean" and inputs["deploy_staging"]["default"] is False
    assert inputs["version"]["type"] == "string" and not inputs["version"]["required"]
    assert workflow["jobs"]["pipeline"]["runs-on"] == "ubuntu-latest"
    env = next(s for s in _steps() if s.get("id") == "pipeline")["env"]
    for name in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD", "DOCKER_REGISTRY_TOKEN", "STAGING_HOST", "STAGING_SSH_KEY",
                 "STAGING_KNOWN_HOSTS", "STAGING_ENV", "SLACK_WEBHOOK_URL"):
        assert env[name] == f"${{{{ secrets.{name} }}}}", name
    assert env["VERSION"] == "${{ inputs.version }}" and env["DEPLOY_STAGING"] == "${{ inputs.deploy_staging }}"
    for step in _steps():  # thin run: blocks, each a script that runs the same by hand
        if "run" in step:
            assert re.fullmatch(r"bash scripts/ci/\w+\.sh", step["run"].strip()), step["run"]
    uploads = {s["with"]["name"]: s["with"]["path"] for s in _steps() if s.get("uses", "").startswith("actions/upload-artifact")}
    assert uploads["nexus-reports"] == "${{ steps.pipeline.outputs.reports }}"
    assert uploads["nexus-artifacts"] == "${{ steps.pipeline.outputs.artifacts }}"


class Contexts:
    """The few expressions the workflow uses: dotted names, `a || b`, `a != ''`, `&&`, always()."""

    def __init__(self, **contexts: dict) -> None:
        self.contexts = contexts

    def value(self, expr: str) -> str:
        expr = expr.strip()
        if "||" in expr:
            return next((v for v in (self.value(part) for part in expr.split("||")) if v), "")
        node: object = self.contexts
        for part in expr.split("."):
            node = node.get(part, "") if isinstance(node, dict) else ""
        return str(node).lower() if isinstance(node, bool) else str(node or "")

    def render(self, text: str) -> str:
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: self.value(m.group(1)), str(text))

    def condition(self, expr: str | None) -> bool:
        if expr is None:
            return True
        results = []
        for part in expr.split("&&"):
            part = part.strip()
            if part == "always()":
                results.append(True)
            elif part.endswith("!= ''"):
                results.append(self.value(part[: -len("!= ''")]) != "")
            else:
                raise AssertionError(f"expression this test does not evaluate: {part}")
        return all(results)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=t@example.invalid", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.docker
@pytest.mark.slow
def test_the_run_blocks_execute_in_order_on_this_machine(tmp_path, unique_registry, registry_credentials,
                                                         remove_test_images):
    workspace, temp = tmp_path / "workspace", tmp_path / "runner_temp"
    workspace.mkdir()
    temp.mkdir()
    (workspace / "nexus-assets").symlink_to(ROOT)  # actions/checkout, path: nexus-assets
    target = workspace / "nexus-cos"  # actions/checkout of vars.NEXUS_COS_REPOSITORY, path: nexus-cos
    generate_monorepo(target, 1)
    subprocess.run(["git", "init", "-q", "-b", "main", str(target)], check=True)
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "one service")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    _git(target, "remote", "add", "origin", str(origin))
    _git(target, "push", "-q", "origin", "main")

    token, outputs, summaries, logs = "ghp_t0k3nThatMustNotLeak", {}, {}, {}
    with FakeGitHub(token, "acme/nexus-cos") as github, Receiver() as slack:
        contexts = Contexts(
            inputs={"deploy_staging": False, "version": "2.0.0"},
            vars={"NEXUS_COS_REPOSITORY": "acme/nexus-cos", "REGISTRY": unique_registry,
                  "NEXUS_CI_PYTEST_ARGS": "tests/core/test_hashing.py"},
            secrets={"REGISTRY_USERNAME": registry_credentials[0], "REGISTRY_PASSWORD": registry_credentials[1],
                     "NEXUS_COS_TOKEN": token, "SLACK_WEBHOOK_URL": slack.url},
            github={"token": "ghs_runner_token", "workspace": str(workspace), "ref": "refs/heads/main"},
            runner={"temp": str(temp)}, steps={})
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("GITHUB_", "NEXUS_", "REGISTRY", "DOCKER_REGISTRY", "DAGSTER_", "SLACK_"))
                and k not in ("VERSION", "RUNNER_TEMP")}
        base.update(GITHUB_WORKSPACE=str(workspace), RUNNER_TEMP=str(temp), GITHUB_REPOSITORY="acme/nexus-assets",
                    GITHUB_SERVER_URL="https://github.com", GITHUB_RUN_ID="4242",
                    GITHUB_WORKFLOW_REF="acme/nexus-assets/.github/workflows/nexus-agent.yml@refs/heads/main", GITHUB_API_URL=github.url,
                    GITHUB_ACTIONS="true", CI="true", GITHUB_EVENT_NAME="workflow_dispatch",
                    GITHUB_ENV=str(temp / "github_env"))
        defaults = _workflow()["defaults"]["run"]
        for index, step in enumerate(_steps()):
            if not contexts.condition(step.get("if")):
                continue
            if "uses" in step:
                if step["uses"].startswith("actions/upload-artifact"):  # what it would upload exists
                    path = Path(contexts.render(step["with"]["path"]))
                    assert path.is_dir() and any(path.iterdir()), f"{step['name']}: {path}"
                continue
            files = {k: temp / f"step{index}_{k.lower()}" for k in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
            for path in files.values():
                path.touch()
            env = {**base, **{k: str(v) for k, v in files.items()},
                   **{k: contexts.render(v) for k, v in (step.get("env") or {}).items()}}
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=workspace / defaults["working-directory"], env=env, capture_output=True,
                                  text=True, timeout=900)
            name = step.get("id") or step["name"]
            logs[name] = done.stdout + done.stderr
            assert done.returncode == 0, f"{step['name']} exited {done.returncode}:\n{logs[name][-3000:]}"
            outputs[name] = dict(line.split("=", 1) for line in files["GITHUB_OUTPUT"].read_text().splitlines())
            summaries[name] = files["GITHUB_STEP_SUMMARY"].read_text()
            if "id" in step:
                contexts.contexts["steps"][step["id"]] = {"outputs": outputs[name]}
        release = github.release("verified_release_v2.0.0")
        messages = list(slack.messages)

    # The set-up and test steps: their summaries
    setup, tests = (summaries[s["name"]] for s in _steps() if s.get("run") and "id" not in s)
    assert "### Set-up" in setup and "ready in" in setup
    assert "`scripts/test.sh tests/core/test_hashing.py`: passed" in tests
    # The pipeline step: outputs for the uploads, the run's own summary, the release on "GitHub"
    out = outputs["pipeline"]
    workdir = temp / "nexus_agent"
    assert out["workdir"] == str(workdir) and out["exit_code"] == "0"
    assert (Path(out["reports"]) / "discovery_parsed.json").is_file()
    assert (Path(out["artifacts"]) / "artifacts_manifest.json").is_file()
    assert out["tag"] == "verified_release_v2.0.0" and out["released"] == "true" and out["version"] == "2.0.0"
    assert Path(out["release_folder"]).is_dir()
    summary = summaries["pipeline"]
    run_ids = json.loads((temp / "nexus-run-summary.json").read_text())["run_ids"]
    assert f"## Nexus pipeline: run `{run_ids[-1][:8]}` succeeded" in summary
    assert "started from cli" in summary
    assert "| built | 1 | node-svc-001 |" in summary
    assert "| `image/node-svc-001:unit` | passed |" in summary
    assert "verified_release_v2.0.0 made, GitHub Release https://github.com/acme/nexus-cos/releases/tag/" in summary
    assert "(https://github.com/acme/nexus-assets/actions/runs/4242#artifacts)" in summary
    assert release is not None and {a["name"] for a in release["assets"]} >= {"artifacts_manifest.json"}
    assert out["github_release"] == "https://github.com/acme/nexus-cos/releases/tag/verified_release_v2.0.0"
    assert _git(origin, "tag", "--list") == "verified_release_v2.0.0", "the release tag went back to origin"
    # No terminal on a runner: the plain lines, one per service as before
    assert "[nexus] sbom/node-svc-001: " in logs["pipeline"] and "━" not in logs["pipeline"]
    # Slack: each run of the CLI announced once at its start and once at its end
    assert sum("started" in m for m in messages) == len(run_ids) == sum("succeeded" in m for m in messages)
    assert "verified_release_v2.0.0 made" in messages[-1]
    for text in [*logs.values(), *summaries.values(), *messages]:
        assert token not in text and "s3cr3tW3bh00kT0k3n" not in text
