"""One truth each: the report files' names (core/keys.py, beside the asset keys), SHA256SUMS (one
writer and one parser in core/hashing.py; the evidence pack's standalone verify.py excepted) and
the whole-token rule of secret masking (core/masking.whole_token). Each has a scan of the package
that fails when a second copy appears, and behaviour checked against the real tools."""

from __future__ import annotations

import ast
import hashlib
import re
import subprocess
from datetime import date
from pathlib import Path

import pytest

from nexus_assets.core.hashing import SUMS, parse_sha256sums, sha256sums
from nexus_assets.core.keys import (
    COMPLIANCE_REPORT_FILE,
    DEPLOYMENT_PACKAGE_FILE,
    DEPLOYMENT_REPORT_FILE,
    any_day,
    dated,
    day_pattern,
    newest,
)
from nexus_assets.core.masking import holds, mask_known, mask_secrets, whole_token
from nexus_assets.package.archive import Entry, PackageError, build_tar_gz, verify_tar_gz
from nexus_assets.policy.secret_scan import count_in_bytes

PACKAGE = Path(__file__).resolve().parents[2] / "nexus_assets"
GUIDE_FILES = ("discovery_parsed.json", "discrepancy_report.json", "scaffold_report.json", "artifacts_manifest.json",
               "compliance_report_", "deployment_package_", "deployment_report_", "verified_release.json")
