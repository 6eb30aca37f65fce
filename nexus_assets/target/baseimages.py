"""Base images: what a Dockerfile starts FROM, and how this machine provides it.

The real image first: scripts/bootstrap.sh keeps the real image where the engine has it or
can pull it, and only for the names of the base-image map it cannot have does it build a
substitute from Debian packages (node and npm, python, pip and venv, busybox's user tools
for *-alpine, the host's CA bundle, the local package caches). Every substitute carries the
label io.nexus-assets.substitutes, which is how a build learns (and records) that its FROM
was substituted, and what the substitute provides."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexus_assets.core.errors import BuildError, ConfigError
from nexus_assets.target.dockerfile import instructions, read_dockerfile, substitute

if TYPE_CHECKING:
    from docker import DockerClient  # untyped package: Any to mypy, a name to the reader

DEFAULT_MAP = Path(__file__).parent / "base_images.toml"
SUBSTITUTE_LABEL = "io.nexus-assets.substitutes"
SUBSTITUTE_BASE_LABEL = "io.nexus-assets.substitute-base"
PROVIDES_LABEL = "io.nexus-assets.substitute-provides"

@dataclass(frozen=True)
class BaseImageMap:
    path: Path
    base: str
    substitutes: dict[str, str] = field(default_factory=dict)
    # The network builds run on, where the package caches the substitutes use listen.
    build_network: str | None = None


def load_base_image_map(path: Path | None = None) -> BaseImageMap:
    """The map at path, NEXUS_BASE_IMAGE_MAP, or the one shipped with the package."""
    path = path or Path(os.environ.get("NEXUS_BASE_IMAGE_MAP") or DEFAULT_MAP)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return BaseImageMap(path=path, base=data["base"]["name"], substitutes=dict(data.get("substitutes", {})),
                            build_network=(data.get("package_cache") or {}).get("network") or None)
    except FileNotFoundError as exc:
        raise ConfigError(f"base-image map {path} does not exist (NEXUS_BASE_IMAGE_MAP)") from exc
    except (tomllib.TOMLDecodeError, KeyError, UnicodeDecodeError) as exc:
        raise ConfigError(f"base-image map {path} is invalid: {exc}") from exc


@dataclass(frozen=True)
class FromLine:
    image: str
    line: int


def external_bases(dockerfile: Path, build_args: dict[str, str] | None = None) -> list[FromLine]:
    """The images a Dockerfile starts from, ARG defaults expanded, earlier stages left out.
    Read with the same tokenizer as discovery (continuations, comments, heredocs, escape)."""
    # Bad bytes (a Latin-1 comment) are read with replacement characters, as the engine accepts them.
    text, _ = read_dockerfile(dockerfile, str(dockerfile))
    if text is None:
        raise BuildError(f"{dockerfile}: cannot be read (unreadable or larger than 4 MiB)")
    args = dict(build_args or {})
    stages: set[str] = set()
    found: list[FromLine] = []
    seen_from = False
    for line, keyword, rest in instructions(text):
        if keyword == "ARG" and not seen_from:
            name, _, default = rest.partition("=")
            args.setdefault(name.strip(), default.strip().strip("\"'"))
            continue
        if keyword != "FROM":
            continue
        seen_from = True
        tokens = [t for t in rest.split() if not t.startswith("--")]
        if not tokens:
            raise BuildError(f"{dockerfile}:{line}: FROM without an image")
        image = substitute(tokens[0], args)
        if len(tokens) >= 3 and tokens[1].lower() == "as":
            stages.add(tokens[2].lower())
        if image.lower() in stages or image.lower() == "scratch":
            continue
        if "$" in image:
            raise BuildError(f"{dockerfile}:{line}: base image {tokens[0]} names a build arg that has no value")
        found.append(FromLine(image=image, line=line))
    if not seen_from:
        raise BuildError(f"{dockerfile}: no FROM instruction")
    return found


def stood_in(name: str, labels: dict[str, Any] | None) -> str:
    """What an image named name really is, from its labels: a substitute's own base and what it
    provides (`nexus-base/bookworm:2 providing python3.11 ...`), or the image itself."""
    labels = labels or {}
    if labels.get(SUBSTITUTE_LABEL) != name:
        return f"{name} itself"
    return (f"a substitute over {labels.get(SUBSTITUTE_BASE_LABEL) or 'the map base'} providing "
            f"{labels.get(PROVIDES_LABEL) or 'what the base-image map says'}")


def resolve_base(client: DockerClient, base: FromLine, dockerfile: Path, base_map: BaseImageMap) -> dict[str, Any]:
    """Where a FROM image comes from on this engine, or a BuildError saying what to do.

    Never pulls: an absent image would make the legacy builder try the hub and hang."""
    import docker.errors

    try:
        image = client.images.get(base.image)
    except docker.errors.ImageNotFound:
        if base.image in base_map.substitutes:
            raise BuildError(
                f"{dockerfile}:{base.line}: base image {base.image} is mapped to "
                f"{base_map.substitutes[base.image]} in {base_map.path} but is not in the engine: "
                "run `bash scripts/bootstrap.sh` to build the base images"
            ) from None
        raise BuildError(
            f"{dockerfile}:{base.line}: base image {base.image} is not in the engine and not in the "
            f"base-image map {base_map.path}: add a substitute there, or load the image with `docker load`"
        ) from None
    labels = image.labels or {}
    substituted = labels.get(SUBSTITUTE_LABEL) == base.image
    return {
        "requested": base.image,
        "image_id": image.id,
        "substituted": substituted,
        "substitute": labels.get(SUBSTITUTE_BASE_LABEL) if substituted else None,
        "provides": labels.get(PROVIDES_LABEL) if substituted else None,
        "line": base.line,
    }
