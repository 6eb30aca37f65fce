"""Opening a discovery archive (a `.tar.gz` or a folder) without trusting it.

The archive comes from a VPS someone else ran commands on. `tarfile`'s own `data` filter decides
whether a member is safe (no absolute path, nothing outside the destination, no link pointing
out, no device or FIFO): over every member before anything is written, then again while
extracting into a staging folder that replaces the destination only when every member went
through (a link that escapes through another link of the archive is seen only then). Ours are
only the bounds (member count and sizes) and one rule: no member is written through a link.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import yaml

from nexus_assets.core.errors import InputError
from nexus_assets.core.textfiles import decode_text, inside, problem, read_bounded
from nexus_assets.target.secrets import mask_tree, parse_env_dump, secret_values

DEFAULT_MAX_MEMBER_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 10_000


def _parts(name: str) -> list[str]:
    """A member name's path components as tar and Linux read it (a backslash is a character)."""
    return [p for p in name.split("/") if p not in ("", ".")]


def _refused(archive: Path, member: tarfile.TarInfo, why: str) -> InputError:
    return InputError(f"{archive}: member {member.name!r} {why}; archive refused, nothing extracted")


def _filter_refusal(archive: Path, member: tarfile.TarInfo, exc: tarfile.FilterError, *,
                    on_disk: bool) -> InputError:
    """The data filter's verdict as a message naming the archive and the member. on_disk: the
    filter refused it during extraction, i.e. only because of a link the archive made earlier."""
    if on_disk:
        what = ("is a link whose target goes through another link of the archive and leaves it"
                if isinstance(exc, tarfile.LinkOutsideDestinationError)
                else "would be written through another link of the archive, outside it")
        return _refused(archive, member, f"{what} ({member.linkname or member.name!r}, tarfile data filter)")
    if isinstance(exc, tarfile.AbsolutePathError):
        return _refused(archive, member, "has an absolute path")
    if isinstance(exc, tarfile.OutsideDestinationError):
        where = "contains '..' (path traversal)" if ".." in _parts(member.name) else "is outside the archive"
        return _refused(archive, member, f"{where}: it would be written outside the destination")
    if isinstance(exc, tarfile.AbsoluteLinkError):
        return _refused(archive, member, f"is a link to the absolute path {member.linkname!r}")
    if isinstance(exc, tarfile.LinkOutsideDestinationError):
        return _refused(archive, member, f"is a link pointing outside the archive ({member.linkname!r})")
    if isinstance(exc, tarfile.SpecialFileError):
        return _refused(archive, member, "is a device or FIFO")
    return _refused(archive, member, f"is refused by tarfile's data filter ({type(exc).__name__})")


def _check_member(archive: Path, member: tarfile.TarInfo, dest: Path, links: set[str]) -> str | None:
    """The member's normalized name (None for the archive root) once tarfile's data filter
    passes it; InputError naming the member otherwise."""
    try:
        kept = tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise _filter_refusal(archive, member, exc, on_disk=False) from exc
    if kept.name != member.name:  # the filter strips a leading `/`: we refuse the member instead
        raise _refused(archive, member, "has an absolute path")
    parts = _parts(member.name)
    if not parts:
        return None
    through = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in links), None)
    if through is not None:
        # Safe for the filter (it stays inside), but the member would not be where its name says.
        raise _refused(archive, member, f"would be written through the link {through!r}")
    if member.issym():
        links.add("/".join(parts))
    return "/".join(parts)


def _bounded(archive: Path, member: tarfile.TarInfo, count: int, total: int, *, max_members: int,
             max_member_bytes: int, max_total_bytes: int) -> int:
    """total plus this member's size, or InputError when a bound of ours is passed."""
    if count >= max_members:
        raise InputError(f"{archive}: more than {max_members} members (at {member.name!r}); "
                         "archive refused, nothing extracted")
    if not member.isreg():
        return total
    if member.size > max_member_bytes:
        raise InputError(f"{archive}: member {member.name!r} is {member.size} bytes, over the "
                         f"{max_member_bytes}-byte limit; archive refused, nothing extracted")
    if total + member.size > max_total_bytes:
        raise InputError(f"{archive}: members add up to more than {max_total_bytes} bytes "
                         f"(at {member.name!r}); archive refused, nothing extracted")
    return total + member.size


