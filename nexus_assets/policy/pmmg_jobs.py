"""PMMG's third rule: no transcoding job is scheduled for PMMG assets (the guide: "Agents must not
schedule FFmpeg or server-side transcoding jobs for PMMG assets").

A job is one entry of a configuration file: a compose service, a worker or queue under a
collection (`workers: {pmmg-renders: {...}}`), an item of a job list, a whole one-job file, an
INI/TOML section, a crontab or Procfile line. An entry that names PMMG (its key, a value, an
environment key or value, a path) *and* a media engine or transcoding (`ffmpeg`, `transcode`,
`gst-launch`, `sox`, ...) is such a job, named with its file and line. PMMG and a transcoder
side by side in one compose file (two services) are not: each entry is judged alone. Comments
are never read (a YAML comment is no job).

Read: every compose file, and every YAML, JSON, TOML, INI, `.conf`, crontab, Procfile and
systemd unit in the repository outside dependency folders, outputs and the discovery archive
(`core.textfiles.walk_files`). A file that does not mention both at all is not parsed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from nexus_assets.core.textfiles import read_text, rel_path, walk_files
from nexus_assets.policy.pmmg import Rule, mentions_pmmg

MEDIA_JOB_RE = re.compile(r"ffmpeg|ffprobe|transcod|gst-launch|gstreamer|(?<![a-z])sox(?![a-z])|handbrake"
                          r"|mencoder|(?<![a-z])avconv(?![a-z])", re.IGNORECASE)
_YAML_NAME = re.compile(r".*\.(ya?ml|json)$", re.IGNORECASE)
_SECTION_NAME = re.compile(r".*\.(toml|ini|cfg|conf|service|timer)$", re.IGNORECASE)
_LINE_NAME = re.compile(r"^(crontab|Procfile)$|.*\.(cron|crontab)$", re.IGNORECASE)
_ANY_NAME = re.compile(f"{_YAML_NAME.pattern}|{_SECTION_NAME.pattern}|{_LINE_NAME.pattern}", re.IGNORECASE)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _both(text: str) -> bool:
    return mentions_pmmg(text) and bool(MEDIA_JOB_RE.search(text))


def _is_collection(node: yaml.Node) -> bool:
    """A mapping of named entries (compose's services, workers by name): every value a mapping."""
    return isinstance(node, yaml.MappingNode) and bool(node.value) and all(
        isinstance(v, yaml.MappingNode) for _, v in node.value)


def yaml_jobs(text: str) -> list[tuple[int, str]]:
    """(line, entry name) of every entry of a YAML (or JSON) text that names PMMG and a media
    engine. An entry is the document's root mapping, each value of a collection (with its key)
    and each mapping item of a sequence; every scalar (keys included) belongs to its nearest
    entry. Unparsable text has none (discovery reports broken files)."""
    try:
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except (yaml.YAMLError, RecursionError):
        return []
    found: list[tuple[int, str]] = []

    def walk(node: yaml.Node, texts: list[str]) -> None:
        if isinstance(node, yaml.ScalarNode):
            texts.append(str(node.value))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                if isinstance(item, yaml.MappingNode):
                    entry(item, "", item.start_mark.line + 1)
                else:
                    walk(item, texts)
        elif isinstance(node, yaml.MappingNode):
            if _is_collection(node):
                for key, value in node.value:
                    entry(value, str(getattr(key, "value", "")), key.start_mark.line + 1)
                return
            for key, value in node.value:
                walk(key, texts)
                walk(value, texts)

    def entry(node: yaml.Node, name: str, line: int) -> None:
        texts = [name]
        walk(node, texts)
        if _both("\n".join(texts)):
            found.append((line, name))

    for document in documents:
        if document is not None:
            entry(document, "", document.start_mark.line + 1)
    return found


def text_jobs(text: str, sections: bool) -> list[tuple[int, str]]:
    """(line, entry) of every INI/TOML section (sections) or line that names PMMG and a media
    engine; `#` and `;` comments are left out."""
    found: list[tuple[int, str]] = []
    block: list[str] = []
    start, name = 1, ""
    lines = [*text.splitlines(), "[end]" if sections else ""]
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith(("#", ";")):
            continue
        if not sections:
            if _both(line):
                found.append((number, line.split()[0]))
            continue
        if line.startswith("["):
            if _both("\n".join(block)):
                found.append((start, name))
            block, start, name = [line], number, line.strip("[]")
        else:
            block.append(line)
    return found


def transcoding_jobs(repo: Path) -> list[str]:
    """`file:line (entry)` of every transcoding job scheduled for PMMG assets in repo."""
    found: list[str] = []
    for path in walk_files(repo, _ANY_NAME):
        if path.is_symlink():
            continue
        shown = rel_path(path, repo)
        text, _ = read_text(path, shown)
        if text is None or not _both(text):  # most files: not parsed at all
            continue
        if _YAML_NAME.match(path.name):
            jobs = yaml_jobs(text)
        else:
            jobs = text_jobs(text, sections=bool(_SECTION_NAME.match(path.name)))
        found += [f"{shown}:{line}" + (f" ({name})" if name else "") for line, name in jobs]
    return found


def no_transcoding(repo: Path) -> Rule:
    """The rule, naming the first file and every job found."""
    jobs = transcoding_jobs(repo)
    if jobs:
        return Rule("no transcoding", False, "transcoding job(s) scheduled for PMMG assets: " + "; ".join(jobs),
                    jobs[0].split(" ")[0])
    return Rule("no transcoding", True, "no compose service, worker or job configuration schedules transcoding "
                                        "(ffmpeg, transcode, gstreamer, sox) for PMMG assets")