# Ships alone as verify.py and imports nothing of nexus-assets: its own names, writer-free parser.
STANDALONE = PACKAGE / "evidence" / "check.py"


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "sample_repo" not in p.parts and "templates" not in p.parts]


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in path that is code: no docstring, no `description=`
    of an asset or check (words for the UI, which name the files as the guide does)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            skipped.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg == "description":
            skipped.update(id(n) for n in ast.walk(node.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skipped]


def test_report_file_names_are_written_only_beside_the_asset_keys():
    keys = PACKAGE / "core" / "report_paths.py"  # beside the asset keys (core/keys.py re-exports them)
    found = [f"{p.relative_to(PACKAGE)}:{line}: {text[:60]!r}" for p in _modules() if p not in (keys, STANDALONE)
             for line, text in _code_strings(p) if any(name in text for name in GUIDE_FILES)]
    assert found == [], "a report file named outside core/report_paths.py (use its *_FILE names):\n" + "\n".join(found)


def test_dated_names_globs_and_patterns(tmp_path):
    day = date(2026, 12, 7)
    assert dated(COMPLIANCE_REPORT_FILE, day) == "reports/compliance_report_20261207.pdf"
    assert any_day(DEPLOYMENT_REPORT_FILE) == "reports/deployment_report_*.json"
    assert day_pattern(DEPLOYMENT_PACKAGE_FILE).match("deployment_package_20261207.tar.gz")
    assert not day_pattern(DEPLOYMENT_PACKAGE_FILE).match("deployment_package_2026127.tar.gz")
    assert not day_pattern(COMPLIANCE_REPORT_FILE).match("compliance_report_20261207.pdf.bak")
    assert newest(tmp_path, DEPLOYMENT_REPORT_FILE) is None
    for stamp in ("20261130", "20261207", "20261201"):
        (tmp_path / "reports").mkdir(exist_ok=True)
        (tmp_path / "reports" / f"deployment_report_{stamp}.json").write_text("{}")
    assert newest(tmp_path, DEPLOYMENT_REPORT_FILE) == tmp_path / "reports" / "deployment_report_20261207.json"


def _listing_shapes(path: Path) -> list[str]:
    """Lines of path that write or split a sha256sum listing by hand: `{..}  {..}` with a newline
    in one f-string, or a split on two spaces."""
    text = path.read_text(encoding="utf-8")
    shapes = [r'f"\{[^"]*\}  \{[^"]*\}\\n"', r'\.partition\("  "\)', r'\.split\("  "']
    return [f"{path.relative_to(PACKAGE)}:{text.count(chr(10), 0, m.start()) + 1}"
            for shape in shapes for m in re.finditer(shape, text)]


def test_sha256sums_has_one_writer_and_one_parser():
    own = PACKAGE / "core" / "hashing.py"
    found = [hit for p in _modules() if p not in (own, STANDALONE) for hit in _listing_shapes(p)]
    assert found == [], f"SHA256SUMS written or read outside core/hashing.py: {found}"
    assert _listing_shapes(STANDALONE), "the standalone verifier's own parser is gone: update this test"
    assert "the one exception" in STANDALONE.read_text(encoding="utf-8")  # and it says why it has its own


def test_the_writer_is_what_sha256sum_checks_and_the_parser_reads_what_it_writes(tmp_path):
    files = {"a.txt": b"a\n", "dir/b b.bin": b"\x00\x01", "z.json": b"{}"}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    (tmp_path / SUMS).write_bytes(sha256sums(digests))
    done = subprocess.run(["sha256sum", "--check", "--strict", SUMS], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert parse_sha256sums(sha256sums(digests)) == digests
    text_mode = subprocess.run(["sha256sum", "a.txt", "z.json"], cwd=tmp_path, capture_output=True, check=True).stdout
    binary_mode = subprocess.run(["sha256sum", "-b", "a.txt"], cwd=tmp_path, capture_output=True, check=True).stdout
    assert parse_sha256sums(text_mode + b"\n" + binary_mode.replace(b"a.txt", b"c.txt")) == {
        "a.txt": digests["a.txt"], "z.json": digests["z.json"], "c.txt": digests["a.txt"]}


@pytest.mark.parametrize(("listing", "why"), [
    (b"abc  a.txt\n", "line 1 is not"),
    (b"%s  a.txt\n%sa.txt\n" % (b"0" * 64, b"1" * 64), "line 2 is not"),
    (b"%s  a.txt\n%s  a.txt\n" % (b"0" * 64, b"1" * 64), "line 2 lists a.txt a second time"),
])
def test_the_parser_names_the_line_it_refuses(listing, why):
    with pytest.raises(ValueError, match=why):
        parse_sha256sums(listing)


def test_a_package_whose_listing_is_damaged_names_the_line(tmp_path):
    data = build_tar_gz("pkg", {"a.txt": Entry(b"a\n")}, mtime=0)
    assert verify_tar_gz(data, "pkg.tar.gz").files == 1
    import gzip
    import io
    import tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as old, tarfile.open(fileobj=raw, mode="w") as new:
        for member in old.getmembers():
            body = old.extractfile(member).read() if member.isfile() else None
            if member.name == f"pkg/{SUMS}":
                body = body.replace(b"  ", b" ", 1)
                member.size = len(body)
            new.addfile(member, io.BytesIO(body) if body is not None else None)
    with pytest.raises(PackageError, match=rf"pkg.tar.gz: {SUMS} line 1 is not"):
        verify_tar_gz(gzip.compress(raw.getvalue()), "pkg.tar.gz")


def test_the_whole_token_rule_is_written_once():
    own = PACKAGE / "core" / "masking.py"
    # A known value escaped into the look-behind that makes a token whole (the PMMG scan's fixed
    # word list uses the same look-behind, but for names it wrote itself, not for a value).
    rule = re.compile(r"\(\?<!\[\\\\?w-\]\).*escape\(")
    found = [f"{p.relative_to(PACKAGE)}:{n}" for p in _modules() if p != own
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if rule.search(line)]
    assert found == [], f"a whole-token pattern written outside core/masking.whole_token: {found}"
    assert len(rule.findall(own.read_text(encoding="utf-8"))) == 2  # text and bytes, in whole_token


def test_masking_the_scan_and_holds_agree_on_whole_tokens():
    text = "auth-service auth authz x-auth auth."
    assert whole_token("auth").findall(text) == ["auth", "auth"]
    assert whole_token(b"auth").findall(text.encode()) == [b"auth", b"auth"]
    assert mask_known(text, ["auth"]) == "auth-service *** authz x-auth ***."
    assert holds(text, "auth") and not holds("auth-service", "auth")
    assert count_in_bytes(b"auth-service", ["auth"]) == 0 and count_in_bytes(b"user=auth", ["auth"]) == 1
    long = "s3cr3t-long-value"  # eight characters or more: masked wherever it stands
    assert mask_secrets(f"x{long}y", [long]) == "x***y" and count_in_bytes(f"x{long}y".encode(), [long]) == 1
    assert count_in_bytes(b'{"v": "a\\"b"}', ['a"b']) == 1  # as JSON holds it, still a whole token