def extract_tar_safely(
    archive: Path,
    dest: Path,
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[str]:
    """Extract a (possibly compressed) tar archive into dest and return the member names, sorted.

    Raises InputError naming the archive and the offending member when tarfile's data filter
    refuses a member (absolute path, outside dest, a link pointing out, a device or FIFO), when
    a member would be written through a link of the archive, or when a bound is passed; and
    naming the archive when it is not a readable tar file. Nothing is written to dest unless
    every member passes."""
    dest.mkdir(parents=True, exist_ok=True)
    links: set[str] = set()
    checked: list[tarfile.TarInfo] = []
    names: list[str] = []
    total = 0
    staging: Path | None = None
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                total = _bounded(archive, member, len(checked), total, max_members=max_members,
                                 max_member_bytes=max_member_bytes, max_total_bytes=max_total_bytes)
                rel = _check_member(archive, member, dest, links)
                checked.append(member)
                if rel is not None:
                    names.append(rel)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
            try:
                tf.extractall(staging, members=checked, filter="data")
            except tarfile.FilterError as exc:
                raise _filter_refusal(archive, exc.tarinfo, exc, on_disk=True) from exc
        for entry in sorted(staging.iterdir()):
            os.replace(entry, dest / entry.name)
    except InputError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, KeyError) as exc:
        raise InputError(f"{archive}: not a readable tar archive ({type(exc).__name__}: {exc}); "
                         "recreate it with `tar -czf`") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(set(names))


def find_member(root: Path, name: str, *, max_depth: int = 2) -> Path | None:
    """The file called name under root (an archive often has one top folder), shallowest and
    then alphabetically first, or None. Raises InputError when the only candidate is a link
    out of root or not a regular file (a FIFO would block the reader)."""
    found: list[Path] = []
    level = [root]
    for _ in range(max_depth):
        hits = sorted(p / name for p in level if (p / name).exists() or (p / name).is_symlink())
        if hits:
            found = hits
            break
        level = sorted(c for p in level for c in p.iterdir() if c.is_dir() and not c.is_symlink())
    for path in found:
        if not inside(root, path):
            raise InputError(f"{root}: {path.relative_to(root)} is a link pointing outside the archive; "
                             "ignored")
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError(f"{root}: {path.relative_to(root)} is not a regular file; ignored")
        return path
    return None


@contextlib.contextmanager
def open_archive(path: Path, **limits: int) -> Iterator[tuple[Path, str, list[str]]]:
    """Yield (folder, kind, members) for a discovery archive: a folder is used in place
    (kind "folder"); a tarball is extracted safely into a temporary folder removed afterwards
    (kind "tar"). Raises InputError for a broken or unsafe archive."""
    if path.is_dir():
        members = []
        for dirpath, dirnames, filenames in os.walk(path):  # never follows links out of the folder
            dirnames.sort()
            members += [(Path(dirpath) / f).relative_to(path).as_posix() for f in filenames]
            if len(members) > DEFAULT_MAX_MEMBERS:
                raise InputError(f"{path}: more than {DEFAULT_MAX_MEMBERS} files; not a discovery archive")
        yield path, "folder", sorted(members)
        return
    if not path.is_file():
        raise InputError(f"{path}: discovery archive not found")
    with tempfile.TemporaryDirectory(prefix="nexus-discovery-") as tmp:
        members = extract_tar_safely(path, Path(tmp), **limits)
        yield Path(tmp), "tar", members


# --- the discovery archive's contents ------------------------------------------------------

ARCHIVE_FILES = ("docker_ps.json", "systemd_services.txt", "compose_dump.txt", "env_dump.txt",
                 "port_map.txt", "docker_journal.txt")
MAX_ARCHIVE_FILE_BYTES = 16 * 1024 * 1024
JOURNAL_TAIL_LINES = 20
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_UNIT_RE = re.compile(r"^[\s●*]*([\w@.:\\-]+\.service)\s+(\S+)(?:\s+(\S+))?(?:\s+(\S+))?")
_LISTEN_RE = re.compile(r"(?:^|\s)(\S*?):(\d{1,5})\s")
_PROCESS_RE = re.compile(r"users:\(\(\"([^\"]+)\"|\s\d+/([\w.-]+)")
_NAMED_PORT_RE = re.compile(r"^\s*([A-Za-z0-9][\w.-]*)\s*(?:->|=>|[:=\s])\s*(\d{2,5})\b")


