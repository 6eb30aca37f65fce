"""Issue 16, case 4: scaffolding is bounded and all or nothing. A synopsis with 2,000 modules
scaffolded until "all 900 node scaffold ports are taken", leaving 900 folders in the working copy
and a message naming neither the synopsis nor the count; now the count is checked against
[scaffold] max_per_run before anything is written, and a failure part-way leaves the working copy
as it was."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from nexus_assets.core.errors import InputError, no_space_line
from nexus_assets.scaffold.generate import REASON_CREATED, REASON_EXISTS, scaffold_missing, scaffold_service
from nexus_assets.target.repo_config import DEFAULTS
from tests.conftest import mounted_tmpfs

SYNOPSIS = "/repo/docs/investor_synopsis.md"


def _modules(count: int, prefix: str = "mod") -> list[tuple[str, str]]:
    return [(f"{prefix}-{i:04d}", f"module {i}") for i in range(count)]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "services" / "users").mkdir(parents=True)
    (work / "services" / "users" / "Dockerfile").write_text("FROM scratch\n")
    return work


def test_more_modules_than_max_per_run_is_one_error_naming_the_synopsis_and_count_and_writes_nothing(workdir):
    before = _tree(workdir)
    config = DEFAULTS["scaffold"]
    assert config["max_per_run"] == 200  # sized for the real platform (about 100 services)
    with pytest.raises(InputError) as caught:
        scaffold_missing(workdir, _modules(2000), config, source=SYNOPSIS)
    assert str(caught.value) == (
        f"{SYNOPSIS} lists 2000 modules the repository does not have, more than nexus-agent.toml [scaffold] "
        "max_per_run = 200 scaffolded in one run; nothing scaffolded: check the synopsis's Required Modules "
        "section, or raise max_per_run")
    assert _tree(workdir) == before


def test_the_limit_counts_only_the_folders_this_run_would_make(workdir):
    config = {**DEFAULTS["scaffold"], "max_per_run": 2}
    first = scaffold_missing(workdir, _modules(2), config, source=SYNOPSIS)
    assert [r.reason for r in first] == [REASON_CREATED] * 2
    # the two made before, PMMG and an invalid name are no new folders: two new ones still fit
    modules = [*_modules(4), ("pmmg-player", ""), ("../up", ""), ("mod-0002", "named twice")]
    again = scaffold_missing(workdir, modules, config, source=SYNOPSIS)
    assert [r.created for r in again] == [False, False, True, True, False, False, False]
    assert again[-1].reason == REASON_EXISTS
    with pytest.raises(InputError, match=r"lists 3 modules .* max_per_run = 2"):
        scaffold_missing(workdir, _modules(7), config, source=SYNOPSIS)
    assert not (workdir / "services" / "mod-0004").exists()


def test_running_out_of_scaffold_ports_is_found_before_anything_is_written(workdir):
    before = _tree(workdir)
    config = {**DEFAULTS["scaffold"], "max_per_run": 1800}
    with pytest.raises(InputError) as caught:
        scaffold_missing(workdir, _modules(901), config, source=SYNOPSIS)
    assert str(caught.value).startswith(f"{SYNOPSIS} lists more than 900 node modules to scaffold, and the node "
                                        "scaffold ports (3100-3999) hold 900; nothing scaffolded")
    assert _tree(workdir) == before


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MB tmpfs as the working copy: room for a few scaffolded services, not for a hundred."""
    with mounted_tmpfs(tmp_path / "disk", "1m") as mount:
        yield mount


def test_a_full_disk_part_way_leaves_the_working_copy_as_it_was_and_names_the_folder(small_disk):
    (small_disk / "services").mkdir()
    earlier = scaffold_service(small_disk, "earlier-one", "", DEFAULTS["scaffold"])
    assert earlier.created
    before = _tree(small_disk)
    with pytest.raises(OSError) as caught:
        scaffold_missing(small_disk, _modules(100), {**DEFAULTS["scaffold"], "max_per_run": 100}, source=SYNOPSIS)
    assert caught.value.errno == errno.ENOSPC
    line = no_space_line(caught.value)
    assert line is not None and line.startswith(f"no space left on device: {small_disk}/services/"), line
    assert _tree(small_disk) == before  # nothing of this run left, not even its staging folder
    # with room for them, the same call makes them all
    few = scaffold_missing(small_disk, _modules(3), DEFAULTS["scaffold"], source=SYNOPSIS)
    assert all(r.created for r in few)
