"""Shared pytest options. ``--update-golden`` rewrites expected files instead of comparing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshxds.resources import Catalog, load_catalog

pytest_plugins = ["tests.support.postgres"]  # the session PostgreSQL server fixtures


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files under tests/ from the current output (review the diff before committing)",
    )


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
