"""What a discovery archive holds, read: containers from docker_ps.json, systemd units, listening
ports, compose services from compose_dump.txt, env KEYS from env_dump.txt (their values are
secrets: handed to the caller to mask, never reported) and the journal's tail. The archive is
opened without trusting it by discovery.archive."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nexus_assets.core.errors import InputError
from nexus_assets.core.masking import mask_tree
from nexus_assets.core.textfiles import decode_text, problem, read_bounded
from nexus_assets.discovery.archive import find_member, open_archive
from nexus_assets.target.secrets import parse_env_dump, secret_values

ARCHIVE_FILES = ("docker_ps.json", "systemd_services.txt", "compose_dump.txt", "env_dump.txt",
                 "port_map.txt", "docker_journal.txt")
MAX_ARCHIVE_FILE_BYTES = 16 * 1024 * 1024
JOURNAL_TAIL_LINES = 20
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_UNIT_RE = re.compile(r"^[\s●*]*([\w@.:\\-]+\.service)\s+(\S+)(?:\s+(\S+))?(?:\s+(\S+))?")
_LISTEN_RE = re.compile(r"(?:^|\s)(\S*?):(\d{1,5})\s")
_PROCESS_RE = re.compile(r"users:\(\(\"([^\"]+)\"|\s\d+/([\w.-]+)")
_NAMED_PORT_RE = re.compile(r"^\s*([A-Za-z0-9][\w.-]*)\s*(?:->|=>|[:=\s])\s*(\d{2,5})\b")


def read_discovery_archive(path: Path, shown: str | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
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


def _parse_archive(root: Path, kind: str, members: list[str], shown: str) -> tuple[dict[str, Any],
                   list[tuple[str, str]]]:
    problems: list[dict[str, Any]] = []
    texts: dict[str, str] = {}
    journal: dict[str, Any] = {"lines": 0, "last_lines": []}
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


def _journal(path: Path) -> dict[str, Any]:
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


def _docker_ps(text: str, where: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`docker ps --format '{{json .}}'` (one object a line) or a JSON array, either the CLI's
    shape (Names "a,b", Labels "k=v,...") or the API's (Names ["/a"], Labels {...})."""
    entries: list[tuple[int | None, object]] = []
    problems: list[dict[str, Any]] = []
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


def _getter(entry: dict[str, Any]) -> Callable[..., Any]:
    # The CLI writes `Names`, other tools `names`: take the first key that holds a value.
    return lambda *keys: next((entry[k] for k in keys if entry.get(k) not in (None, "")), None)


def _systemd(text: str) -> list[dict[str, Any]]:
    units = {}
    for line in text.splitlines():
        m = _UNIT_RE.match(line)
        if m:
            units[m.group(1)] = {"unit": m.group(1), "load": m.group(2), "active": m.group(3), "sub": m.group(4)}
    return [units[u] for u in sorted(units)]


def _port_map(text: str) -> list[dict[str, Any]]:
    """Listening ports from `ss -tlnp`/`netstat -tlnp` output, or `name: port` lines."""
    ports: dict[tuple[int, str | None], dict[str, Any]] = {}
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


def _compose_dump(text: str, where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Service names and images of `docker compose config` output (one or more YAML documents).
    Environment sections are never copied."""
    services: set[str] = set()
    images: set[str] = set()
    problems: list[dict[str, Any]] = []
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
