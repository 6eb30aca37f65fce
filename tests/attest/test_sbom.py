"""SBOMs of real images: the OS packages dpkg recorded and the language packages really
installed (pip inside the build, npm's node_modules), with package URLs, as valid CycloneDX."""

from __future__ import annotations

import json

import pytest

from nexus_assets.attest.image_files import DPKG_STATUS, ImageFiles, language_roots, read_image_files
from nexus_assets.attest.sbom import (
    Package,
    apk_packages,
    dpkg_packages,
    image_packages,
    make_bom_json,
    npm_lock_packages,
    npm_package,
    python_package,
)
from nexus_assets.attest.steps import BOMS_PER_PROCESS, bom_makers

STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
Description: GNU C Library
 continuation line

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
"""


def _validate(document: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document)
    assert error is None, error


def test_dpkg_status_lists_installed_packages_only():
    found = dpkg_packages(STATUS, {"ID": "debian", "VERSION_ID": "12"}, "/var/lib/dpkg/status")
    assert [p.purl for p in found] == ["pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"]


def test_apk_database():
    text = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\n"
    found = apk_packages(text, {"ID": "alpine", "VERSION_ID": "3.19.1"}, "/lib/apk/db/installed")
    assert [(p.name, p.license) for p in found] == [("musl", "MIT"), ("busybox", "GPL-2.0-only")]
    assert found[0].purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"


def test_language_metadata_parsers():
    scoped = npm_package(b'{"name": "@types/node", "version": "20.1.0", "license": "MIT"}', "/a/package.json")
    assert scoped is not None and scoped.purl == "pkg:npm/%40types/node@20.1.0"
    assert npm_package(b'{"private": true}', "/x") is None and npm_package(b"not json", "/x") is None
    lock = npm_lock_packages(json.dumps({"lockfileVersion": 3, "packages": {
        "": {"name": "app"}, "node_modules/ms": {"version": "2.1.3"},
        "node_modules/a/node_modules/ms": {"version": "2.0.0"}}}).encode(), "/app/package-lock.json")
    assert sorted(p.purl for p in lock) == ["pkg:npm/ms@2.0.0", "pkg:npm/ms@2.1.3"]
    meta = python_package(b"Metadata-Version: 2.1\nName: Zope.Interface\nVersion: 6.0\nLicense: ZPL 2.1\n\nbody", "/x")
    assert meta is not None and meta.purl == "pkg:pypi/zope-interface@6.0" and meta.license == "ZPL 2.1"


def _packages(count: int) -> list[Package]:
    return [Package("deb", f"pkg{i}", f"1.{i}", f"pkg:deb/debian/pkg{i}@1.{i}?arch=amd64", "MIT" if i % 2 else None,
                    [DPKG_STATUS]) for i in range(count)]


def test_bom_dependencies_are_the_root_on_every_package_each_a_leaf():
    files = ImageFiles(image_id="sha256:" + "a" * 64, created="2026-01-01T00:00:00.123456789Z")
    document = make_bom_json("svc", "nexus/svc", files, _packages(40), "0.1.0")
    _validate(document)
    dependencies = {d["ref"]: d.get("dependsOn", []) for d in json.loads(document)["dependencies"]}
    purls = {p.purl for p in _packages(40)}
    assert set(dependencies.pop(f"image:{files.image_id}")) == purls
    assert dependencies == {purl: [] for purl in purls}


def test_many_boms_are_made_in_worker_processes_with_the_same_bytes():
    files = ImageFiles(image_id="sha256:" + "b" * 64, created="2026-01-01T00:00:00Z")
    expected = make_bom_json("svc", "nexus/svc", files, _packages(30), "0.1.0")
    with bom_makers(BOMS_PER_PROCESS * 2) as make:
        assert make is not make_bom_json  # this machine has 2 cores or more
        assert make("svc", "nexus/svc", files, _packages(30), "0.1.0") == expected
    with bom_makers(1) as make:
        assert make is make_bom_json


def test_language_roots_follow_the_image_config():
    roots = language_roots({"WorkingDir": "/usr/src/app", "Env": ["VIRTUAL_ENV=/venv", "PATH=/venv/bin:/usr/bin",
                                                                  "NODE_PATH=/opt/lib:/srv/x"]})
    assert "/venv" in roots and "/usr/src" in roots and "/usr/src/app" not in roots and "/opt/lib" not in roots


@pytest.mark.docker
def test_python_image_sbom_names_what_pip_installed(docker_client, attest_images):
    tag, image_id, versions = attest_images["python"]
    files = read_image_files(docker_client, tag)
    assert files.image_id == image_id
    packages = image_packages(files)
    pypi = {p.name: p for p in packages if p.kind == "pypi"}
    for name, version in versions.items():  # pip and setuptools, installed by pip in the build
        assert pypi[name].version == version, sorted(pypi)
        assert pypi[name].purl == f"pkg:pypi/{name}@{version}"
        assert pypi[name].locations[0].startswith("/usr/local/lib/python3")
    debs = {p.name for p in packages if p.kind == "deb"}
    assert {"libc6", "python3", "nodejs", "dpkg"} <= debs  # what the base's dpkg database records
    document = make_bom_json("py-svc", "nexus/py-svc", files, packages, "0.1.0")
    _validate(document)
    bom = json.loads(document)
    assert bom["metadata"]["component"]["version"] == image_id
    purls = {c["purl"] for c in bom["components"]}
    assert f"pkg:pypi/pip@{versions['pip']}" in purls
    assert len(bom["components"]) == len(packages) > 50
    # The same image gives the same bytes (serial number and time come from the image).
    assert make_bom_json("py-svc", "nexus/py-svc", read_image_files(docker_client, tag), packages, "0.1.0") == document
    assert not docker_client.containers.list(all=True, filters={"label": "io.nexus-assets.purpose=sbom"})


@pytest.mark.docker
def test_node_image_sbom_names_node_modules(docker_client, attest_images):
    tag, _, versions = attest_images["node"]
    files = read_image_files(docker_client, tag)
    assert "/srv/app/node_modules/semver/package.json" in files.node_packages
    assert "/srv/app/package-lock.json" in files.lockfiles
    packages = image_packages(files)
    # The app's own packages; the base's npm (under /usr/lib/node_modules) is listed too, as it is installed.
    npm = {p.name: p for p in packages if p.kind == "npm" and any(loc.startswith("/srv/app/") for loc in p.locations)}
    assert {n: p.version for n, p in npm.items()} == versions
    assert any(p.kind == "npm" and p.name == "npm" for p in packages)
    semver = npm["semver"]
    assert semver.license == "ISC" and semver.purl == f"pkg:npm/semver@{versions['semver']}"
    assert "/srv/app/node_modules/semver/package.json" in semver.locations
    _validate(make_bom_json("node-svc", "nexus/node-svc", files, packages, "0.1.0"))
