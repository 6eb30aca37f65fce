"""The verified release, start to end, without Dagster: refuse when a blocking gate failed
(naming each), else compare with the previous release, write the notes, record the release in
the target's git (release commit, annotated tag, branch), keep `WORKDIR/releases/vX.Y.Z/` with
the attachments and notes, push the tag when asked, and publish a GitHub Release when
GITHUB_TOKEN and GITHUB_REPOSITORY are set.

Re-running a version whose tag exists for the same commit makes no new tag and says so; its
notes are the ones the tag holds, and the GitHub Release is completed (missing attachments only)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from nexus_assets.core.fileio import read_json, write_atomic
from nexus_assets.core.git import git_answer
from nexus_assets.core.hashing import file_sha256
from nexus_assets.core.keys import (
    ARTIFACTS_MANIFEST_FILE,
    COMPLIANCE_REPORT_FILE,
    DEPLOYMENT_PACKAGE_FILE,
    DISCOVERY_PARSED_FILE,
    DISCREPANCY_REPORT_FILE,
    newest,
)
from nexus_assets.core.release_version import RELEASE_BRANCH, is_git_checkout, parse_version, release_tag
from nexus_assets.core.settings import Settings
from nexus_assets.registry.released import IMMUTABLE, digests, released_manifest
from nexus_assets.release import gitrelease
from nexus_assets.release.github import publish
from nexus_assets.release.notes import Gate, render_notes, sbom_components, service_changes
from nexus_assets.resources.github import GitHubTarget

NOTES = "release_notes.md"
MANIFEST = PurePosixPath(ARTIFACTS_MANIFEST_FILE).name  # also its name in releases/vX.Y.Z/
COMPONENTS = "sbom_components.json"
PUSH_REMOTE_VARIABLE = "NEXUS_RELEASE_PUSH"  # a git remote to push the branch and tag to


@dataclass
class ReleaseOutcome:
    """What happened to the release of one version: made, refused (failed gates) or repeated."""

    version: str
    tag: str
    made: bool
    failed_gates: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what refused the release, or needs repair, beyond the gates
    deferred_for: list[str] = field(default_factory=list)  # services new to the graph: released by the next run
    already_released: bool = False
    source_commit: str | None = None
    release_commit: str | None = None
    dirty: bool = False
    previous_version: str | None = None
    changed_services: list[str] = field(default_factory=list)
    folder: str | None = None
    notes: str | None = None
    attachments: list[str] = field(default_factory=list)
    github: dict[str, Any] | None = None
    messages: list[str] = field(default_factory=list)
    run_id: str | None = None
    made_at: str = ""


def attachment_paths(settings: Settings) -> tuple[list[Path], list[str]]:
    """The files a release carries, and the names of those this run did not produce."""
    found: list[Path] = []
    missing: list[str] = []
    def made(name: str) -> list[Path]:
        path = newest(settings.workdir, name)
        return [path] if path else []
    wanted: list[tuple[str, list[Path]]] = [
        (f"compliance PDF ({COMPLIANCE_REPORT_FILE})", made(COMPLIANCE_REPORT_FILE)),
        ("artifacts manifest", [settings.workdir / ARTIFACTS_MANIFEST_FILE]),
        (f"deployment package ({DEPLOYMENT_PACKAGE_FILE})", made(DEPLOYMENT_PACKAGE_FILE)),
        ("discovery report", [settings.workdir / DISCOVERY_PARSED_FILE]),
        ("discrepancy report", [settings.workdir / DISCREPANCY_REPORT_FILE]),
        ("signing public key (artifacts/signing_key.pub)", [settings.artifacts / "signing_key.pub"]),
    ]
    for label, paths in wanted:
        present = [p for p in paths if p.is_file()]
        found += present
        if not present:
            missing.append(label)
    return found, missing


def components_of(settings: Settings, manifest: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{service: {component: version}} from each image's SBOM (the manifest's `sbom` path, under
    artifacts/, else artifacts/sbom/<service>.cdx.json); services without an SBOM are left out."""
    found = {}
    for entry in manifest.get("images", []):
        sbom = entry.get("sbom")
        path = Path(sbom["path"] if isinstance(sbom, dict) else sbom) if sbom else \
            settings.artifacts / "sbom" / f"{entry['service']}.cdx.json"
        if not path.is_absolute():  # the manifest's paths are under artifacts/; older ones under the workdir
            path = next((p for p in (settings.artifacts / path, settings.workdir / path) if p.is_file()), path)
        if path.is_file():
            found[entry["service"]] = sbom_components(path)
    return found


