"""No transcoding job scheduled for PMMG assets: compose services, worker and job configurations,
each entry judged alone, comments never read."""

from __future__ import annotations

from pathlib import Path

from nexus_assets.policy.pmmg_jobs import no_transcoding, text_jobs, transcoding_jobs, yaml_jobs

SAMPLE = Path(__file__).resolve().parents[2] / "nexus_assets" / "sample_repo"


def test_the_sample_schedules_none_though_pmmg_and_a_transcoder_share_its_compose_file():
    assert transcoding_jobs(SAMPLE) == []
    assert no_transcoding(SAMPLE).passed


def test_a_compose_worker_for_pmmg_that_runs_ffmpeg_is_named_with_file_and_line(tmp_path):
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n"
        "  pmmg-static:\n    image: nginx:alpine\n"
        "  transcoder:\n    build: ./services/transcoder\n    command: ffmpeg -i /in -o /out\n"
        "  media-worker:\n    build: ./services/media-worker\n"
        "    environment:\n      ASSET_ROOT: /srv/pmmg/assets\n"
        "    command: [\"ffmpeg\", \"-i\", \"/srv/in.wav\", \"/srv/out.mp3\"]\n")
    rule = no_transcoding(tmp_path)
    assert not rule.passed and rule.where == "docker-compose.yml:7"
    assert rule.detail == "transcoding job(s) scheduled for PMMG assets: docker-compose.yml:7 (media-worker)"


def test_worker_configs_in_yaml_json_ini_and_crontab(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "workers.yml").write_text(
        "queues:\n  renders:\n    source: s3://bucket/pmmg/\n    job: transcode-to-hls\n"
        "  thumbnails:\n    job: transcode\n")
    (tmp_path / "config" / "jobs.json").write_text(
        '{"jobs": [{"name": "nightly", "run": "backup"}, {"name": "pmmg-mixdown", "run": "sox a.wav b.mp3"}]}')
    (tmp_path / "supervisord.conf").write_text(
        "[program:api]\ncommand=node server.js\n\n[program:pmmg-encoder]\ncommand=/usr/bin/ffmpeg -i x y\n")
    (tmp_path / "crontab").write_text("# pmmg ffmpeg: never here\n0 3 * * * ffmpeg -i /data/pmmg/in.wav out.mp3\n")
    jobs = transcoding_jobs(tmp_path)
    assert jobs == ["config/jobs.json:1", "config/workers.yml:2 (renders)", "crontab:2 (0)",
                    "supervisord.conf:4 (program:pmmg-encoder)"]


def test_comments_and_separate_entries_are_no_job():
    assert yaml_jobs("# pmmg ffmpeg transcode\nservices:\n  a:\n    image: pmmg\n  b:\n    image: ffmpeg\n") == []
    assert text_jobs("; pmmg ffmpeg\n[a]\nx=pmmg\n[b]\ny=ffmpeg\n", sections=True) == []
    assert yaml_jobs("not: [valid") == []  # discovery reports a broken file


def test_dependency_folders_and_the_discovery_archive_are_not_read(tmp_path):
    for folder in ("node_modules/x", "nexus-discovery"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "jobs.yml").write_text("job: {name: pmmg, run: ffmpeg}\n")
    assert transcoding_jobs(tmp_path) == []
