"""The step summary of a large run stays readable: failures first, the passed gates past the
cap counted, names cut to a count, a | in a reason escaped."""

from __future__ import annotations

from nexus_assets.automation.summary import MAX_GATES, MAX_NAMES, Gate, RunFacts, markdown_summary
from nexus_assets.core.settings import Settings


def test_a_summary_of_a_hundred_services(tmp_path):
    settings = Settings(repo=tmp_path / "repo", workdir=tmp_path / "work", registry="127.0.0.1:5000", version="1.2.0",
                        max_parallel=4)
    facts = RunFacts(run_id="0123456789abcdef", job_name="nexus_pipeline", started=0.0, origin="cli",
                     outcome="failed")
    facts.built = {f"svc-{i:03d}" for i in range(100)}
    facts.failed = {"svc-bad": "docker build failed at Dockerfile line 3 | exit 1"}
    facts.gates = {f"image/svc-{i:03d}:{stage}": Gate(True, True, "ok") for i in range(100)
                   for stage in ("lint", "unit")}
    facts.gates["image/svc-042:unit"] = Gate(False, True, "2 tests failed")
    text = markdown_summary(facts, settings)
    lines = text.splitlines()
    assert f"| built | 100 | {', '.join(f'svc-{i:03d}' for i in range(MAX_NAMES))} and 80 more |" in lines
    assert "| failed | 1 | svc-bad (docker build failed at Dockerfile line 3 \\| exit 1) |" in lines
    first_gate = lines.index("| gate | verdict | detail |") + 2
    assert lines[first_gate] == "| `image/svc-042:unit` | **FAILED** | 2 tests failed |"
    assert sum(line.startswith("| `image/") for line in lines) == MAX_GATES
    assert f"| … | | {200 - MAX_GATES} more: {200 - MAX_GATES} passed, 0 not |" in lines
    assert "no release step in this run" in text and "none written" in text
