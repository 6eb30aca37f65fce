"""A discovery archive is never trusted: malicious tarballs are built here and must be refused."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from nexus_assets.core.errors import InputError
from nexus_assets.discovery.archive import extract_tar_safely
from nexus_assets.discovery.archive_contents import read_discovery_archive

ARCHIVE_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "discovery_archive"


def make_tar(path: Path, members: list[tuple[str, str, object]], mode: str = "w:gz") -> Path:
    """members: (name, kind, payload) with kind file (payload bytes), dir, sym/hard (payload target),
    fifo, chr."""
    with tarfile.open(path, mode) as tf:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def refused(tmp_path: Path, members, match: str, **limits) -> InputError:
    archive = make_tar(tmp_path / "evil.tar.gz", members)
    dest = tmp_path / "out"
    with pytest.raises(InputError, match=match) as info:
        extract_tar_safely(archive, dest, **limits)
    assert str(archive) in str(info.value)
    # Every member is checked before anything is written.
    assert not dest.exists() or list(dest.iterdir()) == []
    return info.value


def test_good_archive_extracts_with_top_folder_and_inner_links(tmp_path):
    archive = make_tar(tmp_path / "ok.tar.gz", [
        ("nexus-discovery", "dir", None),
        ("nexus-discovery/docker_ps.json", "file", b"[]"),
        ("nexus-discovery/logs", "dir", None),
        ("nexus-discovery/logs/journal.txt", "file", b"line\n"),
        ("nexus-discovery/latest.txt", "sym", "logs/journal.txt"),
        ("nexus-discovery/copy.txt", "hard", "nexus-discovery/docker_ps.json"),
    ])
    names = extract_tar_safely(archive, tmp_path / "out")
    assert names == sorted(names)
    assert "nexus-discovery/docker_ps.json" in names
    assert (tmp_path / "out" / "nexus-discovery" / "latest.txt").read_text() == "line\n"
    assert (tmp_path / "out" / "nexus-discovery" / "copy.txt").read_bytes() == b"[]"


def test_absolute_member_is_refused(tmp_path):
    err = refused(tmp_path, [("ok.txt", "file", b"x"), ("/etc/cron.d/evil", "file", b"x")], "absolute path")
    assert "/etc/cron.d/evil" in str(err)


def test_dotdot_member_is_refused(tmp_path):
    err = refused(tmp_path, [("a/../../escape.txt", "file", b"x")], r"'\.\.'")
    assert "a/../../escape.txt" in str(err)


def test_symlink_to_absolute_path_is_refused(tmp_path):
    refused(tmp_path, [("passwd", "sym", "/etc/passwd")], "absolute path '/etc/passwd'")


def test_symlink_pointing_out_is_refused(tmp_path):
    refused(tmp_path, [("sub", "dir", None), ("sub/up", "sym", "../../outside")], "pointing outside")


def test_link_chain_escaping_through_an_inner_link_is_refused(tmp_path):
    # `here -> .` is harmless, but `here/..` is lexically "." while on disk it is dest's parent.
    refused(tmp_path, [("here", "sym", "."), ("escape", "sym", "here/../x")], "through another link")


def test_member_written_through_an_archive_link_is_refused(tmp_path):
    refused(tmp_path, [("sub", "dir", None), ("link", "sym", "sub"), ("link/file.txt", "file", b"x")],
            "written through the link 'link'")


def test_hardlink_out_is_refused(tmp_path):
    refused(tmp_path, [("h", "hard", "../../etc/shadow")], "pointing outside")
    refused(tmp_path, [("h", "hard", "/etc/shadow")], "absolute path")


@pytest.mark.parametrize("kind", ["fifo", "chr"])
def test_devices_and_fifos_are_refused(tmp_path, kind):
    refused(tmp_path, [("dev", kind, None)], "device or FIFO")


def test_member_size_bound(tmp_path):
    err = refused(tmp_path, [("big.txt", "file", b"x" * 2000)], "over the 1000-byte limit", max_member_bytes=1000)
    assert "big.txt" in str(err)


def test_total_size_bound(tmp_path):
    refused(tmp_path, [(f"f{i}.txt", "file", b"x" * 600) for i in range(3)], "more than 1000 bytes",
            max_total_bytes=1000)


def test_member_count_bound(tmp_path):
    refused(tmp_path, [(f"f{i}.txt", "file", b"x") for i in range(5)], "more than 3 members", max_members=3)


def test_garbage_and_truncated_archives_name_the_archive(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not a tarball at all")
    with pytest.raises(InputError, match="not a readable tar archive") as info:
        extract_tar_safely(junk, tmp_path / "o1")
    assert str(junk) in str(info.value)
    good = make_tar(tmp_path / "good.tar.gz", [("docker_ps.json", "file", os.urandom(50_000))])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(InputError, match="not a readable tar archive"):
        extract_tar_safely(cut, tmp_path / "o2")


def tar_fixture(tmp_path: Path, top: str = "nexus-full-discovery") -> Path:
    archive = tmp_path / "nexus-full-discovery.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(ARCHIVE_FIXTURE, arcname=top)
    return archive


def test_read_discovery_archive_tarball(tmp_path):
    info, pairs = read_discovery_archive(tar_fixture(tmp_path), "/tmp/nexus-full-discovery.tar.gz")
    assert info["present"] and info["ok"] and info["kind"] == "tar"
    assert info["missing_files"] == []
    assert [c["compose_service"] for c in info["docker_ps"]] == ["auth-service", "ott-mini", "postgres"]
    assert {c["name"]: c["status"] for c in info["docker_ps"]}["nexus-cos-postgres-1"] == "exited"
    assert info["docker_ps"][0]["health"] == "healthy"
    assert [u["unit"] for u in info["systemd_services"]][:2] == ["containerd.service", "docker.service"]
    assert {"unit": "nexus-legacy-api.service", "load": "loaded", "active": "failed", "sub": "failed"} \
        in info["systemd_services"]
    assert [p["port"] for p in info["ports"]] == [22, 80, 443, 3001]
    assert info["compose_dump"]["services"] == ["auth-service", "ott-mini", "postgres"]
    assert info["env_keys"] == ["JWT_SECRET", "NODE_ENV", "PATH", "POSTGRES_PASSWORD", "STRIPE_SECRET_KEY"]
    assert info["journal"]["lines"] == 5
    assert any("***@***" in line for line in info["journal"]["last_lines"])
    # Values come back separately for masking and are not in the summary.
    assert ("POSTGRES_PASSWORD", "vps-Pg-pass-7731") in pairs
    assert "vps-Pg-pass-7731" not in str(info["env_keys"])


def test_read_discovery_archive_missing_is_normal(tmp_path):
    info, pairs = read_discovery_archive(tmp_path / "nexus-full-discovery.tar.gz")
    assert info["present"] is False and "proceeding with current system discovery" in info["message"]
    assert pairs == []


def test_read_discovery_archive_with_traversal_is_reported_not_raised(tmp_path):
    archive = make_tar(tmp_path / "nexus-discovery.tar.gz", [("docker_ps.json", "file", b"[]"),
                                                             ("../../etc/evil", "file", b"x")])
    info, _ = read_discovery_archive(archive, "nexus-discovery.tar.gz")
    assert info["present"] and info["ok"] is False
    assert "../../etc/evil" in info["problems"][0]["message"]
    assert info["problems"][0]["file"] == "nexus-discovery.tar.gz"
    assert not (tmp_path.parent.parent / "etc" / "evil").exists()


def test_folder_archive_link_out_and_fifo_are_not_read(tmp_path):
    folder = tmp_path / "nexus-discovery"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("TOP-SECRET-OUTSIDE")
    (folder / "env_dump.txt").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(folder / "docker_journal.txt")  # reading it would block forever
    (folder / "systemd_services.txt").write_bytes(b"  nginx.service loaded active running caf\xe9\n")
    info, pairs = read_discovery_archive(folder, "nexus-discovery")
    assert info["ok"] and info["kind"] == "folder"
    messages = " ".join(p["message"] for p in info["problems"])
    assert "env_dump.txt is a link pointing outside" in messages
    assert "docker_journal.txt is not a regular file" in messages
    assert "TOP-SECRET-OUTSIDE" not in repr(info) and pairs == []
    # Non-UTF-8 is reported with its line and the file is still used.
    assert any(p["line"] == 1 and "UTF-8" in p["message"] for p in info["problems"])
    assert info["systemd_services"][0]["unit"] == "nginx.service"


def test_docker_ps_as_api_json_array_and_bad_lines(tmp_path):
    folder = tmp_path / "arch"
    folder.mkdir()
    (folder / "docker_ps.json").write_text(
        '[{"Names": ["/nexus-cos-users-1"], "Image": "nexus/users:1", "State": "running", "Status": "Up 1 hour",'
        ' "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8000, "PublicPort": 8002, "Type": "tcp"}],'
        ' "Labels": {"com.docker.compose.service": "users"}}, "junk"]')
    info, _ = read_discovery_archive(folder)
    (entry,) = info["docker_ps"]
    assert entry["name"] == "nexus-cos-users-1" and entry["compose_service"] == "users"
    assert entry["ports"] == ["127.0.0.1:8002->8000/tcp"]
    assert any("not a JSON object" in p["message"] for p in info["problems"])
    (folder / "docker_ps.json").write_text('{"Names": "a", "State": "running"}\n{broken\n')
    info, _ = read_discovery_archive(folder)
    assert [c["name"] for c in info["docker_ps"]] == ["a"]
    assert any(p["line"] == 2 for p in info["problems"])


def test_the_pre_check_is_tarfiles_data_filter_on_every_member(tmp_path, monkeypatch):
    seen = []
    real = tarfile.data_filter

    def spy(member, dest):
        seen.append(member.name)
        return real(member, dest)

    monkeypatch.setattr(tarfile, "data_filter", spy)
    archive = make_tar(tmp_path / "ok.tar.gz", [("d", "dir", None), ("d/a.txt", "file", b"a"), ("d/l", "sym", "a.txt")])
    assert extract_tar_safely(archive, tmp_path / "out") == ["d", "d/a.txt", "d/l"]
    assert seen == ["d", "d/a.txt", "d/l"]


def test_extraction_runs_the_data_filter_too_setuid_and_group_write_are_cleared(tmp_path):
    archive = tmp_path / "modes.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("tool.sh")
        info.size, info.mode = 3, 0o6777
        tf.addfile(info, io.BytesIO(b"x=1"))
    extract_tar_safely(archive, tmp_path / "out")
    mode = (tmp_path / "out" / "tool.sh").stat().st_mode & 0o7777
    assert mode & 0o6000 == 0 and mode & 0o022 == 0, oct(mode)


def test_a_refusal_during_extraction_leaves_nothing_beside_or_in_dest(tmp_path):
    # Only the filter at extraction time sees this one (`here` must exist on disk first).
    refused(tmp_path, [("ok.txt", "file", b"x"), ("here", "sym", "."), ("escape", "sym", "here/../x")],
            "through another link")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz", "out"]
    assert not (tmp_path / "x").exists()


def test_hard_link_to_a_member_that_is_not_there_names_the_archive(tmp_path):
    archive = make_tar(tmp_path / "dangling.tar.gz", [("h", "hard", "not-in-the-archive")])
    with pytest.raises(InputError, match="not a readable tar archive") as info:
        extract_tar_safely(archive, tmp_path / "out")
    assert str(archive) in str(info.value)
    assert list((tmp_path / "out").iterdir()) == []


def test_backslashes_are_characters_of_one_name_inside_dest(tmp_path):
    archive = make_tar(tmp_path / "bs.tar.gz", [("..\\..\\x.txt", "file", b"x")])
    assert extract_tar_safely(archive, tmp_path / "out") == ["..\\..\\x.txt"]
    assert (tmp_path / "out" / "..\\..\\x.txt").read_bytes() == b"x"
