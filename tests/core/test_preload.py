"""A stage's libraries imported in the background (core/preload.py): loaded when the thread ends,
and a module that fails to import leaves the failure to the step's own import."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_preload_imports_in_the_background_and_ignores_failures() -> None:
    code = textwrap.dedent("""
        import sys
        from nexus_assets.core.preload import preload
        assert "nexus_assets.compliance.layout" not in sys.modules and "pandas" not in sys.modules
        preload(["no_such_module_here", "nexus_assets.compliance.layout"]).join(120)
        assert "no_such_module_here" not in sys.modules
        preload(["nexus_assets.compliance.layout"]).join(120)
        assert "nexus_assets.compliance.layout" in sys.modules and "pandas" in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
