"""PMMG's browser-only rule for one image: does it containerize PMMG execution logic?

Which images belong to PMMG is read from files at load (`belongs_to_pmmg`: the service's names,
its Dockerfile, which names N3XUS-SYSTEM-PMMG in a label or comment); what such an image *does*
is decided from what it is, never from its name (`judge_image`):

- its Dockerfile: a base image that is a media engine (`FROM jrottenberg/ffmpeg`), a RUN that
  installs or runs one (`apt-get install ffmpeg`, `npm install fluent-ffmpeg`);
- its entrypoint and command, as the image's config holds them (inherited ones included): a
  media engine there (`CMD ["ffmpeg", ...]`, `sh -c "ffmpeg ..."`) is a violation;
- its base layers (the image history): a media engine installed below the Dockerfile;
- its files, as the build context gives them: server-side code that runs a media engine or
  WebAudio logic (`ffmpeg`, `AudioContext`, `node-web-audio-api`) or a dependency on one
  (package.json, requirements.txt). Client assets the server delivers (public/, static/, www/,
  html/, dist/, assets/, client/, web/) are the browser's code and are not judged.

A static file server for the client assets passes: nginx, httpd, busybox httpd, lighttpd,
caddy, `npx serve`, `http-server`, `python -m http.server` are named as such; any other command
(a Node.js server such as the sample's `node server.js`) passes when none of the above is found,
and the verdict lists what was read."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexus_assets.policy.pmmg import Rule, mentions_pmmg
from nexus_assets.target.dockerfile import instructions

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient

MEDIA_RE = re.compile(
    r"(?<![\w-])(ffmpeg|ffprobe|ffplay|avconv|libavcodec\w*|libavformat\w*|gstreamer[\w.-]*|gst-launch[\w.-]*"
    r"|sox|libsox\w*|mencoder|mplayer|cvlc|vlc|handbrakecli|liquidsoap|fluent-ffmpeg|ffmpeg-static"
    r"|ffmpeg-python|node-web-audio-api|web-audio-api|web-audio-engine|pydub|moviepy)(?![\w-])", re.IGNORECASE)
# WebAudio logic in server code: the browser's API run on a server.
WEBAUDIO_RE = re.compile(r"\b(Offline)?AudioContext\b|\bcreateOscillator\b|\bdecodeAudioData\b")
STATIC_SERVERS = (
    ("nginx", re.compile(r"(^|/)nginx$")), ("httpd", re.compile(r"(^|/)(httpd|apache2|lighttpd)$")),
    ("busybox httpd", re.compile(r"(^|/)busybox httpd\b")), ("caddy", re.compile(r"(^|/)caddy\b")),
    ("serve", re.compile(r"(^|/)(npx )?(serve|http-server)\b")),
    ("python http.server", re.compile(r"(^|/)python[\d.]* -m (http\.server|SimpleHTTPServer)\b")),
)
CLIENT_DIRS = frozenset({"public", "static", "www", "html", "htdocs", "dist", "assets", "client", "web"})
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", ".git", "venv", ".venv", "tests", "test", "__tests__"})
_CODE = (".js", ".mjs", ".cjs", ".ts", ".py", ".sh", ".go", ".rb", ".php", ".pl")
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ImageFacts:
    """What judge_image reads of one image: its build context and Dockerfile (with the names to
    show them by), and from the engine its entrypoint, command and layer history."""

    service: str
    context: Path
    dockerfile: Path | None
    shown_context: str  # the context as the repository names it (services/pmmg-static)
    shown_dockerfile: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    history: tuple[str, ...] = ()  # each layer's created_by, newest first (as the engine lists them)
    labels: dict[str, str] = field(default_factory=dict)


def belongs_to_pmmg(names: list[str | None], dockerfile: Path | None) -> bool:
    """True when a service is part of PMMG: one of its names (service, compose service, folder)
    or its Dockerfile (a label, a comment) names it."""
    if any(n and mentions_pmmg(n) for n in names):
        return True
    if dockerfile is None or not dockerfile.is_file():
        return False
    try:
        return mentions_pmmg(dockerfile.read_text(encoding="utf-8", errors="replace")[:_MAX_BYTES])
    except OSError:
        return False



def engine_facts(client: DockerClient, image_id: str) -> dict[str, Any]:
    """{entrypoint, cmd, history, labels} of an image, from the engine (inspect and history)."""
    config = client.api.inspect_image(image_id).get("Config") or {}
    history = client.api.history(image_id) or []
    return {"entrypoint": tuple(config.get("Entrypoint") or ()), "cmd": tuple(config.get("Cmd") or ()),
            "labels": dict(config.get("Labels") or {}),
            "history": tuple(str(h.get("CreatedBy") or "") for h in history)}


def _command_text(parts: tuple[str, ...]) -> str:
    return " ".join(p.strip() for p in parts if p is not None)


def _static_server(command: str) -> str | None:
    words = command.replace("/bin/sh -c ", "").strip()
    for name, pattern in STATIC_SERVERS:
        if pattern.search(words.split(" ")[0]) or pattern.search(words):
            return name
    return None


def _dockerfile(facts: ImageFacts) -> tuple[list[tuple[str, str]], int | None, set[str]]:
    """(violations, line of the last CMD/ENTRYPOINT, RUN texts) from the Dockerfile."""
    if facts.dockerfile is None or not facts.dockerfile.is_file():
        return [], None, set()
    text = facts.dockerfile.read_text(encoding="utf-8", errors="replace")[:_MAX_BYTES]
    found, command_line, runs = [], None, set()
    for line, keyword, args in instructions(text):
        where = f"{facts.shown_dockerfile}:{line}"
        hit = MEDIA_RE.search(args)
        if keyword == "FROM" and hit:
            found.append((f"its base image ({args.split()[0]}) is a media engine", where))
        elif keyword == "RUN":
            runs.add(args)
            if hit:
                found.append((f"RUN installs or runs a media engine ({hit.group(1)})", where))
        elif keyword in ("CMD", "ENTRYPOINT"):
            command_line = line
    return found, command_line, runs


def _files(facts: ImageFacts) -> list[tuple[str, str]]:
    """Server-side files of the context that run a media engine or WebAudio logic, or depend on one."""
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(facts.context):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and d not in CLIENT_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            rel = path.relative_to(facts.context).as_posix()
            shown = f"{facts.shown_context}/{rel}" if facts.shown_context not in ("", ".") else rel
            if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_BYTES:
                continue
            if name == "package.json":
                found += _package_json(path, shown)
            elif re.match(r"requirements.*\.txt$", name):
                found += [(f"depends on a media engine ({m.group(1)})", f"{shown}:{n}")
                          for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                          if not line.lstrip().startswith("#") and (m := MEDIA_RE.search(line))]
            elif name.endswith(_CODE):
                for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                    hit = MEDIA_RE.search(line) or WEBAUDIO_RE.search(line)
                    if hit:
                        kind = "WebAudio logic" if WEBAUDIO_RE.search(line) else "a media engine"
                        found.append((f"server code runs {kind} ({hit.group(0)})", f"{shown}:{n}"))
                        break  # one line per file is enough to name it
    return found


def _package_json(path: Path, shown: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError:
        return []
    names = [n for section in ("dependencies", "optionalDependencies", "peerDependencies")
             for n in (data.get(section) or {} if isinstance(data, dict) else {})]
    return [(f"depends on a media engine ({n})", shown) for n in names if MEDIA_RE.fullmatch(n)]


def judge_image(facts: ImageFacts) -> Rule:
    """The browser-only verdict of one PMMG image, naming the file (and line) of each violation."""
    violations, command_line, runs = _dockerfile(facts)
    command = _command_text(facts.entrypoint + facts.cmd)
    command_where = (f"{facts.shown_dockerfile}:{command_line}" if command_line else
                     f"{facts.shown_dockerfile} (command inherited from its base image)")
    hit = MEDIA_RE.search(command)
    if hit:
        violations.insert(0, (f"its command runs a media engine ({hit.group(1)}): `{command[:120]}`", command_where))
    # The image's own RUN, CMD and ENTRYPOINT lines are in its history too: judged above.
    below = [h for h in facts.history if MEDIA_RE.search(h) and "CMD" not in h and "ENTRYPOINT" not in h
             and not any(r and r in h for r in runs)]
    if below:
        media = MEDIA_RE.search(below[0])
        violations.append((f"a layer of its base image installs a media engine ({media.group(1) if media else ''})",
                           f"image history of {facts.service}"))
    violations += _files(facts)
    if violations:
        return Rule("browser-only", False, "; ".join(f"{what} ({where})" for what, where in violations),
                    violations[0][1])
    server = _static_server(command)
    shown = f"`{command[:120]}`" if command else "no command"
    if server:
        return Rule("browser-only", True, f"a static file server ({server}: {shown}) for the client assets",
                    command_where)
    return Rule("browser-only", True, f"runs {shown}: no media engine, ffmpeg or WebAudio logic in its Dockerfile, "
                                      f"command, base layers or server files (client assets not judged)", command_where)
