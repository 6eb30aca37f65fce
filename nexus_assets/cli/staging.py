"""`nexus-agent run --deploy-staging` and `nexus-agent audit`: thin clients of the deploy stage's
jobs (`staging_deploy`, `staging_audit`), run in this process on the persistent instance so the
UI shows the deployment and the audit as it shows every other run."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, cast

from nexus_assets.core.errors import ConfigError
from nexus_assets.core.settings import Settings

if TYPE_CHECKING:  # annotations only: importing Dagster costs every nexus-agent call ~1 s
    import dagster as dg

FLAGS = (("--staging-host", "host", "user@host[:port] (NEXUS_STAGING_HOST)"),
         ("--staging-ssh-key", "ssh_key", "the private key (NEXUS_STAGING_SSH_KEY)"),
         ("--staging-known-hosts", "known_hosts", "known_hosts pinning the host key (NEXUS_STAGING_KNOWN_HOSTS)"),
         ("--staging-dir", "dir", "the deploy folder on the host (NEXUS_STAGING_DIR; default /opt/nexus-cos)"))


def add_flags(cmd: argparse.ArgumentParser, deploy: bool) -> None:
    for flag, _, text in FLAGS:
        cmd.add_argument(flag, help=text)
    if deploy:
        cmd.add_argument("--staging-env-file", help="the service secrets for the host's .env (NEXUS_STAGING_ENV_FILE)")
        cmd.add_argument("--health-timeout", help="seconds to wait for health (NEXUS_HEALTH_TIMEOUT; default 30)")


def _config(args: argparse.Namespace, deploy: bool) -> dict[str, str]:
    config = {field: getattr(args, flag[2:].replace("-", "_")) or "" for flag, field, _ in FLAGS}
    if deploy:
        config["env_file"] = args.staging_env_file or ""
        config["health_timeout"] = args.health_timeout or ""
    # bad settings end here, before Dagster is loaded (exit 2); imported here, not at the top: the
    # resources package loads Dagster and paramiko, which `nexus-agent run` with nothing changed never needs
    from nexus_assets.resources.staging import staging_settings

    staging_settings(**config, need_env_file=deploy)
    return {k: v for k, v in config.items() if v}


def check_settings(args: argparse.Namespace) -> None:
    _config(args, deploy=True)


def _run(settings: Settings, job: str, config: dict[str, str]) -> dg.ExecuteInProcessResult:
    from nexus_assets.cli.pipeline import CONSOLE, open_instance
    from nexus_assets.definitions import definitions_for
    from nexus_assets.target.services import build_services

    defs = definitions_for(settings, build_services(settings))  # the run's graph, when `run --deploy-staging`
    run_config = {**CONSOLE, "resources": {"staging_host": {"config": config}}} if config else CONSOLE
    return defs.resolve_job_def(job).execute_in_process(instance=open_instance(settings), raise_on_error=False,
                                                        run_config=run_config, tags={"nexus/origin": "cli"})


def _failure(result: dg.ExecuteInProcessResult) -> str | None:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return str(error.message).strip()
    return None


def deploy_staging(settings: Settings, args: argparse.Namespace) -> int:
    """0 when the release is deployed and its audit passed; 1 when the deploy or its audit failed
    (saying what was rolled back); settings errors raise ConfigError (exit 2)."""
    config = _config(args, deploy=True)
    print("[nexus] deploying the verified release to the staging host", flush=True)
    result = _run(settings, "staging_deploy", config)
    evaluations = result.get_asset_check_evaluations()
    for evaluation in evaluations:  # the audit's verdict says what failed and what was rolled back
        verdict = "passed" if evaluation.passed else "FAILED"
        print(f"[nexus] check staging_deployment:{evaluation.check_name} {verdict}: {evaluation.description}",
              flush=True)
    if not evaluations:  # the step broke before an audit: the host unreachable, refused, ...
        print(f"[nexus] staging deploy FAILED: {_failure(result) or 'no audit was made'}", flush=True)
        return 1
    return 0 if all(e.passed for e in evaluations) else 1


def audit(args: argparse.Namespace) -> int:
    """The drift audit: 0 when the host matches its release, 1 naming each drift, 2 on bad settings."""
    try:
        config = _config(args, deploy=False)
        settings = Settings.from_env(workdir=args.workdir)
    except ConfigError as exc:
        print(f"nexus-agent: error: {exc}", file=sys.stderr)
        return 2
    result = _run(settings, "staging_audit", config)
    failure = _failure(result)
    if failure:
        print(f"nexus-agent: error: {failure}", file=sys.stderr)
        return 2
    [evaluation] = result.get_asset_check_evaluations()
    audit_json = evaluation.metadata.get("audit")
    found: dict[str, Any] = cast(dict[str, Any], audit_json.value) if audit_json is not None else {}  # a JSON value
    for drift in found.get("drifts") or []:
        print(f"DRIFT {drift}")
    for row in found.get("services") or []:
        if row.get("ok"):
            print(f"ok    {row['service']}: {row['state']}, health {row['health']}, {row['running']}")
    print(f"[nexus] audit of {found.get('release')}: " +
          ("matches the host" if evaluation.passed else f"{len(found.get('drifts') or [])} drift(s)"))
    return 0 if evaluation.passed else 1
