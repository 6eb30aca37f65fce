"""The tags every run carries, wherever it is launched: where from (`nexus/origin`), which
version it releases (`nexus/version`) and who (`nexus/who`: a GitHub workflow run, else the user
this process runs as; Dagster OSS has no sign-in, so a run launched from the UI names the user the
code location runs as). nexus_pipeline carries them as job tags (a launch's own tags win: the CLI
and the sensor say cli and sensor); the UI's implicit asset job gets them from the notify sensor
when it starts (automation/notify_sensors.py)."""

from __future__ import annotations

import getpass
import os

from nexus_assets.core.keys import ORIGIN_TAG

VERSION_TAG = "nexus/version"
WHO_TAG = "nexus/who"
RELEASE_TAG = "nexus/release"  # made | already released | deferred | refused: the release step's verdict


def who() -> str:
    """`workflow:<name>#<run id> (<actor>)` under GitHub Actions, else `user:<login>`."""
    env = os.environ
    if env.get("GITHUB_ACTIONS") == "true":
        return (f"workflow:{env.get('GITHUB_WORKFLOW') or '?'}#{env.get('GITHUB_RUN_ID') or '?'}"
                f" ({env.get('GITHUB_ACTOR') or 'unknown actor'})")
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container's 10001)
        return f"user:uid {os.getuid()}"


def run_tags(version: str, origin: str = "ui") -> dict[str, str]:
    """The tags of a run of this version launched from origin (ui, cli, sensor)."""
    return {ORIGIN_TAG: origin, VERSION_TAG: version, WHO_TAG: who()}