def read_discovery_archive(path: Path, shown: str | None = None) -> tuple[dict, list[tuple[str, str]]]:
    """Parse a discovery archive (folder or tarball): containers from docker_ps.json, systemd
    units, listening ports, compose services from compose_dump.txt, env KEYS from env_dump.txt,
    journal line count and last lines. Returns (summary, env pairs); the pairs are secrets for
    the caller to mask and never appear in the summary. A missing archive gives
    {"present": False}; a broken or unsafe one gives ok False and a problem, never an exception."""
    shown = shown or str(path)
    if not path.exists():
        return {"present": False, "path": shown,
                "message": f"no discovery archive at {shown}: proceeding with current system discovery "
                           "(normal without a pre-existing archive)"}, []
    try:
        with open_archive(path) as (root, kind, members):
            return _parse_archive(root, kind, members, shown)
    except InputError as exc:
        return {"present": True, "path": shown, "ok": False, "error": str(exc),
                "problems": [problem(shown, None, f"discovery archive unusable ({exc}); proceeding with "
                                                   "current system discovery")]}, []


def _parse_archive(root: Path, kind: str, members: list[str], shown: str) -> tuple[dict, list[tuple[str, str]]]:
    problems: list[dict] = []
    texts: dict[str, str] = {}
    journal: dict = {"lines": 0, "last_lines": []}
    for name in ARCHIVE_FILES:
        where = f"{shown}/{name}"
        try:
            path = find_member(root, name)
            if path is None:
                continue
            where = f"{shown}/{path.relative_to(root).as_posix()}"
            if name == "docker_journal.txt":
                journal = _journal(path)
                continue
            text, probs = decode_text(read_bounded(path, MAX_ARCHIVE_FILE_BYTES), where)
        except InputError as exc:
            problems.append(problem(where, None, str(exc)))
            continue
        problems += probs
        texts[name] = text
    env_keys, pairs = parse_env_dump(texts.get("env_dump.txt", ""))
    # The journal is masked here with the dump's own values, so this summary is safe on its own;
    # discover() masks the whole report again with the repository's secrets as well.
    journal["last_lines"] = mask_tree(journal["last_lines"], secret_values(pairs))
    containers, probs = _docker_ps(texts.get("docker_ps.json", ""), f"{shown}/docker_ps.json")
    problems += probs
    compose, probs = _compose_dump(texts.get("compose_dump.txt", ""), f"{shown}/compose_dump.txt")
    problems += probs
    found = {n: (n in texts or (n == "docker_journal.txt" and journal.get("present", False))) for n in ARCHIVE_FILES}
    return {
        "present": True, "path": shown, "kind": kind, "ok": True,
        "member_count": len(members), "members": members[:500],
        "files": found,
        "missing_files": [n for n in ARCHIVE_FILES if not found[n]],
        "docker_ps": containers,
        "systemd_services": _systemd(texts.get("systemd_services.txt", "")),
        "compose_dump": compose,
        "env_keys": env_keys,
        "ports": _port_map(texts.get("port_map.txt", "")),
        "journal": {k: v for k, v in journal.items() if k != "present"},
        "problems": problems,
    }, pairs


def _journal(path: Path) -> dict:
    # Journals grow without bound: count lines in chunks and keep only the tail.
    lines, tail, cut = 0, b"", False
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            cut = cut or len(tail) + len(chunk) > 65536
            tail = (tail + chunk)[-65536:]
    if tail and not tail.endswith(b"\n"):
        lines += 1
    if cut:  # the tail starts inside a line: that fragment of a secret would match no known value
        tail = tail.partition(b"\n")[2]
    last = tail.decode("utf-8", errors="replace").splitlines()[-JOURNAL_TAIL_LINES:]
    return {"present": True, "lines": lines, "last_lines": [_EMAIL_RE.sub("***@***", s) for s in last]}


