"""Run a command on a pseudo-terminal (as a person's shell would) and return what it printed,
with the terminal's escape sequences removed."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_at_terminal(argv: list[str], env: dict[str, str], timeout: float = 600.0) -> tuple[int, str, str]:
    """(exit code, screen text without escapes, raw output)"""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                               env={**env, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"})
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    else:
        process.kill()
    os.close(master)
    code = process.wait(timeout=30)
    raw = b"".join(chunks).decode(errors="replace")
    return code, _ESCAPE.sub("", raw).replace("\r\n", "\n").replace("\r", "\n"), raw
