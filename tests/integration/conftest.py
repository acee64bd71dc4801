"""Fixtures shared by the integration tests."""

import pytest

from tests.live import shared_live_server


@pytest.fixture
def portal(django_db_setup, live_server, settings):
    """The live server shared with the test thread, with short leases and polls for agent tests."""
    settings.PORTAL_AGENT_LEASE_SECONDS = 4
    settings.PORTAL_AGENT_CLAIM_POLL_SECONDS = 0.1
    settings.PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS = 1
    with shared_live_server(live_server) as portal:
        yield portal
