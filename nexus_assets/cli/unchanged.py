"""Dagster's last "nothing to do", remembered with what it was read from, so that `nexus-agent
run` can say it again without loading Dagster when none of that changed.

Deciding that nothing is stale means importing Dagster, building the definitions, observing
every service and asking Dagster's staleness model: about a second and a half for a hundred
services, most of it before the first question is asked. When that full verdict was "nothing to
do", the run writes WORKDIR/.nexus-unchanged.json: a fingerprint of every input the verdict read
(the settings and NEXUS_* environment, nexus-assets' own code, the repository, the working copy,
Dagster's storage files, the engine's tags that the services and their base images resolve to,
and the image ids Dagster recorded). The next run computes the same fingerprint (file stats and
one engine listing, no Dagster) and, when it is equal, repeats the verdict. Anything else
(an edit, a new version or registry, a materialization from the UI or the sensor, an image
removed or retagged, a rebuilt base image, a daemon writing its heartbeat) makes it differ, and
the full verdict runs as before. So there is still one model of staleness, Dagster's; this only
remembers its answer for inputs it has already seen.

Storage other than the default SQLite files under DAGSTER_HOME (a dagster.yaml naming a
storage) is not fingerprinted: every run then takes the full verdict."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from nexus_assets.cli.outcome import RunSummary, last_verdict, say_release
from nexus_assets.core.engine_images import EngineImages, image_ids_over_socket
from nexus_assets.core.fileio import read_json, write_json
from nexus_assets.core.hashing import IGNORED_NAMES
from nexus_assets.core.instance_storage import release as release_keepers
from nexus_assets.core.settings import UNCHANGED_STAMP, WORKDIR_GENERATED, Settings
from nexus_assets.core.workdir_lock import LOCK_NAME

PACKAGE = Path(__file__).resolve().parent.parent
# What the pipeline writes in the working copy: its outputs, not the verdict's inputs (and the
# release folder and the lock, which a sync has no reason to protect).
GENERATED = {*WORKDIR_GENERATED, "releases", LOCK_NAME}


def _stats(root: Path, skip_top: Iterable[str] = ()) -> str:
    """sha256 over (path, size, mtime, mode) of every file and link under root: any write
    changes it, and it reads no content."""
    digest = hashlib.sha256()
    skip = set(skip_top)
    if not root.exists():
        return "absent"
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        top = here == root
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_NAMES and not (top and d in skip))
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            if top and name in skip:
                continue
            st = os.lstat(here / name)
            digest.update(f"{(here / name).relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}\n".encode())
    return digest.hexdigest()


def _dagster_storage(home: Path) -> str | None:
    """The default SQLite storage's files, by stat; None when dagster.yaml names another storage."""
    config = home / "dagster.yaml"
    text = config.read_text() if config.is_file() else ""
    if "storage" in text:
        return None
    return hashlib.sha256(f"{text}\0{_stats(home / 'history')}".encode()).hexdigest()


def _environment() -> dict[str, str]:
    """The variables that change what a run does, hashed (a credential's value is never stored)."""
    names = sorted(k for k in os.environ if k.startswith(("NEXUS_", "REGISTRY", "DOCKER_"))
                   or k in ("VERSION", "WORKDIR"))  # DAGSTER_HOME: as settings.dagster_home (a run sets it)
    return {k: hashlib.sha256(os.environ[k].encode()).hexdigest()[:16] for k in names}


def _inputs(settings: Settings) -> str | None:
    """Everything the verdict read except the engine, as one hash; None when it cannot be told."""
    storage = _dagster_storage(settings.dagster_home)
    if storage is None:
        return None
    parts = {
        "settings": repr(settings),
        "dagster_home": str(settings.dagster_home),
        "environment": _environment(),
        "code": _stats(PACKAGE),
        "repo": _stats(settings.repo),
        "workdir": _stats(settings.workdir, GENERATED),
        "dagster": storage,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def remember(settings: Settings, tags: dict[str, str | None], recorded: Iterable[str], services: int) -> None:
    """After a full verdict of "nothing to do": tags, {engine tag the verdict resolved: image id
    or None}; recorded, the image ids Dagster holds for the services. Written last, after every
    read and write of that verdict, so the storage's state is the one it left: with the SQLite
    keepers closed first, or their last close at exit would rewrite the files after the stamp."""
    release_keepers()
    inputs = _inputs(settings)
    if inputs is None:
        return
    write_json(settings.workdir / UNCHANGED_STAMP, {"inputs": inputs, "services": services,
                                                    "tags": dict(sorted(tags.items())), "recorded": sorted(set(recorded))})


def forget(settings: Settings) -> None:
    (settings.workdir / UNCHANGED_STAMP).unlink(missing_ok=True)


def unchanged(settings: Settings) -> int | None:
    """The number of services when the last full verdict ("nothing to do") was read from exactly
    what is there now, else None. Any doubt (no stamp, an unreadable one, no engine) is None:
    the full verdict then runs."""
    try:
        stamp = read_json(settings.workdir / UNCHANGED_STAMP)
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("inputs") != _inputs(settings):
        return None
    tags: dict[str, str | None] = stamp.get("tags", {})
    tagged = set(tags.values())
    recorded = [i for i in stamp.get("recorded", []) if i not in tagged]  # a tag's id is checked with its tag
    found = image_ids_over_socket([*tags, *recorded])
    if found is None:
        found = _image_ids_through_sdk(tags, recorded)
    if found is None or any(found.get(tag) != image_id for tag, image_id in tags.items()):
        return None
    if not all(found.get(image_id) == image_id for image_id in recorded):
        return None
    return int(stamp.get("services", 0))


def _image_ids_through_sdk(tags: Iterable[str], ids: Iterable[str]) -> dict[str, str | None] | None:
    """What image_ids_over_socket answers, from one listing through the SDK, for an engine the
    standard library does not reach (TCP, TLS, SSH); None when it does not answer."""
    import docker

    try:
        client = docker.from_env(timeout=30)
    except docker.errors.DockerException:
        return None
    try:
        engine = EngineImages.read(client)  # one listing, as the full verdict reads it
        return {**{tag: engine.tag_id(tag) for tag in tags},
                **{image_id: image_id if engine.has(image_id) else None for image_id in ids}}
    except docker.errors.DockerException:
        return None
    finally:
        client.close()


def say_unchanged(settings: Settings, services: int) -> RunSummary:
    """What a run that asked Dagster prints when nothing is to do, and its summary."""
    print(f"[nexus] target {settings.repo} -> workdir {settings.workdir} "
          f"(registry {settings.registry}, version {settings.version})", flush=True)
    print(f"[nexus] {services} service(s): 0 to build, {services} current", flush=True)
    print("[nexus] nothing changed since the last run: no run launched (the same inputs as Dagster's last "
          "verdict)", flush=True)
    tags_in_place = say_release(settings)
    return RunSummary(ok=last_verdict(settings) and tags_in_place)
