"""Dockerfile parsing for discovery: stages, external base images, EXPOSEd ports and HEALTHCHECK.

`parse_dockerfile` reads a Dockerfile's text the way the Docker builder does (parser
directives, continuation lines, comments, heredoc bodies, ARG/ENV substitution) and reports
every instruction it cannot use as a problem `{file, line, service, message}`.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

from nexus_assets.core.textfiles import problem, read_text

_VAR_RE = re.compile(r"\$\{(\w+)(?::?([-+])([^}]*))?\}|\$(\w+)")


def read_dockerfile(path: Path, shown: str, service: str | None = None) -> tuple[str | None, list[dict[str, Any]]]:
    """A Dockerfile's text for parsing. The engine builds a Dockerfile with non-UTF-8 bytes (a
    Latin-1 `é` in a comment), so such bytes are replaced and reported as a warning only: the
    service stays buildable. None (with a problem) when the file is unreadable or huge."""
    text, probs = read_text(path, shown, service)
    if text is None:
        return None, probs
    return text, [{**p, "message": f"warning: {p['message']}; the engine builds it as is"} for p in probs]


def substitute(value: str, variables: dict[str, str]) -> str:
    """value with `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}` expanded from variables;
    an unset or empty variable without a `-` default is left as written."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(4)
        if name in variables and variables[name] != "":
            return variables[name] if m.group(2) != "+" else (m.group(3) or "")
        if m.group(2) == "-":
            return m.group(3) or ""
        return m.group(0)
    return _VAR_RE.sub(repl, value)


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) with continuations joined, comments and heredoc bodies skipped."""
    out: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    escape = "\\"
    for raw in lines[:5]:  # parser directives sit at the very top
        m = re.match(r"^#\s*escape\s*=\s*(\S)\s*$", raw)
        if m:
            escape = m.group(1)
    i = 0
    while i < len(lines):
        start, current = i + 1, lines[i].rstrip()
        i += 1
        if not current.strip() or current.strip().startswith("#"):
            continue
        parts = []
        while current.endswith(escape):
            parts.append(current[:-1].strip())
            # Docker drops comment and blank lines inside a continued instruction.
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1
            if i >= len(lines):
                current = ""
                break
            current = lines[i].rstrip()
            i += 1
        parts.append(current.strip())
        keyword, _, args = " ".join(p for p in parts if p).partition(" ")
        out.append((start, keyword.upper(), args.strip()))
        heredoc = re.search(r"<<(-?)\s*[\"']?([A-Za-z_]\w*)[\"']?", args)
        if heredoc and keyword.upper() in ("RUN", "COPY", "ADD"):
            while i < len(lines) and lines[i].strip() != heredoc.group(2):
                i += 1
            i += 1
    return out


def parse_dockerfile(text: str, shown: str, service: str | None = None) -> dict[str, Any]:
    """Stages, external base images, EXPOSEd ports and HEALTHCHECK of the image the Dockerfile
    builds. Stage-aware: a `FROM builder` names an earlier stage, not an image to pull, and
    EXPOSE/HEALTHCHECK of the final stage include what it inherits from its parent stages."""
    global_args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for line, keyword, args in instructions(text):
        if keyword == "FROM":
            tokens = [t for t in args.split() if not t.startswith("--")]
            if not tokens:
                problems.append(problem(shown, line, "FROM without an image", service))
                continue
            image = substitute(tokens[0], global_args)
            alias = tokens[2].lower() if len(tokens) >= 3 and tokens[1].lower() == "as" else None
            parent = next((s for s in stages if s["alias"] and s["alias"] == image.lower()), None)
            stages.append({"line": line, "image": image, "alias": alias,
                           "from_stage": parent["alias"] if parent else None,
                           "vars": dict(global_args), "ports": set(), "healthcheck": None})
        elif not stages:
            if keyword == "ARG":
                name, _, default = args.partition("=")
                global_args[name.strip()] = default.strip().strip("\"'")
            else:
                problems.append(problem(shown, line, f"{keyword} before the first FROM", service))
        elif keyword in ("ARG", "ENV"):
            assigned = re.findall(r"(\w+)=(\"[^\"]*\"|'[^']*'|\S*)", args)
            if not assigned and args.split():  # `ENV PORT 3000`, or `ARG NAME` keeping its global default
                assigned = [tuple([*args.split(None, 1), ""][:2])]
            scope = stages[-1]["vars"]
            for name, value in assigned:
                if value or name not in scope:
                    scope[name] = substitute(value.strip("\"'"), scope)
        elif keyword == "EXPOSE":
            for token in args.split():
                value = substitute(token, stages[-1]["vars"])
                m = re.match(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", value, re.IGNORECASE)
                low, high = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (0, -1)
                if not m or high > 65535 or low > high:
                    shown_token = token if len(token) <= 40 else token[:37] + "..."
                    problems.append(problem(shown, line, f"EXPOSE {shown_token!r} cannot be resolved to a port",
                                            service))
                    continue
                stages[-1]["ports"].update(range(low, min(high, low + 100) + 1))
        elif keyword == "HEALTHCHECK":
            stages[-1]["healthcheck"] = _healthcheck(args, line, shown, service, problems)
    if not stages:
        problems.append(problem(shown, None, "no FROM instruction: not a buildable Dockerfile", service))
        return {"stages": [], "base_images": [], "final_base_image": None, "exposed_ports": [],
                "healthcheck": no_healthcheck(), "problems": problems}
    chain: list[dict[str, Any]] = []
    stage: dict[str, Any] | None = stages[-1]
    while stage is not None:
        chain.append(stage)
        stage = next((s for s in stages if s["alias"] == stage["from_stage"]), None) if stage["from_stage"] else None
    health = next((s["healthcheck"] for s in chain if s["healthcheck"]), None)
    external = [s["image"] for s in stages if not s["from_stage"] and s["image"].lower() != "scratch"]
    root_image = chain[-1]["image"]
    return {
        "stages": [{"line": s["line"], "image": s["image"], "alias": s["alias"], "from_stage": s["from_stage"]}
                   for s in stages],
        "base_images": list(dict.fromkeys(external)),
        "final_base_image": None if root_image.lower() == "scratch" else root_image,
        "exposed_ports": sorted(set().union(*(s["ports"] for s in chain))),
        "healthcheck": health or no_healthcheck(),
        "problems": problems,
    }


def no_healthcheck(line: int | None = None, *, disabled: bool = False) -> dict[str, Any]:
    """The HEALTHCHECK record of an image without one (disabled: `HEALTHCHECK NONE` at line)."""
    return {"present": False, "disabled": disabled, "command": None, "line": line, "options": {}}


def _healthcheck(args: str, line: int, shown: str, service: str | None, problems: list[dict[str, Any]]) -> dict[str,
                 Any]:
    """The HEALTHCHECK record of one instruction: options, command (exec form shown as a shell
    line); problems gets what the builder would refuse or misread."""
    if args.strip().upper() == "NONE":
        return no_healthcheck(line, disabled=True)
    options, rest = {}, args
    while rest.startswith("--"):
        opt, _, rest = rest.partition(" ")
        key, _, value = opt[2:].partition("=")
        options[key] = value
        rest = rest.strip()
    if not rest.upper().startswith("CMD"):
        problems.append(problem(shown, line, "HEALTHCHECK without CMD", service))
        return {**no_healthcheck(line), "options": options}
    command = rest[3:].strip()
    if command.startswith("["):
        # Not valid exec form: keep the text as written.
        with contextlib.suppress(json.JSONDecodeError, TypeError, RecursionError):
            command = shlex.join(str(p) for p in json.loads(command))
    if "start-interval" in options:
        problems.append(problem(shown, line, "HEALTHCHECK --start-interval needs Docker engine 25 or newer; "
                                             "older engines (Debian's 20.10) refuse the build", service))
    return {"present": True, "disabled": False, "command": command, "line": line, "options": options}
