"""Step C: parity matching must be precise. Several fixtures here are built so that a naive
substring matcher would be wrong; each asserts what a naive matcher would say, then ours."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from nexus_assets.discovery.inventory import discover
from nexus_assets.parity.compare import compare, critical_gate, modules_to_scaffold, name_variants, normalize
from nexus_assets.parity.synopsis import parse_synopsis
from nexus_assets.target.repo_config import DEFAULTS, load_repo_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONFIG = {"parity": dict(DEFAULTS["parity"])}


def synopsis_of(tmp_path: Path, modules: dict[str, list[str]] | str):
    """A synopsis file from {category: ["name - description", ...]} or raw markdown."""
    if isinstance(modules, str):
        text = modules
    else:
        text = "# Synopsis\n\n" + "".join(
            f"## {i}. {cat}\n" + "".join(f"- **{m.split(' - ')[0]}** - {m.split(' - ')[1] if ' - ' in m else ''}\n"
                                        for m in mods) + "\n"
            for i, (cat, mods) in enumerate(modules.items(), start=1))
    path = tmp_path / "investor_synopsis.md"
    path.write_text(text, encoding="utf-8")
    return parse_synopsis(path, display_path="docs/investor_synopsis.md")


def inventory(folders=(), no_dockerfile=(), compose=(), compose_built=(), running=(), stopped=(), archive=()):
    """A discovery-shaped dict holding only what parity reads."""
    services = [{"name": n, "path": f"services/{n}", "dockerfile": f"services/{n}/Dockerfile"} for n in folders]
    services += [{"name": n, "path": f"services/{n}", "dockerfile": None} for n in no_dockerfile]
    built = {"context": "x", "exists": True, "dockerfile_exists": True}
    comp = [{"name": n, "image": f"nexus/{n}", "build": None} for n in compose]
    comp += [{"name": n, "image": None, "build": built} for n in compose_built]
    containers = [{"name": n, "status": "running", "compose_service": None} for n in running]
    containers += [{"name": n, "status": "exited", "compose_service": None} for n in stopped]
    return {"services": services, "compose": [{"file": "docker-compose.yml", "services": comp}],
            "containers": containers,
            "archive": {"present": bool(archive), "path": "nexus-discovery",
                        "docker_ps": [{"name": n, "compose_service": None} for n in archive]}}


def module(report: dict, name: str) -> dict:
    return next(m for m in report["modules"] if m["name"] == name)


def rules(report: dict, name: str) -> list[tuple[str, str, str]]:
    return [(e["source"], e["name"], e["rule"]) for e in module(report, name)["evidence"]]


def naive(module_name: str, candidate: str) -> bool:
    return module_name in candidate or candidate in module_name


def test_auth_service_is_auth_by_the_normalized_rule(tmp_path):
    syn = synopsis_of(tmp_path, {"Core": ["auth - Authentication"]})
    report = compare(syn, inventory(folders=["auth-service"]), CONFIG)
    assert module(report, "auth")["status"] == "present"
    assert rules(report, "auth") == [("folder", "auth-service", "normalized")]
    for variant in ("Auth_Service", "auth-svc", "nexus-auth", "nexus-cos-auth-api-1", "auth_server"):
        report = compare(syn, inventory(folders=[variant]), CONFIG)
        assert module(report, "auth")["status"] == "present", variant


def test_substrings_inside_words_are_no_evidence(tmp_path):
    syn = synopsis_of(tmp_path, {"AI": ["ai - assistant", "puabo-ai-core - inference"],
                                 "Core": ["auth - Authentication", "users - accounts"]})
    found = ["email-worker", "author-service", "mailer", "userspace-tools", "puabo-ai-corex", "ai-core"]
    assert naive("ai", "email-worker") and naive("auth", "author-service") and naive("users", "userspace-tools")
    report = compare(syn, inventory(folders=found), CONFIG)
    for name in ("ai", "puabo-ai-core", "auth", "users"):
        assert module(report, name)["status"] == "missing", name
        assert module(report, name)["evidence"] == []
    assert {s["name"] for s in report["non_canonical_services"]} == set(found)


def test_whole_token_ai_matches_only_its_own_service(tmp_path):
    syn = synopsis_of(tmp_path, {"AI": ["ai - assistant", "email-worker - mail"]})
    report = compare(syn, inventory(folders=["ai-service", "email-worker"]), CONFIG)
    assert rules(report, "ai") == [("folder", "ai-service", "normalized")]
    assert rules(report, "email-worker") == [("folder", "email-worker", "exact")]


def test_generic_words_alone_are_no_evidence(tmp_path):
    syn = synopsis_of(tmp_path, {"Core": ["backend-api - gateway", "frontend-app - web", "player-api - player"]})
    generic = ["api", "app", "service", "worker", "server", "web", "backend", "frontend", "api-service", "web-app"]
    assert naive("backend-api", "api") and naive("frontend-app", "app")
    report = compare(syn, inventory(folders=generic, compose=["api", "app"], running=["api"]), CONFIG)
    for name in ("backend-api", "frontend-app", "player-api"):
        assert module(report, name)["status"] == "missing", name
    # Literally the module's own name still counts, and a distinctive stem does too.
    report = compare(syn, inventory(folders=["backend-api", "player"]), CONFIG)
    assert rules(report, "backend-api") == [("folder", "backend-api", "exact")]
    assert rules(report, "player-api") == [("folder", "player", "normalized")]


def test_exact_match_wins_over_a_normalized_one(tmp_path):
    syn = synopsis_of(tmp_path, {"Analytics": ["analytics - dashboards", "analytics-worker - batch jobs"],
                                 "Stream": ["nexus-stream - player", "streaming-engine - engine"]})
    report = compare(syn, inventory(folders=["analytics", "nexus-stream", "stream"]), CONFIG)
    assert rules(report, "analytics") == [("folder", "analytics", "exact")]
    assert module(report, "analytics-worker")["status"] == "missing"  # `analytics` is not the worker
    assert rules(report, "nexus-stream") == [("folder", "nexus-stream", "exact")]
    assert module(report, "streaming-engine")["status"] == "missing"  # `stream` is neither
    # The most specific normalized form wins: this is the worker, not analytics.
    report = compare(syn, inventory(folders=["analytics-worker-service"]), CONFIG)
    assert rules(report, "analytics-worker") == [("folder", "analytics-worker-service", "normalized")]
    assert module(report, "analytics")["status"] == "missing"


def test_containers_match_through_compose_names(tmp_path):
    syn = synopsis_of(tmp_path, {"Core": ["auth - a", "users - u"]})
    disc = inventory(running=["nexus-cos-auth-1"])
    disc["containers"].append({"name": "proj_x_1", "status": "running", "compose_service": "users"})
    report = compare(syn, disc, CONFIG)
    assert rules(report, "auth") == [("container", "nexus-cos-auth-1", "normalized")]
    assert rules(report, "users") == [("container", "users", "exact")]
    assert module(report, "users")["status"] == "present"


def test_alias_from_the_repository_config(tmp_path):
    syn = synopsis_of(tmp_path, {"Media": ["transcoder - ffmpeg jobs"], "Core": ["backend-api - gw"]})
    config = {"parity": {**DEFAULTS["parity"],
                         "aliases": {"transcoder": ["media-encoder", "web-encoder"], "backend-api": ["api"],
                                     "ghost": ["x"]}}}
    report = compare(syn, inventory(folders=["media-encoder-svc", "api"], compose=["web-encoder"]), config)
    assert rules(report, "transcoder") == [("folder", "media-encoder-svc", "alias"),
                                           ("compose", "web-encoder", "alias")]
    assert module(report, "backend-api")["status"] == "missing"  # a generic alias is ignored ...
    messages = [p["message"] for p in report["problems"]]
    assert any("alias 'api'" in m and "generic" in m for m in messages)  # ... and reported
    assert any("'ghost', which is not a canonical module" in m for m in messages)


def test_configured_multi_word_generic_alias_counts(tmp_path):
    syn = synopsis_of(tmp_path, {"Frontend": ["frontend-app - web"]})
    config = {"parity": {**DEFAULTS["parity"], "aliases": {"frontend-app": ["web-frontend"]}}}
    assert module(compare(syn, inventory(folders=["web-frontend"]), CONFIG), "frontend-app")["status"] == "missing"
    report = compare(syn, inventory(folders=["web-frontend"]), config)
    assert rules(report, "frontend-app") == [("folder", "web-frontend", "alias")]
    assert not [p for p in report["problems"] if "alias" in p["message"]]


def test_mandatory_modules_are_critical(tmp_path):
    syn = synopsis_of(tmp_path, "## 1. Core\n- **ledger** - books (mandatory)\n- **auth** - a\n")
    report = compare(syn, inventory(), CONFIG)
    assert module(report, "ledger")["critical"] is True and module(report, "auth")["critical"] is True
    assert report["critical_missing"] == ["auth", "ledger"]


def test_alias_from_the_fixture_config_file():
    config = load_repo_config(FIXTURES / "nexus_mini")
    assert config["parity"]["aliases"] == {"transcoder": ["media-encoder"]}


def test_family_counting(tmp_path):
    syn = synopsis_of(tmp_path, "## 1. NUKI\n- **puabo-nuki-*** - commerce (family of 4)\n"
                                "## 2. Open\n- **rtx-*** - render workers\n")
    found = ["puabo-nuki-shop", "puabo-nuki-cart-service", "puabo-nuki", "puabo-nuki-service", "puabo-nukify"]
    report = compare(syn, inventory(folders=found, compose=["puabo-nuki-cart"]), CONFIG)
    family = module(report, "puabo-nuki-*")
    # `puabo-nuki`, `puabo-nuki-service` (generic tail) and `puabo-nukify` are not members;
    # the cart folder and compose entry are one member.
    assert family["family_members"] == ["puabo-nuki-cart", "puabo-nuki-shop"]
    assert family["family_found"] == 2 and family["family_count"] == 4 and family["status"] == "partial"
    assert module(report, "rtx-*")["status"] == "missing"
    report = compare(syn, inventory(folders=[f"puabo-nuki-{n}" for n in ("a1", "b2", "c3", "d4")],
                                    running=["rtx-gpu-1"]), CONFIG)
    assert module(report, "puabo-nuki-*")["status"] == "present"
    assert module(report, "rtx-*")["status"] == "present"  # no count: one strong member is enough
    # Members seen only in compose (image, no build) are weak evidence.
    report = compare(syn, inventory(compose=[f"puabo-nuki-{n}" for n in ("a", "b", "c", "d")]), CONFIG)
    assert module(report, "puabo-nuki-*")["status"] == "partial"


def test_alias_of_a_family_counts_as_a_member(tmp_path):
    syn = synopsis_of(tmp_path, "## 1. NUKI\n- **puabo-nuki-*** - commerce (family of 2)\n")
    config = {"parity": {**DEFAULTS["parity"], "aliases": {"puabo-nuki-*": ["nuki-legacy-store"]}}}
    report = compare(syn, inventory(folders=["puabo-nuki-shop", "nuki-legacy-store"]), config)
    family = module(report, "puabo-nuki-*")
    assert family["family_members"] == ["nuki-legacy-store", "puabo-nuki-shop"] and family["status"] == "present"


def test_statuses_by_kind_of_evidence(tmp_path):
    syn = synopsis_of(tmp_path, {"All": ["a-folder - x", "b-nodockerfile - x", "c-image - x", "d-built - x",
                                         "e-running - x", "f-stopped - x", "g-vps - x", "h-none - x"]})
    disc = inventory(folders=["a-folder"], no_dockerfile=["b-nodockerfile"], compose=["c-image"],
                     compose_built=["d-built"], running=["e-running"], stopped=["f-stopped"], archive=["g-vps"])
    report = compare(syn, disc, CONFIG)
    status = {m["name"]: m["status"] for m in report["modules"]}
    assert status == {"a-folder": "present", "b-nodockerfile": "partial", "c-image": "partial",
                      "d-built": "present", "e-running": "present", "f-stopped": "partial",
                      "g-vps": "partial", "h-none": "missing"}
    assert report["totals"] == {"canonical": 8, "present": 3, "partial": 4, "missing": 1}
    assert report["parity_percent"] == 37.5 and report["coverage_percent"] == 87.5
    assert module(report, "g-vps")["evidence"][0]["note"] == "only in the VPS archive"


def critical_synopsis(tmp_path):
    return synopsis_of(tmp_path, {"Core": ["backend-api - gw", "auth - a", "users - u", "streaming-engine - s",
                                           "puabo-blac-financing - f", "ott-mini - o", "nexus-stream - n",
                                           "payments - p"]})


def test_gate_boundary_six_passes_seven_fails(tmp_path):
    syn = critical_synopsis(tmp_path)
    report = compare(syn, inventory(folders=["users-service"]), CONFIG)
    assert len(report["critical_missing"]) == 6
    assert report["gate"]["passed"] is True and critical_gate(report)[0] is True
    report = compare(syn, inventory(folders=["payments"]), CONFIG)
    passed, message = critical_gate(report)
    assert len(report["critical_missing"]) == 7 and passed is False and report["gate"]["passed"] is False
    assert "7 critical module(s) missing" in message and "at most 6 allowed" in message
    assert "backend-api" in message


def test_scaffolded_critical_modules_pass_the_gate(tmp_path):
    syn = critical_synopsis(tmp_path)
    first = compare(syn, inventory(), CONFIG)
    assert first["gate"]["passed"] is False
    planned = [name for name, _ in modules_to_scaffold(first)]
    assert planned == ["auth", "backend-api", "nexus-stream", "ott-mini", "payments", "puabo-blac-financing",
                       "streaming-engine", "users"]
    report = compare(syn, inventory(), CONFIG, scaffolded=planned)
    assert report["gate"]["passed"] is True and report["gate"]["critical_missing_unscaffolded"] == []
    assert module(report, "auth")["scaffolded"] is True and module(report, "auth")["status"] == "missing"
    assert modules_to_scaffold(report) == modules_to_scaffold(first)  # still says what to create
    # The gate can also be re-evaluated on a saved report with names scaffolded since.
    assert critical_gate(first, scaffolded=["auth"])[0] is True


def test_gate_limit_from_config(tmp_path):
    syn = critical_synopsis(tmp_path)
    config = {"parity": {**DEFAULTS["parity"], "max_critical_missing": 0}}
    report = compare(syn, inventory(folders=["users"]), config)
    assert report["gate"]["max_critical_missing"] == 0 and report["gate"]["passed"] is False


def test_empty_or_missing_synopsis_fails_the_gate(tmp_path):
    for syn in (parse_synopsis(tmp_path / "nope.md", display_path="docs/investor_synopsis.md"),
                synopsis_of(tmp_path, "")):
        report = compare(syn, inventory(folders=["auth"]), CONFIG)
        passed, message = critical_gate(report)
        assert passed is False and "docs/investor_synopsis.md" in message
        assert report["totals"]["canonical"] == 0 and report["parity_percent"] == 0.0
        assert report["action"].startswith("fix the canonical synopsis")
        assert modules_to_scaffold(report) == []


def test_modules_to_scaffold_leaves_out_families_and_pmmg(tmp_path):
    syn = synopsis_of(tmp_path, "## 1. Core\n- **auth** - Authentication\n- **puabo-nuki-*** - family (family of 2)\n"
                                "- **pmmg-static** - static server for N3XUS-SYSTEM-PMMG client assets\n")
    report = compare(syn, inventory(), CONFIG)
    assert modules_to_scaffold(report) == [("auth", "Authentication")]
    assert module(report, "pmmg-static")["pmmg"] is True
    assert report["action"] == ("auto-scaffold 1 missing module(s): auth; review incomplete wildcard families "
                                "(not scaffolded): puabo-nuki-*; PMMG modules are browser-only and never scaffolded "
                                "as containers: pmmg-static")
    report = compare(syn, inventory(folders=["auth", "puabo-nuki-a", "puabo-nuki-b", "pmmg-static"]), CONFIG)
    assert report["action"] == "none"


def test_critical_not_in_synopsis_is_reported(tmp_path):
    syn = synopsis_of(tmp_path, {"Core": ["auth - a"]})
    report = compare(syn, inventory(), CONFIG)
    assert report["critical"] == ["auth"]
    assert any("'ott-mini' is not in the synopsis" in p["message"] for p in report["problems"])


def test_report_is_deterministic_whatever_the_input_order(tmp_path):
    syn = critical_synopsis(tmp_path)
    disc = inventory(folders=["auth-service", "users", "email-worker", "x-tool"], compose=["ott-mini", "redis"],
                     running=["nexus-cos-payments-1"], archive=["nexus-stream"])
    first = compare(syn, disc, CONFIG)
    shuffled = json.loads(json.dumps(disc))
    rng = random.Random(7)
    for key in ("services", "containers"):
        rng.shuffle(shuffled[key])
    rng.shuffle(shuffled["compose"][0]["services"])
    second = compare(syn, shuffled, CONFIG)
    def strip(r):
        return json.dumps({k: v for k, v in r.items() if k != "generated_at"}, sort_keys=True)
    assert strip(first) == strip(second)
    assert [m["name"] for m in first["modules"]] == sorted(m["name"] for m in first["modules"])  # one category


def test_end_to_end_on_the_fixture_repository(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", repo)
    shutil.copytree(FIXTURES / "discovery_archive", repo / "nexus-discovery")
    syn = parse_synopsis(repo / "docs" / "investor_synopsis.md", display_path="docs/investor_synopsis.md")
    disc = json.loads(json.dumps(discover(repo)))  # as the asset reads it back from JSON
    report = compare(syn, disc, load_repo_config(repo))
    status = {m["name"]: m["status"] for m in report["modules"]}
    assert status == {
        "backend-api": "missing", "auth": "present", "users": "present",
        "streaming-engine": "partial", "transcoder": "partial", "drm-service": "partial",
        "puabo-blac-financing": "missing", "payments": "missing",
        "email-worker": "present", "notifications": "missing", "puabo-ai-core": "missing",
        "creator-dashboard": "present", "ott-mini": "partial", "nexus-stream": "present",
        "puabo-nuki-*": "partial",
    }
    assert [m["name"] for m in report["modules"]][:3] == ["auth", "backend-api", "users"]  # category order
    assert rules(report, "drm-service") == [("folder", "drm", "normalized")]
    assert ("compose", "media-encoder", "alias") in rules(report, "transcoder")
    assert ("archive", "ott-mini", "exact") in rules(report, "ott-mini")
    assert report["critical_missing"] == ["backend-api", "puabo-blac-financing"]
    assert report["gate"]["passed"] is True
    assert [s["name"] for s in report["non_canonical_services"]] == [
        "api", "author-service", "legacy_billing", "postgres", "redis"]
    assert report["parity_percent"] == round(5 / 15 * 100, 1)
    assert report["synopsis"]["pmmg"]["browser_only"] is True
    json.dumps(report)  # serializable


def test_name_helpers():
    assert normalize("  Nexus_COS.Auth  ") == "nexus-cos-auth"
    assert name_variants("nexus-cos-auth-service-2") >= {"auth", "nexus-cos-auth", "cos-auth"}
    assert "api" not in name_variants("backend-api") and "backend" not in name_variants("backend-api")
    assert name_variants("nexus-stream", strip_prefixes=False) == {"nexus-stream"}


@pytest.mark.parametrize("candidate", ["authors", "oauth", "auth2", "reauth-service"])
def test_auth_lookalikes_are_not_auth(tmp_path, candidate):
    syn = synopsis_of(tmp_path, {"Core": ["auth - a"]})
    assert module(compare(syn, inventory(folders=[candidate]), CONFIG), "auth")["status"] == "missing"


def test_platform_shaped_synopsis_members_and_wildcards_in_the_report():
    """The real platform's layout (a `## Required Modules` section, `####` sub-groups, a family
    naming its members, one that does not) gives modules parity can find."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "synopses" / "platform_nested.md"
    syn = parse_synopsis(fixture, display_path="docs/investor_synopsis.md")
    report = compare(syn, inventory(folders=["puabo-nuki-inventory-mgr", "puabo-dsp-upload-mgr", "auth",
                                             "sandbox"]), CONFIG)
    assert report["synopsis"]["module_count"] == 41 and report["synopsis"]["problems"] == []
    assert module(report, "puabo-nuki-inventory-mgr")["status"] == "present"
    assert module(report, "puabo-nuki-shipping-service")["status"] == "missing"
    dsp = module(report, "puabo-dsp-*")
    assert dsp["family"] and dsp["family_members"] == ["puabo-dsp-upload-mgr"] and dsp["status"] == "partial"
    assert all(m["name"] != "sandbox" for m in report["modules"])  # a bold bullet outside the section
