"""The benchmark script's pure parts: which runs it makes in which order, the file it changes,
the ratios and targets it reports. No engine: the benchmark itself runs by hand."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexus_assets.testrepos.synthetic import generate_monorepo

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run_benchmark.py"
_spec = importlib.util.spec_from_file_location("run_benchmark", SCRIPT)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def run(seconds: float, builds: int = 0, containers: int = 0, failures: int = 0, steps: int = 0, cached: int = 0) -> dict:
    return {"seconds": seconds, "builds": builds, "test_containers": containers, "failures": failures,
            "build_steps": steps, "cached_steps": cached}


def test_pipelines_option_keeps_run_order_and_refuses_unknown_names():
    assert bench.parse_pipelines("ours,naive") == ("naive", "ours")
    assert bench.parse_pipelines(" buildonly , ours,buildonly") == ("buildonly", "ours")
    with pytest.raises(argparse.ArgumentTypeError, match="nightly"):
        bench.parse_pipelines("naive,nightly")
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_pipelines(",")


def test_runs_are_interleaved_by_state_with_ours_last_in_each_round():
    order = bench.schedule(bench.PIPELINES)
    assert order == [(s, p) for s in ("cold", "unchanged", "one_change") for p in ("naive", "buildonly", "buildkit", "ours")]
    assert bench.schedule(("buildonly", "ours")) == [
        ("cold", "buildonly"), ("cold", "ours"), ("unchanged", "buildonly"), ("unchanged", "ours"),
        ("one_change", "buildonly"), ("one_change", "ours")]


def test_ratios_against_both_scripts_with_the_issue_targets():
    results = {
        "naive_cold": run(400), "naive_unchanged": run(340), "naive_one_change": run(345),
        "buildonly_cold": run(120), "buildonly_unchanged": run(30), "buildonly_one_change": run(32),
        "ours_cold": run(150), "ours_unchanged": run(3), "ours_one_change": run(10),
    }
    ratios = bench.compute_ratios(results)
    assert ratios["cold: ours / naive"]["value"] == pytest.approx(0.375) and ratios["cold: ours / naive"]["met"]
    assert ratios["nothing changed: naive / ours"]["value"] == pytest.approx(340 / 3)
    assert not ratios["one change: naive / ours"]["met"]  # 34.5x < 40x
    assert ratios["cold: ours / build-only"]["value"] == pytest.approx(1.25)
    assert not ratios["cold: ours / build-only"]["met"]  # 1.25x > 1.2x
    assert ratios["nothing changed: build-only / ours"] == {"value": 10, "op": ">=", "target": 20, "met": False}
    assert ratios["one change: build-only / ours"]["value"] == pytest.approx(3.2)
    assert ratios["one change: build-only / ours"]["met"]  # 3.2x >= 3x (the version held)


def test_a_subset_reports_only_the_ratios_it_measured():
    ratios = bench.compute_ratios({"buildonly_cold": run(100), "ours_cold": run(160), "ours_unchanged": run(2)})
    assert list(ratios) == ["cold: ours / build-only"]
    assert not ratios["cold: ours / build-only"]["met"]  # 1.6x > 1.2x


def test_exact_work_checks_ours_and_that_the_scripts_build_everything():
    results = {"buildonly_cold": run(9, builds=4, steps=36), "buildonly_unchanged": run(5, builds=4, steps=36, cached=36),
               "ours_unchanged": run(1), "ours_one_change": run(2, builds=1, containers=2, steps=16, cached=3)}
    assert all(bench.exact_work(results, 4).values())
    results["ours_unchanged"] = run(1, containers=2)
    results["buildonly_unchanged"] = run(5, builds=4, failures=1, steps=36, cached=36)
    checks = bench.exact_work(results, 4)
    assert not checks["ours, nothing changed: 0 builds, 0 test containers"]
    assert not checks["buildonly: 4 builds every run, no failure"]
    results["buildonly_unchanged"] = run(5, builds=4, steps=36, cached=12)  # rebuilt from COPY on: not "unchanged"
    assert not bench.exact_work(results, 4)["buildonly, nothing changed: every build step from the cache"]


def test_changed_file_is_the_middle_services_entry_point_even_for_tiny_repos(tmp_path: Path):
    names = generate_monorepo(tmp_path / "one", 1)
    assert bench.changed_file(tmp_path / "one", names) == tmp_path / "one" / "services" / "node-svc-001" / "server.js"
    names = generate_monorepo(tmp_path / "four", 4)
    assert bench.changed_file(tmp_path / "four", names) == tmp_path / "four" / "services" / "py-svc-003" / "app.py"


def test_each_pipeline_changes_the_file_differently_and_it_stays_valid_source(tmp_path: Path):
    names = generate_monorepo(tmp_path, 4)
    app = bench.changed_file(tmp_path, names)
    texts = {p: bench.with_one_change(app, app.read_text(), p) for p in bench.PIPELINES}
    assert len(set(texts.values())) == 4 and all(t.startswith(app.read_text()) for t in texts.values())
    compile(texts["ours"], str(app), "exec")  # a Python comment, not a syntax error
    assert bench.with_one_change(Path("server.js"), "x;\n", "ours").endswith("// benchmark: one change (ours)\n")


def test_table_lists_every_measured_run():
    table = bench.format_table({"buildonly_cold": run(12.34, builds=4, steps=36), "ours_one_change": run(1.5, 1, 2),
                                bench.FRESH: {**run(8.5), "pulls": 4}})
    lines = table.splitlines()
    assert len(lines) == 4
    assert "build-only script" in lines[1] and "12.3" in lines[1] and lines[1].endswith(" 0/36       -")
    assert "one service changed" in lines[2]
    assert "fresh machine" in lines[3] and lines[3].endswith(" 4"), "ours on a fresh machine, last, with its pulls"


def test_a_fresh_machine_must_pull_every_image_and_build_and_test_nothing():
    name = "ours, fresh machine: 0 builds, 0 test containers, 4 pulled from the registry cache"
    in_time = "ours, fresh machine: at most 20 s"
    assert bench.exact_work({bench.FRESH: {**run(8.5), "pulls": 4}}, 4) == {name: True, in_time: True}
    assert not bench.exact_work({bench.FRESH: {**run(20.5), "pulls": 4}}, 4)[in_time]
    assert not bench.exact_work({bench.FRESH: {**run(8.5, builds=1), "pulls": 3}}, 4)[name]
    assert not bench.exact_work({bench.FRESH: {**run(8.5, containers=2), "pulls": 4}}, 4)[name]


def test_bad_options_stop_before_touching_the_engine():
    done = subprocess.run([sys.executable, str(SCRIPT), "--pipelines", "naive,fast"], capture_output=True, text=True)
    assert done.returncode == 2 and "fast" in done.stderr
    done = subprocess.run([sys.executable, str(SCRIPT), "--services", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "at least 1" in done.stderr


def test_build_steps_counts_steps_and_cache_hits_in_the_build_logs_of_this_run_only(tmp_path: Path):
    (tmp_path / "reports").mkdir()
    old = tmp_path / "reports" / "build_a.log"
    old.write_text("Step 1/9 : FROM node:20-alpine\nStep 2/9 : WORKDIR /app\n ---> Using cache\n")
    os.utime(old, (1_000, 1_000))
    (tmp_path / "reports" / "build_b.log").write_text(
        "Step 1/3 : FROM x\nStep 2/3 : WORKDIR /app\n ---> Using cache\nStep 3/3 : COPY . .\n ---> 1a2b\n")
    (tmp_path / "reports" / "test_results_b_unit.log").write_text("Step 1/1 : x\n ---> Using cache\n")  # not a build
    assert bench.build_steps(tmp_path) == {"build_steps": 3, "cached_steps": 2}
    assert bench.build_steps(tmp_path, since=2_000) == {"build_steps": 2, "cached_steps": 1}
    # BuildKit's plain output (the BuildKit loop's logs, ours's): FROM is no step, `#N CACHED` a hit
    (tmp_path / "reports" / "build_c.log").write_text(
        "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n"
        "#4 [stage-0 1/3] FROM docker.io/library/x\n#4 DONE 0.0s\n#6 [stage-0 2/3] WORKDIR /app\n#6 CACHED\n"
        "#7 [stage-0 3/3] COPY . .\n#7 DONE 0.1s\n#7 [stage-0 3/3] COPY . .\n")
    assert bench.build_steps(tmp_path, since=2_000) == {"build_steps": 4, "cached_steps": 2}


def test_the_buildkit_loop_is_shown_beside_the_script_without_a_target():
    ratios = bench.compute_ratios({"buildonly_cold": run(100), "buildkit_cold": run(25), "ours_cold": run(50)})
    assert ratios["cold: BuildKit loop / build-only"] == {"value": 0.25, "op": "", "target": None, "met": True}
    assert ratios["cold: ours / BuildKit loop"]["value"] == 2.0
    assert "(no target)" in bench.format_ratios(ratios) and "NOT MET" not in bench.format_ratios(ratios)
