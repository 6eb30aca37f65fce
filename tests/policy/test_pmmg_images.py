"""Does an image containerize PMMG execution logic? Decided from its Dockerfile, command, history
and files, never from its name; a static file server for the client assets passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nexus_assets.policy.pmmg_images import ImageFacts, belongs_to_pmmg, judge_image

SAMPLE = Path(__file__).resolve().parents[2] / "nexus_assets" / "sample_repo"
NGINX_CMD = ("nginx", "-g", "daemon off;")


def facts(context: Path, cmd: tuple[str, ...] = (), entrypoint: tuple[str, ...] = (), history=(),
          name: str = "pmmg-static") -> ImageFacts:
    dockerfile = context / "Dockerfile"
    return ImageFacts(service=name, context=context, dockerfile=dockerfile if dockerfile.is_file() else None,
                      shown_context=f"services/{name}", shown_dockerfile=f"services/{name}/Dockerfile",
                      entrypoint=entrypoint, cmd=cmd, history=tuple(history))


def context_with(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_sample_node_static_server_passes_though_its_client_uses_webaudio(tmp_path):
    context = tmp_path / "pmmg-static"
    shutil.copytree(SAMPLE / "services" / "pmmg-static", context)
    assert "createOscillator" in (context / "public" / "pmmg.js").read_text()  # the browser's code
    rule = judge_image(facts(context, cmd=("node", "server.js")))
    assert rule.passed, rule
    assert rule.where == "services/pmmg-static/Dockerfile:17" and "runs `node server.js`: no media engine" in rule.detail


@pytest.mark.parametrize(("dockerfile", "cmd", "server"), [
    ("FROM nginx:1.27-alpine\nCOPY public /usr/share/nginx/html\n", NGINX_CMD, "nginx"),
    ("FROM node:20-alpine\nCOPY public /srv\nCMD [\"npx\", \"serve\", \"-s\", \"/srv\"]\n",
     ("npx", "serve", "-s", "/srv"), "serve"),
    ("FROM python:3.12-slim\nCOPY public /srv\nCMD python3 -m http.server 8080 -d /srv\n",
     ("/bin/sh", "-c", "python3 -m http.server 8080 -d /srv"), "python http.server"),
    ("FROM busybox:1.36\nCOPY public /www\nCMD [\"busybox\", \"httpd\", \"-f\", \"-h\", \"/www\"]\n",
     ("busybox", "httpd", "-f", "-h", "/www"), "busybox httpd"),
])
def test_static_file_servers_pass_and_are_named(tmp_path, dockerfile, cmd, server):
    context = context_with(tmp_path, dockerfile, {"public/index.html": "<script src=engine.js></script>",
                                                 "public/engine.js": "new AudioContext(); // ffmpeg.wasm in the browser"})
    rule = judge_image(facts(context, cmd=cmd, name="pmmg-transcoder"))  # the name decides nothing
    assert rule.passed, rule
    assert f"a static file server ({server}" in rule.detail


def test_a_pmmg_image_whose_cmd_runs_ffmpeg_is_refused_naming_the_line(tmp_path):
    context = context_with(tmp_path, "FROM debian:12\nRUN echo build\nCMD [\"ffmpeg\", \"-i\", \"/in\", \"/out\"]\n")
    rule = judge_image(facts(context, cmd=("ffmpeg", "-i", "/in", "/out"), name="pmmg-static"))  # name says static
    assert not rule.passed
    assert rule.where == "services/pmmg-static/Dockerfile:3"
    assert rule.detail.startswith("its command runs a media engine (ffmpeg): `ffmpeg -i /in /out`")


def test_a_media_engine_behind_a_shell_or_an_entrypoint_or_an_inherited_command(tmp_path):
    context = context_with(tmp_path, "FROM acme/base\n")
    shell = judge_image(facts(context, cmd=("/bin/sh", "-c", "exec ffmpeg -re -i /srv/a.wav -f rtp rtp://x")))
    assert not shell.passed and "(ffmpeg)" in shell.detail
    inherited = judge_image(facts(context, entrypoint=("/usr/bin/gst-launch-1.0",), cmd=("filesrc",)))
    assert not inherited.passed
    assert inherited.where == "services/pmmg-static/Dockerfile (command inherited from its base image)"


@pytest.mark.parametrize(("dockerfile", "files", "said", "where"), [
    ("FROM node:20\nRUN apt-get update && apt-get install -y ffmpeg\nCMD [\"node\", \"server.js\"]\n", {},
     "RUN installs or runs a media engine (ffmpeg)", "services/pmmg-static/Dockerfile:2"),
    ("FROM jrottenberg/ffmpeg:6.0-alpine\nCMD [\"node\", \"server.js\"]\n", {},
     "its base image (jrottenberg/ffmpeg:6.0-alpine) is a media engine", "services/pmmg-static/Dockerfile:1"),
    ("FROM node:20\nCMD [\"node\", \"server.js\"]\n",
     {"server.js": "const http = require('http');\nconst { AudioContext } = require('node-web-audio-api');\n"},
     "server code runs WebAudio logic (node-web-audio-api)", "services/pmmg-static/server.js:2"),
    ("FROM node:20\nCMD [\"node\", \"server.js\"]\n",
     {"lib/render.js": "const { spawn } = require('child_process');\nspawn('ffmpeg', ['-i', f]);\n"},
     "server code runs a media engine (ffmpeg)", "services/pmmg-static/lib/render.js:2"),
    ("FROM node:20\nCMD [\"node\", \"server.js\"]\n",
     {"package.json": '{"name": "x", "dependencies": {"express": "4", "fluent-ffmpeg": "2"}}'},
     "depends on a media engine (fluent-ffmpeg)", "services/pmmg-static/package.json"),
    ("FROM python:3.12\nCMD [\"python\", \"app.py\"]\n", {"requirements.txt": "flask==3.0\npydub==0.25\n"},
     "depends on a media engine (pydub)", "services/pmmg-static/requirements.txt:2"),
])
def test_media_engine_logic_in_the_dockerfile_or_the_server_files_is_refused(tmp_path, dockerfile, files, said,
                                                                               where):
    context = context_with(tmp_path, dockerfile, files)
    rule = judge_image(facts(context, cmd=("node", "server.js")))
    assert not rule.passed, rule
    assert said in rule.detail and rule.where == where


def test_a_media_engine_in_a_base_layer_is_found_in_the_history(tmp_path):
    context = context_with(tmp_path, "FROM acme/media-base\nCMD [\"node\", \"server.js\"]\n")
    history = ('/bin/sh -c #(nop)  CMD ["node" "server.js"]', "/bin/sh -c apk add --no-cache ffmpeg",
               "/bin/sh -c #(nop) ADD file:abc in / ")
    rule = judge_image(facts(context, cmd=("node", "server.js"), history=history))
    assert not rule.passed and rule.where == "image history of pmmg-static"
    assert "a layer of its base image installs a media engine (ffmpeg)" in rule.detail


def test_which_services_belong_to_pmmg(tmp_path):
    assert belongs_to_pmmg(["pmmg-static", None, None], None)
    assert belongs_to_pmmg(["media", "media", "services/pmmg/media"], None)
    labelled = tmp_path / "Dockerfile"
    labelled.write_text('FROM nginx\nLABEL io.nexus.system="N3XUS-SYSTEM-PMMG"\n')
    assert belongs_to_pmmg(["studio-web", None, None], labelled)
    assert not belongs_to_pmmg(["transcoder", "transcoder", "services/transcoder"],
                               SAMPLE / "services" / "transcoder" / "Dockerfile")
    assert belongs_to_pmmg(["pmmg-static"], SAMPLE / "services" / "pmmg-static" / "Dockerfile")
