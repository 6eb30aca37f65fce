"""Issue 16, case 10: a write that fails on a full disk names its file. write() and fsync() raise
OSError(ENOSPC) with no file name, which came out as a bare `OSError: [Errno 28]`."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from nexus_assets.core.errors import no_space_line
from nexus_assets.core.fileio import naming, write_atomic
from tests.conftest import mounted_tmpfs


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 64 KB tmpfs, filled up; unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "full", "64k", full=True) as mount:
        yield mount


def test_write_atomic_on_a_full_disk_names_the_file_and_leaves_nothing(full_disk):
    target = full_disk / "sbom" / "users.cdx.json"
    with pytest.raises(OSError) as caught:
        write_atomic(target, b"{}" * 20000)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert no_space_line(caught.value) == f"no space left on device: {target}"
    assert list((full_disk / "sbom").iterdir()) == []  # the temporary file went too


def test_naming_leaves_an_error_that_names_its_file_or_has_no_errno_alone(tmp_path):
    with pytest.raises(FileNotFoundError) as caught, naming(tmp_path / "other"):
        (tmp_path / "missing" / "x").read_text()
    assert caught.value.filename == str(tmp_path / "missing" / "x")
    with pytest.raises(OSError) as bare, naming(tmp_path / "x"):
        raise OSError("no errno")
    assert bare.value.filename is None


def test_a_test_stage_log_on_a_full_disk_names_the_log(full_disk):
    from nexus_assets.testing.stage import Stage

    with pytest.raises(OSError) as caught:
        Stage("users", "unit", full_disk / "reports", timeout=5).write("x" * 100000)
    assert no_space_line(caught.value) == f"no space left on device: {full_disk}/reports/test_results_users_unit.log"
