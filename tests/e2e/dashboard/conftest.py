"""A real server for the dashboard test (SQLite; see tests/voxline/conftest.py for why)."""

from __future__ import annotations

import pytest

from tests.api import conftest as api_conftest

running = api_conftest.running  # the control plane's server fixture, registered here too


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory):
    yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'voxline.db'}"
