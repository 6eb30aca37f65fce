"""The layout a newcomer can walk through (README, Layout; docs/architecture.md): packages on
floors, each importing only the floors below it, the stages of the guide independent of one
another. The rules are import-linter contracts in pyproject.toml; these tests run them and check
that the contracts name the real packages."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nexus_assets"
MAX_LINES = 400
DATA = {"sample_repo", "templates", "realistic_deps"}  # target-repository files shipped as data


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if not DATA & set(p.parts)]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _floors() -> list[set[str]]:
    """The layers of the floors contract, top first, each as its set of module tails."""
    layers = next(c for c in _contracts() if c["id"] == "floors")["layers"]
    return [{name.strip().strip("()") for name in re.split(r"[|:]", layer)} for layer in layers]


def test_import_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert f"{len(_contracts())} kept, 0 broken" in done.stdout


def test_every_package_stands_on_one_floor():
    placed = [name for floor in _floors() for name in floor]
    assert len(placed) == len(set(placed)), "a module stands on two floors"
    present = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} - {"core"}
    present |= {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    missing = present - set(placed)
    assert not missing, f"packages on no floor of [tool.importlinter] (pyproject.toml): {sorted(missing)}"


def test_core_holds_the_kernel_and_the_record_reader_only():
    """core's modules are placed one by one: a module added to core must be put on the kernel's
    floor or the record reader's, and shared domain code belongs in a package of its own."""
    placed = {name.removeprefix("core.") for floor in _floors() for name in floor if name.startswith("core.")}
    present = {p.stem for p in (PACKAGE / "core").glob("*.py") if p.name != "__init__.py"}
    assert present - placed == set(), f"core modules on no floor: {sorted(present - placed)}"
    assert placed - present <= {"plan"}, f"floors name core modules that do not exist: {sorted(placed - present)}"


def test_readme_layout_names_every_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    unnamed = {name for name in packages if f"`{name}/`" not in layout}
    assert not unnamed, f"README's Layout section does not name: {sorted(unnamed)}"


def test_nothing_cites_a_file_outside_the_repository():
    outside = re.compile("|".join(re.escape(n) for n in ("DESIGN" + ".md", "STYLE" + ".md", "../" + "shared")))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    citing = [name for name in tracked if (ROOT / name).is_file() and (ROOT / name).suffix in
              (".py", ".md", ".toml", ".sh", ".yml", ".yaml", ".txt", "") and
              outside.search((ROOT / name).read_text(encoding="utf-8", errors="replace"))]
    assert not citing, citing


def test_no_module_is_a_house_of_its_own():
    long = [f"{p.relative_to(PACKAGE)}: {n} lines" for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, long