def _docker_ps(text: str, where: str) -> tuple[list[dict], list[dict]]:
    """`docker ps --format '{{json .}}'` (one object a line) or a JSON array, either the CLI's
    shape (Names "a,b", Labels "k=v,...") or the API's (Names ["/a"], Labels {...})."""
    entries: list[tuple[int | None, object]] = []
    problems: list[dict] = []
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            entries = [(None, e) for e in json.loads(stripped)]
        except json.JSONDecodeError as exc:
            problems.append(problem(where, exc.lineno, f"invalid JSON: {exc.msg}"))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    entries.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    problems.append(problem(where, number, f"invalid JSON: {exc.msg}; line skipped"))
    out = []
    for line_no, e in entries:
        if not isinstance(e, dict):
            problems.append(problem(where, line_no, "entry is not a JSON object; skipped"))
            continue
        get = _getter(e)
        names = get("Names", "names", "Name", "name") or ""
        name = (names[0] if isinstance(names, list) and names else str(names)).split(",")[0].lstrip("/")
        labels = get("Labels", "labels") or {}
        if isinstance(labels, str):
            labels = dict(item.partition("=")[::2] for item in labels.split(",") if "=" in item)
        status_text = str(get("Status", "status") or "")
        state = get("State", "state")
        if isinstance(state, dict):
            state = state.get("Status")
        if not state:
            low = status_text.lower()
            state = "running" if low.startswith("up") else "exited" if low.startswith("exited") else \
                "created" if low.startswith("created") else None
        ports = get("Ports", "ports") or []
        if isinstance(ports, str):
            ports = [p.strip() for p in ports.split(",") if p.strip()]
        else:
            ports = [f"{p.get('IP', '')}:{p['PublicPort']}->{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
                     if isinstance(p, dict) and p.get("PublicPort") else
                     f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}" if isinstance(p, dict) else str(p)
                     for p in ports]
        health = re.search(r"\((healthy|unhealthy|health: starting)\)", status_text)
        out.append({"name": name, "image": get("Image", "image"), "status": state, "status_text": status_text,
                    "health": health.group(1).replace("health: ", "") if health else None,
                    "ports": sorted(set(ports)),
                    "compose_service": labels.get("com.docker.compose.service") or None,
                    "compose_project": labels.get("com.docker.compose.project") or None})
    return sorted(out, key=lambda c: (c["name"], str(c["image"]))), problems


def _getter(entry: dict):
    # The CLI writes `Names`, other tools `names`: take the first key that holds a value.
    return lambda *keys: next((entry[k] for k in keys if entry.get(k) not in (None, "")), None)


def _systemd(text: str) -> list[dict]:
    units = {}
    for line in text.splitlines():
        m = _UNIT_RE.match(line)
        if m:
            units[m.group(1)] = {"unit": m.group(1), "load": m.group(2), "active": m.group(3), "sub": m.group(4)}
    return [units[u] for u in sorted(units)]


def _port_map(text: str) -> list[dict]:
    """Listening ports from `ss -tlnp`/`netstat -tlnp` output, or `name: port` lines."""
    ports: dict[tuple[int, str | None], dict] = {}
    for line in text.splitlines():
        low = line.lower()
        if "listen" in low or low.startswith(("tcp", "udp")):
            m = _LISTEN_RE.search(line)
            if not m:
                continue
            proc = _PROCESS_RE.search(line)
            port, process = int(m.group(2)), (proc.group(1) or proc.group(2)) if proc else None
        else:
            m = _NAMED_PORT_RE.match(line)
            if not m:
                continue
            port, process = int(m.group(2)), m.group(1)
        if 0 < port < 65536:
            ports[(port, process)] = {"port": port, "process": process}
    return [ports[k] for k in sorted(ports, key=lambda k: (k[0], k[1] or ""))]


def _compose_dump(text: str, where: str) -> tuple[dict, list[dict]]:
    """Service names and images of `docker compose config` output (one or more YAML documents).
    Environment sections are never copied."""
    services: set[str] = set()
    images: set[str] = set()
    problems: list[dict] = []
    if text.strip():
        try:
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict) and isinstance(doc.get("services"), dict):
                    for name, spec in doc["services"].items():
                        services.add(str(name))
                        if isinstance(spec, dict) and spec.get("image"):
                            images.add(str(spec["image"]))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.append(problem(where, mark.line + 1 if mark else None,
                                     "not valid YAML; service names read line by line instead"))
            services |= set(re.findall(r"^  ([A-Za-z0-9][\w.-]*):\s*$", text, re.MULTILINE))
            images |= {i.strip("\"'") for i in re.findall(r"^\s+image:\s*(\S+)\s*$", text, re.MULTILINE)}
    return {"lines": len(text.splitlines()), "services": sorted(services), "images": sorted(images)}, problems
