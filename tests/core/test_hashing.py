from __future__ import annotations

import os
from pathlib import Path

from nexus_assets.core.hashing import fingerprint, json_version, tree_hash


def _tree(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (root / "src" / "app.py").write_text("print('hi')\n")
    return root


def test_tree_hash_is_stable_and_ignores_mtimes_and_caches(tmp_path):
    root = _tree(tmp_path / "svc")
    before = tree_hash(root)
    os.utime(root / "Dockerfile", (0, 0))
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("x")
    assert tree_hash(root) == before


def test_tree_hash_changes_with_content_name_and_exec_bit(tmp_path):
    root = _tree(tmp_path / "svc")
    base = tree_hash(root)
    (root / "src" / "app.py").write_text("print('bye')\n")
    changed = tree_hash(root)
    assert changed != base
    (root / "src" / "app.py").rename(root / "src" / "main.py")
    renamed = tree_hash(root)
    assert renamed not in (base, changed)
    (root / "src" / "main.py").chmod(0o755)
    assert tree_hash(root) != renamed


def test_fingerprint_covers_build_args_and_base_ids():
    base = fingerprint("t", {}, {"python:3.11-slim": "sha256:a"})
    assert fingerprint("t", {}, {"python:3.11-slim": "sha256:b"}) != base
    assert fingerprint("t", {"X": "1"}, {"python:3.11-slim": "sha256:a"}) != base
    assert fingerprint("t", {}, {"python:3.11-slim": "sha256:a"}) == base


def test_json_version_ignores_generated_at():
    assert json_version({"a": 1, "generated_at": "x"}) == json_version({"generated_at": "y", "a": 1})
    assert json_version({"a": 1}) != json_version({"a": 2})
