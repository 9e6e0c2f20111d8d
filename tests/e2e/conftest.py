"""End-to-end tests: several processes, a real browser, kill-and-restart.

Everything under tests/e2e/ carries the ``e2e`` marker, so ``pytest -m "not e2e"``
is the quick in-process suite; ``make test`` runs both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api import conftest as api_conftest

# SQLite and PostgreSQL, as for the control-plane tests (the restart tests use it).
database_url = api_conftest.database_url

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
