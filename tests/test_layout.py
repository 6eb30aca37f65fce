"""The layout a newcomer can walk through (README, Layout): one package per stage of the
guide over core/ and resources/; a stage imports core and resources, never another stage."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nexus_assets"
STAGES = {"workspace", "discovery", "parity", "scaffold", "images", "verify", "publish", "release", "compliance",
          "package", "deploy", "automation", "cli", "attest"}
SHARED = {"core", "resources", "policy"}  # policy: the guide's rules, shared by the stages
MAX_LINES = 400


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if not {"sample_repo", "templates"} & set(p.parts)]


def _imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level nexus_assets package, line) of every import in path."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "nexus_assets" and len(parts) > 1:
                found.add((parts[1], node.lineno))
            elif parts == ["nexus_assets"]:
                found.update((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; use nexus_assets.<package>")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "nexus_assets" and len(parts) > 1:
                    found.add((parts[1], node.lineno))
    return found


def test_stages_import_only_core_resources_and_themselves():
    wrong = []
    for path in _modules():
        own = path.relative_to(PACKAGE).parts[0]
        if own not in STAGES and own not in SHARED:
            continue
        allowed = SHARED | {own} if own in STAGES else SHARED
        if own == "cli":
            allowed = allowed | {"definitions"}  # the operator's command launches the wired graph
        for package, line in _imported_packages(path):
            if package not in allowed:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports nexus_assets.{package}")
    assert not wrong, "\n".join(wrong)


def test_every_stage_of_the_guide_has_its_folder():
    present = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    built = {"workspace", "discovery", "parity", "scaffold", "images", "verify", "publish", "release", "automation",
             "cli"}
    assert built | SHARED <= present


def test_no_module_is_a_house_of_its_own():
    long = [f"{p.relative_to(PACKAGE)}: {n} lines" for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, long
