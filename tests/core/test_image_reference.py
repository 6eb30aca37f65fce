"""The image reference grammar settings check without importing the Docker SDK is the SDK's own."""

from __future__ import annotations

from docker.utils.build import _TAG

from nexus_assets.core.settings import IMAGE_REFERENCE


def test_the_settings_check_references_with_the_sdks_grammar() -> None:
    assert IMAGE_REFERENCE.pattern == _TAG.pattern
