"""Shared pytest options. ``--update-golden`` rewrites expected files instead of comparing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshxds.resources import Catalog, load_catalog
from tests.support import reference

pytest_plugins = ["tests.support.postgres"]  # the session PostgreSQL server fixtures


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files under tests/ from the current output (review the diff before committing)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes ``update_golden`` is a golden test: ``make golden`` selects it with ``-m golden``."""
    for item in items:
        if "update_golden" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.golden)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def catalog_from(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Catalog]:
    """Load a Catalog from YAML text through the real loader (fails the test on load errors)."""

    def load(text: str, zone: str = "default") -> Catalog:
        folder = tmp_path_factory.mktemp("input")
        (folder / "input.yaml").write_text(text)
        result = load_catalog([folder], zone=zone)
        assert result.catalog is not None, "\n".join(str(p) for p in result.errors)
        return result.catalog

    return load


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, in CI, fail) a ``kuma_reference`` test when Kuma's reference files are absent, before any fixture
    reads them."""
    if item.get_closest_marker("kuma_reference") is None:
        return
    reason = reference.missing_reason()
    if reason is None:
        return
    if reference.REQUIRED:
        pytest.fail(f"{reason}; MESHXDS_REQUIRE_REFERENCE is set, so this is an error")
    pytest.skip(reason)