def _previous(settings: Settings, version: str, in_git: bool) -> tuple[str | None, dict[str, Any] | None,
              dict[str, Any]]:
    """(version, manifest, components) of the newest release before version: from its tag when
    the target is a git checkout, else from WORKDIR/releases/."""
    if in_git:
        previous = gitrelease.previous_version(settings.repo, version)
        if previous is None:
            return None, None, {}
        manifest = gitrelease.read_released(settings.repo, previous, MANIFEST)
        components = gitrelease.read_released(settings.repo, previous, COMPONENTS)
        return previous, json.loads(manifest) if manifest else None, json.loads(components) if components else {}
    wanted = parse_version(version) or (0, 0, 0)
    folders = sorted((parse_version(p.name[1:]), p) for p in (settings.workdir / "releases").glob("v*")
                     if parse_version(p.name[1:]) and (parse_version(p.name[1:]) or wanted) < wanted)
    if not folders:
        return None, None, {}
    folder = folders[-1][1]
    manifest_file, components_file = folder / MANIFEST, folder / COMPONENTS
    return (folder.name[1:], read_json(manifest_file) if manifest_file.is_file() else None,
            read_json(components_file) if components_file.is_file() else {})


def _keep_folder(folder: Path, attachments: list[Path], notes: str, manifest: dict[str, Any],
                 components: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in attachments:
        if path.name != MANIFEST:
            shutil.copyfile(path, folder / path.name)
    write_atomic(folder / NOTES, notes.encode("utf-8"))
    write_atomic(folder / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    write_atomic(folder / COMPONENTS, (json.dumps(components, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _refuse(outcome: ReleaseOutcome, problems: list[str], head: str) -> ReleaseOutcome:
    outcome.problems = problems
    outcome.messages.append(f"release {outcome.version} not made: {head}: " + "; ".join(problems))
    return outcome


def _other_images(manifest: dict[str, Any], released: dict[str, Any] | None) -> list[str]:
    """The services whose registry digest in this build differs from the released one's."""
    if released is None or not released.get("images"):  # not released, or a tag made by hand: nothing to compare
        return []
    ours, theirs = digests(manifest), digests(released)
    return [f"{name}: released {theirs.get(name) or 'nothing'}, this build {ours.get(name) or 'nothing'}"
            for name in sorted(set(ours) | set(theirs)) if ours.get(name) != theirs.get(name)]


def make_release(settings: Settings, gates: list[Gate], run_id: str | None = None,
                 deferred_for: list[str] | None = None, registry_problems: list[str] | None = None,
                 github: GitHubTarget | None = None) -> ReleaseOutcome:
    """The release of settings.version, or the reasons it was refused (see the module).
    github: where it is also published (the GitHub resource's target); None: the folder only.
    deferred_for: services the graph does not know yet; the release waits for them.
    registry_problems: version tags in the registry that do not name the digests they must
    (release.assets reads them; registry.released): they refuse a new release, and are reported,
    with the repair command, for one already made."""
    version, repo = settings.version, settings.repo
    outcome = ReleaseOutcome(version=version, tag=release_tag(version), made=False, run_id=run_id,
                             made_at=datetime.now(UTC).isoformat(timespec="seconds"))
    if deferred_for:
        outcome.deferred_for = list(deferred_for)
        outcome.messages.append(f"release {version} deferred: {len(deferred_for)} service(s) new to the graph "
                                f"({', '.join(deferred_for[:5])}) are built by the next run, which releases")
        return outcome
    outcome.failed_gates = [g.name for g in gates if g.blocks]
    if outcome.failed_gates:
        outcome.messages.append(f"release {version} not made: gate(s) failed: {', '.join(outcome.failed_gates)}")
        return outcome
    manifest = read_json(settings.artifacts / MANIFEST)
    discrepancy_path = settings.workdir / DISCREPANCY_REPORT_FILE
    discrepancy = read_json(discrepancy_path) if discrepancy_path.is_file() else None
    in_git = is_git_checkout(repo)
    git = gitrelease.state(repo) if in_git else gitrelease.GitState(head=None, dirty=False)
    if in_git and git.head is None:
        raise gitrelease.ReleaseError(f"{repo} has no commit yet: commit the sources, then release")
    outcome.source_commit, outcome.dirty = git.head, git.dirty
    try:
        repeated = gitrelease.check_tag_reuse(repo, version, git.head) if in_git else None
    except gitrelease.ReleaseError as exc:  # a record, not a crash: the last one must not say made
        return _refuse(outcome, [f"{exc}; {IMMUTABLE}", *(registry_problems or [])], "version already released")
    changed = _other_images(manifest, released_manifest(repo, version)) if repeated else []
    if changed:
        return _refuse(outcome, [*changed, IMMUTABLE, *(registry_problems or [])],
                       f"{outcome.tag} already released other images")
    if registry_problems and not repeated:  # the gate that reads the registry, before anything is tagged
        return _refuse(outcome, list(registry_problems), "the registry's version tags do not name this build")
    folder = settings.workdir / "releases" / f"v{version}"
    attachments, missing = attachment_paths(settings)
    components = components_of(settings, manifest)
    previous, previous_manifest, previous_components = _previous(settings, version, in_git)
    changes = service_changes(manifest, components, previous_manifest, previous_components)
    outcome.previous_version = previous
    outcome.changed_services = [c.service for c in changes if c.kind != "unchanged"]
    notes = render_notes(version=version, tag=outcome.tag, source_commit=git.head, dirty=git.dirty, run_id=run_id,
                         created=outcome.made_at, manifest=manifest, discrepancy=discrepancy, gates=gates,
                         changes=changes, previous_version=previous,
                         attachments=[p.name for p in attachments], missing=missing)
    if repeated:
        outcome.already_released = True
        outcome.messages.append(repeated)
        held = gitrelease.read_released(repo, version, NOTES)
        notes = held.decode("utf-8") if held is not None else notes
        outcome.release_commit = git_answer(repo, "rev-parse", f"{outcome.tag}^{{commit}}")
        if not (folder / NOTES).is_file():
            _keep_folder(folder, attachments, notes, manifest, components)
    else:
        if not in_git and (folder / NOTES).is_file():
            outcome.messages.append(f"release folder {folder} existed: made again from this run's files")
        _keep_folder(folder, attachments, notes, manifest, components)
        if in_git and git.head:
            files = {name: (folder / name).read_bytes() for name in (MANIFEST, NOTES, COMPONENTS)}
            summary = f"{len(manifest.get('images', []))} image(s); changed since " \
                      f"{'v' + previous if previous else 'nothing (first release)'}: " \
                      f"{', '.join(outcome.changed_services) or 'none'}\n" \
                      f"{MANIFEST} sha256: {file_sha256(folder / MANIFEST)}"
            outcome.release_commit = gitrelease.release_commit(repo, version, git.head, files, summary)
            gitrelease.tag_release(repo, version, outcome.release_commit, f"Verified release {version}\n\n{summary}\n")
            outcome.messages.append(f"tagged {outcome.tag} at {outcome.release_commit[:12]} "
                                    f"(source {git.head[:12]})")
            outcome.messages.append(gitrelease.move_branch(repo, outcome.release_commit))
        else:
            outcome.messages.append(f"{repo} is not a git checkout of its own: no {RELEASE_BRANCH} branch or tag, "
                                    f"the release is the folder {folder}")
    remote = os.environ.get(PUSH_REMOTE_VARIABLE, "")
    if remote and in_git:
        outcome.messages.append(gitrelease.push_release(repo, remote, version))
    outcome.folder, outcome.notes = str(folder), notes
    outcome.attachments = [p.name for p in attachments]
    if github is not None:
        done = publish(github, tag=outcome.tag, commit=outcome.release_commit if remote else git.head,
                       name=f"Verified release {version}", body=notes,
                       attachments=[folder / p.name for p in attachments if (folder / p.name).is_file()])
        outcome.github = asdict(done)
        outcome.messages.append(f"GitHub release {done.url}: {'created' if done.created else 'found'}, "
                                f"{len(done.uploaded)} uploaded, {len(done.skipped)} already there")
    outcome.made = True
    if registry_problems:  # made before: its tags moved since
        outcome.problems = list(registry_problems)
        outcome.messages.append(f"{outcome.tag} is released but registry tag(s) moved: {'; '.join(registry_problems)}; "
                                f"put them back with: nexus-agent repair-tags --version {version} --repo {repo}")
    write_atomic(folder / "release.json", (json.dumps(asdict(outcome) | {"notes": None}, indent=2,
                                                      sort_keys=True) + "\n").encode("utf-8"))
    return outcome
