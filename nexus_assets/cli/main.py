"""nexus-agent: the operator's one command. `nexus-agent run` materializes what is stale,
prints progress a person can follow, and exits non-zero when a blocking gate fails."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

from nexus_assets.cli import staging
from nexus_assets.cli.outcome import RunSummary
from nexus_assets.core.errors import NexusError, no_space_line
from nexus_assets.core.fileio import write_json
from nexus_assets.core.report_paths import ARTIFACTS_MANIFEST_FILE
from nexus_assets.core.settings import Settings

EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: builds and test containers stopped


class _Parser(argparse.ArgumentParser):
    """Bad flags are bad input like any other: exit 2 and one line (argparse prints its usage too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"nexus-agent: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nexus-agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "materialize every stale asset of the pipeline"),
                       ("status", "show which service images are stale, and why")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--repo", help="target Nexus COS checkout (NEXUS_REPO; default: the bundled sample)")
        cmd.add_argument("--workdir", help="working copy, reports and artifacts (NEXUS_WORKDIR; default /tmp/nexus_agent)")
        cmd.add_argument("--registry", help="image registry host[:port][/path] to push to (REGISTRY; default "
                                               "127.0.0.1:5000); credentials from REGISTRY_USERNAME and "
                                               "REGISTRY_PASSWORD, or DOCKER_REGISTRY_TOKEN")
        cmd.add_argument("--version", help="release version X.Y.Z (VERSION; default: the next patch after the "
                                           "target's last verified_release_vX.Y.Z tag, 1.0.0 for the first)")
        cmd.add_argument("--max-parallel", type=int, help="concurrent builds (NEXUS_MAX_PARALLEL; default 4)")
        cmd.add_argument("--test-timeout", type=float,
                         help="seconds per test stage and service (NEXUS_TEST_TIMEOUT; default 120)")
        cmd.add_argument("--compose-file", help="the compose file that is the stack to build, relative to the "
                                                "repository (NEXUS_COMPOSE_FILE; default docker-compose.yml)")
        cmd.add_argument("--build-timeout", type=float,
                         help="seconds per image build before it is stopped and fails (NEXUS_BUILD_TIMEOUT; default 1800)")
        cmd.add_argument("--evidence-url", help="base URL of the evidence server the UI's links open "
                                                "(NEXUS_EVIDENCE_URL; default http://127.0.0.1:3001)")
        if name == "run":
            cmd.add_argument("--all", action="store_true", help="rebuild every image, stale or not")
            cmd.add_argument("--deploy-staging", action="store_true", help="then deploy the verified release to the "
                                                                            "staging host (NEXUS_STAGING_*)")
            staging.add_flags(cmd, deploy=True)
            cmd.add_argument("--verbose", action="store_true", help="at a terminal, also print a line per service "
                                                                    "for its build, push, SBOM and provenance")
            cmd.add_argument("--summary", help="also write what the run did as JSON to this file (images built, "
                                               "failed and pushed, test containers, gates, Dagster run ids)")
    text = ("check each released image's signed provenance, its digest in the registry and its SBOM checksum")
    cmd = sub.add_parser("verify", help=text, description=text)
    cmd.add_argument("--workdir", help="working copy whose artifacts/ to check (NEXUS_WORKDIR; default /tmp/nexus_agent)")
    cmd.add_argument("--public-key", help="the ed25519 public key (PEM; default WORKDIR/artifacts/signing_key.pub)")
    cmd.add_argument("--offline", action="store_true", help="do not ask the registry (signatures and checksums only)")
    text = "drift audit of the staging host against the release last deployed there (exit 0 match, 1 drift)"
    cmd = sub.add_parser("audit", help=text, description=text)
    cmd.add_argument("--workdir", help="working copy whose Dagster instance records the audit (NEXUS_WORKDIR)")
    staging.add_flags(cmd, deploy=False)
    text = "point a made release's version tags in the registry back at its released digests"
    cmd = sub.add_parser("repair-tags", help=text, description=text)
    cmd.add_argument("--version", required=True, help="the released version X.Y.Z")
    cmd.add_argument("--repo", help="target checkout holding the release tag (NEXUS_REPO; default: the bundled sample)")
    cmd.add_argument("--workdir", help="working copy (NEXUS_WORKDIR; default /tmp/nexus_agent)")
    return parser


def _stop_then_interrupt(signum: int, frame: object) -> None:
    """Throw every stop switch at once (from a thread: builds and test containers go within
    seconds wherever the main thread is waiting), then interrupt the main thread as Ctrl-C does."""
    from nexus_assets.core.cancel import cancel_all

    threading.Thread(target=cancel_all, args=("interrupted",), name="nexus-stop", daemon=True).start()
    raise KeyboardInterrupt


def _known_unchanged(settings: Settings) -> RunSummary | None:
    """Dagster's last "nothing to do" said again, when everything it was read from is as it was
    (cli/unchanged.py); None when the full verdict must run. Holds the working copy while it
    looks; a busy one (another run) is left to the full path, which waits for it."""
    from nexus_assets.cli import unchanged
    from nexus_assets.core.workdir_lock import WorkdirBusyError, workdir_lock

    try:
        with workdir_lock(settings.workdir, "unchanged-check"):
            services = unchanged.unchanged(settings)
            return None if services is None else unchanged.say_unchanged(settings, services)
    except WorkdirBusyError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM stops a run like Ctrl-C does (Dagster maps it so during a run; before one, its
    # default would kill us without a word).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_then_interrupt)
    settings = None
    if args.command == "verify":
        from nexus_assets.cli.verify import verify

        workdir = Settings.from_env(workdir=args.workdir).workdir
        return verify(workdir, Path(args.public_key) if args.public_key else None, registry=not args.offline)
    if args.command == "audit":
        return staging.audit(args)
    try:
        if args.command == "repair-tags":
            from nexus_assets.cli.repair import repair

            return repair(Settings.from_env(repo=args.repo, workdir=args.workdir, version=args.version))
        settings = Settings.from_env(repo=args.repo, workdir=args.workdir, registry=args.registry,
                                     version=args.version, max_parallel=args.max_parallel,
                                     test_timeout=args.test_timeout, compose_file=args.compose_file,
                                     build_timeout=args.build_timeout, evidence_url=args.evidence_url)
        settings.validate()
        from nexus_assets.target.repo_config import load_repo_config

        load_repo_config(settings.repo)  # a broken nexus-agent.toml is bad input, said before any run
        if args.command == "run" and args.deploy_staging:
            staging.check_settings(args)  # bad staging settings end here, before any build
        if args.command == "run" and args.verbose:
            from nexus_assets.core.console import set_verbose

            set_verbose(True)
        started = time.monotonic()
        summary = None if args.command != "run" or args.all else _known_unchanged(settings)
        if summary is None:
            from nexus_assets.cli.pipeline import run_pipeline, show_status  # imports Dagster: after the cheap checks

            if args.command == "status":
                return show_status(settings)
            summary = run_pipeline(settings, rebuild_all=args.all, lock_wait=settings.lock_wait)
        if args.summary:
            write_json(Path(args.summary), {**dataclasses.asdict(summary), "seconds": round(time.monotonic() - started, 3)})
        verdict = "done" if summary.ok else "FAILED (see the gates and services above)"
        print(f"[nexus] {verdict} in {time.monotonic() - started:.1f}s: {len(summary.built)} image(s) built, "
              f"{len(summary.pulled)} pulled from the registry cache, {len(summary.failed)} failed, "
              f"{len(summary.pushed)} pushed to {settings.registry}; "
              f"reports in {settings.reports}, "
              f"manifest in {settings.workdir / ARTIFACTS_MANIFEST_FILE}")
        if summary.ok and args.command == "run" and args.deploy_staging:
            return staging.deploy_staging(settings, args)
        return 0 if summary.ok else EXIT_GATE_FAILED
    except NexusError as exc:
        print(f"nexus-agent: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        from nexus_assets.core.cancel import cancel_all

        cancel_all("interrupted")
        print("nexus-agent: interrupted: builds and test containers stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a full disk, wherever it hit (our writes, Dagster's storage)
        full = no_space_line(exc, [settings.dagster_home, settings.workdir] if settings else [])
        if full is None:
            raise
        print(f"nexus-agent: error: {full}: free some space or use another --workdir / DAGSTER_HOME",
              file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
