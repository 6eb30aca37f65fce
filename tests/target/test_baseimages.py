from __future__ import annotations

import pytest

from nexus_assets.core.errors import BuildError
from nexus_assets.target.baseimages import external_bases, load_base_image_map, resolve_base


def _dockerfile(tmp_path, text):
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


def test_external_bases_skips_stages_and_expands_args(tmp_path):
    path = _dockerfile(tmp_path, (
        "ARG NODE=20\n"
        "FROM --platform=linux/amd64 node:${NODE}-alpine AS build\n"
        "RUN echo \\\n  hi\n"
        "FROM build AS test\n"
        "FROM python:3.11-slim\n"
        "COPY --from=build /x /x\n"
    ))
    bases = external_bases(path)
    assert [(b.image, b.line) for b in bases] == [("node:20-alpine", 2), ("python:3.11-slim", 6)]


def test_external_bases_build_arg_overrides_default(tmp_path):
    path = _dockerfile(tmp_path, "ARG PY=3.11\nFROM python:${PY}-slim\n")
    assert external_bases(path, {"PY": "3.12"})[0].image == "python:3.12-slim"


def test_dockerfile_without_from_is_an_error_naming_the_file(tmp_path):
    path = _dockerfile(tmp_path, "RUN true\n")
    with pytest.raises(BuildError, match=str(path)):
        external_bases(path)


def test_shipped_map_covers_the_guide_base_images():
    base_map = load_base_image_map()
    for name in ("node:18-alpine", "node:20-alpine", "python:3.11-slim", "python:3.12-slim"):
        assert base_map.substitutes[name] == base_map.base


@pytest.mark.docker
def test_mapped_base_resolves_as_a_recorded_substitution(tmp_path, docker_client):
    base_map = load_base_image_map()
    path = _dockerfile(tmp_path, "FROM node:18-alpine\n")
    resolved = resolve_base(docker_client, external_bases(path)[0], path, base_map)
    assert resolved["substituted"] is True
    assert resolved["substitute"] == base_map.base
    assert resolved["image_id"] == docker_client.images.get("node:18-alpine").id


@pytest.mark.docker
def test_absent_unmapped_base_fails_with_file_line_and_what_to_do(tmp_path, docker_client):
    path = _dockerfile(tmp_path, "FROM golang:1.99-nowhere\n")
    with pytest.raises(BuildError) as info:
        resolve_base(docker_client, external_bases(path)[0], path, load_base_image_map())
    message = str(info.value)
    assert f"{path}:1" in message and "golang:1.99-nowhere" in message and "base-image map" in message


def test_external_bases_reads_like_the_builder(tmp_path):
    path = _dockerfile(tmp_path, (
        "# escape=`\n"
        "ARG V\n"
        "FROM node:20 AS build\n"
        "RUN <<EOF\nFROM evil:1\nEOF\n"
        "FROM python:3.11-slim `\n"
        "  # a comment inside a continuation\n"
        "  AS final\n"
    ))
    assert [(b.image, b.line) for b in external_bases(path)] == [("node:20", 3), ("python:3.11-slim", 7)]


def test_unset_build_arg_in_from_names_the_line(tmp_path):
    path = _dockerfile(tmp_path, "ARG NODE\nFROM node:${NODE}-alpine\n")
    with pytest.raises(BuildError, match=r":2: base image node:\$\{NODE\}-alpine names a build arg"):
        external_bases(path)
