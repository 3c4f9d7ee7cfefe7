"""Session fixtures of the container tests: podman present, images built once per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import skip_or_fail  # noqa: E402
from tests.deploy import containers, swarm  # noqa: E402


def pytest_terminal_summary(terminalreporter) -> None:
    """The swarm test's failure counts and times, shown with or without -s (as under CI)."""
    if swarm.SUMMARY:
        terminalreporter.section("swarm: failure counts and times")
        for line in swarm.SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def base_image() -> str:
    missing = containers.missing_tools()
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed: scripts/test installs them")
    containers.ensure_base_image()
    return containers.BASE_IMAGE


@pytest.fixture(scope="session")
def serving_image(base_image) -> Iterator[containers.Build]:
    built = containers.build_serving_image()
    yield built
    containers.remove_image(built.image)


@pytest.fixture(scope="session")
def nginx_image(base_image) -> containers.Build:
    return containers.build_nginx_image()
