"""Lint's result carried with the image, so that an image the registry cache gives back keeps
its lint evidence and no lint runs again.

Lint runs before the build; its result goes into the image's label io.nexus-assets.lint,
compact and without a clock (two builds of one commit carry the same label): passed or not,
the reason line, hadolint's levels counted and at most MAX_FINDINGS findings by code, line and
level, the .py and .js file counts, the tools' versions, and a hash of everything lint read
(`lint_inputs`). On a registry-cache hit the label, read from the image config the cache
fetched, stands for a lint run when it says passed and its inputs hash is the one computed here
now: lint would give the same result, so none of its subprocesses runs. Its inputs hash, not
the cache key, decides, because lint reads more than the key covers: files the .dockerignore
keeps out of the context (the syntax checks walk the service's folder), hadolint's
configuration, HADOLINT_* variables, and the versions of hadolint, python and node. An image
without the label (built by an earlier nexus-assets), or whose inputs differ, is linted as ever."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from shutil import which
from typing import Any

from nexus_assets.target.services import Service
from nexus_assets.testing.stage import StageResult
from nexus_assets.verify.lint_scope import lint_stage, scoped_files
from nexus_assets.verify.service_tests import hadolint_binary

LABEL = "io.nexus-assets.lint"
FORMAT = 1  # bumped when the label's fields change: a label of another format is not read
MAX_FINDINGS = 10  # findings kept in the label by code, line and level; the rest counted
MAX_REASON = 300  # characters of the reason line kept
JS_SUFFIXES = (".js", ".mjs", ".cjs")
# Where hadolint looks for its configuration: the folder it runs in, then the user's.
HADOLINT_CONFIGS = (".hadolint.yaml", ".hadolint.yml")
HOME_CONFIGS = (".config/hadolint.yaml", ".config/hadolint.yml", ".hadolint/hadolint.yaml",
                ".hadolint/hadolint.yml", "hadolint/hadolint.yaml", "hadolint/hadolint.yml", ".hadolint.yaml",
                ".hadolint.yml")


@functools.lru_cache(maxsize=8)
def tool_version(binary: str) -> str:
    """`binary --version`'s first line, once per process ("" when it cannot run)."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[0][:120] if done.returncode == 0 else ""


def tools(py_files: int, js_files: int) -> dict[str, str]:
    """The versions of the tools lint runs: hadolint always, python and node when it has files for them."""
    hadolint = hadolint_binary()
    found = {"hadolint": tool_version(hadolint) if hadolint else ""}
    if py_files:
        found["python"] = ".".join(str(n) for n in sys.version_info[:3])
    if js_files:
        node = which("node")
        found["node"] = tool_version(node) if node else ""
    return found


def _configs(service: Service) -> list[Path]:
    home = Path(os.path.expanduser("~"))
    xdg = os.environ.get("XDG_CONFIG_HOME")
    places = [service.path / name for name in HADOLINT_CONFIGS] + [home / name for name in HOME_CONFIGS]
    places += [Path(xdg) / name for name in ("hadolint.yaml", "hadolint.yml")] if xdg else []
    return [p for p in places if p.is_file()]


def lint_inputs(service: Service) -> tuple[str, dict[str, str]]:
    """(a hash of everything lint reads for service, the tools' versions): its Dockerfile, the
    files its syntax checks read (verify.lint_scope), hadolint's configuration files and
    HADOLINT_* variables, and the tools' versions. OSError when a file cannot be read."""
    assert service.dockerfile is not None
    files, _ = scoped_files(service)
    versions = tools(sum(f.suffix == ".py" for f in files), sum(f.suffix in JS_SUFFIXES for f in files))
    digest = hashlib.sha256(json.dumps({"format": FORMAT, "tools": versions,
                                        "env": sorted((k, v) for k, v in os.environ.items()
                                                      if k.startswith("HADOLINT_"))}, sort_keys=True).encode())
    for kind, paths in (("D", [service.dockerfile]), ("C", _configs(service)), ("F", files)):
        for path in paths:
            name = os.path.relpath(path, service.path) if kind != "C" or path.parent == service.path else str(path)
            digest.update(f"{kind} {name}\n".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32], versions


def labels(service: Service, result: StageResult) -> dict[str, str]:
    """The labels for an image built after this lint result: {LABEL: label_value(...)}, or none
    when lint had no Dockerfile to read or its inputs cannot be read now."""
    value = label_value(service, result)
    return {LABEL: value} if value is not None else {}


def label_value(service: Service, result: StageResult) -> str | None:
    """The value of the label io.nexus-assets.lint for this lint result (None: lint had no
    Dockerfile to read, or its inputs cannot be read now)."""
    if service.dockerfile is None or result.stage != "lint":
        return None
    try:
        inputs, versions = lint_inputs(service)
    except (OSError, ValueError):  # unreadable now: no label, lint runs (never a reason to fail)
        return None
    hadolint = result.details.get("hadolint") or {}
    findings = [[str(f.get("code")), f.get("line"), str(f.get("level"))] for f in hadolint.get("findings") or []]
    record = {"format": FORMAT, "passed": result.passed, "reason": result.reason[:MAX_REASON],
              "levels": {k: v for k, v in (hadolint.get("levels") or {}).items() if v},
              "findings": findings[:MAX_FINDINGS], "more_findings": max(0, len(findings) - MAX_FINDINGS),
              "python_files": result.details.get("python_files", 0), "js_files": result.details.get("js_files", 0),
              "tools": versions, "inputs": inputs}
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def read_label(value: str | None) -> dict[str, Any] | None:
    """The label's record, or None when it is absent, unreadable or of another format."""
    if not value:
        return None
    try:
        record = json.loads(value)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("reason"), str):
        return None
    return record


def from_label(service: Service, log_dir: Path, labels: dict[str, str], source: str, *,
               timeout: float = 60) -> StageResult | None:
    """The lint stage of an image taken from the registry cache, from its label (source: where
    the image came from, said in the log and the reason): passed when built, no lint run. None
    when lint must run: no label (an image of an earlier recipe), one that did not pass, or
    inputs that differ from what lint would read here now."""
    record = read_label(labels.get(LABEL))
    if record is None or record.get("passed") is not True or service.dockerfile is None:
        return None
    try:
        inputs, versions = lint_inputs(service)
    except (OSError, ValueError):  # unreadable now: no label, lint runs (never a reason to fail)
        return None
    if inputs != record.get("inputs"):
        return None
    st = lint_stage(service, log_dir, timeout)
    st.write(f"# not run again: the image comes from the registry cache {source}; its label {LABEL} carries "
             "lint's result from when it was built, and what lint reads here (the Dockerfile, the files it checks, "
             f"hadolint's configuration, the tools' versions) hashes to the same {inputs}")
    st.write(f"# tools: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    for code, line, level in record.get("findings") or []:
        st.write(f"# hadolint when built: line {line} {code} {level}")
    if record.get("more_findings"):
        st.write(f"# ... and {record['more_findings']} more finding(s)")
    st.details.update(from_cache=source, inputs=inputs, tools=versions,
                      hadolint={"levels": record.get("levels") or {},
                                "findings": [{"code": c, "line": n, "level": lv}
                                             for c, n, lv in record.get("findings") or []],
                                "more_findings": record.get("more_findings", 0)},
                      python_files=record.get("python_files", 0), js_files=record.get("js_files", 0))
    return st.result(True, f"passed when built: {record['reason']} (from the registry cache {source})")
