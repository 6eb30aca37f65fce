"""Writes that never leave a half-written report: write beside, then rename into place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: object) -> None:
    """Pretty, sorted, newline-terminated JSON, written atomically."""
    write_atomic(path, (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


def read_json(path: Path) -> object:
    """A report an upstream asset wrote (always UTF-8)."""
    return json.loads(path.read_text(encoding="utf-8"))
