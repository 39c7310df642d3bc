"""Shared fixtures: the reference data beside the checkout, and fresh project files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REFDATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_refdata(*parts: str) -> Path:
    """Path inside ../shared/data; skip when absent, fail when CI demands the data."""
    path = REFDATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("NASSTUDIO_REQUIRE_REFDATA") == "1":
            pytest.fail(f"reference data missing: {path} (NASSTUDIO_REQUIRE_REFDATA=1)")
        pytest.skip(f"reference data not found at {path}")
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The README's commands run first: the longest test, one with -n auto's workers would
    otherwise start last and end well after all the others."""
    items.sort(key=lambda item: item.nodeid != LONGEST_TEST)


LONGEST_TEST = "tests/test_readme.py::test_readme_commands_run_as_written"


@pytest.fixture
def refdata() -> Path:
    return require_refdata()


@pytest.fixture
def project(tmp_path):
    from nasstudio.store import Project

    with Project(tmp_path / "test.nasproj") as p:
        yield p


@pytest.fixture
def server():
    """The loopback OpenAI-compatible server of tests/llm_server.py."""
    from tests.llm_server import FakeLLMServer

    with FakeLLMServer() as s:
        yield s
